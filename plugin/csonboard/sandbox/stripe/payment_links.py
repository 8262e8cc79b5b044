"""Payment Links: create, retrieve, list, their line items, and opening one.

A Payment Link is a shareable page that sells fixed line items; every buyer who
opens it gets a Checkout Session of their own, which ``payment_link`` names.
Opening is what the buyer does (``/_sandbox/payment_links/{id}/open``, the
link's ``url``): :func:`open_link` makes the session through
:func:`checkout.create_session`, so it is validated, shaped and paid
(``/_sandbox/checkout/sessions/{id}/complete``) like any other. Its mode is
``subscription`` when any price is recurring, else ``payment`` (with
``customer_creation`` ``if_required``); its ``metadata`` is the link's, its
``success_url`` the link's ``after_completion.redirect.url`` (null for Stripe's
hosted confirmation), and ``subscription_data``/``payment_intent_data`` reach the
subscription or PaymentIntent the purchase makes.

Modelled create parameters: ``line_items`` (``price``, ``quantity``; required),
``metadata``, ``after_completion`` (``hosted_confirmation`` with an optional
``custom_message``, or ``redirect`` with its ``url``), ``subscription_data``
(``metadata``, ``description``; recurring links only), ``payment_intent_data``
(``metadata``, ``description``; one-time links only) and ``expand``; the other
real parameters are refused as unsupported. Creating emits ``payment_link.created``.
The link's shape is built here (API 2026-10-28); ``line_items`` is includable only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from csonboard.sandbox.stripe import checkout, shapes
from csonboard.sandbox.stripe.errors import invalid, missing, unsupported, wrong_state
from csonboard.sandbox.stripe.events import EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_bool,
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
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, paginate
from csonboard.sandbox.stripe.meters import refuse_metered
from csonboard.sandbox.stripe.state import Json, Store

MAX_LINE_ITEMS = 20

_MODELLED = {
    "after_completion",
    "expand",
    "line_items",
    "metadata",
    "payment_intent_data",
    "subscription_data",
}
_UNSUPPORTED = {
    "allow_promotion_codes",
    "application_fee_amount",
    "application_fee_percent",
    "automatic_tax",
    "billing_address_collection",
    "consent_collection",
    "currency",
    "custom_fields",
    "custom_text",
    "customer_creation",
    "inactive_message",
    "invoice_creation",
    "managed_payments",
    "name_collection",
    "on_behalf_of",
    "optional_items",
    "payment_method_collection",
    "payment_method_options",
    "payment_method_types",
    "phone_number_collection",
    "restrictions",
    "shipping_address_collection",
    "shipping_options",
    "submit_type",
    "tax_id_collection",
    "transfer_data",
}
_DATA_MODELLED = ("description", "metadata")
_AFTER_COMPLETION_TYPES = ("hosted_confirmation", "redirect")


def create_link(
    store: Store, events: EventLog, params: Params, origin: Origin, *, open_url_base: str
) -> Json:
    """``POST /v1/payment_links``; emits ``payment_link.created``.

    ``open_url_base`` is where the stand-in serves ``/_sandbox/payment_links``:
    the link's ``url`` opens it there. Everything is validated before anything
    is stored.
    """
    for name in params:
        if name in _UNSUPPORTED:
            raise unsupported(name)
    check_known(params, _MODELLED)
    after_completion = _read_after_completion(params)
    metadata = {k: v for k, v in as_metadata(params.get("metadata", {})).items() if v}
    with store.lock:
        items = _read_line_items(store, params)
        recurring = any(price["recurring"] is not None for price, _ in items)
        subscription_data = _read_data(params, "subscription_data", allowed=recurring)
        intent_data = _read_data(params, "payment_intent_data", allowed=not recurring)
        link_id = store.new_object_id("payment_link")
        link = _payment_link(
            link_id=link_id,
            currency=items[0][0]["currency"],
            after_completion=after_completion,
            metadata=metadata,
            subscription_data=_subscription_data(subscription_data) if recurring else None,
            payment_intent_data=None if intent_data is None else _intent_data(intent_data),
            url=f"{open_url_base}/{link_id}/open",
        )
        store.put(link)
        store.line_items[link_id] = [
            shapes.line_item(
                store,
                price_obj=price,
                quantity=quantity,
                description=store.objects["product"].get(price["product"], {}).get("name", ""),
            )
            for price, quantity in items
        ]
        events.emit("payment_link.created", link, origin=origin)
        return link


def list_links(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/payment_links``: newest first, filtered by ``active``."""
    check_known(params, (*PAGE_PARAMS, "active"))
    checks: list[Callable[[Json], bool]] = []
    if "active" in params:
        active = as_bool(params["active"], "active")
        checks.append(lambda link: link["active"] == active)
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("payment_link"),
                params,
                url="/v1/payment_links",
                label="payment_link",
                keep=lambda link: all(check(link) for check in checks),
            )
        )


