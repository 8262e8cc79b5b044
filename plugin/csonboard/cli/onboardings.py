"""``csonboard onboardings list|show``: each purchase and how far it got."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import WHEN, echo_json, echo_table, short_time
from csonboard.errors import CsonboardError
from csonboard.ledger import ONBOARDING_STATUSES, Ledger, Onboarding, StepRecord
from csonboard.ledger.lifecycle import LifecycleAction
from csonboard.lifecycle.state import ServiceState, purchase_state

_EVERY = 100_000
"""Enough to list every lifecycle action of one purchase."""


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
    ledger = ctx.settings.open_ledger(must_exist=True)
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
    the next attempt, the ComputeStacks orders it placed, and what followed the
    money: the purchase's service state, its refunds and disputes, the services
    csonboard holds stopped, and every lifecycle action done, declined and scheduled for its
    subscription and for the customer's user since the purchase."""
    ledger = ctx.settings.open_ledger(must_exist=True)
    try:
        onboarding = ledger.onboardings.get(session_id)
        steps = ledger.onboardings.steps(session_id)
        orders = ledger.onboardings.orders(session_id, abandoned=True)
        retention = ctx.settings.lifecycle.retention_days
        service = _service(ledger, onboarding, steps, retention) if onboarding else None
        lifecycle = _lifecycle(ledger, onboarding) if onboarding else []
        payments = ledger.payments.of_sessions([session_id])
    finally:
        ledger.close()
    if onboarding is None:
        raise CsonboardError(f"no onboarding for {session_id} in the ledger")
    held = list(service.stopped_services) if service else []
    if as_json:
        shown_service = (
            {k: v for k, v in vars(service).items() if k != "stopped_services"} if service else None
        )
        echo_json(
            {
                **vars(onboarding),
                "steps": steps,
                "orders": orders,
                "service": shown_service,
                "stopped_services": held,
                "lifecycle": lifecycle,
                "payments": payments,
            }
        )
        return
    for name, value in vars(onboarding).items():
        click.echo(f"{name + ':':<18}{_shown(value)}")
    click.echo(f"{'service:':<18}{_service_line(onboarding, service)}")
    if service and service.reason:
        click.echo(f"{'':<18}reason: {service.reason}")
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
        whose = " and ".join(
            filter(
                None,
                [
                    onboarding.subscription_id,
                    f"the user of {onboarding.customer_id}" if onboarding.customer_id else None,
                ],
            )
        )
        click.echo(f"\nlifecycle ({whose}):")
        for action in lifecycle:
            when = action.due_at if action.status == "scheduled" else action.done_at
            scope = "purchase" if action.subscription_id else "user"
            click.echo(
                f"  {short_time(when)}  {action.action:<12}{action.status:<15}{scope:<10}"
                f"{action.reason}"
            )
    if payments:
        click.echo("\nmoney gone back (refunds, disputes, fraud warnings):")
        for paid in payments:
            click.echo(
                f"  {paid.charge_id}  {paid.amount_refunded}/{paid.amount} {paid.currency} "
                f"refunded  dispute {_shown(paid.dispute_status)}  "
                f"hold {_shown(paid.hold)}  {paid.note or ''}"
            )
    if held:
        click.echo("\nservices csonboard holds stopped:")
        for stopped in held:
            click.echo(
                f"  service #{stopped.service_id}  project {_shown(stopped.project_id)}  "
                f"{stopped.status:<9}since {short_time(stopped.created_at)}  {stopped.reason}"
            )
    if orders:
        click.echo("\norders:")
        for order in orders:
            click.echo(
                f"  unit {order.unit}: {order.order_id} {order.status:<10} "
                f"project {_shown(order.project_id)}  {order.project_name!r}"
            )


def _service(
    ledger: Ledger, onboarding: Onboarding, steps: list[StepRecord], retention_days: float
) -> ServiceState | None:
    """The purchase's service state once its projects exist; None before."""
    if not any(s.step == "await_project" and s.status == "done" for s in steps):
        return None
    return purchase_state(ledger, onboarding, retention_days=retention_days)


def _service_line(onboarding: Onboarding, service: ServiceState | None) -> str:
    if service is None:
        return f"not provisioned (onboarding {onboarding.status})"
    words = service.state.replace("_", " ")
    if service.cause:
        words += f" ({service.cause.replace('_', ' ')})"
    if service.since:
        words += f" since {short_time(service.since)}"
    if service.ends_at:
        ends = "services stop" if service.in_service else "projects deleted"
        words += f"; {ends} at {short_time(service.ends_at)}"
    return words


def _lifecycle(ledger: Ledger, onboarding: Onboarding) -> list[LifecycleAction]:
    """Every lifecycle action of the purchase's subscription, and those of the
    customer's user (no subscription: suspend, unsuspend...) made since the
    purchase began; done and declined ones oldest first, then the scheduled
    ones by due time."""
    found: dict[int, LifecycleAction] = {}
    if onboarding.subscription_id:
        for action in ledger.lifecycle.actions(
            subscription_id=onboarding.subscription_id, limit=_EVERY
        ):
            found[action.id] = action
    if onboarding.customer_id:
        for action in ledger.lifecycle.actions(customer_id=onboarding.customer_id, limit=_EVERY):
            if action.subscription_id is None and action.created_at >= onboarding.created_at:
                found[action.id] = action
    scheduled = sorted(
        (a for a in found.values() if a.status == "scheduled"),
        key=lambda a: (a.due_at or a.created_at, a.id),
    )
    settled = sorted(
        (a for a in found.values() if a.status != "scheduled"),
        key=lambda a: (a.done_at or a.created_at, a.id),
    )
    return [*settled, *scheduled]


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return short_time(value)
    return "-" if value is None else str(value)
