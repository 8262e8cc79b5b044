"""``csonboard reconcile``: paid Checkout Sessions without a completed onboarding.

Exit status: 0 when every paid session is onboarded or on its way (or, with
--fix, was queued); 1 when some need attention and --fix was not given; 2 for
bad arguments or settings (a Stripe key is required).
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import WHEN, echo_json, echo_table, short_time
from csonboard.errors import CsonboardError
from csonboard.operations.reconcile import FixResult, Reconciliation, fix, reconcile
from csonboard.queue import open_doorbell
from csonboard.stripe_api import StripeGateway


@click.command("reconcile")
@click.option(
    "--since",
    type=WHEN,
    default="30d",
    show_default=True,
    help="Sessions created at or after: 30d, 12h or an ISO time.",
)
@click.option("--fix", "fix_them", is_flag=True, help="Queue them (creating missing onboardings).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def command(ctx: Context, since: datetime, fix_them: bool, as_json: bool) -> None:
    """Find paid Checkout Sessions without a completed onboarding; --fix queues them.

    \b
      csonboard reconcile                 report (exit 1 if any needs attention)
      csonboard reconcile --since 7d --fix

    The recovery after an outage longer than Stripe's three days of webhook
    retries: the sessions come from the Stripe API, not from webhooks.
    """
    if since > datetime.now(UTC):
        raise click.BadParameter("is in the future", param_hint="--since")
    settings = ctx.settings
    stripe = StripeGateway.from_settings(settings)
    ledger = settings.open_ledger(must_exist=True)
    try:
        found = reconcile(ledger, stripe, since)
        fixed = None
        if fix_them and found.unfulfilled:
            doorbell = open_doorbell(settings)
            try:
                fixed = fix(ledger, doorbell, found.unfulfilled, livemode=settings.livemode)
            finally:
                doorbell.close()
    finally:
        ledger.close()
    if as_json:
        echo_json({"reconciliation": found, "fixed": fixed})
    else:
        _report(found, fixed)
    if fixed is not None and fixed.warning:
        click.echo(f"csonboard: warning: {fixed.warning}", err=True)
    if fixed is None and found.needing_attention:
        raise CsonboardError(
            f"{len(found.needing_attention)} paid session(s) need attention: "
            "`csonboard reconcile --fix` queues them"
        )


def _report(found: Reconciliation, fixed: FixResult | None) -> None:
    if found.unfulfilled:
        echo_table(
            ["CREATED", "SESSION", "CUSTOMER", "EMAIL", "ONBOARDING", "NOTE"],
            (
                (
                    short_time(u.session.created),
                    u.session.id,
                    u.session.customer,
                    u.session.email,
                    u.status,
                    u.detail,
                )
                for u in found.unfulfilled
            ),
        )
    in_progress = len(found.unfulfilled) - len(found.needing_attention)
    click.echo(
        f"{found.paid} paid Checkout Session(s) since {short_time(found.since)}: "
        f"{found.onboarded} onboarded, {in_progress} in progress, "
        f"{len(found.needing_attention)} need attention"
    )
    if fixed is None:
        return
    click.echo(
        f"queued: {len(fixed.created)} new onboarding(s), {len(fixed.requeued)} re-queued, "
        f"{len(fixed.nudged)} in progress rung"
    )
    if fixed.skipped:
        click.echo(f"left alone (changed since the report): {', '.join(fixed.skipped)}")
    click.echo("a running worker does the work; `csonboard onboardings list` follows it")
