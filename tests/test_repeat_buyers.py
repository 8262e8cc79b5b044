"""Repeat guests: a buyer without a Stripe customer on the session (payment
mode) who has bought through csonboard before is the same Stripe customer and
the same ComputeStacks user; a replay never makes a second customer, even after
Stripe has forgotten the idempotency key. End to end on the sandboxes
(``csonboard.sandbox.stack``), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from csonboard.computestacks import NewUser
from csonboard.ledger import Onboarding
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from operator_support import cli_env, run

STATIC_ONCE = "price_sandbox_static_once"
ADDRESS = {"line1": "12 St James's Square", "city": "London", "country": "GB"}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(tmp_path / "data", CSONBOARD_ONBOARDING_POLL_SECONDS="0.1") as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.2, "processing_seconds": 0.2}
        )
        yield stack


@pytest.fixture
def one_try(tmp_path: Path) -> Iterator[SandboxStack]:
    """A shop whose worker tries each step once: a transient failure is dead at
    once, as after an outage that outlasted every retry."""
    with sandbox_stack(
        tmp_path / "data",
        CSONBOARD_WORKER_MAX_ATTEMPTS="1",
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
    ) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.2, "processing_seconds": 0.2}
        )
        yield stack


def stripe_forgets(shop: SandboxStack) -> None:
    """The Stripe stand-in forgets every idempotency key it has been given, as
    Stripe may 24 hours after a key's first use."""
    shop.sandbox("stripe", "idempotency/forget")


def guest_checkout(shop: SandboxStack, email: str = "ada@example.com") -> str:
    """A guest pays for a one-time plan (payment mode: the session has no customer)."""
    session_id = shop.checkout({STATIC_ONCE: 1}, mode="payment", email=email)
    shop.pay(session_id, name="Ada Lovelace", email=email, address=ADDRESS)
    return session_id


def guest_buys(shop: SandboxStack, email: str = "ada@example.com") -> Onboarding:
    return shop.wait_for(guest_checkout(shop, email))


def customer_step(shop: SandboxStack, session_id: str) -> dict[str, Any]:
    [step] = [
        s for s in shop.ledger.onboardings.steps(session_id) if s.step == "ensure_stripe_customer"
    ]
    return step.result


def stripe_customers(shop: SandboxStack) -> list[dict[str, Any]]:
    """Every customer the Stripe stand-in has (deleted ones left out)."""
    state = shop.http.get(f"{shop.stripe_url}/_sandbox/state", timeout=30).json()
    customers: list[dict[str, Any]] = state["objects"]["customer"]
    return customers


def cs_users(shop: SandboxStack) -> list[dict[str, Any]]:
    return [u for u in shop.cs_state()["users"] if not u["is_admin"]]


def replay(shop: SandboxStack, session_id: str, *args: str) -> Onboarding:
    """``csonboard replay --session ...`` as an operator types it; the shop's
    worker then runs the onboarding to its end."""
    result = run(cli_env(shop.settings), "replay", "--session", session_id, *args)
    assert result.exit_code == 0, result.output
    return shop.wait_for(session_id)


def test_a_guest_who_buys_twice_is_one_customer_and_one_user_with_two_projects(
    shop: SandboxStack,
) -> None:
    first = guest_buys(shop)
    second = guest_buys(shop)

    assert (first.status, second.status) == ("done", "done"), second.last_error
    assert customer_step(shop, first.session_id)["how"] == "created"
    reused = customer_step(shop, second.session_id)
    assert (reused["how"], reused["customer_id"], reused["created"]) == (
        "repeat_buyer",
        first.customer_id,
        False,
    )
    assert reused["earlier_session"] == first.session_id
    assert reused["cs_user_id"] == first.cs_user_id
    assert f"Stripe customer {first.customer_id}" in reused["reason"]
    assert second.customer_id == first.customer_id
    assert second.cs_user_id == first.cs_user_id
    assert [c["id"] for c in stripe_customers(shop)] == [first.customer_id]
    [user] = cs_users(shop)
    assert user["external_id"] == first.customer_id
    projects = shop.cs_admin.list_user_projects(user["id"])
    assert len(projects) == 2
    listed = shop.stripe.v1.customers.retrieve(first.customer_id or "").metadata
    assert listed["computestacks_project_ids"] == ",".join(
        str(p) for p in sorted(p.id for p in projects)
    )


