"""The projects failed orders leave behind.

ComputeStacks makes an order's project when processing starts and removes
nothing when the order fails (``ProcessOrderService`` on 9.3.1). Such a project
is not the customer's: ``await_project`` records it on the order row and names
it in the dead letter (``left_behind``, ``describe``); once a replay has
abandoned the order, ``place_order`` deletes it before ordering again
(``delete_abandoned``) -- never a project a completed order owns.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from csonboard.computestacks import Order
from csonboard.errors import ComputeStacksNotFound, LeaseLost
from csonboard.ledger.onboardings import ABANDONED, OrderRecord
from csonboard.onboarding.run import Run

log = logging.getLogger(__name__)


def delete_abandoned(run: Run) -> list[str]:
    """Delete the project each abandoned failed order of this onboarding left,
    and record each deletion before anything is ordered. Returns warnings.

    The order row names the project from the moment the failure is seen (the
    record before); it is marked ``leftover_deleted`` after the DELETE (the
    record after). The user's projects are read first, so a project already
    gone or being deleted (a crash after the DELETE took effect) is only
    recorded, never deleted twice. Only a project still in ``alert`` (its
    latest order failed) is deleted: one a completed order owns -- in the
    ledger, or in ComputeStacks since (its state moved on) -- is left, with a
    warning for a person."""
    todo = [
        o
        for o in run.ledger.onboardings.orders(run.session_id, abandoned=True)
        if o.status == ABANDONED and o.leftover is not None
    ]
    if not todo:
        return []
    states = _project_states(run, {o.cs_user_id for o in todo})
    warnings = []
    for order in todo:
        project_id = order.leftover
        assert project_id is not None
        owner = run.ledger.onboardings.completed_order_of_project(project_id)
        state = states.get(project_id, "gone")
        if owner is not None or state not in ("alert", "deleting", "gone"):
            owned = f"belongs to completed order {owner}" if owner else f"is {state!r} now"
            warnings.append(
                f"project #{project_id}, left by failed order {order.order_id}, {owned}: "
                "not deleted, as another order may have built on it. Check it in ComputeStacks"
            )
            continue
        if state == "alert":
            with contextlib.suppress(ComputeStacksNotFound):  # gone meanwhile
                run.services.cs.delete_project(project_id)
        if not run.ledger.onboardings.leftover_deleted(
            run.session_id, run.owner, order.order_id, lease_seconds=run.lease_seconds
        ):
            raise LeaseLost(f"lost the lease on onboarding {run.session_id}")
        log.info(
            "deleted the project a failed order left",
            extra={
                "session_id": run.session_id,
                "order_id": order.order_id,
                "project_id": project_id,
                "state": state,
            },
        )
    return warnings


def _project_states(run: Run, user_ids: set[int]) -> dict[int, str]:
    """``current_state`` of every project of these users (``?`` when not
    shown); a user that is gone has none."""
    states: dict[int, str] = {}
    for user_id in user_ids:
        with contextlib.suppress(ComputeStacksNotFound):
            for project in run.services.cs.list_user_projects(user_id):
                states[project.id] = project.current_state or "?"
    return states


def left_behind(run: Run, record: OrderRecord, order: Order) -> dict[str, Any]:
    """What a failed order left in ComputeStacks, for the record and the dead letter."""
    project_id = order.project_id
    services: int | None = None
    if project_id is not None:
        # A project gone meanwhile (deleted by someone) has no services to count.
        with contextlib.suppress(ComputeStacksNotFound):
            services = len(run.services.cs.list_project_services(project_id))
    return {
        "order_id": record.order_id,
        "unit": record.unit,
        "status": order.status.value,
        "project_id": project_id,
        "project_name": record.project_name,
        "left_project_name": order.project_name or record.project_name,
        "services": services,
    }


def describe(failed: dict[str, Any]) -> str:
    said = (
        f"ComputeStacks order {failed['order_id']} ({failed['project_name']!r}) "
        f"ended {failed['status']}"
    )
    if failed["project_id"] is None:
        return f"{said}; it left no project"
    services = failed["services"]
    count = "" if services is None else f" with {services} service(s)"
    return (
        f"{said}; it left project #{failed['project_id']} ({failed['left_project_name']!r})"
        f"{count}: it is deleted before the purchase is ordered again"
    )