def list_line_items(store: Store, link_id: str, params: Mapping[str, Any]) -> Json:
    """``GET /v1/payment_links/{id}/line_items``: in the order they were given."""
    check_known(params, PAGE_PARAMS)
    with store.lock:
        store.get("payment_link", link_id)
        return copy.deepcopy(
            paginate(
                store.line_items[link_id],
                params,
                url=f"/v1/payment_links/{link_id}/line_items",
                label="line item",
            )
        )


def open_link(store: Store, link_id: str, *, pay_url_base: str) -> Json:
    """A buyer opens the link: a new open Checkout Session for its line items, with
    ``payment_link`` set (see the module docstring); creating it emits no event,
    as on Stripe. An inactive link is refused; so is one whose prices were
    deactivated since (Checkout refuses inactive prices)."""
    with store.lock:
        link = store.get("payment_link", link_id)
        if not link["active"]:
            raise wrong_state(f"Payment Link {link_id} is not active.")
        items = store.line_items[link_id]
        recurring = any(item["price"]["recurring"] is not None for item in items)
        mode = "subscription" if recurring else "payment"
        params: Params = {
            "mode": mode,
            "line_items": [
                {"price": item["price"]["id"], "quantity": str(item["quantity"])} for item in items
            ],
            "metadata": dict(link["metadata"]),
        }
        redirect = link["after_completion"]["redirect"]
        if redirect is not None:
            params["success_url"] = redirect["url"]
        data_name = "subscription_data" if recurring else "payment_intent_data"
        data = link[data_name]
        if data is not None:
            options: Params = {"metadata": dict(data["metadata"])}
            if data["description"] is not None:
                options["description"] = data["description"]
            params[data_name] = options
        session = checkout.create_session(store, params, pay_url_base=pay_url_base)
        session["payment_link"] = link_id
        return session


# -- reading the parameters ------------------------------------------------------------


def _read_after_completion(params: Params) -> Json:
    """The ``after_completion`` hash as the link shows it (hosted confirmation by default)."""
    if "after_completion" not in params:
        return {
            "hosted_confirmation": {"custom_message": None},
            "redirect": None,
            "type": "hosted_confirmation",
        }
    name = "after_completion"
    raw = as_dict(params[name], name)
    check_known(raw, ("hosted_confirmation", "redirect", "type"), name)
    kind = as_enum(require(raw, "type", name), sub(name, "type"), _AFTER_COMPLETION_TYPES)
    other = "hosted_confirmation" if kind == "redirect" else "redirect"
    if other in raw:
        raise invalid(
            f"`{sub(name, other)}` cannot be used when `{sub(name, 'type')}` is `{kind}`.",
            sub(name, other),
        )
    if kind == "redirect":
        redirect = as_dict(require(raw, "redirect", name), sub(name, "redirect"))
        check_known(redirect, ("url",), sub(name, "redirect"))
        url_param = sub(sub(name, "redirect"), "url")
        url = as_str(require(redirect, "url", sub(name, "redirect")), url_param)
        if not url.startswith(("http://", "https://")):
            raise invalid("Not a valid URL", url_param, code="url_invalid")
        return {"hosted_confirmation": None, "redirect": {"url": url}, "type": "redirect"}
    hosted = as_dict(raw.get("hosted_confirmation", {}), sub(name, "hosted_confirmation"))
    check_known(hosted, ("custom_message",), sub(name, "hosted_confirmation"))
    message = as_opt_str(hosted, "custom_message", sub(name, "hosted_confirmation"))
    return {
        "hosted_confirmation": {"custom_message": message},
        "redirect": None,
        "type": "hosted_confirmation",
    }


