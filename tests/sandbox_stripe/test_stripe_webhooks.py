"""Webhook delivery over real HTTP: signatures checked by the stripe library, retries,
duplicates, pausing, the Dashboard's resend, and what an endpoint-less account does."""

from __future__ import annotations

import json
import random

import stripe

from csonboard.sandbox.catalog import load_catalog
from sandbox_stripe.stripe_harness import WEBHOOK_SECRET, Receiver, Sandbox, SandboxFactory


def test_events_arrive_signed_with_stripes_headers_and_exact_body(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    customer = sandbox.client.v1.customers.create({"name": "Zoë"})

    sandbox.drain()

    [delivery] = receiver.wait_for(1)
    assert delivery.answered == 200
    assert delivery.headers["Content-Type"] == "application/json; charset=utf-8"
    assert delivery.headers["Stripe-Signature"].startswith(f"t={int(sandbox.clock())},v1=")
    stripe.WebhookSignature.verify_header(
        delivery.body, delivery.headers["Stripe-Signature"], WEBHOOK_SECRET
    )
    assert "Zoë" in delivery.body.decode("utf-8")  # raw UTF-8, as Stripe sends it
    body = json.loads(delivery.body)
    assert body["type"] == "customer.created"
    assert body["data"]["object"]["id"] == customer.id
    assert body["pending_webhooks"] == 1
    assert sandbox.client.v1.events.retrieve(body["id"]).pending_webhooks == 0


def test_a_failed_delivery_is_retried_until_it_succeeds(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    receiver.fail_next(2)

    sandbox.client.v1.customers.create({})
    sandbox.drain()

    deliveries = receiver.wait_for(3)
    assert [d.answered for d in deliveries] == [500, 500, 200]
    assert len({d.event.id for d in deliveries}) == 1
    records = sandbox.control("/deliveries", method="GET")["deliveries"]
    assert [(r["attempt"], r["status"], r["succeeded"]) for r in records] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert records[0]["next_retry_in"] == 0.05


def test_delivery_gives_up_after_the_schedule_and_can_be_resent(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    receiver.fail_next(100)
    sandbox.client.v1.customers.create({})
    sandbox.drain()

    attempts = receiver.wait_for(4)
    [event] = sandbox.client.v1.events.list({"delivery_success": False}).data
    receiver.fail_next(0)
    resent = sandbox.control(f"/events/{event.id}/deliver")

    assert len(attempts) == 4  # the first try and one per retry_schedule step
    assert (resent["manual"], resent["status"], resent["attempt"]) == (True, 200, 5)
    assert sandbox.client.v1.events.retrieve(event.id).pending_webhooks == 0


def test_an_unreachable_endpoint_is_recorded_as_an_error(sandbox: Sandbox) -> None:
    sandbox.control("/webhooks", {"url": "http://127.0.0.1:9/nowhere", "retry_schedule": []})

    sandbox.client.v1.customers.create({})
    sandbox.drain()

    [record] = sandbox.control("/deliveries", method="GET")["deliveries"]
    assert record["status"] is None
    assert "ConnectionError" in record["error"]


def test_duplicate_rate_one_delivers_every_event_twice(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.control("/webhooks", {"duplicate_rate": 1})

    sandbox.client.v1.customers.create({})
    sandbox.drain()

    deliveries = receiver.wait_for(2)
    assert len(deliveries) == 2
    assert deliveries[0].event.id == deliveries[1].event.id
    records = sandbox.control("/deliveries", method="GET")["deliveries"]
    assert sorted(r["duplicate"] for r in records) == [False, True]


def test_duplicates_follow_the_injected_random_source(
    make_sandbox: SandboxFactory, receiver: Receiver
) -> None:
    def duplicated(seed: int) -> list[bool]:
        sandbox = make_sandbox(rng=random.Random(seed), duplicate_rate=0.5)
        for _ in range(10):
            sandbox.client.v1.customers.create({})
        sandbox.drain()
        records = sandbox.control("/deliveries", method="GET")["deliveries"]
        return [r["duplicate"] for r in records]

    first, second = duplicated(7), duplicated(7)

    assert first == second
    assert 10 < len(first) < 20  # some but not all events came twice


def test_paused_deliveries_wait_and_reset_restores_the_start(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.control("/webhooks", {"paused": True})
    sandbox.client.v1.customers.create({})

    assert not sandbox.account.wait_for_deliveries(0.2)
    assert sandbox.control("/deliveries/wait", {"timeout": 0.1}) == {"idle": False}
    assert receiver.deliveries == []
    sandbox.control("/webhooks", {"paused": False})
    assert sandbox.control("/deliveries/wait", {"timeout": 5}) == {"idle": True}
    assert len(receiver.wait_for(1)) == 1

    sandbox.control("/reset")
    state = sandbox.control("/state", method="GET")
    assert state["counts"]["event"] == 0
    assert state["counts"]["price"] == len(load_catalog()["stripe"]["prices"])
    assert state["webhook"]["paused"] is False
    assert "whsec_sandbox_tests" not in json.dumps(state)


def test_without_an_endpoint_events_are_kept_but_not_sent(
    make_sandbox: SandboxFactory, receiver: Receiver
) -> None:
    sandbox = make_sandbox(webhook_url=None)

    sandbox.client.v1.customers.create({})

    [event] = sandbox.client.v1.events.list().data
    assert event.pending_webhooks == 0
    assert sandbox.account.wait_for_deliveries(1.0)
    assert receiver.deliveries == []
