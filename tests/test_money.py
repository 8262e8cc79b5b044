"""When a purchase's money goes back: refunds, disputes and early fraud warnings,
end to end through the Stripe stand-in (the card network played by its
``/_sandbox`` routes) and the 9.3.1-faithful ComputeStacks simulator."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from csonboard.ledger import Onboarding
from csonboard.runtime import build_worker
from csonboard.sandbox.stack import SandboxStack
from operator_support import cli_env, run
from shop_support import failing_orders, open_shop, settle

pytestmark = pytest.mark.slow

STATIC = "price_sandbox_static_monthly"
STATIC_ONCE = "price_sandbox_static_once"
SECOND = 1 / 86400  # in days


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with open_shop(tmp_path) as stack:
        yield stack


def buy(shop: SandboxStack, price: str, **kw: Any) -> Onboarding:
    session_id = shop.checkout({price: 1}, email="ada@example.com", **kw)
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
    onboarding = shop.wait_for(session_id)
    assert onboarding.status == "done", onboarding.last_error
    settle(shop, onboarding.customer_id or "")
    return onboarding


def charge_of(shop: SandboxStack, onboarding: Onboarding) -> str:
    """The charge that paid for the purchase (its first invoice's, for a subscription)."""
    if onboarding.subscription_id is None:
        session = shop.stripe.v1.checkout.sessions.retrieve(onboarding.session_id)
        intent = shop.stripe.v1.payment_intents.retrieve(str(session.payment_intent))
        return str(intent.latest_charge)
    charges = shop.stripe.v1.charges.list({"customer": onboarding.customer_id or ""})
    return str(charges.data[-1].id)


def requested(shop: SandboxStack, onboarding: Onboarding) -> set[str]:
    """What ComputeStacks is told to do with the purchase's services."""
    states = set()
    for order in shop.ledger.onboardings.orders(onboarding.session_id):
        for service in shop.cs_admin.list_project_services(order.project_id or 0):
            states |= {c.req_state for c in shop.cs_admin.list_service_containers(service.id)}
    return states


def projects(shop: SandboxStack) -> set[int]:
    """The projects ComputeStacks keeps (not those it is deleting)."""
    return {p["id"] for p in shop.cs_state()["projects"] if p["state"] != "deleting"}


def actions(shop: SandboxStack, onboarding: Onboarding) -> list[tuple[str, str]]:
    found = shop.ledger.lifecycle.actions(customer_id=onboarding.customer_id, limit=100)
    return [(a.action, a.status) for a in reversed(found)]


def reversals(shop: SandboxStack) -> str:
    metrics = shop.http.get(f"{shop.receiver_url}/metrics", timeout=30).text
    return "\n".join(line for line in metrics.splitlines() if "money_reversals_total{" in line)


def test_a_one_time_purchase_refunded_in_full_is_stopped_then_deleted_after_retention(
    tmp_path: Path,
) -> None:
    with open_shop(tmp_path, CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(3 * SECOND)) as shop:
        bought = buy(shop, STATIC_ONCE, mode="payment")
        charge = charge_of(shop, bought)
        [project] = [o.project_id for o in shop.ledger.onboardings.orders(bought.session_id)]

        shop.stripe.v1.refunds.create({"charge": charge})
        settle(shop, bought.customer_id or "")

        assert requested(shop, bought) == {"stopped"}
        assert project in projects(shop)  # kept for the retention
        payment = shop.ledger.payments.get(charge)
        assert payment is not None and payment.session_id == bought.session_id
        assert payment.hold == "refund" and payment.final_since is not None
        assert not shop.cs_admin.get_user(bought.cs_user_id or 0).active
        assert 'kind="refund",outcome="full"} 1.0' in reversals(shop)
        shown = run(cli_env(shop.settings), "onboardings", "show", bought.session_id)
        assert shown.exit_code == 0, shown.output
        assert "stopped (refunded)" in shown.stdout
        assert f"{charge}  4900/4900 eur refunded" in shown.stdout
        page = shop.http.get(
            f"{shop.receiver_url}/welcome", params={"session_id": bought.session_id}, timeout=30
        )
        status = shop.http.get(f"{page.url}.json", timeout=10).json()
        assert status["state"] == "stopped" and status["pay_url"] is None
        assert status["message"].startswith("Your payment was refunded")
        assert "Your projects are kept until" in status["message"]

        time.sleep(3.2)
        shop.ledger.lifecycle.wake(bought.customer_id or "")
        settle(shop, bought.customer_id or "")

        assert project not in projects(shop)
        assert ("terminate", "done") in actions(shop, bought)
        terminations = [a for a in actions(shop, bought) if a[0] == "terminate"]
        shop.ledger.lifecycle.wake(bought.customer_id or "")
        settle(shop, bought.customer_id or "")
        assert [a for a in actions(shop, bought) if a[0] == "terminate"] == terminations


def test_a_refund_that_fails_puts_the_purchase_back_in_service_and_keeps_it(
    tmp_path: Path,
) -> None:
    with open_shop(tmp_path, CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(3 * SECOND)) as shop:
        bought = buy(shop, STATIC_ONCE, mode="payment")
        charge = charge_of(shop, bought)
        refund = shop.stripe.v1.refunds.create({"charge": charge})
        settle(shop, bought.customer_id or "")
        assert requested(shop, bought) == {"stopped"}

        shop.sandbox("stripe", f"refunds/{refund.id}/fail", {"reason": "lost_or_stolen_card"})
        settle(shop, bought.customer_id or "")

        assert requested(shop, bought) == {"running"}  # the money is the merchant's again
        payment = shop.ledger.payments.get(charge)
        assert payment is not None and (payment.hold, payment.final_since) == (None, None)
        time.sleep(3.2)  # past the retention the refund would have started
        shop.ledger.lifecycle.wake(bought.customer_id or "")
        settle(shop, bought.customer_id or "")
        assert requested(shop, bought) == {"running"}


def test_a_partial_refund_is_recorded_and_changes_nothing(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC_ONCE, mode="payment")
    charge = charge_of(shop, bought)

    shop.stripe.v1.refunds.create({"charge": charge, "amount": 1000})
    settle(shop, bought.customer_id or "")

    payment = shop.ledger.payments.get(charge)
    assert payment is not None and payment.amount_refunded == 1000 and payment.hold is None
    assert "money.partial_refund = record" in (payment.note or "")
    assert requested(shop, bought) == {"running"}
    assert 'kind="refund",outcome="partial"} 1.0' in reversals(shop)


def test_an_inquiry_changes_nothing(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC)
    charge = charge_of(shop, bought)

    shop.sandbox("stripe", f"charges/{charge}/dispute", {"inquiry": True})
    settle(shop, bought.customer_id or "")

    payment = shop.ledger.payments.get(charge)
    assert payment is not None and payment.dispute_status == "warning_needs_response"
    assert payment.hold is None
    assert requested(shop, bought) == {"running"}


def test_a_chargeback_stops_the_purchase_a_payment_does_not_start_it_winning_does(
    shop: SandboxStack,
) -> None:
    bought = buy(shop, STATIC)
    charge = charge_of(shop, bought)

    dispute = shop.sandbox("stripe", f"charges/{charge}/dispute", {})
    settle(shop, bought.customer_id or "")

    assert requested(shop, bought) == {"stopped"}
    # The next invoice is paid: the dispute's stop is not lifted by a payment.
    shop.sandbox("stripe", f"subscriptions/{bought.subscription_id}/renew", {})
    settle(shop, bought.customer_id or "")
    assert requested(shop, bought) == {"stopped"}
    assert ("start", "done") not in actions(shop, bought)

    shop.sandbox("stripe", f"disputes/{dispute['id']}/close", {"outcome": "won"})
    settle(shop, bought.customer_id or "")

    assert requested(shop, bought) == {"running"}
    payment = shop.ledger.payments.get(charge)
    assert payment is not None and payment.dispute_status == "won" and payment.hold is None
    assert 'kind="dispute",outcome="won"} 1.0' in reversals(shop)


def test_a_lost_dispute_deletes_the_purchase_after_retention(tmp_path: Path) -> None:
    with open_shop(tmp_path, CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(3 * SECOND)) as shop:
        bought = buy(shop, STATIC_ONCE, mode="payment")
        charge = charge_of(shop, bought)
        [project] = [o.project_id for o in shop.ledger.onboardings.orders(bought.session_id)]
        dispute = shop.sandbox("stripe", f"charges/{charge}/dispute", {})
        settle(shop, bought.customer_id or "")
        assert requested(shop, bought) == {"stopped"}

        shop.sandbox("stripe", f"disputes/{dispute['id']}/close", {"outcome": "lost"})
        settle(shop, bought.customer_id or "")
        assert project in projects(shop)

        time.sleep(3.2)
        shop.ledger.lifecycle.wake(bought.customer_id or "")
        settle(shop, bought.customer_id or "")
        assert project not in projects(shop)


def test_an_early_fraud_warning_is_only_recorded_by_default(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC_ONCE, mode="payment")
    charge = charge_of(shop, bought)

    shop.sandbox("stripe", f"charges/{charge}/early_fraud_warning", {})
    settle(shop, bought.customer_id or "")

    payment = shop.ledger.payments.get(charge)
    assert payment is not None and payment.fraud_action == "recorded"
    assert shop.stripe.v1.refunds.list({"charge": charge}).data == []
    assert requested(shop, bought) == {"running"}


def test_a_worker_holding_an_older_read_of_the_charge_does_not_leave_it_behind(
    shop: SandboxStack,
) -> None:
    bought = buy(shop, STATIC_ONCE, mode="payment")
    charge = charge_of(shop, bought)
    shop.stop_worker()
    slow, fast = build_worker(shop.settings), build_worker(shop.settings)
    # The slow worker reads the charge for the fraud warning's event and the
    # answer takes two seconds to arrive; meanwhile the charge is refunded in
    # full and the fast worker follows the refund's events.
    shop.sandbox(
        "stripe",
        "faults",
        {
            "path": f"/v1/charges/{charge}",
            "method": "GET",
            "status": None,
            "delay": 2.0,
            "after": True,
        },
    )
    shop.sandbox("stripe", f"charges/{charge}/early_fraud_warning", {})
    shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
    reading = threading.Thread(target=slow.run_burst)
    reading.start()
    deadline = time.monotonic() + 10
    while shop.http.get(f"{shop.stripe_url}/_sandbox/faults", timeout=10).json()["faults"]:
        assert time.monotonic() < deadline, "the slow worker did not read the charge"
        time.sleep(0.02)
    shop.stripe.v1.refunds.create({"charge": charge})
    shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
    fast.run_burst()
    assert reading.is_alive()  # the race: the refund was followed first
    reading.join(timeout=30)
    for worker in (slow, fast):
        worker.doorbell.close()
        worker.ledger.close()
    shop.working.set()
    settle(shop, bought.customer_id or "")

    payment = shop.ledger.payments.get(charge)
    assert payment is not None
    assert (payment.amount_refunded, payment.hold) == (payment.amount, "refund")
    assert requested(shop, bought) == {"stopped"}


def test_an_early_fraud_warning_refunds_once_under_duplicate_deliveries(tmp_path: Path) -> None:
    with open_shop(tmp_path, CSONBOARD_MONEY_EARLY_FRAUD_WARNING="refund") as shop:
        bought = buy(shop, STATIC)
        charge = charge_of(shop, bought)
        shop.sandbox("stripe", "webhooks", {"duplicate_rate": 1.0})
        # The cancellation fails at first (every network retry): the refund has
        # gone through by then, and the retried event must still cancel.
        shop.sandbox(
            "stripe",
            "faults",
            {"path": "/v1/subscriptions/", "method": "DELETE", "status": 500, "count": 3},
        )

        warning = shop.sandbox("stripe", f"charges/{charge}/early_fraud_warning", {})
        settle(shop, bought.customer_id or "")
        [event] = shop.stripe.v1.events.list(
            {"type": "radar.early_fraud_warning.created", "limit": 1}
        ).data
        for _ in range(2):  # and the Dashboard's "Resend", twice
            shop.sandbox("stripe", f"events/{event.id}/deliver", {})
        settle(shop, bought.customer_id or "")

        [refund] = shop.stripe.v1.refunds.list({"charge": charge}).data
        assert refund.amount == shop.stripe.v1.charges.retrieve(charge).amount
        subscription = shop.stripe.v1.subscriptions.retrieve(bought.subscription_id or "")
        assert subscription.status == "canceled"
        faults = shop.http.get(f"{shop.stripe_url}/_sandbox/faults", timeout=10).json()
        assert faults["faults"] == []  # the failed cancellations were met, and retried
        assert requested(shop, bought) == {"stopped"}
        payment = shop.ledger.payments.get(charge)
        assert payment is not None and payment.fraud_warning_id == warning["id"]
        assert payment.fraud_action == "refunded"
        assert 'kind="early_fraud_warning",outcome="refunded"} 1.0' in reversals(shop)


def test_a_charge_no_purchase_made_is_recorded_as_ignored(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC)
    # A subscription made by API, not sold through Checkout.
    stray = shop.stripe.v1.subscriptions.create(
        {
            "customer": bought.customer_id or "",
            "items": [{"price": STATIC}],
            "payment_behavior": "default_incomplete",
        }
    )
    shop.sandbox("stripe", f"subscriptions/{stray.id}/pay", {})
    settle(shop, bought.customer_id or "")
    charges = shop.stripe.v1.charges.list({"customer": bought.customer_id or ""}).data
    charge = str(charges[0].id)  # the newest
    assert charge != charge_of(shop, bought)

    shop.stripe.v1.refunds.create({"charge": charge})
    settle(shop, bought.customer_id or "")

    payment = shop.ledger.payments.get(charge)
    assert payment is not None and payment.session_id is None
    [event] = shop.ledger.events.find(types=["charge.refunded"])
    assert event.status == "ignored" and "paid for no Checkout Session" in (event.outcome or "")
    assert requested(shop, bought) == {"running"}


# -- provision or refund ------------------------------------------------------------------

REFUND_SOON = str(1 / 3600)  # hours: a purchase not provisioned after a second


def dead_purchase(shop: SandboxStack) -> Onboarding:
    """A subscription paid for whose order failed: dead, its failed project left."""
    with failing_orders(shop):
        session_id = shop.checkout({STATIC: 1}, email="ada@example.com")
        shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
        deadline = time.monotonic() + 30
        while (found := shop.ledger.onboardings.get(session_id)) is None or found.status not in (
            "dead",
            "refunding",
            "refunded",
            "refund_failed",
        ):
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
    return found


def refunds_of(shop: SandboxStack, onboarding: Onboarding) -> list[Any]:
    session = shop.stripe.v1.checkout.sessions.retrieve(onboarding.session_id)
    invoice = shop.stripe.v1.invoices.retrieve(str(session.invoice))
    [paid] = shop.stripe.v1.invoice_payments.list({"invoice": invoice.id}).data
    intent = str(paid.payment.payment_intent)
    return list(shop.stripe.v1.refunds.list({"payment_intent": intent}).data)


def wait_refunded(shop: SandboxStack, session_id: str) -> Onboarding:
    deadline = time.monotonic() + 30
    while (found := shop.ledger.onboardings.get(session_id)) is None or (
        found.status != "refunded"
    ):
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    return found


def test_provision_or_refund_refunds_once_whatever_is_repeated(tmp_path: Path) -> None:
    with open_shop(
        tmp_path,
        CSONBOARD_ONBOARDING_REFUND_AFTER_HOURS=REFUND_SOON,
        CSONBOARD_WORKER_LEASE_SECONDS="2",
    ) as shop:
        # The first refund takes effect but its answer is lost, every try:
        # the refund must be finished later without refunding twice.
        shop.sandbox(
            "stripe",
            "faults",
            {"path": "/v1/refunds", "method": "POST", "status": 500, "after": True, "count": 3},
        )
        dead = dead_purchase(shop)
        [order] = shop.ledger.onboardings.orders(dead.session_id, abandoned=True)
        assert order.leftover is not None and order.leftover in projects(shop)

        refunded = wait_refunded(shop, dead.session_id)

        [refund] = refunds_of(shop, dead)
        assert refund.status == "succeeded"
        faults = shop.http.get(f"{shop.stripe_url}/_sandbox/faults", timeout=10).json()
        assert faults["faults"] == []  # every lost answer was met
        subscription = shop.stripe.v1.subscriptions.retrieve(dead.subscription_id or "")
        assert subscription.status == "canceled"
        assert order.leftover not in projects(shop)
        assert "refunded" in (refunded.note or "")

        env = {**cli_env(shop.settings)}
        again = run(env, "refund", dead.session_id)
        assert again.exit_code == 0, again.output
        assert "already refunded" in again.stdout
        replayed = run(env, "replay", "--session", dead.session_id, "--from-step", "place_order")
        assert replayed.exit_code == 1
        assert "never provisioned again" in replayed.output
        shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
        assert len(refunds_of(shop, dead)) == 1
        assert shop.ledger.onboardings.get(dead.session_id).status == "refunded"  # type: ignore[union-attr]
        page = shop.http.get(
            f"{shop.receiver_url}/welcome", params={"session_id": dead.session_id}, timeout=30
        )
        assert page.url.startswith(f"{shop.receiver_url}/status/")
        status = shop.http.get(f"{page.url}.json", timeout=10).json()
        assert status["state"] == "refunded"
        assert "refunded your payment" in status["message"]


def test_an_operator_refunds_by_hand_and_twice_at_once_refunds_once(shop: SandboxStack) -> None:
    dead = dead_purchase(shop)
    env = {**os.environ, **cli_env(shop.settings)}

    dry = run(cli_env(shop.settings), "refund", dead.session_id, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing was changed" in dry.stdout
    assert refunds_of(shop, dead) == []

    command = [sys.executable, "-m", "csonboard", "refund", dead.session_id]
    both = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in both]

    codes = sorted(p.returncode for p in both)
    assert codes[0] == 0, outputs
    assert codes[1] in (0, 1), outputs  # the loser finds it refunded, or being refunded
    wait_refunded(shop, dead.session_id)
    assert len(refunds_of(shop, dead)) == 1


def wait_status(shop: SandboxStack, session_id: str, status: str) -> Onboarding:
    deadline = time.monotonic() + 30
    while (found := shop.ledger.onboardings.get(session_id)) is None or found.status != status:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    return found


def page_state(shop: SandboxStack, session_id: str) -> dict[str, Any]:
    page = shop.http.get(
        f"{shop.receiver_url}/welcome", params={"session_id": session_id}, timeout=30
    )
    found: dict[str, Any] = shop.http.get(f"{page.url}.json", timeout=10).json()
    return found


def cs_user(shop: SandboxStack, user_id: int | None) -> dict[str, Any]:
    return next(u for u in shop.cs_state()["users"] if u["id"] == user_id)


def test_a_refund_that_keeps_failing_backs_off_then_waits_for_a_person(tmp_path: Path) -> None:
    with open_shop(
        tmp_path,
        CSONBOARD_ONBOARDING_REFUND_AFTER_HOURS=REFUND_SOON,
        CSONBOARD_WORKER_MAX_ATTEMPTS="2",
        CSONBOARD_STRIPE_MAX_NETWORK_RETRIES="0",
    ) as shop:
        shop.sandbox("stripe", "faults", {"path": "/v1/refunds", "method": "POST", "count": 2})
        dead = dead_purchase(shop)

        failed = wait_status(shop, dead.session_id, "refund_failed")
        time.sleep(1.5)  # several sweeps: a refund left for a person is not tried again

        again = shop.ledger.onboardings.get(dead.session_id)
        assert again is not None and again.refund_attempts == failed.refund_attempts == 2
        assert again.status == "refund_failed"
        assert f"csonboard refund {dead.session_id}" in (again.note or "")
        assert refunds_of(shop, dead) == []
        assert page_state(shop, dead.session_id)["state"] == "failed"
        env = cli_env(shop.settings)
        replayed = run(env, "replay", "--session", dead.session_id)
        assert replayed.exit_code == 1 and "tries the refund again" in replayed.output

        by_hand = run(env, "refund", dead.session_id)  # the cause is gone: it goes through

        assert by_hand.exit_code == 0, by_hand.output
        [refund] = refunds_of(shop, dead)
        assert refund.status == "succeeded"
        refunded = shop.ledger.onboardings.get(dead.session_id)
        assert refunded is not None and refunded.status == "refunded"
        settle(shop, dead.customer_id or "")
        # The user csonboard created for this purchase alone has bypass_billing:
        # suspended, so the panel cannot order for free.
        assert cs_user(shop, dead.cs_user_id)["active"] is False


def test_a_refund_stripe_could_not_deliver_is_shown_and_done_again_by_hand(
    tmp_path: Path,
) -> None:
    with open_shop(tmp_path, CSONBOARD_ONBOARDING_REFUND_AFTER_HOURS=REFUND_SOON) as shop:
        dead = dead_purchase(shop)
        wait_refunded(shop, dead.session_id)
        [first] = refunds_of(shop, dead)

        shop.sandbox("stripe", f"refunds/{first.id}/fail", {"reason": "expired_or_canceled_card"})

        failed = wait_status(shop, dead.session_id, "refund_failed")
        assert "Stripe could not refund" in (failed.note or "")
        assert page_state(shop, dead.session_id)["state"] == "failed"
        result = run(cli_env(shop.settings), "refund", dead.session_id)
        assert result.exit_code == 0, result.output
        refunds = refunds_of(shop, dead)
        assert sorted(r.status for r in refunds) == ["failed", "succeeded"]
        shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
        again = shop.ledger.onboardings.get(dead.session_id)
        assert again is not None and again.status == "refunded"  # the new refund stands
        assert page_state(shop, dead.session_id)["state"] == "refunded"


def test_refunding_a_purchase_whose_order_is_still_processing_deletes_its_project(
    shop: SandboxStack,
) -> None:
    shop.sandbox("computestacks", "orders", {"pending_seconds": 0, "processing_seconds": 3600})
    session_id = shop.checkout({STATIC_ONCE: 1}, mode="payment", email="ada@example.com")
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
    deadline = time.monotonic() + 30
    while not [p for p in shop.cs_state()["projects"] if p["state"] != "deleting"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    [project] = projects(shop)
    waiting = shop.ledger.onboardings.get(session_id)
    assert waiting is not None and waiting.status in ("running", "waiting")

    result = run(cli_env(shop.settings), "refund", session_id)

    assert result.exit_code in (0, 1), result.output  # 1: the worker held it that moment
    if result.exit_code == 1:
        time.sleep(1.5)
        result = run(cli_env(shop.settings), "refund", session_id)
        assert result.exit_code == 0, result.output
    assert project not in projects(shop)
    refunded = wait_refunded(shop, session_id)
    settle(shop, refunded.customer_id or "")
    assert cs_user(shop, refunded.cs_user_id)["active"] is False
    time.sleep(1)  # the worker's wait for the project ends without provisioning anything
    assert shop.ledger.onboardings.get(session_id).status == "refunded"  # type: ignore[union-attr]
    assert projects(shop) == set()


def test_a_provisioned_purchase_is_not_refunded_here(shop: SandboxStack) -> None:
    bought = buy(shop, STATIC)

    result = run(cli_env(shop.settings), "refund", bought.session_id)

    assert result.exit_code == 1
    assert "Stripe's Dashboard" in result.output
    assert requested(shop, bought) == {"running"}


def test_a_dispute_is_answered_once_with_what_csonboard_saw_and_nothing_personal(
    tmp_path: Path,
) -> None:
    with open_shop(tmp_path, CSONBOARD_MONEY_SUBMIT_EVIDENCE="true") as shop:
        bought = buy(shop, STATIC_ONCE, mode="payment")
        welcome = f"{shop.receiver_url}/welcome"
        for _ in range(2):  # the buyer's browser opens their purchase, twice
            page = shop.http.get(
                welcome,
                params={"session_id": bought.session_id},
                headers={"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"},
                timeout=30,
            )
            assert page.status_code == 200
        # A link checker's HEAD and a script's plain GET are not the buyer.
        shop.http.head(page.url, timeout=30)
        shop.http.get(page.url, timeout=30)
        charge = charge_of(shop, bought)

        dispute = shop.sandbox("stripe", f"charges/{charge}/dispute", {})
        settle(shop, bought.customer_id or "")

        answered = shop.stripe.v1.disputes.retrieve(dispute["id"])
        assert answered.status == "under_review"
        assert answered.evidence_details.submission_count == 1
        evidence = answered.evidence
        assert evidence.service_date == f"{bought.created_at:%Y-%m-%d}"
        assert "static-site" in (evidence.product_description or "")
        log = evidence.access_activity_log or ""
        assert "the hosting projects of this purchase were ready" in log
        assert "2 times" in log and "opened the status page" in log
        assert "ada@example.com" not in str(evidence) and "Lovelace" not in str(evidence)
        payment = shop.ledger.payments.get(charge)
        assert payment is not None and payment.evidence_submitted_at is not None
        assert requested(shop, bought) == {"stopped"}  # answering does not lift the stop


def test_a_subscription_whose_dispute_is_lost_is_cancelled_and_deleted_after_retention(
    tmp_path: Path,
) -> None:
    with open_shop(tmp_path, CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(3 * SECOND)) as shop:
        bought = buy(shop, STATIC)
        charge = charge_of(shop, bought)
        [project] = [o.project_id for o in shop.ledger.onboardings.orders(bought.session_id)]
        dispute = shop.sandbox("stripe", f"charges/{charge}/dispute", {})
        shop.sandbox("stripe", f"disputes/{dispute['id']}/close", {"outcome": "lost"})
        settle(shop, bought.customer_id or "")
        assert requested(shop, bought) == {"stopped"}
        subscription = shop.stripe.v1.subscriptions.retrieve(bought.subscription_id or "")
        assert subscription.status == "active"  # kept for the retention

        time.sleep(3.2)
        shop.ledger.lifecycle.wake(bought.customer_id or "")
        settle(shop, bought.customer_id or "")

        assert project not in projects(shop)
        subscription = shop.stripe.v1.subscriptions.retrieve(bought.subscription_id or "")
        assert subscription.status == "canceled"  # no more bills for a service that is gone
        assert ("cancel", "done") in actions(shop, bought)
