"""``csonboard drift``: where Stripe and ComputeStacks disagree, found and repaired,
end to end on the sandboxes (the 9.3.1-faithful simulator, the Stripe stand-in),
with the operator's CLI and a worker running as in production."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select

from csonboard.computestacks import ComputeStacksClient, NewOrder, NewUser, OrderContainer
from csonboard.ledger import Onboarding
from csonboard.ledger.schema import drift_passes
from csonboard.sandbox.stack import SandboxStack
from operator_support import cli_env, run
from processes import running
from shop_support import open_shop, settle

pytestmark = pytest.mark.slow

WORDPRESS = "price_sandbox_wordpress_monthly"  # a project with two services (product 11)
STATIC = "price_sandbox_static_monthly"  # a project with one service (product 10)
STATIC_ONCE = "price_sandbox_static_once"


SECOND = 1 / 86400  # in days
FAST = {"CSONBOARD_DRIFT_COMPUTESTACKS_REQUESTS_PER_MINUTE": "500"}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with open_shop(tmp_path) as stack:
        yield stack


def buy(shop: SandboxStack, price: str, *, email: str = "ada@example.com", **kw: Any) -> Onboarding:
    session_id = shop.checkout({price: 1}, email=email, **kw)
    shop.pay(session_id, name="Ada Lovelace", email=email)
    onboarding = shop.wait_for(session_id)
    assert onboarding.status == "done", onboarding.last_error
    settle(shop, onboarding.customer_id or "")
    return onboarding


def drift(shop: SandboxStack, *args: str, **settings: str) -> tuple[Result, dict[str, Any]]:
    """``csonboard drift --json ARGS`` as an operator runs it; the exit and the JSON."""
    env = {**cli_env(shop.settings), **FAST, **settings}
    result = run(env, "drift", "--json", *args)
    assert result.exit_code in (0, 1), result.output
    return result, json.loads(result.stdout)


def kinds(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((i["kind"], i["object"], i["outcome"]) for i in report["items"])


def requested(shop: SandboxStack, onboarding: Onboarding) -> dict[int, str]:
    """Each service of the purchase and whether ComputeStacks is told to run it."""
    found: dict[int, str] = {}
    for order in shop.ledger.onboardings.orders(onboarding.session_id):
        assert order.project_id is not None
        for service in shop.cs_admin.list_project_services(order.project_id):
            [found[service.id]] = {
                c.req_state for c in shop.cs_admin.list_service_containers(service.id)
            }
    return found


def as_customer(shop: SandboxStack, user_id: int) -> ComputeStacksClient:
    """The customer's own API access, as they would use the panel."""
    credential = shop.cs_admin.create_api_credential(user_id, "panel")
    return shop.cs_admin.as_user(credential.username, credential.password)


def inventory(shop: SandboxStack) -> tuple[set[int], set[int], set[int]]:
    """Every user, project and service ComputeStacks has."""
    state = shop.cs_state()
    return (
        {u["id"] for u in state["users"]},
        {p["id"] for p in state["projects"]},
        {s["id"] for s in state["services"]},
    )


def webhooks_lost(shop: SandboxStack) -> None:
    """From now on Stripe's events reach nobody (past every retry)."""
    shop.sandbox("stripe", "webhooks", {"url": None})


