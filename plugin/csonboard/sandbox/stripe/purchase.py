"""What happens to a Checkout Session after creation: the buyer pays, a delayed payment
settles or fails, or the session expires. Each step emits the events Stripe would,
in the order Stripe typically sends them (delivery order is not promised by Stripe
and receivers must not rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from csonboard.sandbox.stripe import billing, charges, shapes
from csonboard.sandbox.stripe.errors import invalid, wrong_state
from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.state import Json, Store

DEFAULT_EMAIL = "buyer@example.com"
DEFAULT_NAME = "Sandbox Buyer"
DEFAULT_ADDRESS = {"country": "US", "postal_code": "94103"}
"""What a card form collects when the buyer types nothing else."""

BANK_DEBIT_FAILURE = {
    "code": "payment_method_not_available",
    "message": "The bank debit failed (sandbox).",
    "type": "card_error",
}
"""The ``last_payment_error`` of a delayed payment that came back."""


@dataclass(frozen=True)
class Buyer:
    """What the buyer enters on the Checkout page.

    ``payment_status`` is ``paid`` for a card, ``unpaid`` for a delayed method
    (bank debit) that settles later. Missing contact details fall back to the
    session's prefilled email, the existing customer's, then sandbox defaults.
    """

    payment_status: str = "paid"
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = field(default=None)


def complete_session(store: Store, events: EventLog, session_id: str, buyer: Buyer) -> Json:
    """Complete an open session as the buyer would, and return it.

    Creates the Customer when Checkout would (subscription mode, or
    ``customer_creation=always``; a guest in payment mode stays ``customer:
    null``), the PaymentIntent and its charge (payment mode) or the Subscription
    and its first invoice (subscription mode). Events, in order:
    ``customer.created``?, then ``payment_intent.created`` followed by a card
    payment's ``charge.succeeded``, ``payment_intent.succeeded``,
    ``charge.updated`` (see :mod:`charges`) or a bank debit's ``charge.pending``,
    ``payment_intent.processing``; or the subscription sequence of :mod:`billing`;
    then ``checkout.session.completed``.
    """
    with store.lock:
        session = store.get("checkout.session", session_id)
        _require_status(session, "open", "completed")
        due = session["payment_status"] != "no_payment_required"
        if buyer.payment_status not in ("paid", "unpaid"):
            raise invalid("payment_status must be `paid` or `unpaid`", "payment_status")
        if buyer.payment_status == "unpaid" and not due:
            raise invalid(
                "This session has nothing to pay; it cannot be left unpaid.", "payment_status"
            )
        paid = buyer.payment_status == "paid"
        existing = store.find("customer", session["customer"]) if session["customer"] else None
        session["customer_details"] = _customer_details(session, existing, buyer)
        customer = existing or _create_customer_if_needed(store, events, session)
        session["customer"] = customer["id"] if customer else None
        options = store.hidden.get(session_id, {})
        if session["mode"] == "subscription":
            assert customer is not None  # subscription mode always has or makes one
            _start_subscription(store, events, session, customer, options, paid=paid)
        elif session["mode"] == "payment" and due:
            _create_payment_intent(store, events, session, options, paid=paid)
        elif session["mode"] == "setup":
            session["setup_intent"] = store.new_id("seti", 24)
        session.update(status="complete", url=None)
        if due and paid:
            session["payment_status"] = "paid"
        events.emit("checkout.session.completed", session)
        return session


def settle_async_payment(
    store: Store, events: EventLog, session_id: str, *, succeeded: bool
) -> Json:
    """A delayed payment cleared or failed; return the session.

    Only for a completed session still ``unpaid`` and not settled before.
    Success: ``charge.succeeded``, ``payment_intent.succeeded``, ``charge.updated``
    (or the invoice-paid sequence in subscription mode, paid by bank debit), then
    ``checkout.session.async_payment_succeeded`` with ``payment_status: paid``.
    Failure: ``charge.failed``, ``payment_intent.payment_failed`` (or
    ``invoice.payment_failed``), then ``checkout.session.async_payment_failed``.
    """
    with store.lock:
        session = store.get("checkout.session", session_id)
        _require_status(session, "complete", "settled")
        hidden = store.hidden.setdefault(session_id, {})
        if session["payment_status"] != "unpaid" or hidden.get("settled"):
            raise wrong_state(f"Checkout Session {session_id} has no payment awaiting settlement.")
        hidden["settled"] = True
        if session["mode"] == "subscription":
            subscription = store.get("subscription", session["subscription"])
            invoice = store.get("invoice", session["invoice"])
            if succeeded:
                billing.pay_first_invoice(
                    store, events, subscription, invoice, method=charges.BANK_DEBIT
                )
            else:
                billing.fail_first_invoice(events, invoice)
        else:
            _settle_payment_intent(store, events, session["payment_intent"], succeeded=succeeded)
        if succeeded:
            session["payment_status"] = "paid"
            events.emit("checkout.session.async_payment_succeeded", session)
        else:
            events.emit("checkout.session.async_payment_failed", session)
        return session


def expire_session(
    store: Store, events: EventLog, session_id: str, origin: Origin = AUTOMATIC
) -> Json:
    """Expire an open session (``POST .../expire`` or its time ran out); emits
    ``checkout.session.expired``. A session in any other status is refused."""
    with store.lock:
        session = store.get("checkout.session", session_id)
        _require_status(session, "open", "expired")
        session.update(status="expired", url=None)
        events.emit("checkout.session.expired", session, origin=origin)
        return session


def expire_due_sessions(store: Store, events: EventLog) -> None:
    """Expire every open session whose ``expires_at`` has passed on the store's clock.

    Stripe does this in the background; the sandbox does it lazily before
    serving each request, which is indistinguishable to a client.
    """
    with store.lock:
        now = store.now()
        for session in store.objects["checkout.session"].values():
            if session["status"] == "open" and session["expires_at"] <= now:
                expire_session(store, events, session["id"])


def _require_status(session: Json, status: str, action: str) -> None:
    if session["status"] != status:
        raise wrong_state(
            f"Checkout Session {session['id']} is {session['status']}; only a session that is "
            f"{status} can be {action}."
        )


def _customer_details(session: Json, customer: Json | None, buyer: Buyer) -> Json:
    known = customer or {}
    email = buyer.email or session["customer_email"] or known.get("email") or DEFAULT_EMAIL
    address_fields = buyer.address or known.get("address") or DEFAULT_ADDRESS
    return {
        "address": shapes.address(address_fields),
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": buyer.name or known.get("name") or DEFAULT_NAME,
        "phone": buyer.phone or known.get("phone"),
        "tax_exempt": "none",
        "tax_ids": [],
    }


def _create_customer_if_needed(store: Store, events: EventLog, session: Json) -> Json | None:
    if session["mode"] != "subscription" and session["customer_creation"] != "always":
        return None
    details = session["customer_details"]
    customer = store.put(
        shapes.customer(
            store,
            email=details["email"],
            name=details["name"],
            phone=details["phone"],
            address_fields=details["address"],
        )
    )
    events.emit("customer.created", customer)
    return customer


def _start_subscription(
    store: Store, events: EventLog, session: Json, customer: Json, options: Json, *, paid: bool
) -> None:
    data = options.get("subscription_data", {})
    subscription, invoice = billing.start_subscription(
        store,
        events,
        customer=customer,
        items=store.line_items[session["id"]],
        metadata=data.get("metadata", {}),
        description=data.get("description"),
    )
    session.update(subscription=subscription["id"], invoice=invoice["id"])
    if paid:
        billing.pay_first_invoice(store, events, subscription, invoice)


def _create_payment_intent(
    store: Store, events: EventLog, session: Json, options: Json, *, paid: bool
) -> None:
    data = options.get("payment_intent_data", {})
    intent = store.put(
        shapes.payment_intent(
            store,
            amount=session["amount_total"],
            currency=session["currency"],
            customer_id=session["customer"],
            metadata=data.get("metadata", {}),
            status="requires_payment_method",
        )
    )
    intent["description"] = data.get("description")
    events.emit("payment_intent.created", intent)
    session["payment_intent"] = intent["id"]
    if paid:
        charges.succeed(store, events, intent, charges.payer_of_session(session, charges.CARD))
    else:
        payer = charges.payer_of_session(session, charges.BANK_DEBIT)
        charges.begin_pending(store, events, intent, payer)


def _settle_payment_intent(
    store: Store, events: EventLog, intent_id: str, *, succeeded: bool
) -> None:
    intent = store.get("payment_intent", intent_id)
    charges.settle_pending(store, events, intent, succeeded=succeeded, error=BANK_DEBIT_FAILURE)
