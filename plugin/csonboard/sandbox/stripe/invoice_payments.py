"""Invoice payments (``inpay_...``): what links an invoice to the PaymentIntent that paid it.

Since API 2025-03-31 an invoice names no ``charge`` or ``payment_intent`` and a
PaymentIntent or charge names no ``invoice``: the link is this object, listed by
``GET /v1/invoice_payments?invoice=in_...`` or, from the other end,
``?payment[type]=payment_intent&payment[payment_intent]=pi_...`` (also by ``status``
and ``created``), read one by one at ``GET /v1/invoice_payments/{id}``, and
includable on the invoice as ``payments`` (``expand[]=payments``).

The sandbox makes an invoice's (default, ``is_default: true``) payment when a
payment attempt succeeds, already ``paid`` (event ``invoice_payment.paid``);
Stripe makes it ``open`` when the invoice is finalized, so an open invoice has
one there and none here. Invoices that owe nothing are paid without any.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.forms import as_dict, as_enum, as_str, check_known, require, sub
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, paginate, range_filter
from csonboard.sandbox.stripe.state import Json, Store

_STATUSES = ("canceled", "open", "paid")
_PAYMENT_TYPES = ("payment_intent", "payment_record")


def record_paid(
    store: Store, events: EventLog, invoice: Json, intent: Json, origin: Origin = AUTOMATIC
) -> Json:
    """Store the paid default payment of ``invoice`` by ``intent``; emits
    ``invoice_payment.paid``."""
    now = store.now()
    payment = store.put(
        {
            "id": store.new_object_id("invoice_payment"),
            "object": "invoice_payment",
            "amount_paid": intent["amount_received"],
            "amount_requested": intent["amount"],
            "created": now,
            "currency": intent["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"payment_intent": intent["id"], "type": "payment_intent"},
            "status": "paid",
            "status_transitions": {"canceled_at": None, "paid_at": now},
        }
    )
    events.emit("invoice_payment.paid", payment, origin=origin)
    return payment


def list_invoice_payments(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/invoice_payments``: newest first, by ``invoice``, ``payment`` (``type``
    required, with the ``payment_intent`` or ``payment_record`` id), ``status`` and
    ``created``."""
    check_known(params, (*PAGE_PARAMS, "created", "invoice", "payment", "status"))
    checks: list[Callable[[Json], bool]] = []
    if "invoice" in params:
        invoice = as_str(params["invoice"], "invoice")
        checks.append(lambda p: p["invoice"] == invoice)
    if "payment" in params:
        payment = as_dict(params["payment"], "payment")
        check_known(payment, ("payment_intent", "payment_record", "type"), "payment")
        kind = as_enum(require(payment, "type", "payment"), sub("payment", "type"), _PAYMENT_TYPES)
        wanted = as_str(payment[kind], sub("payment", kind)) if kind in payment else None
        checks.append(
            lambda p: (
                p["payment"]["type"] == kind
                and (wanted is None or p["payment"].get(kind) == wanted)
            )
        )
    if "status" in params:
        status = as_enum(params["status"], "status", _STATUSES)
        checks.append(lambda p: p["status"] == status)
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda p: created(p["created"]))
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("invoice_payment"),
                params,
                url="/v1/invoice_payments",
                label="invoice_payment",
                keep=lambda p: all(check(p) for check in checks),
            )
        )