def wait_until(check: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_nothing_differs_after_purchases_exit_0(shop: SandboxStack) -> None:
    buy(shop, WORDPRESS)
    buy(shop, STATIC_ONCE, email="bob@example.com", mode="payment")

    result, report = drift(shop)

    assert result.exit_code == 0
    assert report["items"] == []
    assert report["customers"] == 2


def test_a_cancellation_whose_webhooks_were_lost_is_stopped_and_nothing_deleted(
    tmp_path: Path,
) -> None:
    with open_shop(tmp_path, CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(3 * SECOND)) as shop:
        bought = buy(shop, WORDPRESS)
        webhooks_lost(shop)
        shop.stripe.v1.subscriptions.cancel(bought.subscription_id or "")
        time.sleep(3.2)  # the retention since the end has passed, unnoticed
        before = inventory(shop)
        assert set(requested(shop, bought).values()) == {"running"}

        result, report = drift(shop)

        assert result.exit_code == 1
        services = sorted(requested(shop, bought))
        assert kinds(report) == sorted(
            [("should_be_stopped", f"service #{s}", "open") for s in services]
            + [("should_be_suspended", f"user #{bought.cs_user_id}", "open")]
        )
        assert set(requested(shop, bought).values()) == {"running"}  # a report changes nothing

        result, report = drift(shop, "--fix")

        assert result.exit_code == 0, result.output
        assert {i["outcome"] for i in report["items"]} == {"fixed"}
        assert set(requested(shop, bought).values()) == {"stopped"}
        assert not shop.cs_admin.get_user(bought.cs_user_id or 0).active
        reasons = [a.reason for a in shop.ledger.lifecycle.actions(customer_id=bought.customer_id)]
        assert any(r.startswith("drift (should_be_stopped)") for r in reasons)
        settle(shop, bought.customer_id or "")
        # The lifecycle took over: it records the end, and the customer keeps the
        # whole retention from now, when csonboard learnt of it: nothing deleted.
        facts = shop.ledger.lifecycle.subscription(bought.subscription_id or "")
        assert facts is not None and facts.stripe_status == "canceled"
        assert facts.ended_seen_at is not None and facts.terminated_at is None
        assert inventory(shop) == before
        result, report = drift(shop, "--fix")
        assert result.exit_code == 0 and report["items"] == []

        time.sleep(3.2)  # the retention, counted from the discovery, ends
        shop.ledger.lifecycle.wake(bought.customer_id or "")
        settle(shop, bought.customer_id or "")
        assert ("terminate", "done") in [
            (a.action, a.status)
            for a in shop.ledger.lifecycle.actions(customer_id=bought.customer_id)
        ]


def test_a_project_ordered_in_the_panel_is_unpaid_and_stopped_only_by_policy(
    shop: SandboxStack,
) -> None:
    bought = buy(shop, STATIC)
    user = bought.cs_user_id or 0
    panel = as_customer(shop, user)
    placed = panel.create_order(
        NewOrder(
            project_name="my free site",
            containers=(OrderContainer(image_variant_id=1020, product_id=10, name="nginx"),),
        )
    )
    wait_until(
        lambda: (
            panel.get_order(placed.id).project_id is not None
            and panel.get_order(placed.id).status.value == "completed"
        )
    )
    project = panel.get_order(placed.id).project_id
    [service] = shop.cs_admin.list_project_services(project or 0)
    before = inventory(shop)

    result, report = drift(shop, "--fix")  # drift.unowned = report (the default)

    assert result.exit_code == 1
    assert kinds(report) == [("unpaid_project", f"project #{project}", "left")]
    assert "ordered in the panel" in report["items"][0]["detail"]

    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")

    assert result.exit_code == 0, result.output
    assert kinds(report) == [("unpaid_project", f"project #{project}", "fixed")]
    assert {c.req_state for c in shop.cs_admin.list_service_containers(service.id)} == {"stopped"}
    assert inventory(shop) == before  # stopped, never deleted
    assert shop.ledger.power.of(customer_id=bought.customer_id) == []  # never started by us
    assert set(requested(shop, bought).values()) == {"running"}  # the paid site runs on

    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")
    assert result.exit_code == 0 and report["items"] == []


def test_a_resize_in_the_panel_is_found_and_restored(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC)
    [service] = requested(shop, bought)
    as_customer(shop, bought.cs_user_id or 0).resize_service(service, 12)
    order = shop.ledger.onboardings.orders(bought.session_id)[0]
    product = lambda: shop.cs_admin.list_project_services(order.project_id or 0)[0].product_id  # noqa: E731
    wait_until(lambda: product() == 12)

    result, report = drift(shop, "--fix")

    assert result.exit_code == 0, result.output
    assert kinds(report) == [("wrong_package", f"service #{service}", "fixed")]
    assert "product #12" in report["items"][0]["detail"]
    wait_until(lambda: product() == 10)
    result, report = drift(shop, "--fix")
    assert result.exit_code == 0 and report["items"] == []


def test_an_operator_reactivated_unpaid_customer_is_reported_then_suspended(
    shop: SandboxStack,
) -> None:
    bought = buy(shop, STATIC)
    shop.sandbox("stripe", f"subscriptions/{bought.subscription_id}/status", {"status": "unpaid"})
    settle(shop, bought.customer_id or "")
    user = bought.cs_user_id or 0
    assert not shop.cs_admin.get_user(user).active
    shop.cs_admin.unsuspend_user(user)  # an operator, in the admin panel
    [service] = requested(shop, bought)
    as_customer(shop, user).power(service, "start")  # and the customer starts their site

    result, report = drift(shop)

    assert result.exit_code == 1
    assert kinds(report) == [
        ("should_be_stopped", f"service #{service}", "open"),
        ("should_be_suspended", f"user #{user}", "open"),
    ]

    result, report = drift(shop, "--fix")

    assert result.exit_code == 0, result.output
    assert not shop.cs_admin.get_user(user).active
    assert requested(shop, bought) == {service: "stopped"}
    settle(shop, bought.customer_id or "")
    shop.sandbox("stripe", f"subscriptions/{bought.subscription_id}/status", {"status": "active"})
    settle(shop, bought.customer_id or "")
    # csonboard holds both: paying again starts the service and lifts the suspension.
    assert requested(shop, bought) == {service: "running"}
    assert shop.cs_admin.get_user(user).active


def test_a_payment_whose_webhooks_were_lost_starts_what_csonboard_stopped(
    shop: SandboxStack,
) -> None:
    bought = buy(shop, STATIC)
    shop.sandbox("stripe", f"subscriptions/{bought.subscription_id}/status", {"status": "unpaid"})
    settle(shop, bought.customer_id or "")
    [service] = requested(shop, bought)
    webhooks_lost(shop)
    shop.sandbox("stripe", f"subscriptions/{bought.subscription_id}/status", {"status": "active"})

    result, report = drift(shop, "--fix")

    assert result.exit_code == 0, result.output
    user = bought.cs_user_id
    assert kinds(report) == [
        ("should_be_active", f"user #{user}", "fixed"),
        ("should_be_running", f"service #{service}", "fixed"),
    ]
    assert requested(shop, bought) == {service: "running"}
    assert shop.cs_admin.get_user(user or 0).active


def test_what_needs_a_person_is_reported_and_never_repaired(shop: SandboxStack) -> None:
    gone_user = buy(shop, STATIC)
    gone_project = buy(shop, WORDPRESS, email="bob@example.com")
    [project] = [o.project_id for o in shop.ledger.onboardings.orders(gone_project.session_id)]
    shop.cs_admin.delete_project(project or 0)  # by hand, in the admin panel
    shop.cs_admin.delete_user(gone_user.cs_user_id or 0)
    wait_until(lambda: gone_user.cs_user_id not in inventory(shop)[0])

    result, report = drift(shop, "--fix")

    assert result.exit_code == 1
    assert kinds(report) == [
        ("missing_project", f"project #{project}", "left"),
        ("missing_user", f"user #{gone_user.cs_user_id}", "left"),
    ]
    assert all(i["fix"].startswith("none: needs a person") for i in report["items"])


def test_a_user_whose_stripe_customer_is_gone_is_an_orphan(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC)
    webhooks_lost(shop)
    shop.stripe.v1.customers.delete(bought.customer_id or "")
    user = bought.cs_user_id or 0
    [service] = requested(shop, bought)

    result, report = drift(shop, "--fix")

    assert result.exit_code == 1
    assert kinds(report) == [("orphan_user", f"user #{user}", "left")]

    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")

    assert result.exit_code == 0, result.output
    assert not shop.cs_admin.get_user(user).active
    assert requested(shop, bought) == {service: "stopped"}
    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")
    assert result.exit_code == 0 and report["items"] == []


def test_one_customer_is_read_now(shop: SandboxStack) -> None:
    first = buy(shop, STATIC)
    second = buy(shop, STATIC, email="bob@example.com")
    for onboarding in (first, second):
        shop.cs_admin.unsuspend_user(onboarding.cs_user_id or 0)  # harmless: both active
    webhooks_lost(shop)
    for onboarding in (first, second):
        shop.stripe.v1.subscriptions.cancel(onboarding.subscription_id or "")

    result, report = drift(shop, "--customer", first.customer_id or "", "--fix")

    assert result.exit_code == 0, result.output
    assert {i["customer_id"] for i in report["items"]} == {first.customer_id}
    assert set(requested(shop, first).values()) == {"stopped"}
    assert set(requested(shop, second).values()) == {"running"}
    assert report["pass_id"] is None  # not recorded as a pass


def test_bad_arguments_exit_2(shop: SandboxStack) -> None:
    result = run(cli_env(shop.settings), "drift", "--customer", "sub_123")
    assert result.exit_code == 2
    assert "cus_" in result.output
    result = run({**cli_env(shop.settings), "CSONBOARD_DRIFT_UNOWNED": "delete"}, "drift")
    assert result.exit_code == 2
    assert "drift.unowned" in result.output


def test_a_customer_another_worker_holds_is_busy_and_repaired_later(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC)
    webhooks_lost(shop)
    shop.stripe.v1.subscriptions.cancel(bought.subscription_id or "")
    customer = bought.customer_id or ""
    assert shop.ledger.lifecycle.hold(customer, "another-worker", 60) is not None

    result, report = drift(shop, "--fix")

    assert result.exit_code == 1
    assert {i["outcome"] for i in report["items"]} == {"busy"}
    assert set(requested(shop, bought).values()) == {"running"}  # not touched

    shop.ledger.lifecycle.release(customer, "another-worker", status="idle")
    result, report = drift(shop, "--fix")
    assert result.exit_code == 0, result.output
    assert set(requested(shop, bought).values()) == {"stopped"}


def test_a_project_on_its_way_is_not_unpaid(shop: SandboxStack) -> None:
    shop.sandbox("computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 30})
    session_id = shop.checkout({STATIC: 1}, email="ada@example.com")
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
    # ComputeStacks makes the project when the order starts processing, long
    # before csonboard sees the order complete and records the project.
    wait_until(lambda: any(o["status"] == "processing" for o in shop.cs_state()["orders"]))

    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")

    assert result.exit_code == 0, result.output
    assert report["items"] == []
    assert [o["status"] for o in shop.cs_state()["orders"]] == ["processing"]


def test_two_repairs_at_once_stop_each_service_once(shop: SandboxStack) -> None:
    bought = buy(shop, WORDPRESS)
    webhooks_lost(shop)
    shop.stripe.v1.subscriptions.cancel(bought.subscription_id or "")
    shop.sandbox("computestacks", "latency", {"seconds": 0.2})  # so the two overlap
    env = {**os.environ, **cli_env(shop.settings), **FAST}
    command = [sys.executable, "-m", "csonboard", "drift", "--fix"]

    both = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in both]

    assert {p.returncode for p in both} <= {0, 1}, outputs
    assert set(requested(shop, bought).values()) == {"stopped"}
    stops = [
        a
        for a in shop.ledger.lifecycle.actions(customer_id=bought.customer_id, limit=100)
        if a.reason.startswith("drift (should_be_stopped)")
    ]
    assert len(stops) == len(requested(shop, bought))  # one repair per service, not two
    shop.sandbox("computestacks", "latency", {"seconds": 0})
    result, report = drift(shop, "--fix")
    assert result.exit_code == 0 and report["items"] == []


def test_a_pass_killed_midway_is_resumed_after_its_last_page(shop: SandboxStack) -> None:
    first = buy(shop, STATIC)
    second = buy(shop, STATIC, email="bob@example.com")
    webhooks_lost(shop)
    for onboarding in (first, second):
        shop.stripe.v1.subscriptions.cancel(onboarding.subscription_id or "")
    early, late = sorted([first, second], key=lambda o: o.customer_id or "")
    # Hold the pass's first look at the later customer: the earlier one's page
    # is recorded by then.
    shop.sandbox(
        "computestacks",
        "faults",
        {
            "method": "GET",
            "path": f"/api/admin/users/{late.cs_user_id}",
            "hold": "before",
            "hold_timeout": 60,
        },
    )
    env = {
        **cli_env(shop.settings),
        **FAST,
        "CSONBOARD_DRIFT_PAGE_SIZE": "1",
        "CSONBOARD_WORKER_LEASE_SECONDS": "2",
    }
    with running("drift", "--fix", env=env, log=shop.settings.data_dir / "drift.log") as doomed:
        wait_until(lambda: shop.http.get(f"{shop.cs_url}/_sandbox/held", timeout=10).json()["held"])
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    shop.sandbox("computestacks", "release", {})
    with shop.ledger.read() as connection:
        [(status, cursor)] = connection.execute(
            select(drift_passes.c.status, drift_passes.c.cursor)
        ).all()
    assert (status, cursor) == ("running", early.customer_id)  # its first page is recorded
    time.sleep(2.2)  # its lease runs out
    assert shop.ledger.drift.abandoned()
    assert set(requested(shop, early).values()) == {"stopped"}
    assert set(requested(shop, late).values()) == {"running"}
    # The earlier customer drifts again: only a pass that starts over sees it.
    [early_service] = requested(shop, early)
    shop.cs_admin.power(early_service, "start")
    wait_until(lambda: set(requested(shop, early).values()) == {"running"})

    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_PAGE_SIZE="1")

    assert result.exit_code == 0, result.output
    assert report["resumed_after"] == early.customer_id
    assert {i["customer_id"] for i in report["items"]} == {early.customer_id, late.customer_id}
    assert set(requested(shop, late).values()) == {"stopped"}
    assert set(requested(shop, early).values()) == {"running"}  # after the cursor only
    drift_stops = [
        a
        for a in shop.ledger.lifecycle.actions(customer_id=early.customer_id, limit=100)
        if a.reason.startswith("drift (should_be_stopped)")
    ]
    assert len(drift_stops) == 1  # the first page was not repaired twice


