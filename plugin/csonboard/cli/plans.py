"""``csonboard plans check``: the plan catalog against live ComputeStacks and Stripe.

Exit status: 0 when no problem is found (warnings do not count); 1 when there
is at least one, each on its own line naming the plan and key; 2 when the
catalog does not load or a setting (or credential) is wrong.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import echo_json
from csonboard.errors import CsonboardError
from csonboard.operations.catalog_check import check_catalog
from csonboard.plans import load_catalog
from csonboard.runtime import catalog_of, computestacks_admin
from csonboard.stripe_api import StripeGateway


@click.group("plans")
def command() -> None:
    """The plan catalog."""


@command.command("check")
@click.option(
    "--catalog",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Check this catalog instead of the configured one (plans, CSONBOARD_PLANS).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def check(ctx: Context, path: Path | None, as_json: bool) -> None:
    """Check every plan against the live ComputeStacks catalog and, when a Stripe
    key is set, against live Stripe prices and products; usage entries against
    ComputeStacks' products and Stripe's meters. Read-only.

    \b
      csonboard plans check
      csonboard plans check --catalog new-plans.toml     before deploying it
    """
    settings = ctx.settings
    catalog = load_catalog(path) if path is not None else catalog_of(settings)
    cs = computestacks_admin(settings)
    stripe = StripeGateway.from_settings(settings) if settings.stripe.api_key else None
    mode = ("live" if settings.livemode else "test") if stripe else ""
    findings = check_catalog(catalog, cs, stripe, mode=mode)
    problems = [f for f in findings if not f.warning]
    checked = f"ComputeStacks at {_without_userinfo(settings.cs.url)}"
    checked += f" and Stripe ({mode} mode)" if stripe else ""
    if as_json:
        echo_json(
            {
                "catalog": catalog.source,
                "plans": list(catalog.plans),
                "stripe_checked": stripe is not None,
                "problems": [{"key": f.key, "problem": f.message} for f in problems],
                "warnings": [{"key": f.key, "warning": f.message} for f in findings if f.warning],
            }
        )
    else:
        for finding in findings:
            click.echo(str(finding))
        if not problems:
            click.echo(f"{len(catalog.plans)} plan(s) in {catalog.source}: no problems ({checked})")
    if stripe is None:
        click.echo("csonboard: Stripe not checked: no CSONBOARD_STRIPE_API_KEY", err=True)
    if problems:
        raise CsonboardError(f"{len(problems)} problem(s) in {catalog.source} ({checked})")


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
