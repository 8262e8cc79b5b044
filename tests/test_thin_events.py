"""Thin events end to end: the Stripe stand-in as an event destination sending
thin notifications (``v2.core.event``), csonboard's receiver storing them and
its worker completing them from Stripe. A purchase must end exactly as with
snapshot events; a lost event (Stripe's health alert, a snapshot gone) is
recovered by reading the object it names."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from csonboard.ledger import EventRecord
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from stripe_events import signed_headers

WORDPRESS = "price_sandbox_wordpress_monthly"
STATIC_ONCE = "price_sandbox_static_once"
HEALTH = "v2.core.health.event_generation_failure.resolved"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(tmp_path / "data", CSONBOARD_ONBOARDING_POLL_SECONDS="0.1") as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        yield stack


def deliver_thin(shop: SandboxStack, events: list[str] | None = None) -> None:
    """Make the stand-in's endpoint an event destination sending thin events."""
    shop.sandbox("stripe", "webhooks", {"payload": "thin", "enabled_events": events or ["*"]})


def buy(shop: SandboxStack, price: str = WORDPRESS, email: str = "ada@example.com") -> str:
    mode = "payment" if price == STATIC_ONCE else "subscription"
    session_id = shop.checkout({price: 1}, mode=mode, email=email)
    shop.pay(session_id, name="Ada Lovelace", email=email)
    shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
    return session_id


def events(shop: SandboxStack, type_: str) -> list[EventRecord]:
    return shop.ledger.events.find(types=[type_], limit=100)


def stripe_get(shop: SandboxStack, path: str) -> requests.Response:
    key = shop.settings.stripe.api_key
    assert key is not None
    return shop.http.get(
        f"{shop.stripe_url}{path}",
        headers={"Authorization": f"Bearer {key.get_secret_value()}"},
        timeout=10,
    )


def work_until_done(shop: SandboxStack, session_id: str, timeout: float = 30) -> None:
    """Drive the (stopped) stack's worker by hand until the onboarding is done."""
    deadline = time.monotonic() + timeout
    while True:
        shop.worker.run_burst()
        found = shop.ledger.onboardings.get(session_id)
        if found is not None and found.status == "done":
            return
        assert time.monotonic() < deadline, f"onboarding {session_id}: {found}"
        time.sleep(0.05)


def outcome(shop: SandboxStack, record: EventRecord, timeout: float = 20) -> EventRecord:
    deadline = time.monotonic() + timeout
    while True:
        found = shop.ledger.events.get(record.id)
        assert found is not None
        if found.status in ("done", "ignored", "dead") or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def world(shop: SandboxStack) -> tuple[int, int, int]:
    """(customers, orders, projects) in ComputeStacks."""
    state = shop.cs_state()
    users = [u for u in state["users"] if not u["is_admin"]]
    return len(users), len(state["orders"]), len(state["projects"])


def test_a_thin_notification_is_stored_unversioned_under_its_own_id(shop: SandboxStack) -> None:
    shop.stop_worker()
    deliver_thin(shop)
    session_id = buy(shop)

    [thin] = events(shop, "v1.checkout.session.completed")
    assert thin.object_id == session_id
    assert thin.api_version is None
    assert thin.source == "webhook" and thin.signature
    assert thin.id.startswith("evt_test_")
    body = json.loads(shop.ledger.events.body(thin.id) or b"")
    assert body["object"] == "v2.core.event"
    assert "data" not in body and "snapshot_event" not in body  # the receiver must fetch
    assert events(shop, "checkout.session.completed") == []  # nothing decided yet


@pytest.mark.parametrize("price", [WORDPRESS, STATIC_ONCE], ids=["subscription", "payment"])
def test_a_thin_purchase_ends_exactly_like_a_snapshot_one(shop: SandboxStack, price: str) -> None:
    snapshot_session = buy(shop, price, "ada@example.com")
    by_snapshot = shop.wait_for(snapshot_session)
    deliver_thin(shop)
    thin_session = buy(shop, price, "grace@example.com")
    by_thin = shop.wait_for(thin_session)

    assert (by_snapshot.status, by_thin.status) == ("done", "done"), by_thin.last_error
    runs = [shop.ledger.onboardings.steps(o.session_id) for o in (by_snapshot, by_thin)]
    # The same steps, each done once, with results of the same shape.
    assert [(s.step, s.status, s.attempts, sorted(s.result)) for s in runs[0]] == [
        (s.step, s.status, s.attempts, sorted(s.result)) for s in runs[1]
    ]
    assert world(shop) == (2, 2, 2)  # one user, order and project each
    [thin] = [
        e for e in events(shop, "v1.checkout.session.completed") if e.object_id == thin_session
    ]
    thin = outcome(shop, thin)
    assert thin.status == "done"
    [snapshot] = [
        e for e in events(shop, "checkout.session.completed") if e.object_id == thin_session
    ]
    assert snapshot.source == "stripe_api"  # read from the API, not delivered
    assert f"snapshot {snapshot.id} stored" in (thin.outcome or "")
    assert outcome(shop, snapshot).status == "done"
    metadata = shop.stripe.v1.customers.retrieve(by_thin.customer_id or "").metadata.to_dict()
    assert metadata["computestacks_user_id"] == str(by_thin.cs_user_id)