def test_the_worker_runs_a_report_only_pass_on_schedule_and_metrics_show_it(
    tmp_path: Path,
) -> None:
    with open_shop(tmp_path, CSONBOARD_DRIFT_INTERVAL_MINUTES="0.02", **FAST) as shop:
        bought = buy(shop, STATIC)
        webhooks_lost(shop)
        shop.stripe.v1.subscriptions.cancel(bought.subscription_id or "")
        started = time.time()

        def found() -> bool:
            latest = shop.ledger.drift.latest()
            return (
                latest is not None
                and latest.started_at.timestamp() > started
                and bool(shop.ledger.drift.items(latest.id))
            )

        wait_until(found, timeout=30)

        latest = shop.ledger.drift.latest()
        assert latest is not None and not latest.fix
        found_kinds = {(i.kind, i.outcome) for i in shop.ledger.drift.items(latest.id)}
        assert found_kinds == {("should_be_stopped", "open"), ("should_be_suspended", "open")}
        assert set(requested(shop, bought).values()) == {"running"}  # report-only
        metrics = shop.http.get(f"{shop.receiver_url}/metrics", timeout=30).text
        assert 'csonboard_drift_items{kind="should_be_stopped"} 1.0' in metrics
        assert 'csonboard_drift_items{kind="unpaid_project"} 0.0' in metrics