def test_a_repeat_guest_typing_the_email_in_another_case_is_the_same_person(
    shop: SandboxStack,
) -> None:
    # ComputeStacks keeps emails lower-cased and finds them so (Devise's
    # case_insensitive_keys); the Stripe customer keeps the case it was given.
    first = guest_buys(shop, "ada@example.com")
    second = guest_buys(shop, "Ada@Example.com")

    assert second.status == "done", second.last_error
    assert customer_step(shop, second.session_id)["how"] == "repeat_buyer"
    assert second.customer_id == first.customer_id
    assert len(stripe_customers(shop)) == 1
    [user] = cs_users(shop)
    assert (user["email"], user["external_id"]) == ("ada@example.com", first.customer_id)
    assert len(shop.cs_admin.list_user_projects(user["id"])) == 2


@pytest.mark.parametrize(
    ("policy", "linked_to", "outcome", "why"),
    [
        ("fail", None, 'on_email_conflict = "adopt"', "has no external_id"),
        ("adopt", None, "adopted", "has no external_id"),
        ("fail", "cus_someone_else", 'on_email_conflict = "adopt"', "no onboarding recorded"),
        ("adopt", "a real customer", "linked to 'cus_", "no onboarding recorded"),
    ],
)
def test_a_guest_whose_email_has_an_account_csonboard_did_not_make_meets_the_policy(
    tmp_path: Path, policy: str, linked_to: str | None, outcome: str, why: str
) -> None:
    with sandbox_stack(tmp_path, CSONBOARD_ONBOARDING_ON_EMAIL_CONFLICT=policy) as shop:
        external_id = linked_to
        if linked_to == "a real customer":
            # A Stripe customer with the buyer's email that no onboarding recorded.
            external_id = shop.stripe.v1.customers.create({"email": "ada@example.com"}).id
        existing = shop.cs_admin.create_user(
            NewUser(fname="Ada", lname="Byron", email="ada@example.com", external_id=external_id)
        )

        onboarding = guest_buys(shop)

        chosen = customer_step(shop, onboarding.session_id)
        assert (chosen["how"], chosen["created"]) == ("created", True)
        assert f"ComputeStacks user #{existing.id}" in chosen["not_joined"]
        assert why in chosen["not_joined"]
        if outcome == "adopted":
            assert onboarding.status == "done", onboarding.last_error
            assert onboarding.cs_user_id == existing.id
        else:
            assert onboarding.status == "dead"
            assert f"user #{existing.id}" in (onboarding.last_error or "")
            assert outcome in (onboarding.last_error or "")
            [user] = cs_users(shop)
            assert user["external_id"] == external_id


@pytest.mark.parametrize("change", ["deleted", "email changed"])
def test_an_earlier_customer_no_longer_the_buyers_in_stripe_is_not_reused(
    shop: SandboxStack, change: str
) -> None:
    first = guest_buys(shop)
    assert first.status == "done", first.last_error
    customer = first.customer_id or ""
    if change == "deleted":
        shop.stripe.v1.customers.delete(customer)
    else:
        shop.stripe.v1.customers.update(customer, {"email": "lovelace@example.com"})

    second = guest_buys(shop)

    chosen = customer_step(shop, second.session_id)
    assert chosen["how"] == "created" and chosen["customer_id"] != customer
    assert f"Stripe customer {customer}" in chosen["not_joined"]
    # Today's rule then: the email has an account linked to another customer.
    assert second.status == "dead"
    assert f"already has ComputeStacks user #{first.cs_user_id}" in (second.last_error or "")
    [user] = cs_users(shop)
    assert user["external_id"] == customer


