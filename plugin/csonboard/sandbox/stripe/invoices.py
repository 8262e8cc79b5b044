"""Invoices in basil+ shape: ``parent.subscription_details`` instead of a top-level
``subscription``, lines priced through ``pricing.price_details``; and the steps an
invoice goes through (finalized, paid, a failed attempt, voided, uncollectible).

Each step mutates the invoice in place and emits its event; the caller holds the
store lock, so the events of one operation stay contiguous.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from csonboard.sandbox.stripe import invoice_payments, shapes
from csonboard.sandbox.stripe.charges import CARD, payer_of_customer, succeed
from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.shapes import list_object
from csonboard.sandbox.stripe.state import Json, Store

_INTENT_DESCRIPTIONS = {
    "subscription_create": "Subscription creation",
    "subscription_cycle": "Subscription cycle",
    "subscription_update": "Subscription update",
}
"""The ``description`` Stripe gives the PaymentIntent (and so the charge) paying a
subscription invoice, by the invoice's ``billing_reason``."""


@dataclass(frozen=True)
class Charge:
    """One invoice line to be: ``quantity`` of ``price``, renewing ``sub_item`` (None for
    a one-time price, which Stripe bills as an invoice item)."""

    price: Json
    quantity: int
    description: str
    sub_item: Json | None


def first_invoice(
    store: Store,
    subscription: Json,
    customer: Json,
    items: list[Json],
    sub_items: list[Json],
    now: int,
    period_end: int,
) -> Json:
    """The ``subscription_create`` invoice (draft) for a new subscription.

    ``items`` are Checkout line items: recurring ones bill ``now``..``period_end``
    through their subscription item; one-time items appear once, as invoice items.
    Stripe quirk kept on purpose: the invoice's own period is zero-length at
    creation; the service period is on its lines.
    """
    by_price = {si["price"]["id"]: si for si in sub_items}
    charges = [
        Charge(
            item["price"], item["quantity"], item["description"], by_price.get(item["price"]["id"])
        )
        for item in items
    ]
    return subscription_invoice(
        store,
        subscription,
        customer,
        charges,
        billing_reason="subscription_create",
        period=(now, now),
        service=(now, period_end),
    )


def subscription_invoice(
    store: Store,
    subscription: Json,
    customer: Json,
    charges: list[Charge],
    *,
    billing_reason: str,
    period: tuple[int, int],
    service: tuple[int, int],
) -> Json:
    """A draft invoice of ``subscription`` for ``charges``, created now.

    ``period`` is the invoice's own ``period_start``/``period_end`` (for a renewal,
    Stripe gives the period that just ended); ``service`` is the period its
    subscription lines bill for (the one starting). Numbering happens at
    :func:`finalize`.
    """
    now = store.now()
    invoice_id = store.new_object_id("invoice")
    lines = [_invoice_line(store, invoice_id, subscription, charge, service) for charge in charges]
    total = sum(line["amount"] for line in lines)
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "csonboard sandbox",
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "confirmation_secret": None,
        "created": now,
        "currency": subscription["currency"],
        "custom_fields": None,
        "customer": customer["id"],
        "customer_address": copy.deepcopy(customer["address"]),
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            **list_object(lines, f"/v1/invoices/{invoice_id}/lines"),
            "total_count": len(lines),
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def subscription_of(invoice: Json) -> str | None:
    """The id of the subscription ``invoice`` bills (basil+: under ``parent``), or None."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    subscription_id = details.get("subscription")
    return subscription_id if isinstance(subscription_id, str) else None


def hosted_invoice_url(invoice_id: str) -> str:
    """Where Stripe's hosted invoice page for ``invoice_id`` would be. Stripe sets
    ``hosted_invoice_url`` when an invoice is finalized (a draft has none); the
    stand-in gives the address in Stripe's form and serves no page there."""
    return f"https://invoice.stripe.com/i/acct_sandbox/test_{invoice_id.removeprefix('in_')}"


def finalize(store: Store, events: EventLog, invoice: Json, origin: Origin = AUTOMATIC) -> None:
    """Draft to ``open``: numbered from its customer's sequence, given its hosted
    invoice page (:func:`hosted_invoice_url`); emits ``invoice.finalized``."""
    now = store.now()
    customer = store.get("customer", invoice["customer"])
    invoice.update(
        status="open",
        number=f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}",
        effective_at=now,
        starting_balance=0,
        ending_balance=0,
        auto_advance=True,
        hosted_invoice_url=hosted_invoice_url(invoice["id"]),
    )
    invoice["status_transitions"]["finalized_at"] = now
    customer["next_invoice_sequence"] += 1
    events.emit("invoice.finalized", invoice, origin=origin)


