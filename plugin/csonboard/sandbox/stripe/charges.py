"""Charges: the money a PaymentIntent moves, with their balance transactions, and their
reads: ``GET /v1/charges`` (by ``customer``, ``payment_intent``, ``transfer_group``,
``created``), ``GET /v1/charges/{id}`` and ``GET /v1/balance_transactions/{id}``.

Every successful payment has a charge (``ch_...``) and its PaymentIntent names it in
``latest_charge``: Checkout in payment mode and every subscription invoice that is
paid with money (see ``invoices.pay``). A card payment succeeds at once; a bank
debit (``us_bank_account``, a Checkout session left ``unpaid``) makes a ``pending``
charge that later succeeds or fails.

PaymentIntents capture ``automatic_async`` (the default of the pinned API
version), so, as Stripe documents for asynchronous capture, the charge has no
``balance_transaction`` in ``charge.succeeded`` nor in the PaymentIntent's
``payment_intent.succeeded``; the balance transaction comes with a
``charge.updated`` event (``previous_attributes: {"balance_transaction": null}``)
right after. Event order for a card: ``charge.succeeded``,
``payment_intent.succeeded``, ``charge.updated``; Stripe itself promises no order.

Fees are Stripe's US list prices (cards 2.9% + 30, ACH Direct Debit 0.8% capped
at 500), charged in the charge's own currency: the sandbox account settles in
every currency, so ``exchange_rate`` stays null.

``refunds`` is *includable* on a charge since API 2022-11-15: absent unless
requested with ``expand[]=refunds`` (see ``expand``), events included.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from csonboard.sandbox.stripe import shapes
from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.forms import as_str, check_known
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, field_equals, paginate, range_filter
from csonboard.sandbox.stripe.state import Json, Store

CARD = "card"
BANK_DEBIT = "us_bank_account"
STATEMENT_DESCRIPTOR = "CSONBOARD SANDBOX"
DAY = 86400


@dataclass(frozen=True)
class Payer:
    """Who pays and with what: the payment method type (:data:`CARD` or
    :data:`BANK_DEBIT`) and the billing details the payment form collected."""

    method: str = CARD
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    address: Json | None = None


def payer_of_session(session: Json, method: str) -> Payer:
    """The buyer of a completed Checkout Session, from its ``customer_details``."""
    details = session["customer_details"] or {}
    return Payer(
        method=method,
        email=details.get("email"),
        name=details.get("name"),
        phone=details.get("phone"),
        address=details.get("address"),
    )


def payer_of_customer(customer: Json, method: str = CARD) -> Payer:
    """A customer paying an invoice with the payment method Stripe has for them."""
    return Payer(
        method=method,
        email=customer.get("email"),
        name=customer.get("name"),
        phone=customer.get("phone"),
        address=customer.get("address"),
    )


def succeed(
    store: Store, events: EventLog, intent: Json, payer: Payer, origin: Origin = AUTOMATIC
) -> Json:
    """An immediate (card) payment of ``intent`` went through; returns the charge.

    Emits ``charge.succeeded``, ``payment_intent.succeeded`` (the intent now
    ``succeeded`` with ``latest_charge``), then ``charge.updated`` as its balance
    transaction lands.
    """
    charge = _new_charge(store, intent, payer, status="succeeded")
    intent.update(status="succeeded", amount_received=intent["amount"])
    events.emit("charge.succeeded", charge, origin=origin)
    events.emit("payment_intent.succeeded", intent, origin=origin)
    _settle_funds(store, events, charge, origin)
    return charge


def begin_pending(
    store: Store, events: EventLog, intent: Json, payer: Payer, origin: Origin = AUTOMATIC
) -> Json:
    """A bank debit of ``intent`` was submitted; returns the ``pending`` charge.

    Emits ``charge.pending``, then ``payment_intent.processing``.
    """
    charge = _new_charge(store, intent, payer, status="pending")
    intent.update(status="processing", payment_method_types=[payer.method])
    events.emit("charge.pending", charge, origin=origin)
    events.emit("payment_intent.processing", intent, origin=origin)
    return charge


def settle_pending(
    store: Store, events: EventLog, intent: Json, *, succeeded: bool, error: Json
) -> Json:
    """The bank debit behind ``intent``'s pending charge cleared or came back.

    Success: ``charge.succeeded``, ``payment_intent.succeeded``, ``charge.updated``
    (the balance transaction). Failure: the charge ``failed`` with ``error``'s code
    and message (``charge.failed``), the intent back to ``requires_payment_method``
    with ``last_payment_error`` (``payment_intent.payment_failed``).
    """
    charge = store.get("charge", intent["latest_charge"])
    if succeeded:
        charge.update(status="succeeded", paid=True)
        intent.update(status="succeeded", amount_received=intent["amount"])
        events.emit("charge.succeeded", charge)
        events.emit("payment_intent.succeeded", intent)
        _settle_funds(store, events, charge, AUTOMATIC)
    else:
        charge.update(
            status="failed",
            paid=False,
            failure_code=error["code"],
            failure_message=error["message"],
            outcome={
                **charge["outcome"],
                "network_status": "declined_by_network",
                "seller_message": "The bank returned the payment.",
                "type": "issuer_declined",
            },
        )
        intent.update(status="requires_payment_method", last_payment_error=dict(error))
        events.emit("charge.failed", charge)
        events.emit("payment_intent.payment_failed", intent)
    return charge


def unrefunded(charge: Json) -> int:
    """What is left to refund on ``charge``."""
    return int(charge["amount_captured"]) - int(charge["amount_refunded"])


def balance_transaction(
    store: Store,
    *,
    amount: int,
    currency: str,
    fee: int,
    fee_description: str | None,
    kind: str,
    category: str,
    source: str,
    description: str | None,
    available_in_days: int = 0,
) -> Json:
    """A stored balance transaction (``txn_...``) moving ``amount`` less ``fee``.

    ``kind`` is its ``type`` (``charge``, ``refund``, ``adjustment``...),
    ``category`` its ``reporting_category``. Funds from a charge become available
    after ``available_in_days`` (at midnight UTC); everything else at once.
    """
    now = store.now()
    available_on = (now // DAY + available_in_days) * DAY if available_in_days else now
    details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": fee_description,
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    return store.put(
        {
            "id": store.new_object_id("balance_transaction"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": available_on,
            "balance_type": "payments",
            "created": now,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": details,
            "net": amount - fee,
            "reporting_category": category,
            "source": source,
            "status": "pending" if available_on > now else "available",
            "type": kind,
        }
    )


# -- reads ---------------------------------------------------------------------------


def list_charges(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/charges``: newest first, by ``customer``, ``payment_intent``,
    ``transfer_group`` and ``created``."""
    check_known(params, (*PAGE_PARAMS, "created", "customer", "payment_intent", "transfer_group"))
    checks: list[Callable[[Json], bool]] = []
    for name in ("customer", "payment_intent", "transfer_group"):
        if name in params:
            checks.append(field_equals(name, as_str(params[name], name)))
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda c: created(c["created"]))
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("charge"),
                params,
                url="/v1/charges",
                label="charge",
                keep=lambda c: all(check(c) for check in checks),
            )
        )


