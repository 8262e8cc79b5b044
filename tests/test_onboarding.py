"""Onboarding end to end: a Checkout in the Stripe stand-in, its signed webhook
through the receiver, the worker's steps against the ComputeStacks simulator,
all over real HTTP (``csonboard.sandbox.stack``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from csonboard.cli import main
from csonboard.computestacks import NewUser
from csonboard.ledger import Onboarding
from csonboard.onboarding import STEP_NAMES, Onboarder
from csonboard.runtime import build_services
from csonboard.sandbox.stack import SandboxStack, sandbox_stack

WORDPRESS = "price_sandbox_wordpress_monthly"
STATIC = "price_sandbox_static_monthly"
STATIC_ONCE = "price_sandbox_static_once"
UNMAPPED = "price_sandbox_unmapped"
ADDRESS = {
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y",
    "country": "GB",
}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(tmp_path / "data", CSONBOARD_ONBOARDING_POLL_SECONDS="0.1") as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.2, "processing_seconds": 0.2}
        )
        yield stack


def buy(shop: SandboxStack, prices: dict[str, int], **checkout: Any) -> Onboarding:
    """Check out and pay as Ada; wait for the onboarding to finish one way or another."""
    session_id = shop.checkout(prices, **checkout)
    shop.pay(
        session_id,
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+44 20 7946 0000",
        address=ADDRESS,
    )
    return shop.wait_for(session_id)


def cs_users(shop: SandboxStack) -> list[dict[str, Any]]:
    return [u for u in shop.cs_state()["users"] if not u["is_admin"]]


def cs_orders(shop: SandboxStack) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = shop.cs_state()["orders"]
    return orders


def result(shop: SandboxStack, onboarding: Onboarding, step: str) -> dict[str, Any]:
    [found] = [s for s in shop.ledger.onboardings.steps(onboarding.session_id) if s.step == step]
    return found.result


def metadata(shop: SandboxStack, customer: str) -> dict[str, str]:
    data: dict[str, str] = shop.stripe.v1.customers.retrieve(customer).metadata.to_dict()
    return data


def test_a_paid_subscription_becomes_one_linked_user_and_one_project(shop: SandboxStack) -> None:
    onboarding = buy(shop, {WORDPRESS: 1})

    assert onboarding.status == "done", onboarding.last_error
    assert [s.step for s in shop.ledger.onboardings.steps(onboarding.session_id)] == list(
        STEP_NAMES
    )
    [user] = cs_users(shop)
    assert user["external_id"] == onboarding.customer_id
    assert user["labels"] == {"stripe": {"customer_id": onboarding.customer_id}}
    assert (user["fname"], user["lname"], user["email"]) == ("Ada", "Lovelace", "ada@example.com")
    assert user["bypass_billing"] is True
    assert user["confirmed"] is True  # skip_email_confirm: no confirmation email
    assert user["currency"] == "USD"
    assert user["credentials"] == 0  # the one minted for the order was deleted
    [project] = shop.cs_admin.list_user_projects(user["id"])
    assert project.name == "Ada Lovelace's WordPress 1"
    [order] = shop.ledger.onboardings.orders(onboarding.session_id)
    assert order.project_id == project.id
    assert [o["containers"] for o in cs_orders(shop)] == [2]  # WordPress and the MariaDB it needs
    assert metadata(shop, onboarding.customer_id or "") == {
        "computestacks_user_id": str(user["id"]),
        "computestacks_project_ids": str(project.id),
    }


def test_the_ledger_and_logs_hold_no_password_or_credential(
    shop: SandboxStack, caplog: pytest.LogCaptureFixture
) -> None:
    onboarding = buy(shop, {WORDPRESS: 1})

    stored = json.dumps([s.result for s in shop.ledger.onboardings.steps(onboarding.session_id)])
    assert "password" not in stored.lower()
    assert "username" not in stored.lower()
    assert shop.settings.cs.admin_password is not None
    assert shop.settings.cs.admin_password.get_secret_value() not in caplog.text


def test_a_guest_payment_checkout_gets_a_stripe_customer_and_an_account(shop: SandboxStack) -> None:
    onboarding = buy(shop, {STATIC_ONCE: 1}, mode="payment")

    assert onboarding.status == "done", onboarding.last_error
    assert result(shop, onboarding, "fetch_session")["customer"] is None
    created = result(shop, onboarding, "ensure_stripe_customer")
    assert created["created"] is True
    customer = shop.stripe.v1.customers.retrieve(created["customer_id"])
    assert (customer.email, customer.name) == ("ada@example.com", "Ada Lovelace")
    [user] = cs_users(shop)
    assert (user["external_id"], user["currency"]) == (created["customer_id"], "EUR")


def _sell_by(shop: SandboxStack, how: str, price: str, email: str) -> str:
    """A Checkout Session for one ``price``, made the way ``how`` says; its id."""
    mode = "payment" if price == STATIC_ONCE else "subscription"
    if how == "payment_link":
        link = shop.stripe.v1.payment_links.create(
            {
                "line_items": [{"price": price, "quantity": 1}],
                "after_completion": {
                    "type": "redirect",
                    "redirect": {
                        "url": f"{shop.receiver_url}/welcome?session_id={{CHECKOUT_SESSION_ID}}"
                    },
                },
            }
        )
        opened = shop.sandbox("stripe", f"payment_links/{link.id}/open")
        assert opened["payment_link"] == link.id
        return str(opened["id"])
    return shop.checkout({price: 1}, mode=mode, email=email, ui_mode=how)


@pytest.mark.parametrize("price", [WORDPRESS, STATIC_ONCE], ids=["subscription", "payment"])
@pytest.mark.parametrize("how", ["hosted_page", "embedded_page", "elements", "payment_link"])
def test_hosted_and_embedded_checkout_and_payment_links_are_fulfilled_alike(
    shop: SandboxStack, how: str, price: str
) -> None:
    session_id = _sell_by(shop, how, price, "ada@example.com")
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
    onboarding = shop.wait_for(session_id)

    assert onboarding.status == "done", onboarding.last_error
    assert [s.step for s in shop.ledger.onboardings.steps(session_id)] == list(STEP_NAMES)
    [user] = cs_users(shop)
    assert user["email"] == "ada@example.com"
    assert len(cs_orders(shop)) == 1
    customer = onboarding.customer_id or ""
    assert metadata(shop, customer)["computestacks_user_id"] == str(onboarding.cs_user_id)
    # The buyer's way back (success_url or return_url) leads to the status page.
    welcome = shop.http.get(
        f"{shop.receiver_url}/welcome?session_id={session_id}", allow_redirects=False, timeout=10
    )
    assert welcome.status_code == 303
    assert "/status/" in welcome.headers["Location"]


def test_each_unit_of_each_line_item_becomes_its_own_project(shop: SandboxStack) -> None:
    onboarding = buy(shop, {WORDPRESS: 2, STATIC: 1})

    assert onboarding.status == "done", onboarding.last_error
    orders = shop.ledger.onboardings.orders(onboarding.session_id)
    assert [o.unit for o in orders] == [1, 2, 3]
    names = sorted(p.name for p in shop.cs_admin.list_user_projects(onboarding.cs_user_id or 0))
    assert names[:2] == ["Ada Lovelace's WordPress 1", "Ada Lovelace's WordPress 2"]
    assert names[2].startswith("Ada Lovelace's site ")
    ids = metadata(shop, onboarding.customer_id or "")["computestacks_project_ids"].split(",")
    assert sorted(ids) == sorted(str(o.project_id) for o in orders)


def test_a_repeat_buyer_keeps_one_account_and_gains_a_project(shop: SandboxStack) -> None:
    first = buy(shop, {WORDPRESS: 1})
    second = buy(shop, {STATIC: 1}, customer=first.customer_id)

    assert second.status == "done", second.last_error
    assert second.cs_user_id == first.cs_user_id
    assert result(shop, second, "ensure_cs_user")["how"] == "found"
    assert len(cs_users(shop)) == 1
    projects = shop.cs_admin.list_user_projects(first.cs_user_id or 0)
    assert len(projects) == 2
    listed = metadata(shop, first.customer_id or "")["computestacks_project_ids"]
    assert listed == ",".join(str(p) for p in sorted(p.id for p in projects))


def test_an_unmapped_price_is_dead_lettered_naming_it_and_provisions_nothing(
    shop: SandboxStack,
) -> None:
    onboarding = buy(shop, {UNMAPPED: 1}, mode="payment")

    assert onboarding.status == "dead"
    assert onboarding.step == "resolve_plan"
    assert "price price_sandbox_unmapped" in (onboarding.last_error or "")
    assert "product prod_sandbox_unmapped" in (onboarding.last_error or "")
    assert f"csonboard replay --session {onboarding.session_id}" in (onboarding.last_error or "")
    assert cs_users(shop) == []


def test_a_delayed_payment_waits_then_fulfils_when_it_succeeds(shop: SandboxStack) -> None:
    session_id = shop.checkout({WORDPRESS: 1})
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com", payment_status="unpaid")
    waiting = shop.wait_for(session_id, statuses=("awaiting_payment",))
    assert "async_payment_succeeded" in (waiting.note or "")
    assert cs_users(shop) == []

    shop.sandbox("stripe", f"checkout/sessions/{session_id}/async_payment", {"succeeded": True})

    assert shop.wait_for(session_id).status == "done"


def test_a_delayed_payment_that_fails_closes_the_onboarding_with_nothing_provisioned(
    shop: SandboxStack,
) -> None:
    session_id = shop.checkout({WORDPRESS: 1})
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com", payment_status="unpaid")
    shop.wait_for(session_id, statuses=("awaiting_payment",))

    shop.sandbox("stripe", f"checkout/sessions/{session_id}/async_payment", {"succeeded": False})

    closed = shop.wait_for(session_id)
    assert (closed.status, closed.note) == ("closed", "the delayed payment failed")
    assert cs_users(shop) == []


def test_an_expired_session_is_closed_and_provisions_nothing(shop: SandboxStack) -> None:
    session_id = shop.checkout({WORDPRESS: 1})

    shop.sandbox("stripe", f"checkout/sessions/{session_id}/expire")

    closed = shop.wait_for(session_id)
    assert (closed.status, closed.note) == ("closed", "the session expired unpaid")
    assert cs_users(shop) == []


def existing_account(shop: SandboxStack, external_id: str | None = None) -> int:
    user = shop.cs_admin.create_user(
        NewUser(fname="Ada", lname="Byron", email="ada@example.com", external_id=external_id)
    )
    return user.id


def test_an_email_already_in_computestacks_is_refused_by_default(shop: SandboxStack) -> None:
    existing = existing_account(shop)

    onboarding = buy(shop, {WORDPRESS: 1})

    assert onboarding.status == "dead"
    assert f"already has ComputeStacks user #{existing}" in (onboarding.last_error or "")
    assert 'on_email_conflict = "adopt"' in (onboarding.last_error or "")
    assert cs_orders(shop) == []


def test_adopt_links_an_unlinked_account_with_the_same_email(tmp_path: Path) -> None:
    with sandbox_stack(tmp_path, CSONBOARD_ONBOARDING_ON_EMAIL_CONFLICT="adopt") as shop:
        existing = existing_account(shop)

        onboarding = buy(shop, {WORDPRESS: 1})

        assert onboarding.status == "done", onboarding.last_error
        assert onboarding.cs_user_id == existing
        assert result(shop, onboarding, "ensure_cs_user")["how"] == "adopted"
        [user] = cs_users(shop)
        assert user["external_id"] == onboarding.customer_id
        assert user["labels"]["stripe"]["customer_id"] == onboarding.customer_id


def test_adopt_never_takes_an_account_linked_to_another_customer(tmp_path: Path) -> None:
    with sandbox_stack(tmp_path, CSONBOARD_ONBOARDING_ON_EMAIL_CONFLICT="adopt") as shop:
        existing_account(shop, external_id="cus_someone_else")

        onboarding = buy(shop, {WORDPRESS: 1})

        assert onboarding.status == "dead"
        assert "linked to 'cus_someone_else'" in (onboarding.last_error or "")
        [user] = cs_users(shop)
        assert user["external_id"] == "cus_someone_else"


def test_a_setup_mode_session_is_closed_without_provisioning(shop: SandboxStack) -> None:
    session_id = shop.checkout({}, mode="setup", currency="usd")
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")

    onboarding = shop.wait_for(session_id)

    assert onboarding.status == "closed"
    assert "nothing to provision" in (onboarding.note or "")
    assert cs_users(shop) == [] and cs_orders(shop) == []


def test_adopt_never_takes_an_admin_account(tmp_path: Path) -> None:
    with sandbox_stack(tmp_path, CSONBOARD_ONBOARDING_ON_EMAIL_CONFLICT="adopt") as shop:
        [before] = [u for u in shop.cs_state()["users"] if u["is_admin"]]
        session_id = shop.checkout({WORDPRESS: 1}, email=None)
        shop.pay(session_id, name="Mallory", email="admin@sandbox.invalid", address=ADDRESS)
        onboarding = shop.wait_for(session_id)

        assert onboarding.status == "dead"
        assert "an admin account is never adopted" in (onboarding.last_error or "")
        [after] = [u for u in shop.cs_state()["users"] if u["is_admin"]]
        assert after == before  # no external_id, labels or credential added
        assert cs_orders(shop) == []


def test_an_order_computestacks_refuses_is_dead_lettered_with_its_reason(
    shop: SandboxStack,
) -> None:
    shop.sandbox("computestacks", "orders", {"max_containers": 0})

    onboarding = buy(shop, {WORDPRESS: 1})

    assert (onboarding.status, onboarding.step) == ("dead", "place_order")
    assert "refused the order" in (onboarding.last_error or "")
    assert "over quota" in (onboarding.last_error or "")
    assert cs_users(shop)[0]["credentials"] == 0  # deleted although the order failed


def test_an_order_that_fails_is_dead_lettered_naming_the_project_it_left(
    shop: SandboxStack,
) -> None:
    shop.sandbox("computestacks", "orders", {"outcome": "fail"})

    onboarding = buy(shop, {WORDPRESS: 1})

    assert (onboarding.status, onboarding.step) == ("dead", "await_project")
    # ComputeStacks made the project as processing started and removed nothing.
    state = shop.cs_state()
    [project] = state["projects"]
    assert project["state"] == "alert"
    assert len([s for s in state["services"] if s["project"] == project["id"]]) == 2
    [order] = shop.ledger.onboardings.orders(onboarding.session_id)
    assert (order.status, order.project_id) == ("failed", None)  # not the customer's
    assert order.left_project_id == order.leftover == project["id"]
    error = onboarding.last_error or ""
    assert f"ComputeStacks order {order.order_id} " in error and "ended failed" in error
    assert (
        f'it left project #{project["id"]} ("Ada Lovelace\'s WordPress 1") with 2 service(s): '
        "it is deleted before the purchase is ordered again" in error
    )
    assert f"--session {onboarding.session_id} --from-step place_order" in error
    [left] = result(shop, onboarding, "await_project")["left_behind"]
    assert (left["order_id"], left["project_id"], left["services"]) == (
        order.order_id,
        project["id"],
        2,
    )
    assert shop.ledger.onboardings.projects_of_customer(onboarding.customer_id or "") == []


def test_a_project_shown_while_its_order_is_processing_is_not_ready(shop: SandboxStack) -> None:
    # 9.3.1 links the project as processing starts, before any service exists.
    shop.sandbox("computestacks", "orders", {"pending_seconds": 0, "processing_seconds": 4})
    session_id = shop.checkout({WORDPRESS: 1})
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")

    def processing_with_project() -> bool:
        return any(o["status"] == "processing" and o["project"] for o in cs_orders(shop))

    deadline = time.monotonic() + 20
    while not processing_with_project():
        assert time.monotonic() < deadline, cs_orders(shop)
        time.sleep(0.05)
    time.sleep(0.5)  # a few polls of await_project meanwhile

    waiting = shop.ledger.onboardings.get(session_id)
    assert waiting is not None and waiting.status in ("waiting", "running", "pending")
    assert "await_project" not in {
        s.step for s in shop.ledger.onboardings.steps(session_id) if s.status == "done"
    }
    [order] = shop.ledger.onboardings.orders(session_id)
    assert (order.status, order.project_id) == ("pending", None)
    assert cs_orders(shop)[0]["status"] == "processing"  # still, after the look above
    done = shop.wait_for(session_id)
    assert done.status == "done", done.last_error
    [order] = shop.ledger.onboardings.orders(session_id)
    assert order.status == "completed" and order.project_id == cs_orders(shop)[0]["project"]


def test_an_order_stuck_past_the_deadline_is_stuck_and_resumable(tmp_path: Path) -> None:
    with sandbox_stack(tmp_path, CSONBOARD_ONBOARDING_ORDER_DEADLINE_MINUTES="0.02") as shop:
        shop.sandbox("computestacks", "orders", {"outcome": "stuck"})
        stuck = buy(shop, {STATIC: 1})
        assert (stuck.status, stuck.step) == ("stuck", "await_project")
        assert "not finished after" in (stuck.last_error or "")

        # The operator fixes ComputeStacks and re-places the order.
        shop.sandbox("computestacks", "orders", {"outcome": "complete", "pending_seconds": 0.1})
        later = STEP_NAMES[STEP_NAMES.index("place_order") :]
        assert shop.ledger.onboardings.requeue(
            [stuck.session_id], forget_steps=later, note="replay"
        ) == [stuck.session_id]
        shop.worker.doorbell.ring("onboarding", stuck.session_id)

        done = shop.wait_for(stuck.session_id)
        assert done.status == "done", done.last_error
        orders = shop.ledger.onboardings.orders(stuck.session_id, abandoned=True)
        assert [o.status for o in orders] == ["abandoned", "completed"]


def test_an_order_placed_but_not_acknowledged_is_found_not_placed_twice(shop: SandboxStack) -> None:
    # ComputeStacks creates the order, then the answer is lost (a 502 from a
    # proxy); the retry comes while the order is still pending, without a project.
    shop.sandbox("computestacks", "orders", {"pending_seconds": 3, "processing_seconds": 0.2})
    shop.sandbox(
        "computestacks",
        "faults",
        {"method": "POST", "path": "/api/orders", "status": 502, "count": 1, "effect": True},
    )

    onboarding = buy(shop, {WORDPRESS: 1})

    assert onboarding.status == "done", onboarding.last_error
    assert len(cs_orders(shop)) == 1
    [order] = shop.ledger.onboardings.orders(onboarding.session_id)
    assert order.order_id == cs_orders(shop)[0]["id"]
    place = [
        s for s in shop.ledger.onboardings.steps(onboarding.session_id) if s.step == "place_order"
    ]
    assert place[0].attempts == 2
    assert cs_users(shop)[0]["credentials"] == 0  # both minted credentials deleted


def test_racing_runs_of_one_onboarding_provision_exactly_once(tmp_path: Path) -> None:
    with sandbox_stack(tmp_path, run_worker=False) as shop:
        session_id = shop.checkout({WORDPRESS: 2})
        shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
        shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
        shop.worker.run_burst()  # the event: the onboarding exists and is due
        services = build_services(shop.settings)
        racers = [
            Onboarder(
                shop.ledger, shop.worker.doorbell, services, shop.settings.worker, name=f"racer-{n}"
            )
            for n in range(6)
        ]
        start = threading.Barrier(len(racers))

        def race(racer: Onboarder) -> None:
            start.wait()
            for _ in range(200):
                racer.run(session_id)
                current = shop.ledger.onboardings.get(session_id)
                if current is not None and current.status == "done":
                    return
                threading.Event().wait(0.05)

        threads = [threading.Thread(target=race, args=(r,)) for r in racers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert shop.ledger.onboardings.get(session_id).status == "done"  # type: ignore[union-attr]
        assert len(cs_users(shop)) == 1
        assert len(cs_orders(shop)) == 2


def test_onboardings_list_and_show_tell_an_operator_what_happened(shop: SandboxStack) -> None:
    done = buy(shop, {WORDPRESS: 1})
    dead = buy(shop, {UNMAPPED: 1}, mode="payment")
    env = {"CSONBOARD_DATA_DIR": str(shop.settings.data_dir)}
    runner = CliRunner()

    listed = runner.invoke(main, ["onboardings", "list"], env=env)
    dead_only = runner.invoke(main, ["onboardings", "list", "--status", "dead", "--json"], env=env)
    shown = runner.invoke(main, ["onboardings", "show", done.session_id], env=env)
    as_json = runner.invoke(main, ["onboardings", "show", dead.session_id, "--json"], env=env)

    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[0].split()[:3] == ["CREATED", "SESSION", "STATUS"]
    assert [o["session_id"] for o in json.loads(dead_only.stdout)] == [dead.session_id]
    assert "link_back" in shown.stdout and "project" in shown.stdout
    record = json.loads(as_json.stdout)
    [failed] = [s for s in record["steps"] if s["step"] == "resolve_plan"]
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "price_sandbox_unmapped" in failed["last_error"]
    assert record["next_attempt_at"] is None
