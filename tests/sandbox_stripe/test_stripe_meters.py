"""Billing meters, meter events and their summaries through the real stripe library.

The rules that decide whether usage is billed once: an ``identifier`` is refused
again within 24 hours and accepted (and counted) again after them; ``timestamp``
must lie within the past 35 days and at most 5 minutes ahead; a meter event
needs an active meter, an existing customer and a whole-number value; summaries
add exactly the customer's events in ``[start_time, end_time)``. Every window is
moved with the stand-in's fake clock.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox_stripe.stripe_harness import Sandbox

SEEDED = "mtr_sandbox_bandwidth"
BANDWIDTH = "computestacks_bandwidth_gb"
BANDWIDTH_PRICE = "price_sandbox_bandwidth_gb"
DAY = 86400


def customer(sandbox: Sandbox, email: str = "ada@example.com") -> str:
    return str(sandbox.client.v1.customers.create({"email": email}).id)


def report(
    sandbox: Sandbox, customer_id: str, value: str, **fields: Any
) -> stripe.billing.MeterEvent:
    params: Any = {
        "event_name": BANDWIDTH,
        "payload": {"stripe_customer_id": customer_id, "value": value},
        **fields,
    }
    return sandbox.client.v1.billing.meter_events.create(params)


def refused(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    return caught.value


def hour_start(sandbox: Sandbox) -> int:
    return int(sandbox.clock()) // 3600 * 3600


def summaries(sandbox: Sandbox, customer_id: str, start: int, end: int, **more: Any) -> list[Any]:
    params: Any = {"customer": customer_id, "start_time": start, "end_time": end, **more}
    return list(sandbox.client.v1.billing.meters.event_summaries.list(SEEDED, params).data)


def total(sandbox: Sandbox, customer_id: str, start: int, end: int) -> float:
    [summary] = summaries(sandbox, customer_id, start, end)
    return float(summary.aggregated_value)


def accepted(sandbox: Sandbox) -> dict[str, int]:
    counts: dict[str, int] = sandbox.control("/state", method="GET")["billing"][
        "accepted_meter_events"
    ]
    return counts


# -- the seed ---------------------------------------------------------------------------


def test_the_seed_has_the_bandwidth_meter_and_its_metered_price(sandbox: Sandbox) -> None:
    meter = sandbox.client.v1.billing.meters.retrieve(SEEDED)
    price = sandbox.client.v1.prices.retrieve(BANDWIDTH_PRICE)
    metered = sandbox.client.v1.prices.list({"recurring": {"usage_type": "metered"}}).data

    assert (meter.display_name, meter.event_name, meter.status) == (
        "Bandwidth overage",
        BANDWIDTH,
        "active",
    )
    assert meter.default_aggregation.formula == "sum"
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
    assert meter.value_settings.event_payload_key == "value"
    assert meter.event_time_window is None
    assert price.recurring is not None
    assert (price.recurring.usage_type, price.recurring.meter) == ("metered", SEEDED)
    assert (price.currency, price.unit_amount, price.type) == ("usd", 5, "recurring")
    assert [p.id for p in metered] == [BANDWIDTH_PRICE]
    assert sandbox.client.v1.events.list().data == []  # seeding emits nothing


# -- meters -----------------------------------------------------------------------------


def test_a_meter_takes_stripes_default_payload_keys_and_emits_created(sandbox: Sandbox) -> None:
    meter = sandbox.client.v1.billing.meters.create(
        {
            "display_name": "CPU",
            "event_name": "cpu_seconds",
            "default_aggregation": {"formula": "sum"},
        }
    )
    [event] = sandbox.client.v1.events.list({"type": "billing.meter.created"}).data

    assert meter.id.startswith("mtr_")
    assert meter.customer_mapping.to_dict() == {
        "event_payload_key": "stripe_customer_id",
        "type": "by_id",
    }
    assert meter.value_settings.event_payload_key == "value"
    assert (meter.status, meter.status_transitions.deactivated_at) == ("active", None)
    assert meter.created == meter.updated == int(sandbox.clock())
    assert event.data.object.id == meter.id
    assert sandbox.client.v1.billing.meters.retrieve(meter.id).event_name == "cpu_seconds"


def test_an_event_name_belongs_to_one_meter_even_a_deactivated_one(sandbox: Sandbox) -> None:
    taken = refused(
        lambda: sandbox.client.v1.billing.meters.create(
            {
                "display_name": "Again",
                "event_name": BANDWIDTH,
                "default_aggregation": {"formula": "sum"},
            }
        )
    )
    sandbox.client.v1.billing.meters.deactivate(SEEDED)
    still = refused(
        lambda: sandbox.client.v1.billing.meters.create(
            {
                "display_name": "Again",
                "event_name": BANDWIDTH,
                "default_aggregation": {"formula": "sum"},
            }
        )
    )

    assert (taken.http_status, taken.param) == (400, "event_name")
    assert still.param == "event_name"
    assert len(sandbox.client.v1.billing.meters.list().data) == 1


def test_only_the_display_name_can_change(sandbox: Sandbox) -> None:
    sandbox.clock.advance(5)
    renamed = sandbox.client.v1.billing.meters.update(SEEDED, {"display_name": "Traffic"})
    [event] = sandbox.client.v1.events.list({"type": "billing.meter.updated"}).data
    frozen = refused(
        lambda: sandbox.client.v1.billing.meters.update(SEEDED, {"event_name": "x"})  # type: ignore[typeddict-unknown-key]
    )

    assert (renamed.display_name, renamed.updated) == ("Traffic", int(sandbox.clock()))
    assert event.data.previous_attributes is not None
    assert event.data.previous_attributes["display_name"] == "Bandwidth overage"
    assert (frozen.code, frozen.param) == ("parameter_unknown", "event_name")


def test_deactivating_and_reactivating_flip_the_status_and_emit_events(sandbox: Sandbox) -> None:
    sandbox.clock.advance(30)
    off = sandbox.client.v1.billing.meters.deactivate(SEEDED)
    inactive = sandbox.client.v1.billing.meters.list({"status": "inactive"}).data
    twice = refused(lambda: sandbox.client.v1.billing.meters.deactivate(SEEDED))
    on = sandbox.client.v1.billing.meters.reactivate(SEEDED)
    types = [e.type for e in sandbox.client.v1.events.list().data]

    assert (off.status, off.status_transitions.deactivated_at) == ("inactive", int(sandbox.clock()))
    assert [m.id for m in inactive] == [SEEDED]
    assert twice.code == "resource_invalid_state"
    assert (on.status, on.status_transitions.deactivated_at) == ("active", None)
    assert types == ["billing.meter.reactivated", "billing.meter.deactivated"]
    assert sandbox.client.v1.billing.meters.list({"status": "inactive"}).data == []


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        (
            {"event_name": "e", "default_aggregation": {"formula": "sum"}},
            "display_name",
            "parameter_missing",
        ),
        (
            {"display_name": "d", "default_aggregation": {"formula": "sum"}},
            "event_name",
            "parameter_missing",
        ),
        ({"display_name": "d", "event_name": "e"}, "default_aggregation", "parameter_missing"),
        (
            {"display_name": "d", "event_name": "e", "default_aggregation": {"formula": "max"}},
            "default_aggregation[formula]",
            "parameter_invalid",
        ),
        (
            {
                "display_name": "d",
                "event_name": "e",
                "default_aggregation": {"formula": "sum"},
                "customer_mapping": {"event_payload_key": "c", "type": "by_email"},
            },
            "customer_mapping[type]",
            "parameter_invalid",
        ),
        (
            {
                "display_name": "d",
                "event_name": "e",
                "default_aggregation": {"formula": "sum"},
                "event_time_window": "week",
            },
            "event_time_window",
            "parameter_invalid",
        ),
        (
            {
                "display_name": "d",
                "event_name": "e" * 101,
                "default_aggregation": {"formula": "sum"},
            },
            "event_name",
            "parameter_invalid",
        ),
    ],
)
def test_bad_meter_parameters_are_refused(
    sandbox: Sandbox, params: dict[str, Any], param: str, code: str
) -> None:
    error = refused(lambda: sandbox.client.v1.billing.meters.create(params))  # type: ignore[arg-type]

    assert (error.http_status, error.param, error.code) == (400, param, code)


def test_an_unknown_meter_is_a_404(sandbox: Sandbox) -> None:
    error = refused(lambda: sandbox.client.v1.billing.meters.retrieve("mtr_missing"))

    assert (error.http_status, error.code) == (404, "resource_missing")


# -- meter events -----------------------------------------------------------------------


def test_an_accepted_event_is_answered_as_stripe_shapes_it(sandbox: Sandbox) -> None:
    cus = customer(sandbox)

    event = report(sandbox, cus, "12")
    again = report(sandbox, cus, "3")

    now = int(sandbox.clock())
    assert event.object == "billing.meter_event"
    assert (event.event_name, event.timestamp, event.created) == (BANDWIDTH, now, now)
    assert event.payload.to_dict() == {"stripe_customer_id": cus, "value": "12"}
    assert len(event.identifier) == 36 and event.identifier != again.identifier
    assert accepted(sandbox) == {SEEDED: 2}
    assert sandbox.client.v1.events.list().data[0].type == "customer.created"  # no event


def test_an_identifier_is_refused_within_24_hours_and_counts_again_after(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    start = hour_start(sandbox)
    report(sandbox, cus, "10", identifier="cs-usage-42")

    sandbox.clock.advance(DAY - 1)
    duplicate = refused(lambda: report(sandbox, cus, "10", identifier="cs-usage-42"))
    sandbox.clock.advance(1)
    late = report(sandbox, cus, "10", identifier="cs-usage-42")
    retried = refused(lambda: report(sandbox, cus, "10", identifier="cs-usage-42"))

    assert duplicate.http_status == 400
    assert str(duplicate.user_message) == "An event already exists with identifier cs-usage-42."
    assert late.identifier == "cs-usage-42"
    assert retried.http_status == 400
    assert accepted(sandbox) == {SEEDED: 2}
    # The trap: the resend a day later is billed a second time.
    assert total(sandbox, cus, start, hour_start(sandbox) + 3600) == 20


def test_an_identifier_is_taken_whatever_the_customer_or_event_name(sandbox: Sandbox) -> None:
    first, second = customer(sandbox), customer(sandbox, "bob@example.com")
    sandbox.client.v1.billing.meters.create(
        {
            "display_name": "CPU",
            "event_name": "cpu_seconds",
            "default_aggregation": {"formula": "sum"},
        }
    )
    report(sandbox, first, "1", identifier="shared")

    other_customer = refused(lambda: report(sandbox, second, "1", identifier="shared"))
    other_meter = refused(
        lambda: sandbox.client.v1.billing.meter_events.create(
            {
                "event_name": "cpu_seconds",
                "identifier": "shared",
                "payload": {"stripe_customer_id": first, "value": "1"},
            }
        )
    )

    assert "already exists" in str(other_customer.user_message)
    assert "already exists" in str(other_meter.user_message)


def test_a_replayed_idempotency_key_counts_the_event_once(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    params: Any = {
        "event_name": BANDWIDTH,
        "payload": {"stripe_customer_id": cus, "value": "4"},
    }

    first = sandbox.client.v1.billing.meter_events.create(params, {"idempotency_key": "usage-1"})
    replay = sandbox.client.v1.billing.meter_events.create(params, {"idempotency_key": "usage-1"})

    assert replay.identifier == first.identifier
    assert accepted(sandbox) == {SEEDED: 1}


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(-35 * DAY, True), (-35 * DAY - 1, False), (300, True), (301, False), (0, True)],
)
def test_the_timestamp_lies_within_35_days_back_and_5_minutes_ahead(
    sandbox: Sandbox, offset: int, ok: bool
) -> None:
    cus = customer(sandbox)
    when = int(sandbox.clock()) + offset

    if ok:
        assert report(sandbox, cus, "1", timestamp=when).timestamp == when
        assert accepted(sandbox) == {SEEDED: 1}
    else:
        error = refused(lambda: report(sandbox, cus, "1", timestamp=when))
        assert (error.http_status, error.param) == (400, "timestamp")
        assert accepted(sandbox) == {}


def test_the_35_days_follow_the_clock(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    when = int(sandbox.clock())
    report(sandbox, cus, "1", timestamp=when)

    sandbox.clock.advance(35 * DAY + 1)
    error = refused(lambda: report(sandbox, cus, "1", timestamp=when))

    assert error.param == "timestamp"


def test_an_event_needs_an_active_meter_for_its_name(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    unknown = refused(
        lambda: sandbox.client.v1.billing.meter_events.create(
            {
                "event_name": "nobody_meters_this",
                "payload": {"stripe_customer_id": cus, "value": "1"},
            }
        )
    )
    sandbox.client.v1.billing.meters.deactivate(SEEDED)
    inactive = refused(lambda: report(sandbox, cus, "1"))
    sandbox.client.v1.billing.meters.reactivate(SEEDED)
    report(sandbox, cus, "1")

    assert str(unknown.user_message) == (
        'No active meter found for event name "nobody_meters_this".'
    )
    assert str(inactive.user_message) == f'No active meter found for event name "{BANDWIDTH}".'
    assert accepted(sandbox) == {SEEDED: 1}


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({"value": "1"}, "payload[stripe_customer_id]", "parameter_invalid"),
        (
            {"stripe_customer_id": "cus_nobody", "value": "1"},
            "payload[stripe_customer_id]",
            "resource_missing",
        ),
        ({"stripe_customer_id": "CUSTOMER"}, "payload[value]", "parameter_invalid"),
        ({"stripe_customer_id": "CUSTOMER", "value": "1.5"}, "payload[value]", "parameter_invalid"),
        ({"stripe_customer_id": "CUSTOMER", "value": "ten"}, "payload[value]", "parameter_invalid"),
        (
            {"stripe_customer_id": "CUSTOMER", "value": "1" * 16},
            "payload[value]",
            "parameter_invalid",
        ),
    ],
)
def test_the_payload_names_a_customer_and_a_whole_number(
    sandbox: Sandbox, payload: dict[str, str], param: str, code: str
) -> None:
    cus = customer(sandbox)
    sent = {k: cus if v == "CUSTOMER" else v for k, v in payload.items()}

    error = refused(
        lambda: sandbox.client.v1.billing.meter_events.create(
            {"event_name": BANDWIDTH, "payload": sent}
        )
    )

    assert (error.http_status, error.param, error.code) == (400, param, code)
    assert accepted(sandbox) == {}


def test_a_deleted_customer_takes_no_usage(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    sandbox.client.v1.customers.delete(cus)

    error = refused(lambda: report(sandbox, cus, "1"))

    assert error.code == "resource_missing"


def test_negative_and_15_digit_values_are_whole_numbers(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    start = hour_start(sandbox)

    report(sandbox, cus, "-4")
    report(sandbox, cus, "9" * 15)

    assert total(sandbox, cus, start, start + 3600) == 10**15 - 1 - 4


# -- summaries --------------------------------------------------------------------------


def test_a_summary_adds_exactly_the_customers_events_in_the_range(sandbox: Sandbox) -> None:
    ada, bob = customer(sandbox), customer(sandbox, "bob@example.com")
    start = hour_start(sandbox) - 2 * 3600
    end = start + 3600
    report(sandbox, ada, "1", timestamp=start - 1)  # before the range
    report(sandbox, ada, "2", timestamp=start)  # the start is inclusive
    report(sandbox, ada, "4", timestamp=end - 1)
    report(sandbox, ada, "8", timestamp=end)  # the end is exclusive
    report(sandbox, bob, "16", timestamp=start + 60)  # someone else's

    [summary] = summaries(sandbox, ada, start, end)

    assert summary.object == "billing.meter_event_summary"
    assert (summary.meter, summary.start_time, summary.end_time) == (SEEDED, start, end)
    assert summary.aggregated_value == 6
    assert total(sandbox, bob, start, end) == 16
    assert total(sandbox, ada, start - 3600, end + 3600) == 15


def test_hourly_windows_are_listed_newest_first_and_paginate(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    start = hour_start(sandbox) - 3 * 3600
    for hour, value in enumerate(("1", "2", "3")):
        report(sandbox, cus, value, timestamp=start + hour * 3600 + 5)
    params: Any = {
        "customer": cus,
        "start_time": start,
        "end_time": start + 3 * 3600,
        "value_grouping_window": "hour",
    }
    meters = sandbox.client.v1.billing.meters

    windows = summaries(sandbox, cus, start, start + 3 * 3600, value_grouping_window="hour")
    first = meters.event_summaries.list(SEEDED, {**params, "limit": 2})
    rest = meters.event_summaries.list(SEEDED, {**params, "starting_after": first.data[-1].id})

    assert [(w.start_time - start) // 3600 for w in windows] == [2, 1, 0]
    assert [w.aggregated_value for w in windows] == [3, 2, 1]
    assert first.has_more is True
    assert [w.id for w in [*first.data, *rest.data]] == [w.id for w in windows]
    assert rest.has_more is False


def test_the_day_window_and_empty_windows(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    day = int(sandbox.clock()) // DAY * DAY - 2 * DAY
    report(sandbox, cus, "7", timestamp=day + DAY + 10)

    days = summaries(sandbox, cus, day, day + 2 * DAY, value_grouping_window="day")

    assert [(d.start_time, d.end_time, d.aggregated_value) for d in days] == [
        (day + DAY, day + 2 * DAY, 7),
        (day, day + DAY, 0),
    ]


@pytest.mark.parametrize(
    ("start_shift", "end_shift", "window", "param"),
    [
        (30, 0, None, "start_time"),
        (0, 30, None, "end_time"),
        (60, 0, "hour", "start_time"),
        (0, 3600, "day", "end_time"),
        (7200, 0, None, "start_time"),  # starts at the end
    ],
)
def test_summary_ranges_must_be_aligned_and_ordered(
    sandbox: Sandbox, start_shift: int, end_shift: int, window: str | None, param: str
) -> None:
    cus = customer(sandbox)
    day = int(sandbox.clock()) // DAY * DAY - DAY
    more = {"value_grouping_window": window} if window else {}

    error = refused(
        lambda: summaries(sandbox, cus, day + start_shift, day + 7200 + end_shift, **more)
    )

    assert (error.http_status, error.param) == (400, param)


def test_summaries_need_a_known_customer_and_meter(sandbox: Sandbox) -> None:
    start = hour_start(sandbox)
    meters = sandbox.client.v1.billing.meters
    window: Any = {"start_time": start, "end_time": start + 3600}

    no_customer = refused(lambda: meters.event_summaries.list(SEEDED, window))
    unknown = refused(lambda: summaries(sandbox, "cus_nobody", start, start + 3600))
    no_meter = refused(
        lambda: meters.event_summaries.list(
            "mtr_missing", {**window, "customer": customer(sandbox)}
        )
    )

    assert (no_customer.param, no_customer.code) == ("customer", "parameter_missing")
    assert (unknown.param, unknown.code) == ("customer", "resource_missing")
    assert no_meter.http_status == 404


def _meter(sandbox: Sandbox, event_name: str, formula: str, **more: Any) -> str:
    params: Any = {
        "display_name": event_name,
        "event_name": event_name,
        "default_aggregation": {"formula": formula},
        **more,
    }
    return str(sandbox.client.v1.billing.meters.create(params).id)


def _summed(sandbox: Sandbox, meter_id: str, cus: str, start: int, end: int) -> float:
    [summary] = sandbox.client.v1.billing.meters.event_summaries.list(
        meter_id, {"customer": cus, "start_time": start, "end_time": end}
    ).data
    return float(summary.aggregated_value)


def test_count_and_last_formulas(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    counted = _meter(sandbox, "logins", "count")
    latest = _meter(
        sandbox, "disk_gb", "last", customer_mapping={"event_payload_key": "who", "type": "by_id"}
    )
    start = hour_start(sandbox) - 3600
    events = sandbox.client.v1.billing.meter_events
    events.create({"event_name": "logins", "payload": {"stripe_customer_id": cus}})
    events.create({"event_name": "logins", "payload": {"stripe_customer_id": cus, "value": "9"}})
    for value, at in (("30", start + 120), ("50", start + 60), ("40", start + 120)):
        events.create(
            {"event_name": "disk_gb", "payload": {"who": cus, "value": value}, "timestamp": at}
        )
    wrong_key = refused(
        lambda: events.create(
            {"event_name": "disk_gb", "payload": {"stripe_customer_id": cus, "value": "1"}}
        )
    )

    assert _summed(sandbox, counted, cus, start, start + 7200) == 2
    assert _summed(sandbox, latest, cus, start, start + 7200) == 40  # latest time, last sent
    assert wrong_key.param == "payload[who]"


def test_a_pre_aggregated_meter_keeps_the_last_event_of_each_window(sandbox: Sandbox) -> None:
    cus = customer(sandbox)
    meter_id = _meter(sandbox, "gb_hours", "sum", event_time_window="hour")
    start = hour_start(sandbox) - 2 * 3600
    events = sandbox.client.v1.billing.meter_events
    for value, at in (("5", start + 10), ("7", start + 20), ("3", start + 3600 + 10)):
        events.create(
            {
                "event_name": "gb_hours",
                "payload": {"stripe_customer_id": cus, "value": value},
                "timestamp": at,
            }
        )

    assert _summed(sandbox, meter_id, cus, start, start + 7200) == 10


# -- metered prices -----------------------------------------------------------------------


def test_a_metered_price_names_an_active_meter(sandbox: Sandbox) -> None:
    prices = sandbox.client.v1.prices
    base: Any = {"product": "prod_sandbox_bandwidth", "currency": "usd", "unit_amount": 3}

    made = prices.create(
        {**base, "recurring": {"interval": "month", "usage_type": "metered", "meter": SEEDED}}
    )
    no_meter = refused(
        lambda: prices.create({**base, "recurring": {"interval": "month", "usage_type": "metered"}})
    )
    licensed = refused(
        lambda: prices.create({**base, "recurring": {"interval": "month", "meter": SEEDED}})
    )
    sandbox.client.v1.billing.meters.deactivate(SEEDED)
    inactive = refused(
        lambda: prices.create(
            {**base, "recurring": {"interval": "month", "usage_type": "metered", "meter": SEEDED}}
        )
    )

    assert made.recurring is not None and made.recurring.meter == SEEDED
    assert (no_meter.param, licensed.param, inactive.param) == ("recurring[meter]",) * 3


def test_checkout_refuses_a_quantity_for_a_metered_price(sandbox: Sandbox) -> None:
    sessions = sandbox.client.v1.checkout.sessions
    common: Any = {"mode": "subscription", "success_url": "https://shop.example/done"}

    quantity = refused(
        lambda: sessions.create(
            {**common, "line_items": [{"price": BANDWIDTH_PRICE, "quantity": 1}]}
        )
    )
    bare = refused(lambda: sessions.create({**common, "line_items": [{"price": BANDWIDTH_PRICE}]}))
    by_api = refused(
        lambda: sandbox.client.v1.subscriptions.create(
            {"customer": customer(sandbox), "items": [{"price": BANDWIDTH_PRICE}]}
        )
    )

    assert str(quantity.user_message) == (
        "Quantity should not be specified where usage_type is `metered`. "
        "Remove quantity from `line_items[0]`"
    )
    assert quantity.param == "line_items[0][quantity]"
    assert (bare.code, bare.param) == ("parameter_unsupported", "line_items[0][price]")
    assert (by_api.code, by_api.param) == ("parameter_unsupported", "items[0][price]")
