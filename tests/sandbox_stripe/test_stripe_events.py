"""Events: shape, retrieve, list filters and cursors, crafted events."""

from __future__ import annotations

import pytest
import stripe

from sandbox_stripe.stripe_harness import Receiver, Sandbox


def make_customers(sandbox: Sandbox, count: int) -> list[stripe.Customer]:
    made = []
    for n in range(count):
        made.append(sandbox.client.v1.customers.create({"email": f"c{n}@example.com"}))
        sandbox.clock.advance(10)
    return made


def test_event_shape_and_retrieve(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"email": "e@example.com"})
    [listed] = sandbox.client.v1.events.list().data

    event = sandbox.client.v1.events.retrieve(listed.id)

    assert event.id.startswith("evt_")
    assert (event.object, event.type, event.livemode) == ("event", "customer.created", False)
    assert event.api_version == "2026-10-28.endive"
    assert event.created == int(sandbox.clock())
    assert isinstance(event.data.object, stripe.Customer)
    assert event.data.object.id == customer.id
    assert event.request is not None
    assert event.request.id is not None
    assert event.request.idempotency_key is not None  # the library sends one on every POST
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.events.retrieve("evt_nope")


def test_list_is_newest_first_and_filters_by_type_and_time(sandbox: Sandbox) -> None:
    customers = make_customers(sandbox, 3)
    sandbox.client.v1.customers.update(customers[0].id, {"name": "Renamed"})
    events = sandbox.client.v1.events

    everything = events.list()
    created_only = events.list({"type": "customer.created"})
    wildcard = events.list({"type": "customer.*"})
    by_types = events.list({"types": ["customer.updated"]})
    middle = events.list(
        {"created": {"gt": everything.data[-1].created, "lt": everything.data[0].created}}
    )

    assert [e.type for e in everything.data] == ["customer.updated"] + ["customer.created"] * 3
    assert [e.data.object.id for e in created_only.data] == [c.id for c in reversed(customers)]
    assert len(wildcard.data) == 4
    assert [e.type for e in by_types.data] == ["customer.updated"]
    assert [e.data.object.id for e in middle.data] == [customers[2].id, customers[1].id]
    with pytest.raises(stripe.InvalidRequestError):
        events.list({"type": "customer.created", "types": ["customer.updated"]})


def test_cursors_page_both_ways(sandbox: Sandbox) -> None:
    make_customers(sandbox, 5)
    events = sandbox.client.v1.events
    ids = [e.id for e in events.list().data]

    first = events.list({"limit": 2})
    second = events.list({"limit": 2, "starting_after": first.data[-1].id})
    back = events.list({"limit": 2, "ending_before": second.data[0].id})
    walked = [e.id for e in events.list({"limit": 2}).auto_paging_iter()]

    assert [e.id for e in first.data] == ids[:2]
    assert ([e.id for e in second.data], second.has_more) == (ids[2:4], True)
    assert [e.id for e in back.data] == ids[:2]
    assert walked == ids


def test_delivery_success_filter_follows_acknowledgements(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.control("/webhooks", {"paused": True})
    sandbox.client.v1.customers.create({})

    pending = sandbox.client.v1.events.list({"delivery_success": False})
    sandbox.control("/webhooks", {"paused": False})
    sandbox.drain()
    delivered = sandbox.client.v1.events.list({"delivery_success": True})

    assert [e.pending_webhooks for e in pending.data] == [1]
    assert [e.id for e in delivered.data] == [pending.data[0].id]
    assert sandbox.client.v1.events.retrieve(pending.data[0].id).pending_webhooks == 0


def test_crafted_old_api_event_is_stored_and_delivered_verbatim(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    old_session = {
        "id": "cs_test_legacy",
        "object": "checkout.session",
        "customer": "cus_legacy",
        "display_items": [{"amount": 1500, "quantity": 1}],
    }

    crafted = sandbox.control(
        "/events",
        {
            "type": "checkout.session.completed",
            "api_version": "2019-05-16",
            "data": {"object": old_session},
        },
    )
    sandbox.drain()

    fetched = sandbox.client.v1.events.retrieve(crafted["id"])
    assert fetched.api_version == "2019-05-16"
    assert "mode" not in fetched.data.object
    [delivery] = receiver.wait_for(1)
    assert delivery.event.id == crafted["id"]
    assert delivery.event.data.object.display_items[0].amount == 1500
