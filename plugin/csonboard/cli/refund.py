"""``csonboard refund``: refund a purchase csonboard could not provision.

Exit status: 0 when it is refunded (now or before) or, with --dry-run, would
be; 1 when it cannot be (provisioned, not paid, or being worked on now); 2 for
bad arguments or settings.
"""

from __future__ import annotations

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import echo_json
from csonboard.money.refund import refund_purchase
from csonboard.runtime import build_services
from csonboard.worker import worker_name


@click.command("refund")
@click.argument("session_id")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.option("--reason", default="by an operator", show_default=True, help="Kept in the ledger.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def command(ctx: Context, session_id: str, dry_run: bool, reason: str, as_json: bool) -> None:
    """Refund a paid purchase that was not provisioned (dead, stuck, or still
    trying), cancel its subscription and delete the projects its orders left.

    \b
      csonboard refund cs_... --dry-run
      csonboard refund cs_...

    From the moment it starts, no worker, replay or retry provisions the
    purchase again. Running it twice, or at the same time as the worker's own
    provision-or-refund (onboarding.refund_after_hours), refunds once. A
    provisioned purchase is refunded in Stripe's Dashboard instead: csonboard
    stops it when the refund arrives.
    """
    if not session_id.startswith("cs_"):
        raise click.BadParameter("must be a Checkout Session id (cs_...)", param_hint="SESSION_ID")
    settings = ctx.settings
    services = build_services(settings)
    ledger = settings.open_ledger(must_exist=True)
    try:
        result = refund_purchase(
            ledger,
            services,
            session_id,
            owner=worker_name(),
            retry=settings.worker,
            reason=reason,
            dry_run=dry_run,
        )
    finally:
        ledger.close()
    if as_json:
        echo_json({**vars(result), "dry_run": dry_run})
        return
    if dry_run:
        shown = ", ".join(f"#{p}" for p in result.projects) or "none"
        click.echo(
            f"would refund {result.payment_intent or 'nothing (no payment found)'}"
            + (f", cancel {result.subscription}" if result.subscription else "")
            + f", delete projects {shown}"
        )
        click.echo("dry run: nothing was changed")
        return
    for line in result.done or ["nothing was paid: nothing to refund"]:
        click.echo(line)
    click.echo(f"{session_id}: {'already ' if result.already_refunded else ''}refunded")
