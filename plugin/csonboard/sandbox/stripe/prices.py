"""Products and prices: seeded from the sandbox catalog, listed, created.

``POST /v1/products`` models ``name``, ``id``, ``active``, ``description`` and
``metadata``; ``POST /v1/prices`` per-unit prices, licensed or metered
(``recurring[usage_type]=metered`` with the active ``recurring[meter]`` it bills).
Other real parameters of both are refused as unsupported rather than silently
ignored.

The catalog's ``stripe`` section lists ``meters`` (see :mod:`meters`),
``products`` (``id``, ``name``) and ``prices`` (``id``, ``product``,
``currency``, ``unit_amount``, optional ``lookup_key``, ``nickname``,
``recurring = {interval, interval_count, usage_type?, meter?}``). Seeding emits
no events: the account simply starts with them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from csonboard.sandbox.stripe import meters, shapes
from csonboard.sandbox.stripe.errors import ApiError, invalid, unsupported
from csonboard.sandbox.stripe.events import EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_bool,
    as_dict,
    as_enum,
    as_int,
    as_metadata,
    as_opt_str,
    as_str,
    as_str_list,
    check_known,
    require,
    sub,
)
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, field_equals, paginate, range_filter
from csonboard.sandbox.stripe.state import Json, Store

_INTERVALS = ("day", "week", "month", "year")
_PRODUCT_PARAMS = {"active", "description", "expand", "id", "metadata", "name"}
_UNSUPPORTED_PRODUCT_PARAMS = {
    "default_price_data",
    "images",
    "marketing_features",
    "package_dimensions",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "tax_details",
    "type",
    "unit_label",
    "url",
}
_PRICE_PARAMS = {
    "active",
    "currency",
    "expand",
    "lookup_key",
    "metadata",
    "nickname",
    "product",
    "product_data",
    "recurring",
    "transfer_lookup_key",
    "unit_amount",
}
_UNSUPPORTED_PRICE_PARAMS = {
    "billing_scheme",
    "currency_options",
    "custom_unit_amount",
    "tax_behavior",
    "tiers",
    "tiers_mode",
    "transform_quantity",
    "unit_amount_decimal",
}


def seed_catalog(store: Store, section: Mapping[str, Any]) -> None:
    """Load the catalog's ``stripe`` section into ``store``.

    Raises ValueError for a price whose product is not in the catalog, so a
    broken catalog stops start-up instead of failing a checkout later.
    """
    with store.lock:
        meters.seed_meters(store, section)
        for entry in section.get("products", []):
            store.put(
                shapes.product(
                    store,
                    product_id=entry["id"],
                    name=entry["name"],
                    description=entry.get("description"),
                )
            )
        for entry in section.get("prices", []):
            if entry["product"] not in store.objects["product"]:
                raise ValueError(
                    f"catalog price {entry['id']} names unknown product {entry['product']}"
                )
            recurring = entry.get("recurring") or {}
            if (recurring.get("usage_type") == "metered") != (
                recurring.get("meter") in store.objects[meters.KIND]
            ):
                raise ValueError(
                    f"catalog price {entry['id']} must name a seeded meter if and only if metered"
                )
            store.put(
                shapes.price(
                    store,
                    price_id=entry["id"],
                    product_id=entry["product"],
                    currency=entry["currency"],
                    unit_amount=int(entry["unit_amount"]),
                    recurring=entry.get("recurring"),
                    lookup_key=entry.get("lookup_key"),
                    nickname=entry.get("nickname"),
                    metadata=entry.get("metadata"),
                    active=entry.get("active", True),
                )
            )


def create_product(store: Store, events: EventLog, params: Params, origin: Origin) -> Json:
    """``POST /v1/products``; emits ``product.created``.

    ``name`` is required; ``id`` (Stripe makes one when absent) must not be taken
    (``resource_already_exists``); ``description`` and ``id`` may not be ``""``.
    """
    for name in params:
        if name in _UNSUPPORTED_PRODUCT_PARAMS:
            raise unsupported(name)
    check_known(params, _PRODUCT_PARAMS)
    product_name = as_str(require(params, "name"), "name")
    custom_id = _non_empty(params, "id")
    description = _non_empty(params, "description")
    active = as_bool(params["active"], "active") if "active" in params else True
    metadata = {k: v for k, v in as_metadata(params.get("metadata", {})).items() if v}
    with store.lock:
        if custom_id is not None and store.kind_of_id(custom_id) is not None:
            raise ApiError(
                400, "Product already exists.", param="id", code="resource_already_exists"
            )
        product = shapes.product(
            store,
            product_id=custom_id or store.new_object_id("product"),
            name=product_name,
            description=description,
            active=active,
            metadata=metadata,
        )
        store.put(product)
        events.emit("product.created", product, origin=origin)
        return product


def create_price(store: Store, events: EventLog, params: Params, origin: Origin) -> Json:
    """``POST /v1/prices`` (per-unit prices only, licensed or metered); emits
    ``product.created`` when ``product_data`` makes a product, then ``price.created``."""
    for name in params:
        if name in _UNSUPPORTED_PRICE_PARAMS:
            raise unsupported(name)
    check_known(params, _PRICE_PARAMS)
    currency = as_str(require(params, "currency"), "currency").lower()
    unit_amount = as_int(require(params, "unit_amount"), "unit_amount", minimum=0)
    lookup_key = as_opt_str(params, "lookup_key")
    transfer = (
        as_bool(params["transfer_lookup_key"], "transfer_lookup_key")
        if "transfer_lookup_key" in params
        else False
    )
    with store.lock:
        recurring = _read_recurring(store, params)
        product_id = _resolve_product(store, events, params, origin)
        holder = _lookup_key_holder(store, lookup_key)
        if holder is not None and not transfer:
            raise invalid(f"A price (`{holder['id']}`) already uses that lookup key.", "lookup_key")
        price = shapes.price(
            store,
            price_id=store.new_object_id("price"),
            product_id=product_id,
            currency=currency,
            unit_amount=unit_amount,
            recurring=recurring,
            lookup_key=lookup_key,
            nickname=as_opt_str(params, "nickname"),
            metadata={k: v for k, v in as_metadata(params.get("metadata", {})).items() if v},
            active=as_bool(params["active"], "active") if "active" in params else True,
        )
        if holder is not None:
            holder["lookup_key"] = None
            events.emit("price.updated", holder, previous={"lookup_key": lookup_key}, origin=origin)
        store.put(price)
        events.emit("price.created", price, origin=origin)
        return price


def list_prices(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/prices``: ``active``, ``currency``, ``product``, ``type``,
    ``lookup_keys`` (up to 10), ``recurring[interval|meter|usage_type]``, ``created``."""
    check_known(
        params,
        (
            *PAGE_PARAMS,
            "active",
            "created",
            "currency",
            "lookup_keys",
            "product",
            "recurring",
            "type",
        ),
    )
    checks: list[Callable[[Json], bool]] = []
    if "active" in params:
        active = as_bool(params["active"], "active")
        checks.append(lambda p: p["active"] == active)
    for name in ("currency", "product"):
        if name in params:
            checks.append(field_equals(name, as_str(params[name], name)))
    if "type" in params:
        checks.append(
            field_equals("type", as_enum(params["type"], "type", ("one_time", "recurring")))
        )
    if "lookup_keys" in params:
        keys = set(as_str_list(params["lookup_keys"], "lookup_keys"))
        if len(keys) > 10:
            raise invalid("You may pass at most 10 lookup_keys.", "lookup_keys")
        checks.append(lambda p: p["lookup_key"] in keys)
    if "recurring" in params:
        wanted = as_dict(params["recurring"], "recurring")
        check_known(wanted, ("interval", "meter", "usage_type"), "recurring")
        asked = {
            name: as_opt_str(wanted, name, "recurring")
            for name in ("interval", "meter", "usage_type")
        }
        checks.append(
            lambda p: (
                p["recurring"] is not None
                and all(value in (None, p["recurring"][name]) for name, value in asked.items())
            )
        )
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda p: created(p["created"]))
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("price"),
                params,
                url="/v1/prices",
                label="price",
                keep=lambda p: all(check(p) for check in checks),
            )
        )