def test_a_snapshot_delivered_beside_its_thin_twin_makes_one_onboarding(
    shop: SandboxStack,
) -> None:
    """Both kinds of endpoint during a migration: the ledger keeps the snapshot once."""
    shop.stop_worker()
    deliver_thin(shop)
    session_id = buy(shop)
    [thin] = events(shop, "v1.checkout.session.completed")
    whole = stripe_get(shop, f"/v2/core/events/{thin.id}").json()
    snapshot_body = stripe_get(shop, f"/v1/events/{whole['snapshot_event']}").text
    secret = shop.settings.webhook_secrets()[0]
    for _ in range(2):  # the snapshot endpoint's delivery, and Stripe's retry of it
        answer = requests.post(
            f"{shop.receiver_url}/webhooks/stripe",
            data=snapshot_body.encode(),
            headers=signed_headers(snapshot_body, secret),
            timeout=10,
        )
        assert answer.status_code == 200

    work_until_done(shop, session_id)

    assert [e.id for e in events(shop, "checkout.session.completed")] == [whole["snapshot_event"]]
    assert "already received" in (outcome(shop, thin).outcome or "")
    assert world(shop) == (1, 1, 1)


def test_an_event_stripe_failed_to_make_is_recovered_from_its_health_alert(
    shop: SandboxStack,
) -> None:
    """No endpoint sends the purchase's events, only Stripe's health alerts: the
    alert names the lost checkout.session.completed and its session."""
    deliver_thin(shop, [HEALTH])
    session_id = buy(shop)
    assert shop.ledger.onboardings.get(session_id) is None  # nothing arrived

    shop.sandbox(
        "stripe",
        "event_generation_failures",
        {"event_type": "checkout.session.completed", "object": session_id},
    )
    onboarding = shop.wait_for(session_id)

    assert onboarding.status == "done", onboarding.last_error
    [alert] = events(shop, HEALTH)
    assert outcome(shop, alert).status == "done"
    assert world(shop) == (1, 1, 1)


def test_a_thin_notification_whose_snapshot_is_gone_reconciles_its_object(
    shop: SandboxStack,
) -> None:
    shop.stop_worker()
    deliver_thin(shop, ["v1.checkout.session.completed"])  # no health alerts: no other way in
    session_id = buy(shop)
    # Stripe never made (or no longer keeps) the snapshot event; its thin twin came.
    shop.sandbox(
        "stripe",
        "event_generation_failures",
        {"event_type": "checkout.session.completed", "object": session_id},
    )
    shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})

    work_until_done(shop, session_id)

    [thin] = events(shop, "v1.checkout.session.completed")
    assert outcome(shop, thin).status == "done"
    assert events(shop, "checkout.session.completed") == []
    assert world(shop) == (1, 1, 1)


def test_a_lost_subscription_event_makes_its_customer_due(shop: SandboxStack) -> None:
    session_id = buy(shop)
    onboarding = shop.wait_for(session_id)
    assert onboarding.status == "done"
    deliver_thin(shop, [HEALTH])
    shop.sandbox(
        "stripe", f"subscriptions/{onboarding.subscription_id}/status", {"status": "unpaid"}
    )
    shop.sandbox(
        "stripe",
        "event_generation_failures",
        {"event_type": "customer.subscription.updated", "object": onboarding.subscription_id},
    )

    deadline = time.monotonic() + 20
    while shop.cs_admin.get_user(onboarding.cs_user_id or 0).active:
        assert time.monotonic() < deadline, "the unpaid customer was never suspended"
        time.sleep(0.1)
    account = shop.ledger.lifecycle.account(onboarding.customer_id or "")
    assert account is not None and "unpaid" in (account.suspended_reason or "")
