"""``csonboard onboardings list|show``: each purchase and how far it got."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import WHEN, echo_json, echo_table, short_time
from csonboard.errors import CsonboardError
from csonboard.ledger import ONBOARDING_STATUSES, Ledger


@click.group("onboardings")
def command() -> None:
    """Onboardings (one per Checkout Session) in the ledger."""


@command.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(ONBOARDING_STATUSES))
@click.option("--customer", help="Stripe customer id (cus_...).")
@click.option("--subscription", help="Stripe subscription id (sub_...).")
@click.option("--since", type=WHEN, help="Created at or after: 2h, 7d or an ISO time.")
@click.option("--until", type=WHEN, help="Created before: 30m or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def list_onboardings(
    ctx: Context,
    statuses: tuple[str, ...],
    customer: str | None,
    subscription: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Onboardings, newest first."""
    ledger = Ledger.open(ctx.settings.ledger_url)
    try:
        found = ledger.onboardings.find(
            statuses=statuses,
            customer_id=customer,
            subscription_id=subscription,
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
        ["CREATED", "SESSION", "STATUS", "STEP", "CUSTOMER", "CS USER", "NEXT TRY", "NOTE"],
        (
            (
                short_time(o.created_at),
                o.session_id,
                o.status,
                o.step,
                o.customer_id,
                o.cs_user_id,
                short_time(o.next_attempt_at) if o.next_attempt_at else None,
                o.last_error or o.note,
            )
            for o in found
        ),
    )


@command.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def show_onboarding(ctx: Context, session_id: str, as_json: bool) -> None:
    """One onboarding: its status, each step's result, attempts and last error,
    the next attempt, and the ComputeStacks orders it placed."""
    ledger = Ledger.open(ctx.settings.ledger_url)
    try:
        onboarding = ledger.onboardings.get(session_id)
        steps = ledger.onboardings.steps(session_id)
        orders = ledger.onboardings.orders(session_id, abandoned=True)
        subscription = onboarding.subscription_id if onboarding else None
        lifecycle = ledger.lifecycle.actions(subscription_id=subscription) if subscription else []
    finally:
        ledger.close()
    if onboarding is None:
        raise CsonboardError(f"no onboarding for {session_id} in the ledger")
    if as_json:
        echo_json({**vars(onboarding), "steps": steps, "orders": orders, "lifecycle": lifecycle})
        return
    for name, value in vars(onboarding).items():
        click.echo(f"{name + ':':<18}{_shown(value)}")
    click.echo("\nsteps:")
    for step in steps:
        click.echo(
            f"  {step.step:<24}{step.status:<9}tries {step.attempts}  "
            f"{short_time(step.finished_at or step.started_at)}"
        )
        if step.last_error:
            click.echo(f"      error: {step.last_error}")
        if step.result:
            click.echo(f"      result: {json.dumps(step.result, sort_keys=True)}")
    if lifecycle:
        click.echo(f"\nlifecycle of {subscription}:")
        for action in lifecycle:
            when = action.due_at if action.status == "scheduled" else action.done_at
            click.echo(
                f"  {short_time(when)}  {action.action:<11}{action.status:<15}{action.reason}"
            )
    if orders:
        click.echo("\norders:")
        for order in orders:
            click.echo(
                f"  unit {order.unit}: {order.order_id} {order.status:<10} "
                f"project {_shown(order.project_id)}  {order.project_name!r}"
            )


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return short_time(value)
    return "-" if value is None else str(value)
