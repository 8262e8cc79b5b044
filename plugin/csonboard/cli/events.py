"""``csonboard events list|show``: what Stripe sent and what became of it."""

from __future__ import annotations

from datetime import datetime

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import WHEN, echo_json, echo_table, short_time
from csonboard.errors import CsonboardError
from csonboard.ledger import EVENT_STATUSES


@click.group("events")
def command() -> None:
    """Stripe events in the ledger."""


@command.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(EVENT_STATUSES))
@click.option("--type", "types", multiple=True, help="Event type; repeat for several.")
@click.option("--customer", help="Stripe customer id (cus_...).")
@click.option("--object", "object_id", help="The object the event is about (cs_..., sub_...).")
@click.option("--since", type=WHEN, help="Received at or after: 2h, 7d or an ISO time.")
@click.option("--until", type=WHEN, help="Received before: 30m or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def list_events(
    ctx: Context,
    statuses: tuple[str, ...],
    types: tuple[str, ...],
    customer: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Events, newest first."""
    ledger = ctx.settings.open_ledger(must_exist=True)
    try:
        found = ledger.events.find(
            statuses=statuses,
            types=types,
            customer_id=customer,
            object_id=object_id,
            since=since,
            until=until,
            limit=limit,
        )
    finally:
        ledger.close()
    if as_json:
        echo_json(found)
        return
    echo_table(
        ["RECEIVED", "EVENT", "TYPE", "STATUS", "TRIES", "RESULT"],
        (
            (
                short_time(e.received_at),
                e.id,
                e.type,
                e.status,
                e.attempts,
                e.last_error if e.status in ("failed", "dead") else e.outcome,
            )
            for e in found
        ),
    )


@command.command("show")
@click.argument("event_id")
@click.option("--body", is_flag=True, help="Also print the raw body as received.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def show_event(ctx: Context, event_id: str, body: bool, as_json: bool) -> None:
    """One event: where it came from, its status, attempts and errors, and
    any other body that arrived under its id (a conflict: kept aside, never
    processed; with --body, shown too)."""
    ledger = ctx.settings.open_ledger(must_exist=True)
    try:
        record = ledger.events.get(event_id)
        raw = ledger.events.body(event_id) if body else None
        conflicts = ledger.events.conflicts(event_id)
    finally:
        ledger.close()
    if record is None:
        raise CsonboardError(f"no event {event_id} in the ledger")
    if as_json:
        others = [{k: v for k, v in vars(c).items() if body or k != "body"} for c in conflicts]
        echo_json(
            {**vars(record), **({"body": raw} if raw is not None else {}), "conflicts": others}
        )
        return
    for name, value in vars(record).items():
        shown = short_time(value) if isinstance(value, datetime) else value
        click.echo(f"{name + ':':<18}{'-' if shown is None else shown}")
    if raw is not None:
        click.echo("body:")
        click.echo(raw.decode("utf-8", "replace"))
    for conflict in conflicts:
        click.echo(
            f"conflict:         another body (sha256 {conflict.digest[:16]}...) from "
            f"{conflict.source} at {short_time(conflict.received_at)}: kept, never processed"
        )
        if body:
            click.echo(conflict.body.decode("utf-8", "replace"))