def pay(
    store: Store,
    events: EventLog,
    invoice: Json,
    origin: Origin = AUTOMATIC,
    *,
    method: str = CARD,
) -> None:
    """A payment attempt on an open invoice succeeded.

    An invoice that owes money is paid through a PaymentIntent of its own (the
    customer's ``method``, a card unless said otherwise), linked to the invoice by
    an invoice payment: ``payment_intent.created``, ``charge.succeeded``,
    ``payment_intent.succeeded``, ``charge.updated`` (see ``charges``),
    ``invoice_payment.paid``. Then, for every invoice, ``invoice.paid`` and
    ``invoice.payment_succeeded``; ``attempt_count`` counts this attempt and no
    further attempt is scheduled.
    """
    if invoice["amount_due"] > 0:
        customer = store.find("customer", invoice["customer"]) or {}  # deleted: no details
        intent = store.put(
            shapes.payment_intent(
                store,
                amount=invoice["amount_due"],
                currency=invoice["currency"],
                customer_id=invoice["customer"],
                metadata={},
                status="requires_payment_method",
            )
        )
        intent["description"] = _INTENT_DESCRIPTIONS.get(invoice["billing_reason"])
        events.emit("payment_intent.created", intent, origin=origin)
        succeed(store, events, intent, payer_of_customer(customer, method), origin)
        invoice_payments.record_paid(store, events, invoice, intent, origin)
    invoice.update(
        status="paid",
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        attempted=True,
        attempt_count=invoice["attempt_count"] + 1,
        next_payment_attempt=None,
    )
    invoice["status_transitions"]["paid_at"] = store.now()
    events.emit("invoice.paid", invoice, origin=origin)
    events.emit("invoice.payment_succeeded", invoice, origin=origin)


def fail_attempt(
    events: EventLog, invoice: Json, next_attempt: int | None, origin: Origin = AUTOMATIC
) -> None:
    """A payment attempt failed; the invoice stays ``open``.

    ``next_attempt`` is when Stripe's retry schedule tries again (None after the
    last retry, or for the first payment of a Checkout subscription). Emits
    ``invoice.payment_failed``.
    """
    invoice.update(
        attempted=True,
        attempt_count=invoice["attempt_count"] + 1,
        next_payment_attempt=next_attempt,
    )
    events.emit("invoice.payment_failed", invoice, origin=origin)


def void(store: Store, events: EventLog, invoice: Json, origin: Origin = AUTOMATIC) -> None:
    """An open invoice will never be collected; emits ``invoice.voided``."""
    invoice.update(status="void", auto_advance=False, next_payment_attempt=None)
    invoice["status_transitions"]["voided_at"] = store.now()
    events.emit("invoice.voided", invoice, origin=origin)


def mark_uncollectible(
    store: Store, events: EventLog, invoice: Json, origin: Origin = AUTOMATIC
) -> None:
    """An open invoice is written off; emits ``invoice.marked_uncollectible``."""
    invoice.update(status="uncollectible", auto_advance=False, next_payment_attempt=None)
    invoice["status_transitions"]["marked_uncollectible_at"] = store.now()
    events.emit("invoice.marked_uncollectible", invoice, origin=origin)


def _invoice_line(
    store: Store, invoice_id: str, subscription: Json, charge: Charge, service: tuple[int, int]
) -> Json:
    price = charge.price
    amount = int(price["unit_amount"]) * charge.quantity
    if charge.sub_item is not None:
        parent: Json = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": charge.sub_item["id"],
            },
            "type": "subscription_item_details",
        }
        period = {"start": service[0], "end": service[1]}
    else:
        parent = {
            "invoice_item_details": {
                "invoice_item": store.new_id("ii", 24),
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
        period = {"start": service[0], "end": service[0]}
    return {
        "id": store.new_id("il", 24),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        # Stripe writes "1 <U+00D7> Product": the multiplication sign is deliberate.
        "description": f"{charge.quantity} × {charge.description}",  # noqa: RUF001
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": period,
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": charge.quantity,
        "subtotal": amount,
        "taxes": [],
    }
