"""Billing meters (``/v1/billing/meters``): what usage-based prices bill, by event name.

A meter names the ``event_name`` its meter events carry, how they aggregate
(``default_aggregation.formula``: ``sum``, ``count`` or ``last``), which payload
key holds the customer id (``customer_mapping``, default ``stripe_customer_id``)
and which the value (``value_settings``, default ``value``). After creation only
``display_name`` may change; ``deactivate`` and ``reactivate`` flip ``status``.

Rules kept, as Stripe documents them: an event name belongs to one meter only
("You can only use an event name with a single meter"; the stand-in counts
inactive meters too, the harsher reading); a deactivated meter accepts no meter
events and cannot be attached to a price; ``customer_mapping[type]`` is
``by_id``. Create, update, deactivate and reactivate emit ``billing.meter.created``,
``.updated``, ``.deactivated`` and ``.reactivated``. Deactivating an inactive
meter or reactivating an active one is refused (Stripe's answer is not
documented; refusing is never kinder).

The catalog's ``stripe`` section may list ``meters`` (``id``, ``display_name``,
``event_name``, ``default_aggregation = {formula}``, optional
``customer_mapping``, ``value_settings``, ``event_time_window``); seeding emits
no events. Checkout, Payment Links and API subscriptions do not model metered
prices: :func:`refuse_metered` is their guard.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe.errors import ApiError, invalid, wrong_state
from csonboard.sandbox.stripe.events import EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_dict,
    as_enum,
    as_str,
    check_known,
    require,
    sub,
)
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, paginate
from csonboard.sandbox.stripe.state import Json, Store

KIND = "billing.meter"
FORMULAS = ("count", "last", "sum")
TIME_WINDOWS = ("day", "hour")
DEFAULT_CUSTOMER_KEY = "stripe_customer_id"
DEFAULT_VALUE_KEY = "value"

_CREATE_PARAMS = (
    "customer_mapping",
    "default_aggregation",
    "display_name",
    "event_name",
    "event_time_window",
    "expand",
    "value_settings",
)
_DISPLAY_NAME_MAX = 250
_EVENT_NAME_MAX = 100
_PAYLOAD_KEY_MAX = 100


def meter(
    store: Store,
    *,
    meter_id: str,
    display_name: str,
    event_name: str,
    formula: str,
    customer_key: str = DEFAULT_CUSTOMER_KEY,
    value_key: str = DEFAULT_VALUE_KEY,
    event_time_window: str | None = None,
) -> Json:
    """An active Meter, as ``POST /v1/billing/meters`` answers it."""
    now = store.now()
    return {
        "id": meter_id,
        "object": KIND,
        "created": now,
        "customer_mapping": {"event_payload_key": customer_key, "type": "by_id"},
        "default_aggregation": {"formula": formula},
        "display_name": display_name,
        "event_name": event_name,
        "event_time_window": event_time_window,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": now,
        "value_settings": {"event_payload_key": value_key},
    }


def seed_meters(store: Store, section: Mapping[str, Any]) -> None:
    """Load the catalog's ``meters``; ValueError for a broken entry (a shared event
    name, an unknown formula), so a bad catalog stops start-up."""
    for entry in section.get("meters", []):
        formula = entry["default_aggregation"]["formula"]
        window = entry.get("event_time_window")
        if formula not in FORMULAS or window not in (None, *TIME_WINDOWS):
            raise ValueError(f"catalog meter {entry['id']} has an unknown formula or window")
        if holder_of(store, entry["event_name"]) is not None:
            raise ValueError(f"catalog meter {entry['id']} reuses event name {entry['event_name']}")
        store.put(
            meter(
                store,
                meter_id=entry["id"],
                display_name=entry["display_name"],
                event_name=entry["event_name"],
                formula=formula,
                customer_key=entry.get("customer_mapping", {}).get(
                    "event_payload_key", DEFAULT_CUSTOMER_KEY
                ),
                value_key=entry.get("value_settings", {}).get(
                    "event_payload_key", DEFAULT_VALUE_KEY
                ),
                event_time_window=window,
            )
        )


def holder_of(store: Store, event_name: str) -> Json | None:
    """The meter (active or not) that owns ``event_name``, or None."""
    for candidate in store.objects[KIND].values():
        if candidate["event_name"] == event_name:
            return candidate
    return None


def active_meter_for(store: Store, event_name: str) -> Json | None:
    """The active meter that meter events named ``event_name`` are recorded for."""
    found = holder_of(store, event_name)
    return found if found is not None and found["status"] == "active" else None


def create_meter(store: Store, events: EventLog, params: Params, origin: Origin) -> Json:
    """``POST /v1/billing/meters``; emits ``billing.meter.created``."""
    check_known(params, _CREATE_PARAMS)
    display_name = as_str(
        require(params, "display_name"), "display_name", max_length=_DISPLAY_NAME_MAX
    )
    event_name = as_str(require(params, "event_name"), "event_name", max_length=_EVENT_NAME_MAX)
    aggregation = as_dict(require(params, "default_aggregation"), "default_aggregation")
    check_known(aggregation, ("formula",), "default_aggregation")
    formula = as_enum(
        require(aggregation, "formula", "default_aggregation"),
        sub("default_aggregation", "formula"),
        FORMULAS,
    )
    customer_key = DEFAULT_CUSTOMER_KEY
    if "customer_mapping" in params:
        mapping = as_dict(params["customer_mapping"], "customer_mapping")
        check_known(mapping, ("event_payload_key", "type"), "customer_mapping")
        customer_key = _payload_key(mapping, "customer_mapping")
        as_enum(
            require(mapping, "type", "customer_mapping"),
            sub("customer_mapping", "type"),
            ("by_id",),
        )
    value_key = DEFAULT_VALUE_KEY
    if "value_settings" in params:
        settings = as_dict(params["value_settings"], "value_settings")
        check_known(settings, ("event_payload_key",), "value_settings")
        value_key = _payload_key(settings, "value_settings")
    window = (
        as_enum(params["event_time_window"], "event_time_window", TIME_WINDOWS)
        if "event_time_window" in params
        else None
    )
    with store.lock:
        if holder_of(store, event_name) is not None:
            raise invalid(
                f"A meter already uses the event name `{event_name}`; an event name can "
                "belong to only one meter.",
                "event_name",
            )
        created = meter(
            store,
            meter_id=store.new_object_id(KIND),
            display_name=display_name,
            event_name=event_name,
            formula=formula,
            customer_key=customer_key,
            value_key=value_key,
            event_time_window=window,
        )
        store.put(created)
        events.emit("billing.meter.created", created, origin=origin)
        return created


def list_meters(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/billing/meters``: newest first, optionally by ``status``."""
    check_known(params, (*PAGE_PARAMS, "status"))
    status = (
        as_enum(params["status"], "status", ("active", "inactive")) if "status" in params else None
    )
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first(KIND),
                params,
                url="/v1/billing/meters",
                label=KIND,
                keep=lambda m: status in (None, m["status"]),
            )
        )


