"""What the ledger says about a customer's purchases (one Checkout Session each):
their projects, whether each is in service, what was bought, who made the user.

Pure reads of the ledger; no calls. A purchase is in service unless its money
went back (a refund, a dispute: :func:`holds`) or its subscription is terminated
or wants it stopped (not paid, paused, cancelled); a one-time purchase, or one
whose subscription csonboard does not follow, is otherwise in service; an
onboarding still in progress counts as in service (it is on its way); one
refunded because it could not be provisioned is out of service for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from csonboard.ledger import Ledger, Onboarding
from csonboard.ledger.onboardings import IN_PROGRESS, REFUND_ENDED
from csonboard.ledger.payments import PaymentRecord


@dataclass(frozen=True)
class Hold:
    """A purchase out of service because its money went back."""

    kind: str
    """``refund`` or ``dispute``."""
    reason: str
    final_since: datetime | None
    """Gone for good (refunded in full, dispute lost) since then: its projects
    are deleted after the retention, counted from here."""
    terminated: bool


def holds(ledger: Ledger, onboardings: Sequence[Onboarding]) -> dict[str, Hold]:
    """The purchases (by session id) held out of service for their money: a
    dispute before a refund, the earliest end of the money for good."""
    by_session: dict[str, list[PaymentRecord]] = {}
    for payment in ledger.payments.of_sessions([o.session_id for o in onboardings]):
        if payment.session_id is not None and payment.hold is not None:
            by_session.setdefault(payment.session_id, []).append(payment)
    found = {}
    for session_id, held in by_session.items():
        held.sort(key=lambda p: (p.hold != "dispute", p.hold_since or p.created_at))
        ends = [p.final_since for p in held if p.final_since is not None]
        found[session_id] = Hold(
            kind=held[0].hold or "refund",
            reason=held[0].note or held[0].hold or "",
            final_since=min(ends) if ends else None,
            terminated=any(p.terminated_at is not None for p in held),
        )
    return found


def projects_of(ledger: Ledger, onboarding: Onboarding) -> list[int]:
    """The purchase's projects: those its orders made."""
    return [o.project_id for o in ledger.onboardings.orders(onboarding.session_id) if o.project_id]


def out_of_service(
    ledger: Ledger, customer_id: str, onboardings: Sequence[Onboarding]
) -> list[str] | None:
    """Why each of the customer's purchases is out of service; an empty list when
    one is in service; None when the customer bought nothing through csonboard."""
    if any(o.status in IN_PROGRESS for o in onboardings):
        return []
    done = [o for o in onboardings if o.status == "done"]
    refunded = [o for o in onboardings if o.status in REFUND_ENDED]
    if not done and not refunded:
        return None
    facts = {f.subscription_id: f for f in ledger.lifecycle.subscriptions(customer_id)}
    held = holds(ledger, done)
    out = [f"{o.session_id}: not provisioned, refunded" for o in refunded]
    for onboarding in done:
        hold = held.get(onboarding.session_id)
        if hold is not None:
            ended = "terminated" if hold.terminated else hold.reason
            out.append(f"{onboarding.session_id}: {ended}")
            continue
        sub = facts.get(onboarding.subscription_id or "")
        if sub is None or sub.ours is False:
            return []
        if sub.terminated_at is not None:
            out.append(f"{sub.subscription_id}: terminated")
        elif sub.wants_suspension:
            out.append(f"{sub.subscription_id}: {sub.reason}")
        else:
            return []
    return out


def nothing_else_live(
    ledger: Ledger, customer_id: str, onboardings: Sequence[Onboarding], ending: Onboarding
) -> bool:
    """Whether every purchase of the customer but ``ending`` is terminated (or had
    a subscription csonboard no longer follows)."""
    live = {
        f.subscription_id
        for f in ledger.lifecycle.subscriptions(customer_id)
        if f.terminated_at is None
    }
    others = [o for o in onboardings if o.status == "done" and o.session_id != ending.session_id]
    return all(o.subscription_id and o.subscription_id not in live for o in others)


def refunded_user(ledger: Ledger, onboardings: Sequence[Onboarding]) -> int | None:
    """The ComputeStacks user an onboarding created for a purchase refunded
    because it could not be provisioned: the customer's user when no purchase
    of theirs was provisioned (an adopted or found user is left alone)."""
    for onboarding in onboardings:
        user_id = onboarding.cs_user_id
        ended = onboarding.status in REFUND_ENDED
        if ended and user_id is not None and made_by_csonboard(ledger, [onboarding], user_id):
            return user_id
    return None


def made_by_csonboard(ledger: Ledger, onboardings: Sequence[Onboarding], user_id: int) -> bool:
    """Whether one of these onboardings created the ComputeStacks user (rather
    than finding or adopting it)."""
    for onboarding in onboardings:
        for step in ledger.onboardings.steps(onboarding.session_id):
            result = step.result
            if (step.step, step.status, result.get("user_id"), result.get("how")) == (
                "ensure_cs_user",
                "done",
                user_id,
                "created",
            ):
                return True
    return False


def bought_prices(ledger: Ledger, onboarding: Onboarding) -> tuple[str, ...]:
    """The prices the customer checked out with, from the onboarding's record."""
    for step in ledger.onboardings.steps(onboarding.session_id):
        if step.step == "fetch_session":
            return tuple(
                sorted(i["price_id"] for i in step.result.get("line_items", []) if i["price_id"])
            )
    return ()
