"""``csonboard usage``: ComputeStacks usage billed through Stripe Billing Meters.

- ``sync``: read every onboarded customer's usage now and report it (or say
  what would be, with ``--dry-run``); exit 1 when a customer failed.
- ``list``: what was recorded and reported, newest usage first.
- ``resolve``: settle a report that waits for a person (``uncertain``,
  ``failed``) after looking at the meter in Stripe.

Exit status as everywhere: 0 success, 1 the requested work failed, 2 bad
usage or configuration.
"""

from __future__ import annotations

from datetime import datetime

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import WHEN, echo_json, echo_table, short_time
from csonboard.errors import CsonboardError
from csonboard.ledger.usage import NEEDS_OPERATOR, USAGE_STATUSES
from csonboard.runtime import build_services, usage_sync
from csonboard.usage import report_lines
from csonboard.worker import worker_name


@click.group("usage")
def command() -> None:
    """ComputeStacks usage billed through Stripe Billing Meters, exactly once."""


@command.command("sync")
@click.option("--customer", metavar="CUS_ID", help="Only this Stripe customer's usage.")
@click.option(
    "--dry-run", is_flag=True, help="Say what would be recorded and sent; change nothing."
)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def sync(ctx: Context, customer: str | None, dry_run: bool, as_json: bool) -> None:
    """Report every onboarded customer's usage now (a worker does it every
    usage.interval_minutes on its own).

    \b
      csonboard usage sync --dry-run
      csonboard usage sync --customer cus_...

    A customer a worker is syncing at this moment is left to it (counted busy).
    """
    settings = ctx.settings
    services = build_services(settings)
    ledger = settings.open_ledger(must_exist=True)
    try:
        found = usage_sync(settings, services, ledger, worker_name()).sync(
            customer_id=customer, dry_run=dry_run
        )
    finally:
        ledger.close()
    if as_json:
        echo_json({"dry_run": dry_run, "sync": found})
    else:
        if not services.catalog.bills_usage:
            click.echo(
                f"the plan catalog ({services.catalog.source}) bills no usage: nothing to do"
            )
        for line in report_lines(found):
            click.echo(line)
        if dry_run:
            click.echo(f"dry run: {found.would_send} report(s) would be sent; nothing was changed")
        for error in found.errors:
            click.echo(f"error: {error}", err=True)
    if found.errors:
        raise CsonboardError(f"{len(found.errors)} customer(s) could not be synced (see above)")


@command.command("list")
@click.option("--customer", metavar="CUS_ID", help="Only this Stripe customer.")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(USAGE_STATUSES),
    multiple=True,
    help="Only these statuses (repeatable).",
)
@click.option("--since", type=WHEN, help="Usage at or after: 2h, 7d or an ISO time.")
@click.option("--until", type=WHEN, help="Usage before: 2h, 7d or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def list_reports(
    ctx: Context,
    customer: str | None,
    statuses: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """What was recorded and reported to Stripe, newest usage first.

    \b
      csonboard usage list --status unbillable
      csonboard usage list --customer cus_... --since 30d
    """
    ledger = ctx.settings.open_ledger(must_exist=True)
    try:
        found = ledger.usage.find(
            customer_id=customer, statuses=statuses, since=since, until=until, limit=limit
        )
    finally:
        ledger.close()
    if as_json:
        echo_json({"usage": found})
        return
    echo_table(
        ["USAGE", "CUSTOMER", "METER", "RESOURCE", "QTY", "VALUE", "AT", "STATUS", "NOTE"],
        (
            (
                r.usage_id,
                r.customer_id,
                r.meter,
                r.resource,
                r.quantity,
                r.value,
                short_time(r.timestamp),
                r.status,
                r.last_error,
            )
            for r in found
        ),
    )


@command.command("resolve")
@click.argument("usage_id", type=int)
@click.option(
    "--as",
    "outcome",
    type=click.Choice(["reported", "resend", "unbillable"]),
    required=True,
    help="reported: Stripe has it; resend: it never arrived, send it again; "
    "unbillable: do not bill it.",
)
@pass_context
def resolve(ctx: Context, usage_id: int, outcome: str) -> None:
    """Settle a report that waits for a person (uncertain or failed).

    Look at the meter's summary for the customer in Stripe first: `--as resend`
    when the usage is not there (it is sent again under its identifier, with a
    new day to retry in), `--as reported` when it is.
    """
    ledger = ctx.settings.open_ledger(must_exist=True)
    try:
        report = ledger.usage.get(usage_id)
        if report is None:
            raise CsonboardError(f"no usage {usage_id} in the ledger")
        if report.status not in NEEDS_OPERATOR:
            raise CsonboardError(
                f"usage {usage_id} is {report.status}; only {' or '.join(NEEDS_OPERATOR)} "
                "usage is resolved by hand"
            )
        status = "pending" if outcome == "resend" else outcome
        note = f"resolved by an operator as {outcome}"
        if not ledger.usage.settle(usage_id, status, error=note, expected=NEEDS_OPERATOR):
            raise CsonboardError(f"usage {usage_id} changed meanwhile; look again")
    finally:
        ledger.close()
    click.echo(f"usage {usage_id}: {report.status} -> {status}")
