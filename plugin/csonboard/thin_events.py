"""Thin events from a Stripe event destination, completed before anything is decided.

A thin notification (``object: "v2.core.event"``) names what happened and to
which object, nothing more, and is unversioned. The receiver stores it like any
event; here the worker asks Stripe for the whole event (``GET
/v2/core/events/{id}``):

- ``v1.<type>`` for a type csonboard handles: the v2 event names the snapshot
  event it mirrors. That event is read from the API and stored in the ledger
  as itself (source ``stripe_api``), then processed by the usual route, so a
  purchase ends exactly as if the snapshot had been delivered; when a snapshot
  endpoint delivers it too, the ledger keeps it once. Without a snapshot
  (none named, or older than the 30 days Stripe keeps events) the object is
  reconciled instead (below).
- ``v2.core.health.event_generation_failure.resolved``: Stripe failed to make
  an event at all and says which type and object. That object is reconciled:
  its current state is read from Stripe and decided on as the lost event would
  have been (a Checkout Session is fulfilled or closed, a subscription's or
  invoice's customer is made due).

Failure policy: Stripe outages are transient (the notification is retried); a
snapshot that is not a valid event in our mode is permanent (dead-lettered with
the reason); an object Stripe no longer has, or one csonboard acts on nothing
about, is recorded as ignored with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csonboard.errors import PermanentError
from csonboard.ledger import EventRecord, Ledger
from csonboard.queue import Doorbell
from csonboard.routes import (
    CLOSE,
    HANDLED,
    close_session,
    fulfil_session,
    note_subscription,
)
from csonboard.stripe_api import StripeGateway
from csonboard.webhook import parse_event
from csonboard.worker import EventHandler, Outcome

GENERATION_FAILURE = "v2.core.health.event_generation_failure.resolved"
THIN_HANDLED = tuple(f"v1.{event_type}" for event_type in HANDLED)
"""The thin twins of the snapshot types csonboard handles."""


def thin_routes(
    ledger: Ledger, doorbell: Doorbell, stripe: StripeGateway, *, livemode: bool
) -> dict[str, EventHandler]:
    """Handlers for thin notifications (see the module)."""

    def complete(record: EventRecord) -> Outcome:
        whole = stripe.v2_event(record.id)
        snapshot = whole.get("snapshot_event")
        body = stripe.event_body_if_kept(snapshot) if isinstance(snapshot, str) else None
        if body is not None:
            incoming = parse_event(body, livemode=livemode, signature=None, source="stripe_api")
            if incoming.type != record.type.removeprefix("v1."):
                raise PermanentError(
                    f"thin event {record.id} ({record.type}) names snapshot {incoming.id} "
                    f"of type {incoming.type}"
                )
            new = ledger.events.add(incoming)
            doorbell.ring_or_log("event", incoming.id)
            kept = "stored" if new else "already received"
            return Outcome("done", f"snapshot {incoming.id} {kept}; processed as that event")
        related = _mapping(whole.get("related_object"))
        why = f"thin event {record.id} (no snapshot event to read)"
        return reconcile_object(
            ledger,
            doorbell,
            stripe,
            event_type=record.type.removeprefix("v1."),
            object_type=_text(related.get("type")),
            object_id=_text(related.get("id")) or record.object_id,
            livemode=livemode,
            created=record.created,
            source=why,
        )

    def generation_failure(record: EventRecord) -> Outcome:
        data = _mapping(stripe.v2_event(record.id).get("data"))
        impact = _mapping(data.get("impact"))
        related = _mapping(impact.get("related_object"))
        return reconcile_object(
            ledger,
            doorbell,
            stripe,
            event_type=_text(impact.get("event_type")),
            object_type=_text(related.get("type")),
            object_id=_text(related.get("id")) or _text(impact.get("related_object_id")),
            livemode=livemode,
            created=record.created,
            source=f"health event {record.id}",
        )

    return {**dict.fromkeys(THIN_HANDLED, complete), GENERATION_FAILURE: generation_failure}


def reconcile_object(
    ledger: Ledger,
    doorbell: Doorbell,
    stripe: StripeGateway,
    *,
    event_type: str | None,
    object_type: str | None,
    object_id: str | None,
    livemode: bool,
    created: datetime,
    source: str,
) -> Outcome:
    """Decide on ``object_id`` from its state in Stripe now, as an ``event_type``
    event about it would have been decided."""
    if not object_id:
        raise PermanentError(f"{source} names no object to reconcile")
    if object_type == "checkout.session":
        return _reconcile_session(ledger, doorbell, stripe, event_type, object_id, livemode, source)
    if object_type == "subscription":
        subscription = stripe.subscription(object_id)
        if subscription.customer is None:
            raise PermanentError(f"{object_id} has no customer in Stripe")
        return note_subscription(ledger, doorbell, object_id, subscription.customer, created)
    if object_type == "invoice":
        subject = stripe.invoice_subject(object_id)
        if subject is None:
            return Outcome("ignored", f"Stripe has no invoice {object_id}")
        subscription_id, customer_id = subject
        if subscription_id is None or customer_id is None:
            return Outcome("ignored", f"{object_id} bills no subscription (a one-off invoice?)")
        return note_subscription(ledger, doorbell, subscription_id, customer_id, created)
    return Outcome("ignored", f"csonboard acts on nothing about {object_type} {object_id}")


def _reconcile_session(
    ledger: Ledger,
    doorbell: Doorbell,
    stripe: StripeGateway,
    event_type: str | None,
    session_id: str,
    livemode: bool,
    source: str,
) -> Outcome:
    session = stripe.session_summary(session_id)
    if session is None:
        return Outcome("ignored", f"Stripe has no Checkout Session {session_id}")
    if session.status == "expired":
        reason = CLOSE["checkout.session.expired"]
        return close_session(ledger, session_id, livemode=livemode, reason=reason, source=source)
    if session.status == "open":
        return Outcome("ignored", f"{session_id} is still open: nobody has paid yet")
    if event_type in CLOSE and session.payment_status == "unpaid":
        reason = CLOSE[event_type]
        return close_session(ledger, session_id, livemode=livemode, reason=reason, source=source)
    return fulfil_session(
        ledger,
        doorbell,
        session_id,
        livemode=livemode,
        source=source,
        paid=session.payment_status == "paid",
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
