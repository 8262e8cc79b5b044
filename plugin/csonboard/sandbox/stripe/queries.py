"""List endpoints for Checkout Sessions and their line items, subscriptions and their
items, invoices and their lines."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from csonboard.sandbox.stripe.forms import as_dict, as_enum, as_str, check_known, require
from csonboard.sandbox.stripe.invoices import subscription_of
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, field_equals, paginate, range_filter
from csonboard.sandbox.stripe.state import Json, Store

_SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)

_INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")


def list_sessions(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/checkout/sessions``: newest first, filtered by ``created``, ``status``,
    ``customer``, ``customer_details[email]``, ``payment_intent``, ``subscription``."""
    check_known(
        params,
        (
            *PAGE_PARAMS,
            "created",
            "customer",
            "customer_details",
            "payment_intent",
            "payment_link",
            "status",
            "subscription",
        ),
    )
    checks: list[Callable[[Json], bool]] = []
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda s: created(s["created"]))
    if "status" in params:
        status = as_enum(params["status"], "status", ("complete", "expired", "open"))
        checks.append(lambda s: s["status"] == status)
    for name in ("customer", "payment_intent", "payment_link", "subscription"):
        if name in params:
            checks.append(field_equals(name, as_str(params[name], name)))
    if "customer_details" in params:
        details = as_dict(params["customer_details"], "customer_details")
        check_known(details, ("email",), "customer_details")
        email = as_str(details.get("email", ""), "customer_details[email]")
        checks.append(lambda s: (s["customer_details"] or {}).get("email") == email)
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("checkout.session"),
                params,
                url="/v1/checkout/sessions",
                label="checkout.session",
                keep=lambda s: all(check(s) for check in checks),
            )
        )


def list_line_items(store: Store, session_id: str, params: Mapping[str, Any]) -> Json:
    """``GET /v1/checkout/sessions/{id}/line_items``: in the order they were given."""
    check_known(params, PAGE_PARAMS)
    with store.lock:
        store.get("checkout.session", session_id)
        return copy.deepcopy(
            paginate(
                store.line_items[session_id],
                params,
                url=f"/v1/checkout/sessions/{session_id}/line_items",
                label="line item",
            )
        )


def list_subscriptions(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/subscriptions``: by ``customer``, ``price``, ``status`` and ``created``.

    As on Stripe, without ``status`` canceled subscriptions are left out;
    ``status=all`` includes them and ``ended`` lists only them.
    """
    check_known(params, (*PAGE_PARAMS, "created", "customer", "price", "status"))
    checks: list[Callable[[Json], bool]] = []
    status = as_enum(params.get("status", "all"), "status", _SUBSCRIPTION_STATUSES)
    if "status" not in params:
        checks.append(lambda s: s["status"] != "canceled")
    elif status == "ended":
        checks.append(lambda s: s["status"] in ("canceled", "incomplete_expired"))
    elif status != "all":
        checks.append(lambda s: s["status"] == status)
    if "customer" in params:
        checks.append(field_equals("customer", as_str(params["customer"], "customer")))
    if "price" in params:
        price = as_str(params["price"], "price")
        checks.append(lambda s: any(i["price"]["id"] == price for i in s["items"]["data"]))
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda s: created(s["created"]))
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("subscription"),
                params,
                url="/v1/subscriptions",
                label="subscription",
                keep=lambda s: all(check(s) for check in checks),
            )
        )


def list_subscription_items(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/subscription_items?subscription=...``: the subscription's items in its
    own order; ``subscription`` is required (an unknown one is a 400 naming it)."""
    check_known(params, (*PAGE_PARAMS, "subscription"))
    subscription_id = as_str(require(params, "subscription"), "subscription")
    with store.lock:
        subscription = store.get("subscription", subscription_id, param="subscription", status=400)
        return copy.deepcopy(
            paginate(
                subscription["items"]["data"],
                params,
                url="/v1/subscription_items",
                label="subscription_item",
            )
        )


def list_invoice_lines(store: Store, invoice_id: str, params: Mapping[str, Any]) -> Json:
    """``GET /v1/invoices/{id}/lines``: the invoice's lines in their order on it."""
    check_known(params, PAGE_PARAMS)
    with store.lock:
        invoice = store.get("invoice", invoice_id)
        return copy.deepcopy(
            paginate(
                invoice["lines"]["data"],
                params,
                url=f"/v1/invoices/{invoice_id}/lines",
                label="line_item",
            )
        )


def list_invoices(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/invoices``: newest first, by ``subscription`` (basil+: matched through
    ``parent.subscription_details``), ``customer``, ``status``, ``collection_method``,
    ``created`` and ``due_date``."""
    check_known(
        params,
        (
            *PAGE_PARAMS,
            "collection_method",
            "created",
            "customer",
            "due_date",
            "status",
            "subscription",
        ),
    )
    checks: list[Callable[[Json], bool]] = []
    if "subscription" in params:
        subscription = as_str(params["subscription"], "subscription")
        checks.append(lambda i: subscription_of(i) == subscription)
    if "customer" in params:
        checks.append(field_equals("customer", as_str(params["customer"], "customer")))
    if "status" in params:
        status = as_enum(params["status"], "status", _INVOICE_STATUSES)
        checks.append(lambda i: i["status"] == status)
    if "collection_method" in params:
        method = as_enum(
            params["collection_method"],
            "collection_method",
            ("charge_automatically", "send_invoice"),
        )
        checks.append(lambda i: i["collection_method"] == method)
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda i: created(i["created"]))
    if "due_date" in params:
        due = range_filter(params["due_date"], "due_date")
        checks.append(lambda i: i["due_date"] is not None and due(i["due_date"]))
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("invoice"),
                params,
                url="/v1/invoices",
                label="invoice",
                keep=lambda i: all(check(i) for check in checks),
            )
        )
