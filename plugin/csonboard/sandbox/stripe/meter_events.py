"""Meter events (``POST /v1/billing/meter_events``): usage reported against a meter.

The v1 endpoint validates synchronously; what it refuses is a 400 and counts
nothing. In the order checked here:

- ``event_name`` (required, at most 100 characters) must be the event name of an
  **active** meter: ``No active meter found for event name "<name>".`` (also for
  a deactivated meter, which accepts no events);
- ``payload`` (required, string values) must hold the meter's customer key
  naming an existing customer (``No such customer``) and, for ``sum`` and
  ``last`` meters, its value key holding a whole number (negative allowed,
  at most 15 digits);
- ``timestamp`` (default now) must lie within the past 35 days (35 x 86 400 s)
  and at most 5 minutes (300 s) ahead of now;
- ``identifier`` (at most 100 characters; a UUID is made when absent) must not
  belong to an event accepted in the last 24 hours (86 400 s):
  ``An event already exists with identifier <identifier>.`` After that window
  the same identifier is accepted again and counts again: Stripe's
  de-duplication is a retry guard, not a ledger.

"Now" is the account's clock (``store.now()``), so tests move the windows. An
accepted event is answered as a ``billing.meter_event`` and kept in
``store.meter_events`` with the meter it counts for; Stripe has no way to read
one back, and neither has the stand-in's ``/v1``. No webhook event is emitted.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe import meters
from csonboard.sandbox.stripe.errors import invalid, no_such
from csonboard.sandbox.stripe.forms import (
    Params,
    as_dict,
    as_int,
    as_str,
    check_known,
    require,
    sub,
)
from csonboard.sandbox.stripe.state import Json, Store

IDENTIFIER_WINDOW = 24 * 3600
"""Seconds an accepted identifier stays taken (Stripe: "at least 24 hours")."""
MAX_AGE = 35 * 24 * 3600
"""How far back a ``timestamp`` may lie (Stripe: "the past 35 calendar days")."""
MAX_AHEAD = 5 * 60
"""How far ahead a ``timestamp`` may lie (Stripe: "up to 5 minutes in the future")."""
MAX_DIGITS = 15
"""Digits a value may have (API 2026-04-22.dahlia and later)."""

_PARAMS = ("event_name", "expand", "identifier", "payload", "timestamp")
_NAME_MAX = 100
_WHOLE = re.compile(r"-?\d+")


def create_meter_event(store: Store, params: Params) -> Json:
    """``POST /v1/billing/meter_events``: validate, keep and answer the event."""
    check_known(params, _PARAMS)
    event_name = as_str(require(params, "event_name"), "event_name", max_length=_NAME_MAX)
    payload = {
        key: as_str(value, sub("payload", key))
        for key, value in as_dict(require(params, "payload"), "payload").items()
    }
    identifier = None
    if "identifier" in params:
        identifier = as_str(params["identifier"], "identifier", max_length=_NAME_MAX) or None
    timestamp = as_int(params["timestamp"], "timestamp") if "timestamp" in params else None
    with store.lock:
        meter = meters.active_meter_for(store, event_name)
        if meter is None:
            raise invalid(f'No active meter found for event name "{event_name}".')
        _check_customer(store, meter, payload)
        _check_value(meter, payload)
        now = store.now()
        when = now if timestamp is None else timestamp
        if when < now - MAX_AGE or when > now + MAX_AHEAD:
            raise invalid(
                "The timestamp must be within the past 35 calendar days and no more than "
                "5 minutes in the future.",
                "timestamp",
            )
        if identifier is not None and _taken(store, identifier, now):
            raise invalid(f"An event already exists with identifier {identifier}.")
        event: Json = {
            "object": "billing.meter_event",
            "created": now,
            "event_name": event_name,
            "identifier": identifier or _new_identifier(store),
            "livemode": False,
            "payload": payload,
            "timestamp": when,
        }
        store.meter_events.append({"meter": meter["id"], "event": event})
        store.meter_identifiers[event["identifier"]] = now
        return copy.deepcopy(event)


def accepted_counts(store: Store) -> dict[str, int]:
    """How many meter events each meter has accepted (meters with none left out)."""
    with store.lock:
        return dict(Counter(str(record["meter"]) for record in store.meter_events))


def recorded(store: Store) -> list[Json]:
    """Every accepted event, oldest first, each with the ``meter`` it counts for."""
    with store.lock:
        return [{"meter": r["meter"], **copy.deepcopy(r["event"])} for r in store.meter_events]


def customer_key(meter: Mapping[str, Any]) -> str:
    return str(meter["customer_mapping"]["event_payload_key"])


def value_key(meter: Mapping[str, Any]) -> str:
    return str(meter["value_settings"]["event_payload_key"])


def value_of(meter: Mapping[str, Any], event: Mapping[str, Any]) -> int:
    """The event's value for ``meter`` (0 for a ``count`` event sent without one)."""
    raw = event["payload"].get(value_key(meter))
    return 0 if raw is None else int(raw)


def _check_customer(store: Store, meter: Json, payload: dict[str, str]) -> None:
    key = customer_key(meter)
    param = sub("payload", key)
    if not payload.get(key):
        raise invalid(f"Customer mapping key {key} not found in payload.", param)
    if store.find("customer", payload[key]) is None:
        raise no_such("customer", payload[key], param=param, status=400)


def _check_value(meter: Json, payload: dict[str, str]) -> None:
    key = value_key(meter)
    param = sub("payload", key)
    if key not in payload:
        if meter["default_aggregation"]["formula"] == "count":
            return
        raise invalid(f"Value key {key} not found in payload.", param)
    value = payload[key]
    if not _WHOLE.fullmatch(value):
        raise invalid(
            f"The value in the event payload must be a whole number. Received {value}.", param
        )
    if len(value.lstrip("-").lstrip("0")) > MAX_DIGITS:
        raise invalid(
            f"The value in the event payload can have at most {MAX_DIGITS} digits. "
            f"Received {value}.",
            param,
        )


def _taken(store: Store, identifier: str, now: int) -> bool:
    accepted = store.meter_identifiers.get(identifier)
    return accepted is not None and now - accepted < IDENTIFIER_WINDOW


def _new_identifier(store: Store) -> str:
    """A UUID from the account's generator, so a seeded run repeats itself."""
    return str(uuid.UUID(int=store.rng.getrandbits(128), version=4))
