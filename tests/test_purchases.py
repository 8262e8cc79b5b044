"""The purchase is the unit of service, end to end on the 9.3.1-faithful simulator.

Suspending a ComputeStacks user stops nothing there (the controller's
``app/services/user_services/toggle_active_service.rb`` builds the stop actions
and never performs them), so each purchase's services are stopped and started
on their own (``PUT /api/container_services/{id}/power/{action}``), and the
user is suspended only when none of the customer's purchases is in service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from csonboard.ledger import Onboarding
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from shop_support import open_shop
from shop_support import settle as settle_customer

WORDPRESS = "price_sandbox_wordpress_monthly"  # a project with two services
STATIC = "price_sandbox_static_monthly"  # a project with one service


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with open_shop(tmp_path) as stack:
        yield stack


def buy(shop: SandboxStack, price: str, customer: str | None = None) -> Onboarding:
    email = "ada@example.com"
    session_id = shop.checkout({price: 1}, email=None if customer else email, customer=customer)
    shop.pay(session_id, name="Ada Lovelace", email=email)
    onboarding = shop.wait_for(session_id)
    assert onboarding.status == "done", onboarding.last_error
    settle(shop, onboarding)
    return onboarding


def settle(shop: SandboxStack, onboarding: Onboarding) -> None:
    """Wait until Stripe delivered everything and the purchase's customer is at rest."""
    settle_customer(shop, onboarding.customer_id or "")


def subscription(shop: SandboxStack, onboarding: Onboarding, status: str) -> None:
    """Stripe moves the purchase's subscription to ``status`` (and says so)."""
    shop.sandbox("stripe", f"subscriptions/{onboarding.subscription_id}/status", {"status": status})
    settle(shop, onboarding)


def services(shop: SandboxStack, onboarding: Onboarding) -> dict[int, str]:
    """Each service of the purchase and whether ComputeStacks is told to run it."""
    found: dict[int, str] = {}
    for order in shop.ledger.onboardings.orders(onboarding.session_id):
        assert order.project_id is not None
        for service in shop.cs_admin.list_project_services(order.project_id):
            states = {c.req_state for c in shop.cs_admin.list_service_containers(service.id)}
            [found[service.id]] = states
    return found


def active(shop: SandboxStack, onboarding: Onboarding) -> bool:
    return shop.cs_admin.get_user(onboarding.cs_user_id or 0).active


def actions(shop: SandboxStack, onboarding: Onboarding) -> list[tuple[str, str]]:
    done = shop.ledger.lifecycle.actions(customer_id=onboarding.customer_id, limit=100)
    return [(a.action, a.status) for a in reversed(done) if a.status != "scheduled"]


@pytest.fixture
def two(shop: SandboxStack) -> tuple[Onboarding, Onboarding]:
    """One customer, two subscriptions: WordPress first, then a static site."""
    first = buy(shop, WORDPRESS)
    second = buy(shop, STATIC, customer=first.customer_id)
    assert second.cs_user_id == first.cs_user_id
    assert (
        set(services(shop, first).values()) == set(services(shop, second).values()) == {"running"}
    )
    return first, second


def test_an_unpaid_purchase_stops_alone_and_the_user_stays_active(
    shop: SandboxStack, two: tuple[Onboarding, Onboarding]
) -> None:
    first, second = two

    subscription(shop, first, "unpaid")

    assert set(services(shop, first).values()) == {"stopped"}
    assert set(services(shop, second).values()) == {"running"}
    assert active(shop, first)
    assert ("stop", "done") in actions(shop, first)
    assert ("suspend", "done") not in actions(shop, first)


def test_the_user_is_suspended_only_when_no_purchase_is_in_service(
    shop: SandboxStack, two: tuple[Onboarding, Onboarding]
) -> None:
    first, second = two
    subscription(shop, first, "unpaid")
    subscription(shop, second, "unpaid")
    assert not active(shop, first)
    account = shop.ledger.lifecycle.account(first.customer_id or "")
    assert account is not None
    assert (account.suspended_reason or "").startswith("no purchase in service")

    subscription(shop, first, "active")  # the customer pays the first again

    assert active(shop, first)
    assert set(services(shop, first).values()) == {"running"}
    assert set(services(shop, second).values()) == {"stopped"}
    assert actions(shop, first)[-2:] == [("start", "done"), ("unsuspend", "done")]


