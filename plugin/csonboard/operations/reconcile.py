"""Reconciliation: every paid Checkout Session must have a completed onboarding.

Stripe retries a webhook for three days; after a longer outage (or a
misconfigured endpoint) a purchase can be paid with no trace in the ledger.
:func:`reconcile` lists the paid sessions from the Stripe API and compares
them with the ledger; :func:`fix` queues the ones that need it.

What a session without a completed onboarding is:

- ``missing``: no onboarding at all (the webhook never arrived);
- needs attention: ``dead``, ``stuck``, ``awaiting_payment`` (the
  async-payment webhook was lost: Stripe says it is paid now) or ``closed``
  while Stripe says paid;
- in progress: ``pending``, ``running``, ``waiting``, ``failed`` (a retry is
  scheduled); left alone, only rung.

Failure policy: Stripe or ledger outages raise (nothing is half-reported);
:func:`fix` never touches an onboarding a worker holds, and a queue outage is
a warning, not a failure (the work is due in the ledger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from csonboard.ledger import Ledger
from csonboard.ledger.onboardings import IN_PROGRESS
from csonboard.operations.ringing import ring_all
from csonboard.queue import Doorbell
from csonboard.stripe_api import SessionSummary, StripeGateway

MISSING = "missing"
ATTENTION = ("dead", "stuck", "awaiting_payment", "closed")
Verdict = Literal["attention", "in_progress"]


@dataclass(frozen=True)
class Unfulfilled:
    """A paid session whose onboarding is not done."""

    session: SessionSummary
    status: str
    """The onboarding's status, or ``missing``."""
    detail: str | None

    @property
    def verdict(self) -> Verdict:
        return "in_progress" if self.status in IN_PROGRESS else "attention"


@dataclass(frozen=True)
class Reconciliation:
    since: datetime
    paid: int
    onboarded: int
    unfulfilled: tuple[Unfulfilled, ...]

    @property
    def needing_attention(self) -> tuple[Unfulfilled, ...]:
        return tuple(u for u in self.unfulfilled if u.verdict == "attention")


@dataclass
class FixResult:
    created: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    nudged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Changed since the report (a worker holds them, or they moved on): left alone."""
    warning: str | None = None


def reconcile(ledger: Ledger, stripe: StripeGateway, since: datetime) -> Reconciliation:
    """Compare the paid sessions created since ``since`` with the ledger."""
    sessions = stripe.paid_sessions(since)
    unfulfilled = []
    for session in sessions:
        onboarding = ledger.onboardings.get(session.id)
        if onboarding is None:
            unfulfilled.append(Unfulfilled(session, MISSING, "no onboarding: no webhook arrived"))
        elif onboarding.status != "done":
            detail = onboarding.last_error or onboarding.note
            unfulfilled.append(Unfulfilled(session, onboarding.status, detail))
    return Reconciliation(
        since=since,
        paid=len(sessions),
        onboarded=len(sessions) - len(unfulfilled),
        unfulfilled=tuple(unfulfilled),
    )


def fix(
    ledger: Ledger, doorbell: Doorbell, unfulfilled: Sequence[Unfulfilled], *, livemode: bool
) -> FixResult:
    """Queue every session of ``unfulfilled``: create missing onboardings, requeue
    those needing attention (checkpoints kept: done steps are not redone), ring
    for those in progress."""
    result = FixResult()
    for item in unfulfilled:
        session_id = item.session.id
        if item.status == MISSING:
            # start() is a no-op if a webhook created it meanwhile; either way it is due.
            ledger.onboardings.start(session_id, livemode=livemode, source="reconcile")
            result.created.append(session_id)
        elif item.verdict == "attention":
            if ledger.onboardings.requeue(
                [session_id],
                statuses=(item.status,),
                note="queued by reconcile: Stripe says the session is paid",
            ):
                result.requeued.append(session_id)
            else:
                result.skipped.append(session_id)
        else:
            result.nudged.append(session_id)
    result.warning = ring_all(
        doorbell, "onboarding", [*result.created, *result.requeued, *result.nudged]
    )
    return result
