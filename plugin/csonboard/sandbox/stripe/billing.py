"""Subscriptions and their invoices, as a completed subscription-mode Checkout (or
``POST /v1/subscriptions``) makes them.

Shapes are API 2025-03-31 ("basil") and later: the invoice names its
subscription at ``parent.subscription_details.subscription`` (there is no
top-level ``subscription`` or ``payment_intent``), and billing periods live on
each subscription item (``current_period_start``/``current_period_end``), not
on the subscription.

The event sequence follows what Stripe emits when Checkout starts a
subscription: the subscription is created ``incomplete``, its first invoice is
created (draft) and finalized; when paid, the invoice is paid and the
subscription becomes ``active`` (an ``updated`` event with the old status).
"""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime

from csonboard.sandbox.stripe import invoices
from csonboard.sandbox.stripe.charges import CARD
from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.shapes import list_object
from csonboard.sandbox.stripe.state import Json, Store


def add_interval(start: int, interval: str, count: int) -> int:
    """``start`` plus ``count`` billing intervals, in calendar terms like Stripe.

    Month ends clamp (31 Jan + 1 month = 28/29 Feb), as Stripe's anchors do.
    """
    if interval == "day":
        return start + 86400 * count
    if interval == "week":
        return start + 7 * 86400 * count
    moment = datetime.fromtimestamp(start, UTC)
    months = count * (12 if interval == "year" else 1)
    year, month0 = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return int(moment.replace(year=year, month=month0 + 1, day=day).timestamp())


def start_subscription(
    store: Store,
    events: EventLog,
    *,
    customer: Json,
    items: list[Json],
    metadata: dict[str, str],
    description: str | None,
    settled: bool = False,
    origin: Origin = AUTOMATIC,
) -> tuple[Json, Json]:
    """Create an ``incomplete`` subscription and its finalized first invoice.

    ``items`` are Checkout line items (or anything with their ``price``,
    ``quantity`` and ``description``); recurring ones become subscription items,
    one-time ones only appear on the first invoice. Emits
    ``customer.subscription.created``, ``invoice.created``, ``invoice.finalized``.
    The caller pays the invoice (:func:`pay_first_invoice`) or leaves it open.

    ``settled``: the first invoice owes nothing, so Stripe starts the subscription
    ``active`` and pays the invoice at once (``invoice.paid``,
    ``invoice.payment_succeeded`` follow). ``origin`` is the request behind the
    events (none for Checkout, which the buyer drives).
    """
    now = store.now()
    subscription_id = store.new_object_id("subscription")
    recurring = [item for item in items if item["price"]["recurring"] is not None]
    first = recurring[0]["price"]["recurring"]
    period_end = add_interval(now, first["interval"], first["interval_count"])
    sub_items = [
        subscription_item(store, subscription_id, i["price"], i["quantity"], now, period_end)
        for i in recurring
    ]
    subscription = store.put(
        _subscription(subscription_id, customer, sub_items, now, metadata, description)
    )
    invoice = store.put(
        invoices.first_invoice(store, subscription, customer, items, sub_items, now, period_end)
    )
    subscription["latest_invoice"] = invoice["id"]
    if settled:
        subscription["status"] = "active"
    events.emit("customer.subscription.created", subscription, origin=origin)
    events.emit("invoice.created", invoice, origin=origin)
    invoices.finalize(store, events, invoice, origin)
    if settled:
        invoices.pay(store, events, invoice, origin)
    return subscription, invoice


def pay_first_invoice(
    store: Store, events: EventLog, subscription: Json, invoice: Json, *, method: str = CARD
) -> None:
    """The first payment (by ``method``) cleared: invoice paid, subscription ``active``.

    Emits what :func:`invoices.pay` emits (the payment's events, ``invoice.paid``,
    ``invoice.payment_succeeded``), then ``customer.subscription.updated``
    (previous status ``incomplete``).
    """
    invoices.pay(store, events, invoice, method=method)
    previous = {"status": subscription["status"]}
    subscription["status"] = "active"
    events.emit("customer.subscription.updated", subscription, previous=previous)


def fail_first_invoice(events: EventLog, invoice: Json) -> None:
    """The first payment failed: emits ``invoice.payment_failed``; the subscription stays
    ``incomplete`` (Stripe expires it after 23 hours, which the sandbox does not model
    on its own: ``POST /_sandbox/subscriptions/{id}/status`` can).
    """
    invoices.fail_attempt(events, invoice, None)


def subscription_item(
    store: Store, subscription_id: str, price: Json, quantity: int, start: int, end: int
) -> Json:
    """A new subscription item billing ``quantity`` of ``price`` for ``start``..``end``
    (basil+: the billing period lives here, not on the subscription)."""
    price = copy.deepcopy(price)
    return {
        "id": store.new_id("si", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": store.now(),
        "current_period_end": end,
        "current_period_start": start,
        "discounts": [],
        "metadata": {},
        "plan": plan(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def _subscription(
    subscription_id: str,
    customer: Json,
    sub_items: list[Json],
    now: int,
    metadata: dict[str, str],
    description: str | None,
) -> Json:
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": sub_items[0]["price"]["currency"],
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            **list_object(sub_items, f"/v1/subscription_items?subscription={subscription_id}"),
            "total_count": len(sub_items),
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": dict(metadata),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "incomplete",
        "status_details": None,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def plan(price: Json) -> Json:
    """The legacy ``plan`` view of a recurring price, still sent on subscription items."""
    recurring = price["recurring"]
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }
