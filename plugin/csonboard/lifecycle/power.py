"""Stopping and starting one purchase's services (the purchase is the unit of service).

On ComputeStacks 9.3.1 suspending a user stops nothing (the controller's
``UserServices::ToggleActiveService#suspend_user!`` builds a power-cycle per
container and never performs it), so a purchase that is not paid for is taken
out of service by stopping its services one by one
(``PUT /api/container_services/{id}/power/stop``). A purchase is one Checkout
Session: the projects its orders made, and their services.

- :func:`stop_purchase` records each service it is about to stop before asking
  (so only what csonboard stopped is ever started again) and leaves alone a
  service that is already stopped (the customer's or an operator's doing).
- :func:`start_purchase` starts exactly the services csonboard stopped.

Both are safe to repeat: a service already stopped by csonboard is asked to
stop again only while its stop was never confirmed; starting a started one is
harmless; a project or service that is gone is forgotten. Failure policy:
ComputeStacks errors propagate (the lifecycle retries the customer); a lost
lease raises LeaseLost before anything more is done.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from csonboard.computestacks import ComputeStacksClient
from csonboard.errors import ComputeStacksNotFound, LeaseLost
from csonboard.ledger import Ledger, Onboarding
from csonboard.lifecycle.purchases import projects_of


@dataclass
class PowerChange:
    """What a stop or a start did, for the lifecycle's record."""

    changed: list[int] = field(default_factory=list)
    """Services csonboard stopped (or started) now."""
    left_alone: list[int] = field(default_factory=list)
    """Services already stopped by someone else: never touched by csonboard."""


def stop_purchase(
    cs: ComputeStacksClient,
    ledger: Ledger,
    owner: str,
    onboarding: Onboarding,
    reason: str,
) -> PowerChange:
    """Stop every running service of the purchase (see the module)."""
    held = {s.service_id: s for s in ledger.power.of(session_id=onboarding.session_id)}
    change = PowerChange()
    for project_id in projects_of(ledger, onboarding):
        try:
            services = cs.list_project_services(project_id)
        except ComputeStacksNotFound:
            continue  # the project is gone
        for service in services:
            mine = held.get(service.id)
            if mine is not None and mine.status == "stopped":
                continue
            if mine is None:
                containers = cs.list_service_containers(service.id)
                if containers and all(c.req_state == "stopped" for c in containers):
                    change.left_alone.append(service.id)
                    continue
            stop_service(cs, ledger, owner, onboarding, service.id, project_id, reason)
            change.changed.append(service.id)
    return change


def stop_service(
    cs: ComputeStacksClient,
    ledger: Ledger,
    owner: str,
    onboarding: Onboarding,
    service_id: int,
    project_id: int | None,
    reason: str,
) -> None:
    """Stop one service of the purchase, recorded before asking (a row already
    there is kept: its service was csonboard's to start again anyway)."""
    customer = onboarding.customer_id or ""
    if not ledger.power.stopping(
        owner, customer, onboarding.session_id, service_id, project_id, reason
    ):
        raise LeaseLost(f"lost the lease on customer {customer}")
    with contextlib.suppress(ComputeStacksNotFound):  # gone meanwhile: nothing runs
        cs.power(service_id, "stop")
    if not ledger.power.stopped(owner, customer, service_id):
        raise LeaseLost(f"lost the lease on customer {customer}")


def start_purchase(
    cs: ComputeStacksClient, ledger: Ledger, owner: str, onboarding: Onboarding
) -> PowerChange:
    """Start the services csonboard stopped for the purchase, and only those."""
    change = PowerChange()
    for stopped in ledger.power.of(session_id=onboarding.session_id):
        if start_service(cs, ledger, owner, stopped.customer_id, stopped.service_id):
            change.changed.append(stopped.service_id)
    return change


def start_service(
    cs: ComputeStacksClient, ledger: Ledger, owner: str, customer_id: str, service_id: int
) -> bool:
    """Start a service csonboard stopped and forget it; False when it is gone."""
    try:
        cs.power(service_id, "start")
        started = True
    except ComputeStacksNotFound:
        started = False  # the service is gone: nothing to start
    if not ledger.power.started(owner, customer_id, [service_id]):
        raise LeaseLost(f"lost the lease on customer {customer_id}")
    return started


def forget_purchase(ledger: Ledger, owner: str, onboarding: Onboarding) -> None:
    """The purchase is terminated (its projects deleted): nothing to start later."""
    gone = [s.service_id for s in ledger.power.of(session_id=onboarding.session_id)]
    if gone and not ledger.power.started(owner, onboarding.customer_id or "", gone):
        raise LeaseLost(f"lost the lease on customer {onboarding.customer_id}")