def update_meter(
    store: Store, events: EventLog, meter_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/billing/meters/{id}``: only ``display_name`` can change; emits
    ``billing.meter.updated`` when it did."""
    check_known(params, ("display_name", "expand"))
    name = None
    if "display_name" in params:
        name = as_str(params["display_name"], "display_name", max_length=_DISPLAY_NAME_MAX)
        if name == "":
            raise invalid(
                "You passed an empty string for 'display_name'. We assume empty values are an "
                "attempt to unset a parameter; however 'display_name' cannot be unset. You "
                "should remove 'display_name' from your request or supply a non-empty value.",
                "display_name",
                code="parameter_invalid_empty",
            )
    with store.lock:
        found = store.get(KIND, meter_id)
        if name is None or name == found["display_name"]:
            return found
        previous: Json = {"display_name": found["display_name"]}
        now = store.now()
        if found["updated"] != now:
            previous["updated"] = found["updated"]
        found["display_name"] = name
        found["updated"] = now
        events.emit("billing.meter.updated", found, previous=previous, origin=origin)
        return found


def deactivate_meter(
    store: Store, events: EventLog, meter_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/billing/meters/{id}/deactivate``; emits ``billing.meter.deactivated``."""
    return _set_status(store, events, meter_id, params, origin, active=False)


def reactivate_meter(
    store: Store, events: EventLog, meter_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/billing/meters/{id}/reactivate``; emits ``billing.meter.reactivated``."""
    return _set_status(store, events, meter_id, params, origin, active=True)


def _set_status(
    store: Store, events: EventLog, meter_id: str, params: Params, origin: Origin, *, active: bool
) -> Json:
    check_known(params, ("expand",))
    with store.lock:
        found = store.get(KIND, meter_id)
        wanted = "active" if active else "inactive"
        if found["status"] == wanted:
            raise wrong_state(f"The meter {meter_id} is already {wanted}.")
        now = store.now()
        found["status"] = wanted
        found["status_transitions"]["deactivated_at"] = None if active else now
        found["updated"] = now
        events.emit(
            "billing.meter.reactivated" if active else "billing.meter.deactivated",
            found,
            origin=origin,
        )
        return found


def _payload_key(raw: Mapping[str, Any], param: str) -> str:
    return as_str(
        require(raw, "event_payload_key", param),
        sub(param, "event_payload_key"),
        max_length=_PAYLOAD_KEY_MAX,
    )


# -- metered prices ----------------------------------------------------------------------


def is_metered(price: Json) -> bool:
    """Whether ``price`` bills reported usage (``recurring.usage_type=metered``)."""
    recurring = price.get("recurring")
    return recurring is not None and recurring.get("usage_type") == "metered"


def refuse_metered(price: Json, param: str) -> None:
    """Refuse a metered price where the stand-in only models licensed quantities.

    Stripe sells metered prices through Checkout, Payment Links and subscriptions
    (without a quantity); the stand-in does not bill usage, so it says so rather
    than charging a quantity Stripe would never charge.
    """
    if is_metered(price):
        raise ApiError(
            400,
            f"The price {price['id']} is metered (recurring[usage_type]=metered); the csonboard "
            "Stripe sandbox does not model metered prices here.",
            param=param,
            code="parameter_unsupported",
        )


def attachable_meter(store: Store, meter_id: str, param: str) -> Json:
    """The meter a new metered price may name: existing and active."""
    found = store.get(KIND, meter_id, param=param, status=400)
    if found["status"] != "active":
        raise invalid(
            f"The meter {meter_id} is inactive; a deactivated meter cannot be attached to a price.",
            param,
        )
    return found
