"""A purchase's service state, as the ledger has it: in service, stopped (why,
since when, until when its projects are kept) or terminated.

A purchase is one Checkout Session. Its state follows the subscription the
session made (``onboardings.subscription_id`` -> the ``subscriptions`` row the
lifecycle keeps) and the services csonboard holds stopped for it
(``stopped_services``):

- **terminated**: the lifecycle deleted its projects (``terminated_at``);
- **stopped**: the lifecycle decided it should be out of service
  (``wants_suspension``), or csonboard holds some of its services stopped (a
  stop under way, or a start still to be done);
- **in service** otherwise, and always for a one-time purchase (no
  subscription), a subscription the lifecycle has not looked at yet, or one it
  does not follow (``ours`` is false).

Reads only: no writes, no calls to Stripe or ComputeStacks. :func:`service_state`
is the pure decision; :func:`purchase_state` reads its inputs from the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from csonboard.ledger import Ledger, Onboarding
from csonboard.ledger.lifecycle import LifecycleAction, SubscriptionFacts
from csonboard.ledger.power import StoppedService
from csonboard.lifecycle.purchases import holds

StateName = Literal["in_service", "stopped", "terminated"]
Cause = Literal["past_due", "unpaid", "paused", "canceled", "refunded", "disputed"]
"""Why a purchase is stopped: its subscription's status in Stripe, or its money
gone back (refunded, or disputed with the card issuer)."""

_CAUSES: dict[str, Cause] = {
    "past_due": "past_due",
    "unpaid": "unpaid",
    "paused": "paused",
    "canceled": "canceled",
}


@dataclass(frozen=True)
class ServiceState:
    state: StateName
    subscription_id: str | None
    cause: Cause | None
    """For a stopped or terminated purchase: its subscription's status when the
    lifecycle last looked (None when it was none of these)."""
    reason: str | None
    """csonboard's own words for its decision (for operators, not buyers)."""
    since: datetime | None
    """Stopped: since csonboard began stopping its services; terminated: when
    its projects were deleted. None when in service or not known."""
    ends_at: datetime | None
    """In service: when a scheduled stop is due (the end of a grace period, or
    of a period after which the subscription is cancelled). Stopped: when its
    projects are due to be deleted (a scheduled termination). None if nothing is
    scheduled."""
    stopped_services: tuple[StoppedService, ...] = ()
    """The services csonboard holds stopped for this purchase."""

    @property
    def in_service(self) -> bool:
        return self.state == "in_service"


def purchase_state(
    ledger: Ledger, onboarding: Onboarding, *, retention_days: float | None = None
) -> ServiceState:
    """The service state of ``onboarding``'s purchase (four indexed reads at most).
    A purchase whose money went back is stopped (or terminated) for it; with
    ``retention_days`` its projects' deletion time is told too."""
    stopped = ledger.power.of(session_id=onboarding.session_id)
    hold = holds(ledger, [onboarding]).get(onboarding.session_id)
    subscription_id = onboarding.subscription_id
    facts = ledger.lifecycle.subscription(subscription_id) if subscription_id else None
    scheduled = (
        ledger.lifecycle.actions(subscription_id=subscription_id, statuses=["scheduled"])
        if subscription_id and facts is not None
        else []
    )
    state = service_state(subscription_id, facts, stopped, scheduled)
    if hold is None or state.state == "terminated":
        return state
    cause: Cause = "disputed" if hold.kind == "dispute" else "refunded"
    if hold.terminated:
        return ServiceState("terminated", subscription_id, cause, hold.reason, None, None)
    ends = (
        hold.final_since + timedelta(days=retention_days)
        if hold.final_since is not None and retention_days is not None
        else None
    )
    since = min((s.created_at for s in stopped), default=None)
    return ServiceState("stopped", subscription_id, cause, hold.reason, since, ends, tuple(stopped))


def service_state(
    subscription_id: str | None,
    facts: SubscriptionFacts | None,
    stopped: Sequence[StoppedService],
    scheduled: Sequence[LifecycleAction],
) -> ServiceState:
    """The state of a purchase from its subscription's facts (None: a one-time
    purchase, or one the lifecycle has not looked at), the services csonboard
    holds stopped for it, and its subscription's scheduled lifecycle actions."""
    held = tuple(stopped)
    if facts is None or facts.ours is False:
        return ServiceState("in_service", subscription_id, None, None, None, None, held)
    cause = _CAUSES.get(facts.stripe_status or "")
    if facts.terminated_at is not None:
        return ServiceState(
            "terminated", subscription_id, cause, facts.reason, facts.terminated_at, None, held
        )
    if facts.wants_suspension or held:
        since = min((s.created_at for s in held), default=None)
        return ServiceState(
            "stopped",
            subscription_id,
            cause,
            facts.reason,
            since,
            _due(scheduled, "terminate"),
            held,
        )
    return ServiceState(
        "in_service", subscription_id, None, facts.reason, None, _due(scheduled, "stop"), held
    )


def _due(scheduled: Sequence[LifecycleAction], action: str) -> datetime | None:
    return min(
        (
            a.due_at
            for a in scheduled
            if a.action == action and a.status == "scheduled" and a.due_at is not None
        ),
        default=None,
    )
