"""Builders for the API objects the stand-in serves, in API version 2026-10-28 shapes.

Each builder returns a fresh JSON-ready dict with every field the official
library's types declare that a reader of this flow could look at; fields the
stand-in does not model carry the value Stripe gives them in the plain case
(null, false, empty list). Subscription and invoice shapes live in ``billing``
and ``invoices``, Payment Links in ``payment_links``, billing meters in ``meters``.
"""

from __future__ import annotations

from typing import Any

from csonboard.sandbox.stripe.state import Json, Store

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


def list_object(data: list[Json], url: str, *, has_more: bool = False) -> Json:
    """Stripe's list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def address(fields: dict[str, Any] | None) -> Json | None:
    """A full address hash (every field present, unknown ones null), or None."""
    if fields is None:
        return None
    return {name: fields.get(name) or None for name in ADDRESS_FIELDS}


def product(
    store: Store,
    *,
    product_id: str,
    name: str,
    description: str | None = None,
    active: bool = True,
    metadata: dict[str, str] | None = None,
) -> Json:
    """A Product; ``type`` is ``service``, the only kind Checkout sells here."""
    now = store.now()
    return {
        "id": product_id,
        "object": "product",
        "active": active,
        "created": now,
        "default_price": None,
        "description": description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(metadata or {}),
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }


def price(
    store: Store,
    *,
    price_id: str,
    product_id: str,
    currency: str,
    unit_amount: int,
    recurring: dict[str, Any] | None,
    lookup_key: str | None = None,
    nickname: str | None = None,
    metadata: dict[str, str] | None = None,
    active: bool = True,
) -> Json:
    """A per-unit Price; ``recurring`` is ``{"interval", "interval_count"}`` or None,
    with ``usage_type`` (``licensed`` when absent) and, for a ``metered`` price, the
    ``meter`` id whose usage it bills."""
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": store.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": dict(metadata or {}),
        "nickname": nickname,
        "product": product_id,
        "recurring": None
        if recurring is None
        else {
            "interval": recurring["interval"],
            "interval_count": int(recurring.get("interval_count", 1)),
            "meter": recurring.get("meter"),
            "trial_period_days": None,
            "usage_type": recurring.get("usage_type", "licensed"),
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if recurring is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def customer(
    store: Store,
    *,
    email: str | None,
    name: str | None,
    phone: str | None = None,
    address_fields: dict[str, Any] | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    preferred_locales: list[str] | None = None,
) -> Json:
    """A Customer with no payment methods and a zero balance."""
    customer_id = store.new_object_id("customer")
    return {
        "id": customer_id,
        "object": "customer",
        "address": address(address_fields),
        "balance": 0,
        "business_name": None,
        "created": store.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "individual_name": None,
        "invoice_prefix": customer_id[4:12].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(metadata or {}),
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": list(preferred_locales or []),
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def line_item(store: Store, *, price_obj: Json, quantity: int, description: str) -> Json:
    """A Checkout line item (``object: "item"``) embedding the full price."""
    amount = int(price_obj["unit_amount"]) * quantity
    return {
        "id": store.new_id("li", 24),
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price_obj["currency"],
        "description": description,
        "discounts": [],
        "metadata": {},
        "price": dict(price_obj),
        "quantity": quantity,
        "taxes": [],
    }


def payment_intent(
    store: Store,
    *,
    amount: int,
    currency: str,
    customer_id: str | None,
    metadata: dict[str, str],
    status: str,
) -> Json:
    """A card PaymentIntent as Checkout leaves it; its charge comes from ``charges``."""
    intent_id = store.new_object_id("payment_intent")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount if status == "succeeded" else 0,
        "application": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_sandbox",
        "confirmation_method": "automatic",
        "created": store.now(),
        "currency": currency,
        "customer": customer_id,
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(metadata),
        "next_action": None,
        "payment_method": None,
        "payment_method_types": ["card"],
        "receipt_email": None,
        "setup_future_usage": None,
        "status": status,
    }


def checkout_session(
    *,
    session_id: str,
    mode: str,
    created: int,
    expires_at: int,
    currency: str | None,
    subtotal: int | None,
    customer_id: str | None,
    url: str | None,
    client_secret: str | None,
    cancel_url: str | None,
    client_reference_id: str | None,
    customer_creation: str | None,
    customer_email: str | None,
    locale: str | None,
    metadata: dict[str, str],
    payment_method_types: list[str],
    redirect_on_completion: str | None,
    return_url: str | None,
    success_url: str | None,
    ui_mode: str,
) -> Json:
    """An open Checkout Session. ``line_items`` is not a field: it is includable
    only (``expand[]=line_items``) and never part of an event's snapshot.
    ``payment_intent`` stays null until the buyer pays, as since API 2022-08-01.
    ``url`` is the hosted page (``ui_mode`` ``hosted_page``); a session paid on the
    merchant's own page has a ``client_secret`` and a ``return_url`` instead.
    """
    return {
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": client_secret,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer_id,
        "customer_creation": customer_creation,
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": locale,
        "metadata": dict(metadata),
        "mode": mode,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always" if mode == "subscription" else "if_required",
        "payment_method_types": list(payment_method_types),
        "payment_status": "unpaid" if mode != "setup" and subtotal else "no_payment_required",
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "redirect_on_completion": redirect_on_completion,
        "return_url": return_url,
        "setup_intent": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": ui_mode,
        "url": url,
    }
