"""``csonboard stripe setup`` and ``csonboard stripe doctor``: the webhook endpoint
that sends csonboard its events, made right and checked on the live account.

Exit status: 0 success (doctor: no problem; warnings do not count); 1 the
work failed (doctor: a problem was found); 2 bad usage or configuration (no
key, a key Stripe refuses, a URL Stripe would refuse).

The signing secret of an endpoint setup creates is printed once, alone on its
own line of stdout, and nowhere else: not logged, not stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import echo_json
from csonboard.errors import CsonboardError
from csonboard.operations.stripe_doctor import diagnose, key_findings
from csonboard.operations.stripe_setup import (
    SetupPlan,
    SetupResult,
    apply_setup,
    check_url,
    plan_setup,
)
from csonboard.stripe_api import StripeGateway
from csonboard.stripe_api.records import WebhookEndpoint

SECRETS_VAR = "CSONBOARD_STRIPE_WEBHOOK_SECRETS"


@click.group("stripe")
def command() -> None:
    """Stripe's side: the webhook endpoint that sends csonboard its events."""


@command.command("setup")
@click.option(
    "--url", required=True, help="The receiver's public URL: https://HOST/webhooks/stripe."
)
@click.option("--dry-run", is_flag=True, help="Only read; print what would be done.")
@pass_context
def setup(ctx: Context, url: str, dry_run: bool) -> None:
    """Create (or correct) the webhook endpoint sending to URL: exactly the event
    types csonboard handles, in the API version its Stripe library pins, enabled.
    A created endpoint's signing secret is printed once.

    \b
      csonboard stripe setup --url https://shop.example.com/webhooks/stripe --dry-run
      csonboard stripe setup --url https://shop.example.com/webhooks/stripe
    """
    settings = ctx.settings
    gateway = StripeGateway.from_settings(settings)
    livemode = settings.livemode
    try:
        warnings = check_url(url, livemode=livemode)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    for warning in warnings:
        click.echo(f"csonboard: warning: {warning}", err=True)
    plan = plan_setup(gateway, url, livemode=livemode)
    _describe(plan, dry_run=dry_run)
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    _report(apply_setup(gateway, plan))