def test_an_orphan_suspension_stays_while_the_customer_is_gone(shop: SandboxStack) -> None:
    # A one-time purchase never ends, so only the knowledge that its customer
    # is gone keeps the lifecycle from lifting drift's suspension again.
    bought = buy(shop, STATIC_ONCE, mode="payment")
    webhooks_lost(shop)
    shop.stripe.v1.customers.delete(bought.customer_id or "")
    user = bought.cs_user_id or 0

    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")

    assert result.exit_code == 0, result.output
    assert kinds(report) == [("orphan_user", f"user #{user}", "fixed")]
    shop.ledger.lifecycle.wake(bought.customer_id or "")
    settle(shop, bought.customer_id or "")
    assert not shop.cs_admin.get_user(user).active
    assert set(requested(shop, bought).values()) == {"stopped"}
    result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")
    assert result.exit_code == 0 and report["items"] == []


def test_an_adopted_user_keeps_what_it_had_before(tmp_path: Path) -> None:
    with open_shop(tmp_path, CSONBOARD_ONBOARDING_ON_EMAIL_CONFLICT="adopt") as shop:
        existing = shop.cs_admin.create_user(
            NewUser(fname="Ada", lname="Byron", email="ada@example.com")
        )
        panel = as_customer(shop, existing.id)
        placed = panel.create_order(
            NewOrder(
                project_name="bought elsewhere",
                containers=(OrderContainer(image_variant_id=1020, product_id=10, name="nginx"),),
            )
        )
        wait_until(lambda: panel.get_order(placed.id).status.value == "completed")
        time.sleep(1.1)  # ComputeStacks' times are whole seconds
        bought = buy(shop, STATIC)
        assert bought.cs_user_id == existing.id

        result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")

        assert result.exit_code == 0, result.output
        assert report["items"] == []  # its older project is no unpaid one

        webhooks_lost(shop)
        shop.stripe.v1.customers.delete(bought.customer_id or "")
        result, report = drift(shop, "--fix", CSONBOARD_DRIFT_UNOWNED="stop")

        assert result.exit_code == 1
        assert kinds(report) == [("orphan_user", f"user #{existing.id}", "left")]
        assert report["items"][0]["fix"] == "left: csonboard did not create it"
        assert shop.cs_admin.get_user(existing.id).active


