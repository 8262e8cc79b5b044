"""Invoices in basil+ shape: ``parent.subscription_details`` instead of a top-level
``subscription``, lines priced through ``pricing.price_details``."""

from __future__ import annotations

import copy

from csonboard.sandbox.stripe.shapes import list_object
from csonboard.sandbox.stripe.state import Json, Store


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

    Recurring line items bill ``now``..``period_end`` through their
    subscription item; one-time items appear once, as invoice items.
    """
    invoice_id = store.new_object_id("invoice")
    by_price = {si["price"]["id"]: si for si in sub_items}
    lines = [
        _invoice_line(
            store,
            invoice_id,
            subscription,
            item,
            by_price.get(item["price"]["id"]),
            now,
            period_end,
        )
        for item in items
    ]
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
        "billing_reason": "subscription_create",
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
        # Stripe quirk kept on purpose: a subscription's first invoice has a
        # zero-length period at creation; the service period is on its lines.
        "period_end": now,
        "period_start": now,
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


def _invoice_line(
    store: Store,
    invoice_id: str,
    subscription: Json,
    item: Json,
    sub_item: Json | None,
    start: int,
    end: int,
) -> Json:
    price = item["price"]
    if sub_item is not None:
        parent: Json = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": sub_item["id"],
            },
            "type": "subscription_item_details",
        }
        period = {"start": start, "end": end}
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
        period = {"start": start, "end": start}
    return {
        "id": store.new_id("il", 24),
        "object": "line_item",
        "amount": item["amount_total"],
        "currency": item["currency"],
        # Stripe writes "1 <U+00D7> Product": the multiplication sign is deliberate.
        "description": f"{item['quantity']} × {item['description']}",  # noqa: RUF001
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
        "quantity": item["quantity"],
        "subtotal": item["amount_subtotal"],
        "taxes": [],
    }
