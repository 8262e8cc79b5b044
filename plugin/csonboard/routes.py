"""What each Stripe event type means to csonboard (DESIGN.md §2.2).

- ``checkout.session.completed`` / ``.async_payment_succeeded``: fulfil the
  session (start its onboarding, or reopen one awaiting payment);
- ``checkout.session.async_payment_failed`` / ``.expired``: close the session's
  onboarding, provisioning nothing;
- anything else: stored as ``ignored``.

Handlers only touch the ledger and ring the queue; the onboarding does the work.
"""

from __future__ import annotations

import logging

from csonboard.errors import PermanentError, QueueUnavailable
from csonboard.ledger import EventRecord, Ledger
from csonboard.queue import Doorbell
from csonboard.worker import EventHandler, Outcome

log = logging.getLogger(__name__)

FULFIL = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
CLOSE = {
    "checkout.session.async_payment_failed": "the delayed payment failed",
    "checkout.session.expired": "the session expired unpaid",
}


def checkout_routes(ledger: Ledger, doorbell: Doorbell) -> dict[str, EventHandler]:
    """Handlers for the Checkout event types."""

    def fulfil(record: EventRecord) -> Outcome:
        session_id = _session_of(record)
        created = ledger.onboardings.start(
            session_id, livemode=record.livemode, source=f"event {record.id}"
        )
        if not created and record.type == "checkout.session.async_payment_succeeded":
            ledger.onboardings.reopen(session_id, ("awaiting_payment",), note="payment succeeded")
        try:
            doorbell.ring("onboarding", session_id)
        except QueueUnavailable as exc:
            log.warning("could not ring for onboarding %s (the sweep will): %s", session_id, exc)
        onboarding = ledger.onboardings.get(session_id)
        status = onboarding.status if onboarding else "unknown"
        return Outcome("done", f"onboarding {session_id} {'started' if created else status}")

    def close(record: EventRecord) -> Outcome:
        session_id = _session_of(record)
        reason = CLOSE[record.type]
        status = ledger.onboardings.close(
            session_id, livemode=record.livemode, reason=reason, source=f"event {record.id}"
        )
        if status == "closed":
            return Outcome("done", f"onboarding {session_id} closed: {reason}; nothing provisioned")
        return Outcome("ignored", f"onboarding {session_id} is {status}; not closed")

    return {**dict.fromkeys(FULFIL, fulfil), **dict.fromkeys(CLOSE, close)}


def _session_of(record: EventRecord) -> str:
    if not record.object_id or not record.object_id.startswith("cs_"):
        raise PermanentError(f"event {record.id} carries no Checkout Session id (data.object.id)")
    return record.object_id