def list_products(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/products``: ``active``, ``ids``, ``created``."""
    check_known(params, (*PAGE_PARAMS, "active", "created", "ids", "shippable", "type", "url"))
    checks: list[Callable[[Json], bool]] = []
    if "active" in params:
        active = as_bool(params["active"], "active")
        checks.append(lambda p: p["active"] == active)
    if "ids" in params:
        ids = set(as_str_list(params["ids"], "ids"))
        checks.append(lambda p: p["id"] in ids)
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda p: created(p["created"]))
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("product"),
                params,
                url="/v1/products",
                label="product",
                keep=lambda p: all(check(p) for check in checks),
            )
        )


def _non_empty(params: Params, name: str) -> str | None:
    """An optional string that, as on Stripe's creates, cannot be sent empty."""
    if name not in params:
        return None
    value = as_str(params[name], name)
    if value == "":
        raise invalid(
            f"You passed an empty string for '{name}'. We assume empty values are an attempt "
            f"to unset a parameter; however '{name}' cannot be unset. You should remove "
            f"'{name}' from your request or supply a non-empty value.",
            name,
            code="parameter_invalid_empty",
        )
    return value


def _read_recurring(store: Store, params: Params) -> dict[str, Any] | None:
    """``recurring``: a metered price names the active meter it bills; a licensed one
    names none."""
    if "recurring" not in params:
        return None
    raw = as_dict(params["recurring"], "recurring")
    check_known(raw, ("interval", "interval_count", "meter", "usage_type"), "recurring")
    interval = as_enum(
        require(raw, "interval", "recurring"), sub("recurring", "interval"), _INTERVALS
    )
    count = as_int(raw.get("interval_count", "1"), sub("recurring", "interval_count"), minimum=1)
    usage = as_enum(
        raw.get("usage_type", "licensed"), sub("recurring", "usage_type"), ("licensed", "metered")
    )
    meter_param = sub("recurring", "meter")
    meter_id = as_opt_str(raw, "meter", "recurring")
    if usage == "metered" and meter_id is None:
        raise invalid(
            "A metered price must name the meter that records its usage in recurring[meter].",
            meter_param,
        )
    if usage == "licensed" and meter_id is not None:
        raise invalid(
            "recurring[meter] can only be set on a price with recurring[usage_type]=metered.",
            meter_param,
        )
    if meter_id is not None:
        meters.attachable_meter(store, meter_id, meter_param)
    return {"interval": interval, "interval_count": count, "usage_type": usage, "meter": meter_id}


def _resolve_product(store: Store, events: EventLog, params: Params, origin: Origin) -> str:
    if ("product" in params) == ("product_data" in params):
        raise invalid("You must specify exactly one of `product` or `product_data`.", "product")
    if "product" in params:
        product_id = as_str(params["product"], "product")
        store.get("product", product_id, param="product", status=400)
        return product_id
    data = as_dict(params["product_data"], "product_data")
    check_known(
        data,
        ("name", "metadata", "active", "statement_descriptor", "tax_code", "unit_label"),
        "product_data",
    )
    product = shapes.product(
        store,
        product_id=store.new_object_id("product"),
        name=as_str(require(data, "name", "product_data"), sub("product_data", "name")),
    )
    store.put(product)
    events.emit("product.created", product, origin=origin)
    return str(product["id"])


def _lookup_key_holder(store: Store, lookup_key: str | None) -> Json | None:
    if lookup_key is None:
        return None
    for price in store.objects["price"].values():
        if price["lookup_key"] == lookup_key:
            return price
    return None
