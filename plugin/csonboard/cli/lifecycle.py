"""``csonboard lifecycle list``: what csonboard did, declined, or will do about
customers' subscriptions (grace periods, retention, period ends)."""

from __future__ import annotations

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import echo_json, echo_table, short_time

ACTION_STATUSES = ("scheduled", "done", "cancelled", "declined", "needs_operator", "failed")


@click.group("lifecycle")
def command() -> None:
    """Subscription lifecycle: suspensions, terminations, plan changes."""


@command.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(ACTION_STATUSES))
@click.option("--customer", help="Stripe customer id (cus_...).")
@click.option("--subscription", help="Stripe subscription id (sub_...).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def list_actions(
    ctx: Context,
    statuses: tuple[str, ...],
    customer: str | None,
    subscription: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Scheduled actions first (soonest first), then what was done, newest first."""
    ledger = ctx.settings.open_ledger(must_exist=True)
    try:
        found = ledger.lifecycle.actions(
            customer_id=customer, subscription_id=subscription, statuses=statuses, limit=limit
        )
    finally:
        ledger.close()
    if as_json:
        echo_json(found)
        return
    echo_table(
        ["WHEN", "CUSTOMER", "SUBSCRIPTION", "USER", "ACTION", "STATUS", "WHY"],
        (
            (
                short_time(a.due_at if a.status == "scheduled" else a.done_at),
                a.customer_id,
                a.subscription_id,
                a.cs_user_id,
                a.action,
                a.status,
                a.reason,
            )
            for a in found
        ),
    )