def test_payment_starts_only_the_services_csonboard_stopped(
    shop: SandboxStack, two: tuple[Onboarding, Onboarding]
) -> None:
    first, _ = two
    theirs, ours = sorted(services(shop, first))
    shop.cs_admin.power(theirs, "stop")  # the customer stops one of their services

    subscription(shop, first, "unpaid")
    assert services(shop, first) == {theirs: "stopped", ours: "stopped"}
    assert [s.service_id for s in shop.ledger.power.of(session_id=first.session_id)] == [ours]
    subscription(shop, first, "active")

    assert services(shop, first) == {theirs: "stopped", ours: "running"}
    assert ("stop", "declined") in actions(shop, first)
    assert shop.ledger.power.of(session_id=first.session_id) == []


def test_stopping_again_stops_nothing_twice(
    shop: SandboxStack, two: tuple[Onboarding, Onboarding]
) -> None:
    first, _ = two
    subscription(shop, first, "unpaid")
    before = actions(shop, first)

    subscription(shop, first, "unpaid")  # another event about the same state

    assert actions(shop, first) == before
    assert set(services(shop, first).values()) == {"stopped"}


def test_termination_deletes_only_that_purchase_and_an_emptied_account_stays_off(
    tmp_path: Path,
) -> None:
    with sandbox_stack(
        tmp_path / "data",
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
        CSONBOARD_LIFECYCLE_RETENTION_DAYS="0",
    ) as shop:
        shop.sandbox("computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1})
        shop.sandbox("computestacks", "services", {"power_seconds": 0.1})
        first = buy(shop, WORDPRESS)
        second = buy(shop, STATIC, customer=first.customer_id)
        user = first.cs_user_id or 0
        kept = {p.id for p in shop.cs_admin.list_user_projects(user)}

        shop.stripe.v1.subscriptions.cancel(first.subscription_id or "")
        settle(shop, first)
        gone = {o.project_id for o in shop.ledger.onboardings.orders(first.session_id)}
        deadline = time.monotonic() + 15  # ComputeStacks deletes projects in the background
        while {p.id for p in shop.cs_admin.list_user_projects(user)} != kept - gone:
            assert time.monotonic() < deadline, "the first purchase's project was not deleted"
            time.sleep(0.2)
        assert active(shop, first)  # the static site is still in service

        shop.stripe.v1.subscriptions.cancel(second.subscription_id or "")
        settle(shop, second)
        # Everything terminated: the account stays suspended, so an emptied
        # user with bypass_billing cannot order in the panel for free.
        assert not active(shop, first)
        account = shop.ledger.lifecycle.account(first.customer_id or "")
        assert account is not None and account.suspended_reason is not None

        again = buy(shop, STATIC, customer=first.customer_id)  # the customer comes back

        assert again.cs_user_id == user
        assert active(shop, again)
        assert any(
            a.action == "unsuspend" and "new purchase" in a.reason
            for a in shop.ledger.lifecycle.actions(customer_id=first.customer_id, limit=100)
        )


def test_a_user_csonboard_did_not_make_is_never_deleted(tmp_path: Path) -> None:
    from csonboard.computestacks import NewUser

    with sandbox_stack(
        tmp_path / "data",
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
        CSONBOARD_LIFECYCLE_RETENTION_DAYS="0",
        CSONBOARD_LIFECYCLE_DELETE_USER="true",
        CSONBOARD_ONBOARDING_ON_EMAIL_CONFLICT="adopt",
    ) as shop:
        shop.sandbox("computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1})
        made = shop.cs_admin.create_user(
            NewUser(fname="Ada", lname="Lovelace", email="ada@example.com")
        )
        adopted = buy(shop, STATIC)
        assert adopted.cs_user_id == made.id

        shop.stripe.v1.subscriptions.cancel(adopted.subscription_id or "")
        settle(shop, adopted)

        assert shop.cs_admin.get_user(made.id).id == made.id  # still there
        assert ("delete_user", "declined") in actions(shop, adopted)
