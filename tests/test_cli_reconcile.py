"""``csonboard reconcile``: paid Checkout Sessions, read from the Stripe API, that
have no completed onboarding -- because their webhook never arrived -- are
reported and, with --fix, fulfilled. End to end on the sandboxes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from operator_support import buy, cli_env, delivered, run, settle, world

STATIC = "price_sandbox_static_monthly"
STATIC_ONCE = "price_sandbox_static_once"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(
        tmp_path / "data", run_worker=False, CSONBOARD_ONBOARDING_POLL_SECONDS="0.1"
    ) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        yield stack


def pause_webhooks(stack: SandboxStack) -> None:
    """The endpoint is unreachable for longer than Stripe retries: nothing arrives."""
    stack.sandbox("stripe", "webhooks", {"paused": True})


def test_a_purchase_whose_webhook_never_arrived_is_found_and_fulfilled_with_fix(
    stack: SandboxStack,
) -> None:
    env = cli_env(stack.settings)
    onboarded = buy(stack, {STATIC: 1})
    assert settle(stack, onboarded).status == "done"
    pause_webhooks(stack)
    lost = buy(stack, {STATIC: 1}, wait=False)
    stack.checkout({STATIC: 1})  # opened, never paid: not a purchase
    setup = stack.stripe.v1.checkout.sessions.create(
        {"mode": "setup", "currency": "usd", "success_url": "https://example.com/ok"}
    )
    stack.pay(setup.id, email="cardonly@example.com")  # saves a card, buys nothing
    assert stack.ledger.onboardings.get(lost) is None
    before = world(stack)

    report = run(env, "reconcile")

    assert report.exit_code == 1
    rows = [line for line in report.stdout.splitlines() if line.startswith("20")]
    assert len(rows) == 1 and lost in rows[0] and "missing" in rows[0]
    assert "no webhook arrived" in rows[0]
    assert "2 paid Checkout Session(s) since" in report.stdout
    assert "1 onboarded, 0 in progress, 1 need attention" in report.stdout
    assert "1 paid session(s) need attention: `csonboard reconcile --fix`" in report.stderr
    assert world(stack) == before  # a report changes nothing
    as_json = json.loads(run(env, "reconcile", "--json").stdout)
    [unfulfilled] = as_json["reconciliation"]["unfulfilled"]
    assert (unfulfilled["session"]["id"], unfulfilled["status"]) == (lost, "missing")

    fixed = run(env, "reconcile", "--fix")

    assert fixed.exit_code == 0, fixed.output
    assert "queued: 1 new onboarding(s), 0 re-queued" in fixed.stdout
    onboarding = settle(stack, lost)
    assert onboarding.status == "done", onboarding.last_error
    assert onboarding.source == "reconcile"
    assert [o.project_id is not None for o in stack.ledger.onboardings.orders(lost)] == [True]
    again = run(env, "reconcile")
    assert again.exit_code == 0, again.output
    assert "2 onboarded, 0 in progress, 0 need attention" in again.stdout


def test_a_lost_payment_success_is_found_and_the_waiting_onboarding_resumed(
    stack: SandboxStack,
) -> None:
    env = cli_env(stack.settings)
    session_id = stack.checkout({STATIC_ONCE: 1}, mode="payment")
    stack.pay(session_id, email="sepa@example.com", name="Sepa Buyer", payment_status="unpaid")
    delivered(stack)
    assert settle(stack, session_id, statuses=("awaiting_payment",))
    assert "0 paid Checkout Session(s)" in run(env, "reconcile").stdout  # unpaid: not listed
    pause_webhooks(stack)
    stack.sandbox("stripe", f"checkout/sessions/{session_id}/async_payment", {"succeeded": True})

    report = run(env, "reconcile", "--since", "1h")

    assert report.exit_code == 1
    assert f"{session_id}" in report.stdout and "awaiting_payment" in report.stdout

    fixed = run(env, "reconcile", "--since", "1h", "--fix")

    assert fixed.exit_code == 0, fixed.output
    assert "queued: 0 new onboarding(s), 1 re-queued" in fixed.stdout
    assert settle(stack, session_id).status == "done"


def test_reconcile_needs_a_stripe_key_and_a_past_since(tmp_path: Path) -> None:
    env = {"CSONBOARD_DATA_DIR": str(tmp_path), "CSONBOARD_STRIPE_MODE": "test"}

    no_key = run(env, "reconcile")
    future = run(env, "reconcile", "--since", "2999-01-01")

    assert no_key.exit_code == 2
    assert "configuration error: stripe.api_key: required" in no_key.stderr
    assert future.exit_code == 2
    assert "is in the future" in future.stderr
