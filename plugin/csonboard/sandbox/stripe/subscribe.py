"""``POST /v1/subscriptions``: subscribing an existing customer by API, with no Checkout.

The stand-in's customers never have a payment method, which decides what
Stripe does with a first invoice that owes something:

- ``payment_behavior=default_incomplete``: the subscription starts
  ``incomplete``, its first invoice finalized and ``open``
  (``customer.subscription.created``, ``invoice.created``, ``invoice.finalized``);
  ``POST /_sandbox/subscriptions/{id}/pay`` pays it and makes the subscription
  ``active``, and ``/_sandbox/subscriptions/{id}/status`` can let it expire.
- ``allow_incomplete`` (Stripe's default) and ``error_if_incomplete``: Stripe has
  nothing to attempt the payment with and refuses the call before creating
  anything (400 ``resource_missing``, "This customer has no attached payment
  source or default payment method...").
- ``pending_if_incomplete`` is for updates only and is refused.

A first invoice of 0 needs no payment: whatever the behaviour, the subscription
starts ``active`` and the invoice is paid at once (``invoice.paid``,
``invoice.payment_succeeded``). Modelled parameters: ``customer`` (required),
``items`` (``price``, ``quantity``; required), ``metadata``, ``description``,
``payment_behavior``, ``proration_behavior`` (validated; without a backdated
start or a billing cycle anchor it has nothing to prorate) and ``expand``;
the other real parameters are refused as unsupported. Events carry the request
as their origin.
"""

from __future__ import annotations

from typing import Any

from csonboard.sandbox.stripe import billing
from csonboard.sandbox.stripe.errors import ApiError, invalid, missing, unsupported
from csonboard.sandbox.stripe.events import EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_dict,
    as_enum,
    as_int,
    as_list,
    as_metadata,
    as_opt_str,
    as_str,
    check_known,
    require,
    sub,
)
from csonboard.sandbox.stripe.meters import refuse_metered
from csonboard.sandbox.stripe.state import Json, Store

MAX_ITEMS = 20

_MODELLED = (
    "customer",
    "description",
    "expand",
    "items",
    "metadata",
    "payment_behavior",
    "proration_behavior",
)
_UNSUPPORTED = (
    "add_invoice_items",
    "application_fee_percent",
    "automatic_tax",
    "backdate_start_date",
    "billing_cycle_anchor",
    "billing_cycle_anchor_config",
    "billing_mode",
    "billing_schedules",
    "billing_thresholds",
    "cancel_at",
    "cancel_at_period_end",
    "collection_method",
    "currency",
    "customer_account",
    "days_until_due",
    "default_payment_method",
    "default_source",
    "default_tax_rates",
    "discounts",
    "invoice_settings",
    "off_session",
    "on_behalf_of",
    "payment_settings",
    "pending_invoice_item_interval",
    "transfer_data",
    "trial_end",
    "trial_from_plan",
    "trial_period_days",
    "trial_settings",
)
_ITEM_UNSUPPORTED = (
    "billing_thresholds",
    "current_trial",
    "discounts",
    "metadata",
    "plan",
    "price_data",
    "tax_rates",
)
PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)
_PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")

NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please "
    "consider adding a default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting"
    "#payment-method-priority."
)


def create_subscription(store: Store, events: EventLog, params: Params, origin: Origin) -> Json:
    """``POST /v1/subscriptions``; returns the new subscription.

    Everything is validated before anything is made, so a refused call leaves
    no trace (no subscription, invoice or event).
    """
    for name in params:
        if name in _UNSUPPORTED:
            raise unsupported(name)
    check_known(params, _MODELLED)
    behavior = as_enum(
        params.get("payment_behavior", "allow_incomplete"), "payment_behavior", PAYMENT_BEHAVIORS
    )
    if behavior == "pending_if_incomplete":
        raise invalid(
            "`payment_behavior=pending_if_incomplete` can only be used when updating a "
            "subscription.",
            "payment_behavior",
        )
    if "proration_behavior" in params:
        as_enum(params["proration_behavior"], "proration_behavior", _PRORATION_BEHAVIORS)
    customer_id = as_str(require(params, "customer"), "customer")
    metadata = _read_metadata(params)
    description = as_opt_str(params, "description")
    with store.lock:
        customer = store.get("customer", customer_id, param="customer", status=400)
        items = _read_items(store, require(params, "items"))
        owed = sum(int(item["price"]["unit_amount"]) * item["quantity"] for item in items)
        if owed and behavior != "default_incomplete":
            raise ApiError(400, NO_PAYMENT_METHOD, code="resource_missing")
        subscription, _ = billing.start_subscription(
            store,
            events,
            customer=customer,
            items=items,
            metadata=metadata,
            description=description,
            settled=owed == 0,
            origin=origin,
        )
        return subscription


def _read_metadata(params: Params) -> dict[str, str]:
    raw = params.get("metadata", "")
    if raw == "":
        return {}
    return {k: v for k, v in as_metadata(raw).items() if v}


def _read_items(store: Store, raw: Any) -> list[Json]:
    """The items as ``billing.start_subscription`` takes them (price, quantity and the
    product's name as description), checked like Stripe checks them."""
    entries = as_list(raw, "items")
    if not entries:
        raise missing("items")
    if len(entries) > MAX_ITEMS:
        raise invalid(f"You may only specify up to {MAX_ITEMS} items.", "items")
    items = [_read_item(store, entry, sub("items", i)) for i, entry in enumerate(entries)]
    first = items[0]["price"]
    seen: set[str] = set()
    for index, item in enumerate(items):
        price = item["price"]
        param = sub(sub("items", index), "price")
        if price["currency"] != first["currency"]:
            raise invalid(
                "Currency and interval fields must match across all plans on this subscription.",
                param,
            )
        if _interval(price) != _interval(first):
            raise invalid(
                "Currency and interval fields must match across all plans on this subscription.",
                param,
            )
        if price["id"] in seen:
            raise invalid(
                "Cannot add multiple subscription items with the same price; use a quantity "
                "instead.",
                param,
            )
        seen.add(price["id"])
    return items


def _read_item(store: Store, raw: Any, param: str) -> Json:
    fields = as_dict(raw, param)
    for name in fields:
        if name in _ITEM_UNSUPPORTED:
            raise unsupported(sub(param, name))
    check_known(fields, ("price", "quantity"), param)
    name = sub(param, "price")
    price = store.get(
        "price", as_str(require(fields, "price", param), name), param=name, status=400
    )
    if price["recurring"] is None:
        raise invalid(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            name,
        )
    if not price["active"]:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.", name
        )
    refuse_metered(price, name)
    quantity = as_int(fields.get("quantity", "1"), sub(param, "quantity"), minimum=0)
    product = store.objects["product"].get(price["product"], {})
    return {"price": price, "quantity": quantity, "description": product.get("name", "")}


def _interval(price: Json) -> tuple[str, int]:
    recurring = price["recurring"]
    return recurring["interval"], recurring["interval_count"]