def test_another_price_of_the_same_plan_keeps_the_package_sold(
    shop: SandboxStack, tmp_path: Path
) -> None:
    bought = buy(shop, STATIC)
    subscription = shop.stripe.v1.subscriptions.retrieve(bought.subscription_id or "")
    item = subscription["items"].data[0]
    shop.stripe.v1.subscriptions.update(
        subscription.id, {"items": [{"id": item.id, "price": "price_sandbox_static_yearly"}]}
    )
    settle(shop, bought.customer_id or "")
    # Since the sale, the operator sells the static site on a bigger package.
    catalog = tmp_path / "plans.toml"
    text = shop.settings.plans.read_text()
    catalog.write_text(
        text.replace(
            "image_variant_id = 1020\nproduct_id = 10", "image_variant_id = 1020\nproduct_id = 12"
        )
    )
    assert catalog.read_text() != text

    result, report = drift(shop, "--fix", CSONBOARD_PLANS=str(catalog))

    assert result.exit_code == 0, result.output
    assert report["items"] == []  # monthly to yearly: the package it was sold with
    [order] = shop.ledger.onboardings.orders(bought.session_id)
    [service] = shop.cs_admin.list_project_services(order.project_id or 0)
    assert service.product_id == 10


def test_one_pass_at_a_time(shop: SandboxStack) -> None:
    buy(shop, STATIC)
    assert shop.ledger.drift.begin("another-worker", fix=False, lease_seconds=60) is not None

    result = run({**cli_env(shop.settings), **FAST}, "drift")

    assert result.exit_code == 1
    assert "a drift pass is already running" in result.output
    assert shop.ledger.drift.begin("a-third", fix=True, lease_seconds=60) is None
    result, report = drift(
        shop, "--customer", buy(shop, STATIC, email="bob@example.com").customer_id or ""
    )
    assert result.exit_code == 0 and report["items"] == []  # one customer is always possible