def _read_line_items(store: Store, params: Params) -> list[tuple[Json, int]]:
    """The (price, quantity) pairs: active prices of one currency, recurring ones
    sharing one billing interval, as Checkout will require when the link opens."""
    raw = as_list(require(params, "line_items"), "line_items")
    if not raw:
        raise missing("line_items")
    if len(raw) > MAX_LINE_ITEMS:
        raise invalid(f"You may only specify up to {MAX_LINE_ITEMS} line items.", "line_items")
    items = [_read_line_item(store, entry, sub("line_items", i)) for i, entry in enumerate(raw)]
    first = items[0][0]
    periods: set[tuple[str, int]] = set()
    for index, (price, _) in enumerate(items):
        param = sub(sub("line_items", index), "price")
        if price["currency"] != first["currency"]:
            raise invalid(
                f"The price {price['id']} has currency {price['currency']!r} but the first line "
                f"item's price has {first['currency']!r}; all line items must share one "
                "currency.",
                param,
            )
        if price["recurring"] is not None:
            periods.add((price["recurring"]["interval"], price["recurring"]["interval_count"]))
        if len(periods) > 1:
            raise invalid(
                "All recurring prices on a payment link must share one billing interval.", param
            )
    return items


def _read_line_item(store: Store, raw: Any, param: str) -> tuple[Json, int]:
    item = as_dict(raw, param)
    for name in ("adjustable_quantity", "price_data"):
        if name in item:
            raise unsupported(sub(param, name))
    check_known(item, ("price", "quantity"), param)
    name = sub(param, "price")
    price = store.get("price", as_str(require(item, "price", param), name), param=name, status=400)
    if not price["active"]:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.", name
        )
    refuse_metered(price, name)
    quantity = as_int(require(item, "quantity", param), sub(param, "quantity"), minimum=1)
    return price, quantity


def _read_data(params: Params, name: str, *, allowed: bool) -> Json | None:
    """``subscription_data`` / ``payment_intent_data`` (``metadata``, ``description``),
    refused on a link whose prices make the other kind of purchase."""
    if name not in params:
        return None
    if not allowed:
        needs = "recurring" if name == "subscription_data" else "only one-time"
        raise invalid(f"`{name}` can only be used on a payment link with {needs} prices.", name)
    data = as_dict(params[name], name)
    for key in data:
        if key not in _DATA_MODELLED:
            raise unsupported(sub(name, key))
    metadata_param = sub(name, "metadata")
    return {
        "description": as_opt_str(data, "description", name),
        "metadata": {
            k: v for k, v in as_metadata(data.get("metadata", {}), metadata_param).items() if v
        },
    }


# -- the object ------------------------------------------------------------------------


def _subscription_data(data: Json | None) -> Json:
    given = data or {"description": None, "metadata": {}}
    return {
        "description": given["description"],
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "metadata": dict(given["metadata"]),
        "trial_period_days": None,
        "trial_settings": None,
    }


def _intent_data(data: Json) -> Json:
    return {
        "capture_method": None,
        "description": data["description"],
        "metadata": dict(data["metadata"]),
        "setup_future_usage": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "transfer_group": None,
    }


def _payment_link(
    *,
    link_id: str,
    currency: str,
    after_completion: Json,
    metadata: dict[str, str],
    subscription_data: Json | None,
    payment_intent_data: Json | None,
    url: str,
) -> Json:
    """An active Payment Link with Stripe's defaults for everything not modelled."""
    return {
        "id": link_id,
        "object": "payment_link",
        "active": True,
        "after_completion": after_completion,
        "allow_promotion_codes": False,
        "application": None,
        "application_fee_amount": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None},
        "billing_address_collection": "auto",
        "consent_collection": None,
        "currency": currency,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_creation": "if_required",
        "inactive_message": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "metadata": dict(metadata),
        "name_collection": None,
        "on_behalf_of": None,
        "optional_items": None,
        "payment_intent_data": payment_intent_data,
        "payment_method_collection": "always",
        "payment_method_types": None,
        "phone_number_collection": {"enabled": False},
        "restrictions": None,
        "shipping_address_collection": None,
        "shipping_options": [],
        "submit_type": "auto",
        "subscription_data": subscription_data,
        "tax_id_collection": {"enabled": False, "required": "never"},
        "transfer_data": None,
        "url": url,
    }
