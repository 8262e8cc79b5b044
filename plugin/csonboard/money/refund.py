"""Provision or refund: a purchase csonboard could not provision is refunded.

:func:`refund_purchase` (the worker's job past ``onboarding.refund_after_hours``,
and ``csonboard refund``) takes the onboarding's lease as status ``refunding``
-- from then on no worker, replay or retry provisions it -- then, each step
safe to repeat after a crash (the lease runs out and the next attempt takes
over):

1. refunds what is left of the payment (an idempotency key per attempt; a
   charge already refunded in full is not refunded again, and Stripe never
   refunds more than was paid, so two attempts cannot refund twice);
2. cancels its subscription, if any (a canceled one is left);
3. deletes the projects its orders made, finished or failed, and the project
   of an order still processing (never one another purchase's completed order
   owns);
4. leaves the onboarding ``refunded``, which the buyer's status page shows, and
   makes the customer's lifecycle due: a ComputeStacks user csonboard created
   for this purchase alone is suspended there (it has ``bypass_billing``), so
   an order still queued for it fails and the panel cannot order for free.

Failure policy: an attempt that fails is recorded on the onboarding (its
error, its attempt number) and tried again with the worker's backoff; a
permanent failure, or the last attempt, leaves it ``refund_failed`` for a
person (``csonboard refund`` tries again). So does Stripe's ``refund.failed``
for a refund csonboard made (see :mod:`csonboard.money.follow`).

A purchase whose projects became ready is refused: its money goes back
through Stripe's Dashboard, and the refund events stop it. One awaiting a
delayed payment, or closed unpaid, is refused too (nothing was paid).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from csonboard.errors import ComputeStacksNotFound, CsonboardError
from csonboard.ledger import Ledger, Onboarding
from csonboard.ledger.onboardings import LEFTOVER_DELETED, READY_STEP, REFUNDABLE
from csonboard.onboarding import Services
from csonboard.retry import next_attempt
from csonboard.settings import WorkerSettings

_REFUNDED = "refunded"


def refunded_by_csonboard(onboarding: Onboarding, payment_intent: str | None) -> bool:
    """Whether provision-or-refund refunded this payment of the onboarding (as
    its note records)."""
    note = onboarding.note or ""
    return onboarding.status == "refunded" and f"{_REFUNDED} {payment_intent} (" in note


@dataclass
class Refunded:
    """What a refund did (or, dry, would do)."""

    session_id: str
    customer_id: str | None = None
    payment_intent: str | None = None
    refund_id: str | None = None
    already_refunded: bool = False
    subscription: str | None = None
    projects: list[int] = field(default_factory=list)
    done: list[str] = field(default_factory=list)


def refund_purchase(
    ledger: Ledger,
    services: Services,
    session_id: str,
    *,
    owner: str,
    retry: WorkerSettings,
    reason: str,
    dry_run: bool = False,
    statuses: Sequence[str] = REFUNDABLE,
) -> Refunded:
    """Refund one purchase that provisioned nothing (see the module). Raises
    CsonboardError naming why when it is not refundable or someone holds it,
    and the error of an attempt that failed (recorded first); a purchase
    already refunded is reported as such. ``statuses``: the onboarding
    statuses it may be refunded from (checked again as the lease is taken).
    ``retry``: the lease and the backoff of failed attempts."""
    onboarding = ledger.onboardings.get(session_id)
    if onboarding is None:
        raise CsonboardError(f"no onboarding for {session_id} in the ledger")
    result = Refunded(
        session_id, customer_id=onboarding.customer_id, subscription=onboarding.subscription_id
    )
    if onboarding.status == "refunded":
        result.already_refunded = True
        result.done.append(f"already refunded: {onboarding.note}")
        return result
    ready = any(
        s.step == READY_STEP and s.status == "done" for s in ledger.onboardings.steps(session_id)
    )
    if ready or onboarding.status not in REFUNDABLE:
        status = "provisioned (its projects are ready)" if ready else onboarding.status
        raise CsonboardError(
            f"{session_id} is {status}: only a purchase that was paid and not "
            "provisioned is refunded here; refund a provisioned one in Stripe's Dashboard "
            "(csonboard stops it when the refund arrives)"
        )
    if dry_run:
        result.payment_intent = services.stripe.payment_of_session(session_id)
        result.projects = _projects(ledger, services, onboarding)
        return result
    held = ledger.onboardings.claim_refund(session_id, owner, retry.lease_seconds, statuses)
    if held is None:
        raise CsonboardError(
            f"{session_id} is being worked on now, or has moved on (a worker, a replay or "
            "another refund); look again: csonboard onboardings show " + session_id
        )
    try:
        _refund(ledger, services, held, result)
    except CsonboardError as exc:
        _failed(ledger, held, owner, exc, retry)
        raise
    note = f"refunded ({reason}): " + ("; ".join(result.done) or "nothing was paid")
    if not ledger.onboardings.release(session_id, owner, status="refunded", note=note):
        raise CsonboardError(
            f"lost the lease on {session_id} while refunding; what was done stands, "
            "and the next attempt finishes it"
        )
    if held.customer_id is not None:
        ledger.lifecycle.touch(held.customer_id)  # its user, if csonboard's alone, suspended
    return result


def _refund(ledger: Ledger, services: Services, held: Onboarding, result: Refunded) -> None:
    session_id = held.session_id
    result.payment_intent = services.stripe.payment_of_session(session_id)
    if result.payment_intent is not None:
        refund_id, charge = services.stripe.refund_payment(
            result.payment_intent,
            reason="requested_by_customer",
            idempotency_key=f"csonboard-refund-{session_id}-{held.refund_attempts}",
        )
        result.refund_id = refund_id
        if refund_id:
            result.done.append(f"{_REFUNDED} {result.payment_intent} ({refund_id})")
        elif charge is not None:
            result.done.append(f"{charge.charge_id} was already refunded in full")
    if held.subscription_id:
        services.stripe.cancel_subscription(
            held.subscription_id,
            idempotency_key=f"csonboard-refund-cancel-{held.subscription_id}",
        )
        result.done.append(f"cancelled {held.subscription_id}")
    result.projects = _projects(ledger, services, held)
    for project_id in result.projects:
        with contextlib.suppress(ComputeStacksNotFound):
            services.cs.delete_project(project_id)
    if result.projects:
        result.done.append("deleted projects " + ", ".join(f"#{p}" for p in result.projects))


def _failed(
    ledger: Ledger, held: Onboarding, owner: str, exc: CsonboardError, retry: WorkerSettings
) -> None:
    """Record a failed attempt: tried again after the backoff, or, when
    permanent or the last, ``refund_failed`` for a person."""
    attempt = held.refund_attempts
    when = next_attempt(attempt, exc, retry, ledger.now())
    if when is None:
        status = "refund_failed"
        note = (
            f"the refund failed (attempt {attempt}): {exc}; once the cause is fixed, "
            f"csonboard refund {held.session_id} tries again"
        )
    else:
        status = "refunding"
        note = f"refund attempt {attempt} failed: {exc}; tried again at {when.isoformat()}"
    ledger.onboardings.release(
        held.session_id, owner, status=status, error=str(exc), note=note, next_attempt_at=when
    )


def _projects(ledger: Ledger, services: Services, onboarding: Onboarding) -> list[int]:
    """The projects the purchase's orders made (finished, or left by a failed
    order, or, read from ComputeStacks, made by an order not finished yet),
    except those another purchase's completed order owns."""
    placed = ledger.onboardings.orders(onboarding.session_id, abandoned=True)
    mine = {o.order_id for o in placed}
    found: list[int] = []
    for order in placed:
        project = order.project_id or order.leftover
        if project is None and order.status != LEFTOVER_DELETED:
            try:
                project = services.cs.get_admin_order(order.order_id).project_id
            except ComputeStacksNotFound:
                project = None
        if project is None or project in found:
            continue
        owner = ledger.onboardings.completed_order_of_project(project)
        if owner is None or owner in mine:
            found.append(project)
    return found
