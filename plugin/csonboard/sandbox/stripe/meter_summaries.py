"""Meter event summaries (``GET /v1/billing/meters/{id}/event_summaries``).

``customer``, ``start_time`` and ``end_time`` are required; the customer must
exist. ``start_time`` (inclusive) and ``end_time`` (exclusive) must be aligned
with minute boundaries, with hour boundaries for ``value_grouping_window=hour``
and UTC day boundaries for ``day``, and ``start_time`` must come first. Without
a grouping window the answer is one summary for the whole range; with one, a
summary per window, every window listed (zero when nothing was reported),
newest first and paginated like every Stripe list.

``aggregated_value`` applies the meter's formula to the customer's accepted
events whose ``timestamp`` lies in the summary's range: ``sum`` adds values,
``count`` counts events, ``last`` takes the value with the latest timestamp
(the later arrival on a tie). A meter with an ``event_time_window`` takes
pre-aggregated usage: per customer and UTC hour or day, only the last event
received counts.

The stand-in aggregates at once; Stripe aggregates asynchronously, so a summary
read right after reporting may lag there. Summary ids are derived from the
meter, customer and range, so cursors stay valid between calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe import meter_events, meters
from csonboard.sandbox.stripe.errors import invalid
from csonboard.sandbox.stripe.forms import as_enum, as_int, as_str, check_known, require
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, paginate
from csonboard.sandbox.stripe.state import Json, Store

WINDOW_SECONDS = {"hour": 3600, "day": 86400}
_PARAMS = (*PAGE_PARAMS, "customer", "end_time", "start_time", "value_grouping_window")


def list_summaries(store: Store, meter_id: str, params: Mapping[str, Any]) -> Json:
    """One page of the customer's summaries for the meter (404 for an unknown meter)."""
    check_known(params, _PARAMS)
    customer_id = as_str(require(params, "customer"), "customer")
    end = as_int(require(params, "end_time"), "end_time")
    start = as_int(require(params, "start_time"), "start_time")
    grouping = (
        as_enum(params["value_grouping_window"], "value_grouping_window", tuple(WINDOW_SECONDS))
        if "value_grouping_window" in params
        else None
    )
    _check_range(start, end, grouping)
    with store.lock:
        meter = store.get(meters.KIND, meter_id)
        store.get("customer", customer_id, param="customer", status=400)
        events = _usage(store, meter, customer_id)
        size = WINDOW_SECONDS[grouping] if grouping else end - start
        summaries = [
            _summary(meter, customer_id, t, min(t + size, end), events)
            for t in range(start, end, size)
        ]
        return paginate(
            list(reversed(summaries)),
            params,
            url=f"/v1/billing/meters/{meter_id}/event_summaries",
            label="billing.meter_event_summary",
        )


def _check_range(start: int, end: int, grouping: str | None) -> None:
    unit, boundary = ("minute", 60)
    if grouping == "hour":
        unit, boundary = ("hour", 3600)
    elif grouping == "day":
        unit, boundary = ("UTC day", 86400)
    for name, value in (("start_time", start), ("end_time", end)):
        if value % boundary:
            raise invalid(f"{name} must be aligned with {unit} boundaries.", name)
    if start >= end:
        raise invalid("start_time must be before end_time.", "start_time")


def _usage(store: Store, meter: Json, customer_id: str) -> list[tuple[int, int]]:
    """``(timestamp, value)`` of the customer's events for ``meter``, in arrival order,
    pre-aggregated per window when the meter says its events are."""
    key = meter_events.customer_key(meter)
    found = [
        r["event"]
        for r in store.meter_events
        if r["meter"] == meter["id"] and r["event"]["payload"].get(key) == customer_id
    ]
    window = meter["event_time_window"]
    if window is not None:
        size = WINDOW_SECONDS[window]
        last: dict[int, Json] = {}
        for event in found:
            last.pop(event["timestamp"] // size, None)  # the later arrival replaces it
            last[event["timestamp"] // size] = event
        found = list(last.values())
    return [(int(e["timestamp"]), meter_events.value_of(meter, e)) for e in found]


def _summary(
    meter: Json, customer_id: str, start: int, end: int, events: list[tuple[int, int]]
) -> Json:
    inside = [(t, v) for t, v in events if start <= t < end]
    formula = meter["default_aggregation"]["formula"]
    if formula == "count":
        value = len(inside)
    elif formula == "last":
        latest: tuple[int, int] | None = None
        for t, v in inside:
            if latest is None or t >= latest[0]:
                latest = (t, v)
        value = 0 if latest is None else latest[1]
    else:
        value = sum(v for _, v in inside)
    digest = hashlib.sha256(f"{meter['id']}|{customer_id}|{start}|{end}".encode()).hexdigest()
    return {
        "id": f"mtrusg_test_{digest[:48]}",
        "object": "billing.meter_event_summary",
        "aggregated_value": value,
        "end_time": end,
        "livemode": False,
        "meter": meter["id"],
        "start_time": start,
    }
