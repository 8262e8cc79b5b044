"""Subscription lifecycle end to end: the Stripe stand-in changes a subscription
(non-payment, payment, pause, cancellation, plan change) and delivers the events
Stripe would; the worker brings the ComputeStacks user and projects in line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from csonboard.cli import main
from csonboard.ledger import Onboarding
from csonboard.runtime import build_worker
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from shop_support import settle
from stripe_events import event_body, signed_headers

WORDPRESS = "price_sandbox_wordpress_monthly"
WORDPRESS_PLUS = "price_sandbox_wordpress_plus_monthly"
STATIC = "price_sandbox_static_monthly"
SECOND = 1 / 86400  # in days


def stack_for(tmp_path: Path, **env: str) -> Any:
    return sandbox_stack(
        tmp_path,
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
        CSONBOARD_WORKER_BACKOFF_SECONDS="0.2",
        **env,
    )


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with stack_for(tmp_path) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        yield stack


def subscribe(
    shop: SandboxStack, price: str = WORDPRESS, email: str = "ada@example.com"
) -> Onboarding:
    session_id = shop.checkout({price: 1}, email=email)
    shop.pay(session_id, name="Ada Lovelace", email=email)
    onboarding = shop.wait_for(session_id)
    assert onboarding.status == "done", onboarding.last_error
    settle(shop, onboarding.customer_id or "")
    return onboarding


def change(
    shop: SandboxStack, onboarding: Onboarding, helper: str, body: dict[str, Any] | None = None
) -> None:
    shop.sandbox("stripe", f"subscriptions/{onboarding.subscription_id}/{helper}", body or {})
    settle(shop, onboarding.customer_id or "")


def active(shop: SandboxStack, onboarding: Onboarding) -> bool:
    return shop.cs_admin.get_user(onboarding.cs_user_id or 0).active


def actions(shop: SandboxStack, onboarding: Onboarding) -> list[tuple[str, str]]:
    found = shop.ledger.lifecycle.actions(customer_id=onboarding.customer_id, limit=100)
    return [(a.action, a.status) for a in reversed(found) if a.status != "scheduled"]


def scheduled(shop: SandboxStack, onboarding: Onboarding) -> list[Any]:
    return shop.ledger.lifecycle.actions(customer_id=onboarding.customer_id, statuses=["scheduled"])


def test_past_due_gets_a_grace_period_then_suspends_and_paying_lifts_it(tmp_path: Path) -> None:
    with stack_for(tmp_path, CSONBOARD_LIFECYCLE_GRACE_DAYS=str(2 * SECOND)) as shop:
        onboarding = subscribe(shop)

        change(shop, onboarding, "renew", {"paid": False})
        assert active(shop, onboarding)  # within the grace period
        [planned] = scheduled(shop, onboarding)
        assert planned.action == "stop"
        assert "grace period ends" in planned.reason

        time.sleep(2.2)
        settle(shop, onboarding.customer_id or "")
        assert not active(shop, onboarding)
        # The purchase's services stop; with no purchase in service, the user too.
        assert actions(shop, onboarding)[-2:] == [("stop", "done"), ("suspend", "done")]
        assert scheduled(shop, onboarding) == []

        change(shop, onboarding, "pay")
        assert active(shop, onboarding)
        assert actions(shop, onboarding)[-2:] == [("start", "done"), ("unsuspend", "done")]


def test_paying_within_the_grace_period_cancels_the_suspension(tmp_path: Path) -> None:
    with stack_for(tmp_path, CSONBOARD_LIFECYCLE_GRACE_DAYS="1") as shop:
        onboarding = subscribe(shop)
        change(shop, onboarding, "renew", {"paid": False})
        assert len(scheduled(shop, onboarding)) == 1

        change(shop, onboarding, "pay")

        assert active(shop, onboarding)
        assert scheduled(shop, onboarding) == []
        assert ("stop", "cancelled") in actions(shop, onboarding)
        assert ("stop", "done") not in actions(shop, onboarding)
        assert ("suspend", "done") not in actions(shop, onboarding)


def test_unpaid_suspends_at_once(shop: SandboxStack) -> None:
    onboarding = subscribe(shop)

    change(shop, onboarding, "status", {"status": "unpaid"})

    assert not active(shop, onboarding)
    account = shop.ledger.lifecycle.account(onboarding.customer_id or "")
    assert account is not None
    assert "unpaid" in (account.suspended_reason or "")


def test_a_suspension_whose_answer_was_lost_is_still_lifted_by_a_payment(
    shop: SandboxStack,
) -> None:
    onboarding = subscribe(shop)
    # ComputeStacks suspends the user, but every answer to it is lost.
    shop.sandbox(
        "computestacks",
        "faults",
        {
            "method": "POST",
            "path": "/api/admin/users/*/suspension",
            "status": 503,
            "effect": True,
            "count": 20,
        },
    )

    change(shop, onboarding, "status", {"status": "unpaid"})
    assert not active(shop, onboarding)

    change(shop, onboarding, "status", {"status": "active"})  # the customer pays
    assert active(shop, onboarding)
    assert actions(shop, onboarding)[-1] == ("unsuspend", "done")


def test_a_paused_subscription_suspends_and_resuming_lifts_it(shop: SandboxStack) -> None:
    onboarding = subscribe(shop)

    change(shop, onboarding, "pause")
    assert not active(shop, onboarding)

    change(shop, onboarding, "resume")
    assert active(shop, onboarding)
    assert actions(shop, onboarding)[-4:] == [
        ("stop", "done"),
        ("suspend", "done"),
        ("start", "done"),
        ("unsuspend", "done"),
    ]


def test_a_suspension_csonboard_did_not_make_is_never_lifted(shop: SandboxStack) -> None:
    onboarding = subscribe(shop)
    shop.cs_admin.suspend_user(onboarding.cs_user_id or 0)  # an operator, for abuse

    change(shop, onboarding, "renew", {"paid": True})  # the customer pays

    assert not active(shop, onboarding)
    [last] = shop.ledger.lifecycle.actions(customer_id=onboarding.customer_id, limit=1)
    assert (last.action, last.status) == ("unsuspend", "declined")
    assert "not by csonboard" in last.reason


def test_cancellation_suspends_at_once_and_terminates_after_retention(tmp_path: Path) -> None:
    with stack_for(
        tmp_path,
        CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(2 * SECOND),
        CSONBOARD_LIFECYCLE_DELETE_USER="true",
    ) as shop:
        onboarding = subscribe(shop)
        [order] = shop.ledger.onboardings.orders(onboarding.session_id)

        shop.stripe.v1.subscriptions.cancel(onboarding.subscription_id or "")
        settle(shop, onboarding.customer_id or "")
        assert not active(shop, onboarding)
        [planned] = scheduled(shop, onboarding)
        assert planned.action == "terminate"

        time.sleep(2.2)
        settle(shop, onboarding.customer_id or "")
        projects = {p["id"]: p for p in shop.cs_state()["projects"]}
        assert order.project_id not in projects or projects[order.project_id]["state"] == "deleting"
        assert ("terminate", "done") in actions(shop, onboarding)
        assert ("delete_user", "done") in actions(shop, onboarding)
        assert [u for u in shop.cs_state()["users"] if not u["is_admin"]] == []


def test_cancel_at_period_end_waits_for_the_period_end(shop: SandboxStack) -> None:
    onboarding = subscribe(shop)

    shop.stripe.v1.subscriptions.update(
        onboarding.subscription_id or "", {"cancel_at_period_end": True}
    )
    settle(shop, onboarding.customer_id or "")
    assert active(shop, onboarding)
    [planned] = scheduled(shop, onboarding)
    assert planned.action == "stop"
    assert planned.due_at is not None and planned.due_at.timestamp() > time.time() + 86400

    change(shop, onboarding, "period_end")
    assert not active(shop, onboarding)
    assert [a.action for a in scheduled(shop, onboarding)] == ["terminate"]


def test_retention_after_a_period_end_cancellation_counts_from_the_end(
    tmp_path: Path,
) -> None:
    # Stripe's canceled_at is when the cancellation was asked for; service
    # ends at ended_at (the period end): retention runs from there.
    with stack_for(tmp_path, CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(2 * SECOND)) as shop:
        onboarding = subscribe(shop)
        shop.stripe.v1.subscriptions.update(
            onboarding.subscription_id or "", {"cancel_at_period_end": True}
        )
        settle(shop, onboarding.customer_id or "")
        change(shop, onboarding, "period_end")  # ended_at: the period end, a month on

        time.sleep(2.2)
        settle(shop, onboarding.customer_id or "")

        assert not active(shop, onboarding)
        assert ("terminate", "done") not in actions(shop, onboarding)
        [planned] = scheduled(shop, onboarding)
        assert planned.action == "terminate"
        assert planned.due_at is not None and planned.due_at.timestamp() > time.time() + 86400


def test_a_plan_change_to_the_same_services_resizes_them(shop: SandboxStack) -> None:
    onboarding = subscribe(shop)
    subscription = shop.stripe.v1.subscriptions.retrieve(onboarding.subscription_id or "")
    item = subscription["items"].data[0]

    shop.stripe.v1.subscriptions.update(
        subscription.id, {"items": [{"id": item.id, "price": WORDPRESS_PLUS}]}
    )
    settle(shop, onboarding.customer_id or "")

    [order] = shop.ledger.onboardings.orders(onboarding.session_id)
    services = shop.cs_admin.list_project_services(order.project_id or 0)
    assert {s.label: s.product_id for s in services} == {"wordpress": 12, "mariadb": 12}
    [resize] = [
        a
        for a in shop.ledger.lifecycle.actions(customer_id=onboarding.customer_id)
        if a.action == "resize"
    ]
    assert resize.status == "done"
    assert "'wordpress' -> 'wordpress-plus'" in resize.reason


def test_a_plan_change_for_a_deleted_project_needs_an_operator_and_following_goes_on(
    shop: SandboxStack,
) -> None:
    onboarding = subscribe(shop)
    # Deleted in ComputeStacks by the customer: its services are not found.
    shop.sandbox(
        "computestacks",
        "faults",
        {"method": "GET", "path": "/api/projects/*/services", "status": 404, "count": 100},
    )
    subscription = shop.stripe.v1.subscriptions.retrieve(onboarding.subscription_id or "")
    item = subscription["items"].data[0]

    shop.stripe.v1.subscriptions.update(
        subscription.id, {"items": [{"id": item.id, "price": WORDPRESS_PLUS}]}
    )
    settle(shop, onboarding.customer_id or "")

    assert ("plan_change", "needs_operator") in actions(shop, onboarding)
    change(shop, onboarding, "status", {"status": "unpaid"})
    assert not active(shop, onboarding)  # the account was not given up on


def test_a_plan_change_that_swaps_images_needs_an_operator(shop: SandboxStack) -> None:
    onboarding = subscribe(shop)
    subscription = shop.stripe.v1.subscriptions.retrieve(onboarding.subscription_id or "")
    item = subscription["items"].data[0]

    shop.stripe.v1.subscriptions.update(
        subscription.id, {"items": [{"id": item.id, "price": STATIC}]}
    )
    settle(shop, onboarding.customer_id or "")

    [record] = [
        a
        for a in shop.ledger.lifecycle.actions(customer_id=onboarding.customer_id)
        if a.action == "plan_change"
    ]
    assert record.status == "needs_operator"
    assert "migrate by hand" in record.reason
    [order] = shop.ledger.onboardings.orders(onboarding.session_id)
    services = shop.cs_admin.list_project_services(order.project_id or 0)
    assert {s.product_id for s in services} == {11}  # untouched


def test_cancellation_delivered_before_the_checkout_waits_for_the_onboarding(
    tmp_path: Path,
) -> None:
    with stack_for(tmp_path) as shop:
        shop.sandbox("stripe", "webhooks", {"paused": True})
        session_id = shop.checkout({WORDPRESS: 1})
        shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
        subscription_id = shop.stripe.v1.checkout.sessions.retrieve(session_id).subscription
        time.sleep(1.1)  # event times have one-second resolution; the cancellation comes later
        shop.stripe.v1.subscriptions.cancel(subscription_id)
        # Deliver everything newest first: "deleted" long before "completed".
        events = shop.stripe.v1.events.list({"limit": 100}).data
        secret = shop.settings.webhook_secrets()[0]
        for event in events:
            body = json.dumps(event.to_dict(for_json=True))
            response = shop.http.post(
                f"{shop.receiver_url}/webhooks/stripe",
                data=body,
                headers=signed_headers(body, secret),
                timeout=10,
            )
            assert response.status_code == 200

        onboarding = shop.wait_for(session_id)
        assert onboarding.status == "done"
        settle(shop, onboarding.customer_id or "")
        assert not active(shop, onboarding)
        assert [a.action for a in scheduled(shop, onboarding)] == ["terminate"]
        created = shop.ledger.events.find(types=["customer.subscription.created"])
        assert created[0].status == "ignored" and "stale" in (created[0].outcome or "")


@pytest.mark.parametrize("shape", ["2024 (invoice.subscription)", "2025 (invoice.parent)"])
def test_both_invoice_shapes_reach_the_subscription(shop: SandboxStack, shape: str) -> None:
    onboarding = subscribe(shop)
    invoice: dict[str, Any] = {
        "id": "in_crafted",
        "object": "invoice",
        "customer": onboarding.customer_id,
    }
    if shape.startswith("2024"):
        invoice["subscription"] = onboarding.subscription_id
    else:
        invoice["parent"] = {
            "type": "subscription_details",
            "subscription_details": {"subscription": onboarding.subscription_id},
        }
    shop.cs_admin.suspend_user(onboarding.cs_user_id or 0)  # so reconciling leaves a record
    body = event_body("invoice.paid", event_id=f"evt_{shape[:4]}", obj=invoice)
    secret = shop.settings.webhook_secrets()[0]

    response = shop.http.post(
        f"{shop.receiver_url}/webhooks/stripe",
        data=body,
        headers=signed_headers(body, secret),
        timeout=10,
    )

    assert response.status_code == 200
    settle(shop, onboarding.customer_id or "")
    record = shop.ledger.events.get(f"evt_{shape[:4]}")
    assert record is not None
    assert (
        record.outcome
        == f"{onboarding.subscription_id} of {onboarding.customer_id} will be reconciled"
    )


def test_scheduled_actions_survive_a_restart_and_show_to_operators(tmp_path: Path) -> None:
    with stack_for(tmp_path, CSONBOARD_LIFECYCLE_GRACE_DAYS=str(2 * SECOND)) as shop:
        onboarding = subscribe(shop)
        change(shop, onboarding, "renew", {"paid": False})
        env = {"CSONBOARD_DATA_DIR": str(shop.settings.data_dir)}

        listed = CliRunner().invoke(main, ["lifecycle", "list", "--json"], env=env)
        shown = CliRunner().invoke(
            main, ["onboardings", "show", onboarding.session_id, "--json"], env=env
        )
        assert next((a["action"], a["status"]) for a in json.loads(listed.stdout)) == (
            "stop",
            "scheduled",
        )
        assert json.loads(shown.stdout)["lifecycle"][0]["action"] == "stop"

        # The worker stops; one that starts later, with nothing but the ledger,
        # suspends on time.
        shop.stop_worker()
        time.sleep(2.2)
        assert active(shop, onboarding)
        fresh = build_worker(shop.settings)
        fresh.run_burst()
        fresh.doorbell.close()
        fresh.ledger.close()
        assert not active(shop, onboarding)


def test_a_cancellation_learnt_late_keeps_its_whole_retention() -> None:
    from datetime import UTC, datetime, timedelta

    from csonboard.lifecycle.policy import decide
    from csonboard.settings import LifecycleSettings
    from csonboard.stripe_api import Subscription

    now = datetime(2026, 12, 1, tzinfo=UTC)
    ended = now - timedelta(days=40)  # its webhooks were lost; csonboard learns of it now
    canceled = Subscription(
        id="sub_1",
        status="canceled",
        customer="cus_1",
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=int(ended.timestamp()),
        ended_at=int(ended.timestamp()),
        items=(),
        metadata={},
    )
    policy = LifecycleSettings(retention_days=30)

    first = decide(canceled, past_due_since=None, policy=policy, now=now)
    assert first.stop and not first.terminate
    assert first.ended_seen_at == now
    assert [(a, due) for a, due, _ in first.planned] == [("terminate", now + timedelta(days=30))]

    later = now + timedelta(days=30)
    again = decide(
        canceled, past_due_since=None, ended_seen_at=first.ended_seen_at, policy=policy, now=later
    )
    assert again.terminate

    # Seen on time, the retention counts from the end, as before.
    on_time = decide(canceled, past_due_since=None, ended_seen_at=ended, policy=policy, now=now)
    assert on_time.terminate
