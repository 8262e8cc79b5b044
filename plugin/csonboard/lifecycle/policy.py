"""What a subscription's current state means for its purchase: in service,
stopped, or terminated.

A pure function of the subscription as Stripe has it now, what csonboard
remembers about it (since when it is past due) and the policy settings; no
calls. Events only say *that* something changed; the decision is always made
from the state re-fetched from Stripe, so the order they arrive in does not
matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from csonboard.settings import LifecycleSettings
from csonboard.stripe_api import Subscription

RUNNING = ("active", "trialing")

ORPHANED = "orphaned: "
"""How the reason of csonboard's suspension starts when the user's Stripe
customer is gone (deleted, or never of this account). Kept while the customer
stays gone, even if a one-time purchase would otherwise be in service."""


@dataclass(frozen=True)
class Decision:
    """``stop``: this subscription's purchase should be out of service (its
    services stopped), for ``reason``. ``terminate``: delete its projects now.
    ``planned``: (action, due, reason) to do later, each a re-check of the
    subscription at ``due``. ``past_due_since`` and ``ended_seen_at``: when
    csonboard first saw it past due or ended, to be remembered."""

    stop: bool
    reason: str
    terminate: bool = False
    past_due_since: datetime | None = None
    ended_seen_at: datetime | None = None
    planned: tuple[tuple[str, datetime, str], ...] = field(default=())

    @property
    def recheck_at(self) -> datetime | None:
        return min((due for _, due, _ in self.planned), default=None)


def decide(
    subscription: Subscription,
    *,
    past_due_since: datetime | None,
    ended_seen_at: datetime | None = None,
    policy: LifecycleSettings,
    now: datetime,
) -> Decision:
    """The decision for one subscription (see ``config/csonboard.example.toml``,
    section ``[lifecycle]``, for the policy in words).

    Grace counts from when csonboard first saw the payment overdue, retention
    from when it first saw the subscription ended (or from the end, if later):
    the customer gets the whole retention after their service actually
    stopped, also when the news came late (a lost webhook found by a later
    event or by ``csonboard drift``) -- a late discovery never deletes at once."""
    status = subscription.status
    if status in RUNNING:
        return _running(subscription, status)
    if status == "past_due":
        since = past_due_since or now
        grace_ends = since + timedelta(days=policy.grace_days)
        overdue = f"payment overdue since {since:%Y-%m-%d %H:%M} UTC"
        if now >= grace_ends:
            return Decision(
                True,
                f"{overdue}; the {policy.grace_days:g}-day grace period has ended",
                past_due_since=since,
            )
        return Decision(
            False,
            f"{overdue}; grace period until {grace_ends:%Y-%m-%d %H:%M} UTC",
            past_due_since=since,
            planned=(("stop", grace_ends, f"{overdue}: the grace period ends"),),
        )
    if status == "unpaid":
        return Decision(True, "unpaid: Stripe has stopped retrying the payment")
    if status == "paused":
        return Decision(True, "the subscription is paused")
    if status == "canceled":
        # Retention counts from the end of service, not from when the
        # cancellation was asked for (months earlier for one at the period end).
        ended = _time(subscription.ended_at) or _time(subscription.canceled_at) or now
        seen = ended_seen_at or now
        terminate_at = max(ended, seen) + timedelta(days=policy.retention_days)
        reason = f"the subscription ended on {ended:%Y-%m-%d %H:%M} UTC"
        if now >= terminate_at:
            return Decision(True, reason, terminate=True, ended_seen_at=seen)
        return Decision(
            True,
            reason,
            ended_seen_at=seen,
            planned=(
                (
                    "terminate",
                    terminate_at,
                    f"{reason}: the {policy.retention_days:g}-day retention ends",
                ),
            ),
        )
    # incomplete / incomplete_expired: the first payment never went through, so
    # nothing was provisioned; anything unknown: change nothing.
    return Decision(False, f"status {status!r}: nothing to do")


def _running(subscription: Subscription, status: str) -> Decision:
    ends = _time(subscription.cancel_at) or (
        _time(max((i.current_period_end or 0) for i in subscription.items) or None)
        if subscription.cancel_at_period_end
        else None
    )
    if ends is None:
        return Decision(False, f"the subscription is {status}")
    return Decision(
        False,
        f"the subscription is {status} until it ends on {ends:%Y-%m-%d %H:%M} UTC",
        planned=(("stop", ends, "the subscription ends at the end of its period"),),
    )


def _time(stamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, UTC) if stamp else None


def held(
    decision: Decision | None,
    hold_reason: str,
    final_since: datetime | None,
    *,
    policy: LifecycleSettings,
    now: datetime,
) -> Decision:
    """A purchase whose money went back (a refund, a dispute): out of service
    whatever its subscription says -- a payment does not lift it -- and, once
    the money is gone for good (``final_since``), its projects are deleted after
    the retention counted from then. ``decision`` is its subscription's own
    (None for a one-time purchase); an earlier end it plans still stands."""
    own = decision.planned if decision is not None else ()
    kept = tuple(p for p in own if p[0] == "terminate")
    ending = decision is not None and decision.terminate
    if final_since is not None:
        terminate_at = final_since + timedelta(days=policy.retention_days)
        if now >= terminate_at:
            ending = True
        else:
            step = ("terminate", terminate_at, f"{hold_reason}: the retention ends")
            kept = (*kept, step)
    return Decision(
        True,
        hold_reason,
        terminate=ending,
        past_due_since=decision.past_due_since if decision else None,
        ended_seen_at=decision.ended_seen_at if decision else None,
        planned=() if ending else kept,
    )