def test_a_replay_after_stripe_forgot_the_key_reuses_the_customer_recorded_earlier(
    shop: SandboxStack,
) -> None:
    # The guest's email has someone else's account: dead at ensure_cs_user,
    # with the Stripe customer made and recorded.
    other = shop.cs_admin.create_user(NewUser(fname="Ada", lname="Byron", email="ada@example.com"))
    dead = guest_buys(shop)
    assert (dead.status, dead.step) == ("dead", "ensure_cs_user")
    recorded = dead.customer_id
    assert recorded and [c["id"] for c in stripe_customers(shop)] == [recorded]
    # Days later the operator frees the email and re-runs from the customer step.
    shop.cs_admin.delete_user(other.id)
    stripe_forgets(shop)

    done = replay(shop, dead.session_id, "--from-step", "ensure_stripe_customer")

    assert done.status == "done", done.last_error
    assert done.customer_id == recorded
    chosen = customer_step(shop, dead.session_id)
    assert (chosen["how"], chosen["customer_id"], chosen["created"]) == (
        "recorded",
        recorded,
        False,
    )
    assert [c["id"] for c in stripe_customers(shop)] == [recorded]
    [user] = cs_users(shop)
    assert user["external_id"] == recorded


def test_a_customer_whose_answer_was_lost_is_found_after_stripe_forgot_the_key(
    one_try: SandboxStack,
) -> None:
    shop = one_try
    # Stripe creates the customer, then its answer is lost: the step dies.
    shop.sandbox(
        "stripe",
        "faults",
        {
            "method": "POST",
            "path": "/v1/customers",
            "status": 500,
            "after": True,
            "should_retry": False,
        },
    )
    dead = guest_buys(shop)
    assert (dead.status, dead.step) == ("dead", "ensure_stripe_customer")
    assert dead.customer_id is None
    [made] = stripe_customers(shop)
    stripe_forgets(shop)

    done = replay(shop, dead.session_id)

    assert done.status == "done", done.last_error
    chosen = customer_step(shop, dead.session_id)
    assert (chosen["how"], chosen["customer_id"]) == ("found", made["id"])
    assert [c["id"] for c in stripe_customers(shop)] == [made["id"]]


def test_a_guest_given_a_second_customer_meanwhile_is_joined_to_the_first_by_a_replay(
    one_try: SandboxStack,
) -> None:
    shop = one_try
    # The later purchase got its own customer, then ComputeStacks failed (503)
    # before its user was made; meanwhile the earlier purchase made the user.
    shop.sandbox(
        "computestacks", "faults", {"method": "POST", "path": "/api/admin/users", "status": 503}
    )
    later = guest_buys(shop)
    assert (later.status, later.step) == ("dead", "ensure_cs_user")
    earlier = guest_buys(shop)
    assert earlier.status == "done", earlier.last_error
    assert earlier.customer_id != later.customer_id

    resumed = replay(shop, later.session_id)

    assert (resumed.status, resumed.step) == ("dead", "ensure_cs_user")
    message = resumed.last_error or ""
    assert f"csonboard made for Stripe customer {earlier.customer_id}" in message
    assert "--from-step ensure_stripe_customer" in message

    joined = replay(shop, later.session_id, "--from-step", "ensure_stripe_customer")

    assert joined.status == "done", joined.last_error
    chosen = customer_step(shop, later.session_id)
    assert (chosen["how"], chosen["customer_id"], chosen["instead_of"]) == (
        "repeat_buyer",
        earlier.customer_id,
        later.customer_id,
    )
    assert (joined.customer_id, joined.cs_user_id) == (earlier.customer_id, earlier.cs_user_id)
    [user] = cs_users(shop)
    assert len(shop.cs_admin.list_user_projects(user["id"])) == 2