# -- building ------------------------------------------------------------------------


def _new_charge(store: Store, intent: Json, payer: Payer, *, status: str) -> Json:
    """Store a charge for all of ``intent`` and make it the intent's ``latest_charge``."""
    charge_id = store.new_object_id("charge")
    method_id = intent["payment_method"] or store.new_id("pm", 24)
    amount = int(intent["amount"])
    succeeded = status == "succeeded"
    charge: Json = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {
            "address": shapes.address(payer.address),
            "email": payer.email,
            "name": payer.name,
            "phone": payer.phone,
            "tax_id": None,
        },
        "calculated_statement_descriptor": STATEMENT_DESCRIPTOR,
        "captured": True,
        "created": store.now(),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": store.rng.randint(5, 60) if payer.method == CARD else None,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": method_id,
        "payment_method_details": _method_details(store, payer.method, amount),
        "radar_options": {},
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{store.token(60)}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }
    intent.update(latest_charge=charge_id, payment_method=method_id)
    return store.put(charge)


def _method_details(store: Store, method: str, amount: int) -> Json:
    if method == BANK_DEBIT:
        return {
            "type": BANK_DEBIT,
            BANK_DEBIT: {
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": "STRIPE TEST BANK",
                "expected_debit_date": datetime.fromtimestamp(store.now(), UTC).date().isoformat(),
                "fingerprint": store.token(16),
                "last4": "6789",
                "mandate": None,
                "payment_reference": None,
                "routing_number": "110000000",
            },
        }
    return {
        "type": CARD,
        CARD: {
            "amount_authorized": amount,
            "authorization_code": f"{store.rng.randint(0, 999999):06d}",
            "brand": "visa",
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": "pass",
                "cvc_check": "pass",
            },
            "country": "US",
            "exp_month": 12,
            "exp_year": datetime.fromtimestamp(store.now(), UTC).year + 3,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": store.token(16),
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": "4242",
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": "visa",
            "network_token": {"used": False},
            "network_transaction_id": str(store.rng.randint(10**14, 10**15 - 1)),
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "wallet": None,
        },
    }


def _fee(method: str, amount: int) -> tuple[int, str]:
    """Stripe's processing fee for ``amount`` paid by ``method``, and its label."""
    if method == BANK_DEBIT:
        return min(round(amount * 0.008), 500), "Stripe processing fees"
    return round(amount * 0.029) + 30, "Stripe processing fees"


def _settle_funds(store: Store, events: EventLog, charge: Json, origin: Origin) -> None:
    """The captured funds reach the balance: the charge gets its balance transaction
    (``charge.updated``)."""
    method = charge["payment_method_details"]["type"]
    fee, label = _fee(method, int(charge["amount_captured"]))
    txn = balance_transaction(
        store,
        amount=int(charge["amount_captured"]),
        currency=charge["currency"],
        fee=fee,
        fee_description=label,
        kind="charge" if method == CARD else "payment",
        category="charge",
        source=charge["id"],
        description=charge["description"],
        available_in_days=2 if method == CARD else 4,
    )
    charge["balance_transaction"] = txn["id"]
    events.emit("charge.updated", charge, previous={"balance_transaction": None}, origin=origin)
