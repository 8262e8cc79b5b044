"""What each Stripe event type means to csonboard (the worker routes by type).

- ``checkout.session.completed`` / ``.async_payment_succeeded``: fulfil the
  session (start its onboarding, or reopen one awaiting payment);
- ``checkout.session.async_payment_failed`` / ``.expired``: close the session's
  onboarding, provisioning nothing;
- subscription and invoice events: the customer's lifecycle is reconciled;
- anything else: stored as ``ignored``.

Handlers only touch the ledger and ring the queue; the onboarding does the work.
"""

from __future__ import annotations

import json
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


LIFECYCLE = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "invoice.paid",
    "invoice.payment_failed",
)


def lifecycle_routes(ledger: Ledger, doorbell: Doorbell) -> dict[str, EventHandler]:
    """Handlers for subscription and invoice events. They only note that the
    subscription changed and make its customer due: what to do is decided from
    the subscription's current state in Stripe, so order does not matter. An
    event older than one already noted for the subscription is stale."""

    def note(record: EventRecord) -> Outcome:
        subscription_id, customer_id = _subscription_of(ledger, record)
        if subscription_id is None:
            return Outcome("ignored", "not about a subscription (a one-off invoice?)")
        if customer_id is None:
            raise PermanentError(f"event {record.id} names no customer for {subscription_id}")
        if not ledger.lifecycle.note_event(subscription_id, customer_id, record.created):
            return Outcome(
                "ignored", f"stale: a newer event about {subscription_id} was already applied"
            )
        try:
            doorbell.ring("account", customer_id)
        except QueueUnavailable as exc:
            log.warning("could not ring for customer %s (the sweep will): %s", customer_id, exc)
        return Outcome("done", f"{subscription_id} of {customer_id} will be reconciled")

    return dict.fromkeys(LIFECYCLE, note)


def _subscription_of(ledger: Ledger, record: EventRecord) -> tuple[str | None, str | None]:
    """(subscription id, customer id) of a subscription or invoice event, in
    either invoice shape: before 2025 ``invoice.subscription``; from 2025
    (basil) ``invoice.parent.subscription_details.subscription``."""
    if record.type.startswith("customer.subscription."):
        return record.object_id, record.customer_id
    body = ledger.events.body(record.id) or b"{}"
    invoice = json.loads(body).get("data", {}).get("object", {})
    subscription = invoice.get("subscription")
    if not subscription:
        parent = invoice.get("parent") or {}
        subscription = (parent.get("subscription_details") or {}).get("subscription")
    if isinstance(subscription, dict):  # expanded
        subscription = subscription.get("id")
    return (subscription if isinstance(subscription, str) else None), record.customer_id
