"""What each Stripe event type means to csonboard (the worker routes by type).

- ``checkout.session.completed`` / ``.async_payment_succeeded``: fulfil the
  session (start its onboarding, or reopen one awaiting payment);
- ``checkout.session.async_payment_failed`` / ``.expired``: close the session's
  onboarding, provisioning nothing;
- subscription and invoice events: the customer's lifecycle is reconciled;
- refunds, disputes and early fraud warnings: see ``csonboard.money``;
- anything else: stored as ``ignored``.

Handlers only touch the ledger and ring the queue; the onboarding does the work.
The decisions are plain functions (:func:`fulfil_session`, :func:`close_session`,
:func:`note_subscription`) so that work found another way (a thin event whose
snapshot is gone, an event Stripe failed to make) is decided exactly alike.
"""

from __future__ import annotations

import json
from datetime import datetime

from csonboard.errors import PermanentError
from csonboard.ledger import EventRecord, Ledger
from csonboard.money import MONEY_EVENTS
from csonboard.queue import Doorbell
from csonboard.stripe_api.records import subscription_of_invoice
from csonboard.worker import EventHandler, Outcome

FULFIL = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
CLOSE = {
    "checkout.session.async_payment_failed": "the delayed payment failed",
    "checkout.session.expired": "the session expired unpaid",
}
LIFECYCLE = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "invoice.paid",
    "invoice.payment_failed",
)
HANDLED = (*FULFIL, *CLOSE, *LIFECYCLE, *MONEY_EVENTS)
"""Every snapshot event type csonboard acts on: what its webhook endpoint must
send (``csonboard stripe setup`` subscribes to exactly these)."""


def fulfil_session(
    ledger: Ledger, doorbell: Doorbell, session_id: str, *, livemode: bool, source: str, paid: bool
) -> Outcome:
    """Start the session's onboarding (it re-reads the session and checks the
    payment itself); ``paid`` (a delayed payment has cleared) also reopens one
    waiting for that payment."""
    created = ledger.onboardings.start(session_id, livemode=livemode, source=source)
    if not created and paid:
        ledger.onboardings.reopen(session_id, ("awaiting_payment",), note="payment succeeded")
    doorbell.ring_or_log("onboarding", session_id)
    onboarding = ledger.onboardings.get(session_id)
    status = onboarding.status if onboarding else "unknown"
    return Outcome("done", f"onboarding {session_id} {'started' if created else status}")


def close_session(
    ledger: Ledger, session_id: str, *, livemode: bool, reason: str, source: str
) -> Outcome:
    """Close the session's onboarding (nothing provisioned), unless it went further."""
    status = ledger.onboardings.close(session_id, livemode=livemode, reason=reason, source=source)
    if status == "closed":
        return Outcome("done", f"onboarding {session_id} closed: {reason}; nothing provisioned")
    return Outcome("ignored", f"onboarding {session_id} is {status}; not closed")


def note_subscription(
    ledger: Ledger,
    doorbell: Doorbell,
    subscription_id: str,
    customer_id: str,
    created: datetime,
) -> Outcome:
    """Note that the subscription changed (as of ``created``) and make its
    customer due; an older note than one already applied is stale."""
    if not ledger.lifecycle.note_event(subscription_id, customer_id, created):
        return Outcome(
            "ignored", f"stale: a newer event about {subscription_id} was already applied"
        )
    doorbell.ring_or_log("account", customer_id)
    return Outcome("done", f"{subscription_id} of {customer_id} will be reconciled")


def checkout_routes(ledger: Ledger, doorbell: Doorbell) -> dict[str, EventHandler]:
    """Handlers for the Checkout event types."""

    def fulfil(record: EventRecord) -> Outcome:
        return fulfil_session(
            ledger,
            doorbell,
            _session_of(record),
            livemode=record.livemode,
            source=f"event {record.id}",
            paid=record.type == "checkout.session.async_payment_succeeded",
        )

    def close(record: EventRecord) -> Outcome:
        return close_session(
            ledger,
            _session_of(record),
            livemode=record.livemode,
            reason=CLOSE[record.type],
            source=f"event {record.id}",
        )

    return {**dict.fromkeys(FULFIL, fulfil), **dict.fromkeys(CLOSE, close)}


def _session_of(record: EventRecord) -> str:
    if not record.object_id or not record.object_id.startswith("cs_"):
        raise PermanentError(f"event {record.id} carries no Checkout Session id (data.object.id)")
    return record.object_id


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
        return note_subscription(ledger, doorbell, subscription_id, customer_id, record.created)

    return dict.fromkeys(LIFECYCLE, note)


def _subscription_of(ledger: Ledger, record: EventRecord) -> tuple[str | None, str | None]:
    """(subscription id, customer id) of a subscription or invoice event, in
    either invoice shape: before 2025 ``invoice.subscription``; from 2025
    (basil) ``invoice.parent.subscription_details.subscription``."""
    if record.type.startswith("customer.subscription."):
        return record.object_id, record.customer_id
    body = ledger.events.body(record.id) or b"{}"
    invoice = json.loads(body).get("data", {}).get("object", {})
    return subscription_of_invoice(invoice), record.customer_id