@command.command("doctor")
@click.option(
    "--url",
    help="Check the endpoint(s) sending to this URL. Default: every endpoint sent an "
    "event type csonboard handles.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def doctor(ctx: Context, url: str | None, as_json: bool) -> None:
    """Check the live account: the key, the endpoints sending to csonboard (enabled,
    URL, event types, API version) and recent delivery failures. Read-only.

    \b
      csonboard stripe doctor
      csonboard stripe doctor --url https://shop.example.com/webhooks/stripe --json
    """
    settings = ctx.settings
    gateway = StripeGateway.from_settings(settings)
    livemode = settings.livemode
    assert settings.stripe.api_key is not None  # from_settings insists
    findings = key_findings(
        settings.stripe.api_key.get_secret_value(),
        mode_setting=settings.stripe.mode,
        livemode=livemode,
    )
    diagnosis = diagnose(gateway, livemode=livemode, now=datetime.now(UTC), url=url)
    findings += diagnosis.findings
    problems = [f for f in findings if f.level == "problem"]
    mode = "live" if livemode else "test"
    if as_json:
        echo_json(
            {
                "mode": mode,
                "endpoints": diagnosis.endpoints,
                "findings": findings,
                "problems": len(problems),
                "warnings": sum(1 for f in findings if f.level == "warning"),
            }
        )
    else:
        for finding in findings:
            click.echo(str(finding))
        if not problems:
            click.echo(f"no problems ({len(diagnosis.endpoints)} endpoint(s), {mode} mode)")
    if problems:
        raise CsonboardError(f"{len(problems)} problem(s) with Stripe's webhooks ({mode} mode)")


# -- setup's words -----------------------------------------------------------------------


def _describe(plan: SetupPlan, *, dry_run: bool) -> None:
    """What was found and what will be (or would be) done."""
    will = "would" if dry_run else "will"
    for other in plan.others:
        click.echo(f"found {_endpoint(other)}")
    if plan.endpoint is None:
        if any(o.api_version != plan.api_version for o in plan.others):
            click.echo(
                f"Stripe cannot change an endpoint's API version: {will} create a new endpoint "
                f"with {plan.api_version} next to {_ids(plan.others)}"
            )
        else:
            click.echo(
                f"no webhook endpoint sends to {plan.url}: {will} create one "
                f"({len(plan.events)} event types, API version {plan.api_version})"
            )
        return
    click.echo(f"found {_endpoint(plan.endpoint)}")
    if plan.action == "none":
        return
    if plan.added:
        click.echo(f"  {will} add event types: {', '.join(plan.added)}")
    if plan.removed:
        click.echo(f"  {will} remove event types: {', '.join(plan.removed)}")
    if plan.enable:
        click.echo(f"  {will} enable it (it is disabled: Stripe sends it nothing)")


def _report(result: SetupResult) -> None:
    plan, endpoint = result.plan, result.endpoint
    if result.secret is None:
        verb = "is up to date" if plan.action == "none" else "updated"
        click.echo(
            f"webhook endpoint {endpoint.id} {verb}: {_state(endpoint)}, "
            f"{len(endpoint.enabled_events)} event types, API version {endpoint.api_version}"
        )
        click.echo(
            "Its signing secret is not shown: Stripe shows it only when an endpoint is "
            "created. To replace it, roll it in the Dashboard (Webhooks, this endpoint, "
            f'"Roll secret") and put the new one in {SECRETS_VAR} next to the old one '
            "(comma-separated) until Stripe stops signing with the old one."
        )
        for other in plan.still_sending:
            click.echo(
                f"note: {_endpoint(other)} still sends to this URL too; once every receiver "
                f"verifies {endpoint.id}'s secret, disable or delete it"
            )
        return
    click.echo(
        f"created webhook endpoint {endpoint.id} for {endpoint.url}: "
        f"{len(endpoint.enabled_events)} event types, API version {endpoint.api_version}"
    )
    click.echo(
        f"Its signing secret is on the next line, shown this once (Stripe never shows it "
        f"again): put it in {SECRETS_VAR} of every receiver."
    )
    click.echo(result.secret)
    old = plan.still_sending
    if not old:
        click.echo("Then restart the receivers; `csonboard stripe doctor` checks the setup.")
        return
    click.echo("Roll over without losing an event:")
    click.echo(
        f"  1. add it to {SECRETS_VAR} next to the old secret, comma-separated (old,new): "
        "csonboard verifies each event against every configured secret"
    )
    click.echo("  2. restart the receivers")
    click.echo(
        f"  3. disable or delete the old endpoint {_ids(old)} (Dashboard: Webhooks; or the API)"
    )
    click.echo(f"  4. then remove the old secret from {SECRETS_VAR}")
    click.echo(
        "While both endpoints send, every event arrives twice: harmless, csonboard stores "
        "each event once (by its id)."
    )


def _endpoint(endpoint: WebhookEndpoint) -> str:
    return (
        f"webhook endpoint {endpoint.id} ({_state(endpoint)}, API version "
        f"{endpoint.api_version or 'account default'}, {_count(endpoint)}) sending to "
        f"{endpoint.url}"
    )


def _count(endpoint: WebhookEndpoint) -> str:
    if "*" in endpoint.enabled_events:
        return "every event type (*)"
    return f"{len(endpoint.enabled_events)} event type(s)"


def _state(endpoint: WebhookEndpoint) -> str:
    return "enabled" if endpoint.enabled else "disabled"


def _ids(endpoints: tuple[WebhookEndpoint, ...]) -> str:
    return ", ".join(e.id for e in endpoints)
