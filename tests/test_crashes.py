"""Crashes: a real ``csonboard worker`` process is SIGKILLed in the middle of each
call an onboarding makes -- a ComputeStacks request held open by the simulator
before or after it took effect, or a Stripe request delayed by the stand-in --
then a new worker is started. Every onboarding must complete with one user,
one order per unit, one Stripe customer, and no API credential left behind.

Each step's first call is among the kill points, so this also kills the worker
at every step boundary (after one step's checkpoint, before the next one's
effects); steps without calls of their own have no effects to interrupt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from conftest import WEBHOOK_SECRET, Sandboxes, Stack
from csonboard.ledger import Onboarding
from csonboard.sandbox.server import RunningServer, start_in_thread
from csonboard_webhooks import create_app

# How the workers under test are tuned: a short lease, so that the restarted
# worker takes over quickly; quick sweeps and polls.
WORKER_ENV = {
    "CSONBOARD_WORKER_LEASE_SECONDS": "2",
    "CSONBOARD_WORKER_SWEEP_SECONDS": "0.3",
    "CSONBOARD_WORKER_POLL_SECONDS": "0.1",
    "CSONBOARD_WORKER_BACKOFF_SECONDS": "0.3",
    "CSONBOARD_ONBOARDING_POLL_SECONDS": "0.2",
    "CSONBOARD_ONBOARDING_POLL_MAX_SECONDS": "0.5",
}


@dataclass(frozen=True)
class KillPoint:
    name: str
    service: str  # "cs" or "stripe"
    fault: dict[str, Any]
    guest: bool = False  # buy as a guest (payment mode), so a customer is created


CS_HOLD = {"count": 1, "hold_timeout": 60}
KILL_POINTS = [
    KillPoint(
        "stripe: read the session",
        "stripe",
        {"method": "GET", "path": "/v1/checkout/sessions/", "status": None, "delay": 2},
    ),
    KillPoint(
        "cs: resolve the image variant",
        "cs",
        {"method": "GET", "path": "/api/admin/container_images/", "hold": "before"},
    ),
    KillPoint(
        "stripe: create the guest's customer",
        "stripe",
        {"method": "POST", "path": "/v1/customers", "status": None, "delay": 2},
        guest=True,
    ),
    KillPoint(
        "cs: look the user up",
        "cs",
        {"method": "GET", "path": "/api/admin/users/", "hold": "before"},
    ),
    KillPoint(
        "cs: create the user, before it exists",
        "cs",
        {"method": "POST", "path": "/api/admin/users", "hold": "before"},
    ),
    KillPoint(
        "cs: create the user, after it exists",
        "cs",
        {"method": "POST", "path": "/api/admin/users", "hold": "after"},
    ),
    KillPoint(
        "cs: list the user's orders",
        "cs",
        {"method": "GET", "path": "/api/orders", "hold": "before"},
    ),
    KillPoint(
        "cs: place the order, before it exists",
        "cs",
        {"method": "POST", "path": "/api/orders", "hold": "before"},
    ),
    KillPoint(
        "cs: place the order, after it exists",
        "cs",
        {"method": "POST", "path": "/api/orders", "hold": "after"},
    ),
    KillPoint(
        "cs: delete the credential, before",
        "cs",
        {"method": "DELETE", "path": "/api/admin/users/*/api_credentials/*", "hold": "before"},
    ),
    KillPoint(
        "cs: delete the credential, after",
        "cs",
        {"method": "DELETE", "path": "/api/admin/users/*/api_credentials/*", "hold": "after"},
    ),
    KillPoint(
        "cs: read the order",
        "cs",
        {"method": "GET", "path": "/api/admin/orders/", "hold": "before"},
    ),
    KillPoint(
        "stripe: write the ids onto the customer",
        "stripe",
        {"method": "POST", "path": "/v1/customers/", "status": None, "delay": 2},
    ),
]


class Shop:
    """Sandboxes, an in-process receiver on the stack's ledger, and worker
    processes that can be killed."""

    def __init__(self, stack: Stack, sandboxes: Sandboxes, tmp_path: Path) -> None:
        self.stack = stack
        self.sandboxes = sandboxes
        self.ledger = stack.ledger()
        self.receiver: RunningServer = start_in_thread(
            create_app(stack.settings, ledger=self.ledger, doorbell=stack.doorbell())
        )
        sandboxes.deliver_to(f"{self.receiver.url}/webhooks/stripe", WEBHOOK_SECRET)
        self.env = {**os.environ, **stack.env, **sandboxes.env(**WORKER_ENV)}
        self.log = tmp_path / "workers.log"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.stripe = stripe.StripeClient(
            sandboxes.stripe_key, base_addresses={"api": sandboxes.stripe_url}
        )
        self.http = requests.Session()
        self.post("cs", "orders", {"pending_seconds": 0.2, "processing_seconds": 0.2})

    def post(self, service: str, path: str, body: dict[str, Any]) -> Any:
        base = self.sandboxes.cs_url if service == "cs" else self.sandboxes.stripe_url
        response = self.http.post(f"{base}/_sandbox/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, service: str, path: str) -> Any:
        base = self.sandboxes.cs_url if service == "cs" else self.sandboxes.stripe_url
        return self.http.get(f"{base}/_sandbox/{path}", timeout=30).json()

    def start_worker(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as sink:
            worker = subprocess.Popen(
                [sys.executable, "-m", "csonboard", "worker", "--no-migrate"],
                env=self.env,
                stdout=sink,
                stderr=sink,
            )
        self.workers.append(worker)
        return worker

    def buy(self, *, guest: bool = False, quantity: int = 1) -> str:
        price = "price_sandbox_static_once" if guest else "price_sandbox_wordpress_monthly"
        session = self.stripe.v1.checkout.sessions.create(
            {
                "mode": "payment" if guest else "subscription",
                "line_items": [{"price": price, "quantity": quantity}],
                "customer_email": "ada@example.com",
                "success_url": "https://shop.example/thanks",
            }
        )
        self.post("stripe", f"checkout/sessions/{session.id}/complete", {"name": "Ada Lovelace"})
        return str(session.id)

    def wait_until(self, condition: Any, what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; see {self.log}")

    def finished(self, session_id: str, timeout: float = 60) -> Onboarding:
        def done() -> Onboarding | None:
            onboarding = self.ledger.onboardings.get(session_id)
            return onboarding if onboarding and onboarding.status in ("done", "dead") else None

        finished: Onboarding = self.wait_until(done, f"onboarding {session_id}", timeout)
        return finished

    def close(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        self.receiver.stop()


@pytest.fixture
def shop(stack: Stack, sandboxes: Sandboxes, tmp_path: Path) -> Iterator[Shop]:
    shop = Shop(stack, sandboxes, tmp_path)
    try:
        yield shop
    finally:
        shop.close()


@pytest.mark.parametrize("point", KILL_POINTS, ids=[p.name for p in KILL_POINTS])
def test_a_worker_killed_mid_call_is_replaced_and_nothing_is_duplicated(
    shop: Shop, point: KillPoint
) -> None:
    shop.post(
        point.service, "faults", {**(CS_HOLD if point.service == "cs" else {}), **point.fault}
    )
    first = shop.start_worker()
    session_id = shop.buy(guest=point.guest)

    if point.service == "cs":
        shop.wait_until(lambda: shop.get("cs", "held")["held"], f"a held call ({point.name})")
    else:
        shop.wait_until(
            lambda: not shop.get("stripe", "faults")["faults"], f"the delayed call ({point.name})"
        )
    first.send_signal(signal.SIGKILL)
    first.wait()
    if point.service == "cs":
        shop.post("cs", "release", {})  # the server goes on without its caller

    shop.start_worker()
    onboarding = shop.finished(session_id)

    assert onboarding.status == "done", (
        onboarding.step,
        onboarding.last_error,
        shop.log.read_text()[-3000:],
    )
    state = shop.get("cs", "state")
    users = [u for u in state["users"] if not u["is_admin"]]
    assert len(users) == 1, users
    assert [o["owner"] for o in state["orders"]] == [users[0]["id"]]
    assert users[0]["credentials"] == 0
    assert shop.get("stripe", "state")["counts"]["customer"] == 1
    [order] = shop.ledger.onboardings.orders(onboarding.session_id)
    assert order.order_id == state["orders"][0]["id"]
    assert order.project_id is not None


@pytest.mark.parametrize("hold", ["before", "after"])
def test_a_credential_whose_creation_was_cut_off_is_reported_for_an_operator(
    shop: Shop, hold: str
) -> None:
    # The worker dies with the credential request in flight; ComputeStacks
    # completes it anyway. Its id never arrived and there is no API to list a
    # user's credentials, so csonboard cannot delete it: it says so plainly.
    shop.post(
        "cs",
        "faults",
        {**CS_HOLD, "method": "POST", "path": "/api/admin/users/*/api_credentials", "hold": hold},
    )
    first = shop.start_worker()
    session_id = shop.buy()
    shop.wait_until(lambda: shop.get("cs", "held")["held"], "the held credential call")
    first.send_signal(signal.SIGKILL)
    first.wait()
    shop.post("cs", "release", {})

    shop.start_worker()
    onboarding = shop.finished(session_id)

    assert onboarding.status == "done"
    state = shop.get("cs", "state")
    [user] = [u for u in state["users"] if not u["is_admin"]]
    assert len(state["orders"]) == 1
    assert user["credentials"] == 1  # the one whose id never arrived
    name = f"csonboard {session_id} #1"
    assert name in (onboarding.note or "")
    [place] = [s for s in shop.ledger.onboardings.steps(session_id) if s.step == "place_order"]
    assert place.result["credentials_unaccounted"] == [name]


REPLAY = (sys.executable, "-m", "csonboard", "replay")
CLEANUP_KILL_POINTS = {
    "delete the leftover, before": {"method": "DELETE", "path": "/api/projects/", "hold": "before"},
    "delete the leftover, after": {"method": "DELETE", "path": "/api/projects/", "hold": "after"},
    "order again, after the deletion was recorded": {
        "method": "POST",
        "path": "/api/orders",
        "hold": "before",
    },
}


@pytest.mark.parametrize("point", list(CLEANUP_KILL_POINTS))
def test_a_worker_killed_while_cleaning_up_a_failed_order_deletes_and_orders_once(
    shop: Shop, point: str
) -> None:
    shop.post("cs", "orders", {"outcome": "fail"})
    first = shop.start_worker()
    session_id = shop.buy()
    dead = shop.finished(session_id)
    assert (dead.status, dead.step) == ("dead", "await_project")
    [failed] = shop.ledger.onboardings.orders(session_id)
    leftover = failed.leftover
    assert leftover is not None and f"it left project #{leftover} " in (dead.last_error or "")
    shop.post("cs", "orders", {"outcome": "complete"})
    shop.post("cs", "faults", {**CS_HOLD, **CLEANUP_KILL_POINTS[point]})

    replay = subprocess.run(
        [*REPLAY, "--session", session_id, "--from-step", "place_order"],
        env=shop.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    shop.wait_until(lambda: shop.get("cs", "held")["held"], f"the held call ({point})")
    first.send_signal(signal.SIGKILL)
    first.wait()
    # Any further DELETE of a project would use this up: the deletion took
    # effect (it is released below) or was recorded, so it is never sent again.
    shop.post("cs", "faults", {"method": "DELETE", "path": "/api/projects/", "delay": 0.001})
    shop.post("cs", "release", {})  # the server goes on without its caller

    shop.start_worker()
    onboarding = shop.finished(session_id)

    assert onboarding.status == "done", (onboarding.last_error, shop.log.read_text()[-3000:])
    state = shop.get("cs", "state")
    assert sorted(o["status"] for o in state["orders"]) == ["completed", "failed"]  # one new
    [order] = shop.ledger.onboardings.orders(session_id)
    assert order.project_id is not None and order.project_id != leftover
    projects = {p["id"]: p["state"] for p in state["projects"]}
    assert projects.get(leftover, "deleting") == "deleting"  # deleted (or already removed)
    assert [p for p, s in projects.items() if s != "deleting"] == [order.project_id]
    abandoned = shop.ledger.onboardings.orders(session_id, abandoned=True)
    assert [(o.status, o.left_project_id) for o in abandoned if o.order_id == failed.order_id] == [
        ("leftover_deleted", leftover)
    ]
    assert [f["method"] for f in shop.get("cs", "faults")["faults"]] == ["DELETE"]  # unused
    metadata = shop.stripe.v1.customers.retrieve(onboarding.customer_id or "").metadata
    assert metadata["computestacks_project_ids"] == str(order.project_id)


@pytest.mark.parametrize("after", [False, True], ids=["before-it-took-effect", "after-it-did"])
def test_a_worker_killed_while_reporting_usage_bills_each_row_once(shop: Shop, after: bool) -> None:
    shop.env["CSONBOARD_USAGE_INTERVAL_MINUTES"] = "0.01"  # sync every 0.6 s
    first = shop.start_worker()
    onboarding = shop.finished(shop.buy())
    rows = [
        shop.post("cs", "billing_usages", {"user_id": onboarding.cs_user_id, "qty": "2"})
        for _ in range(5)
    ]
    meter_events = {"method": "POST", "path": "/v1/billing/meter_events"}
    # The third meter event of the batch hangs (before or after Stripe took it).
    shop.post("stripe", "faults", {**meter_events, "status": None, "delay": 0.01, "count": 2})
    shop.post("stripe", "faults", {**meter_events, "status": None, "delay": 3, "after": after})
    shop.wait_until(lambda: not shop.get("stripe", "faults")["faults"], "the hanging meter event")
    first.send_signal(signal.SIGKILL)
    first.wait()

    shop.start_worker()

    def all_reported() -> bool:
        found = shop.ledger.usage.find(customer_id=onboarding.customer_id, limit=100)
        return len(found) == len(rows) and all(r.status == "reported" for r in found)

    shop.wait_until(all_reported, "every usage row reported")
    billing = shop.get("stripe", "state")["billing"]
    accepted = [
        e
        for e in billing["meter_events"]
        if e["payload"]["stripe_customer_id"] == onboarding.customer_id
    ]
    assert len(accepted) == len(rows)  # one meter event per row: none twice, none lost
    assert sorted(e["identifier"] for e in accepted) == sorted(
        r.identifier for r in shop.ledger.usage.find(customer_id=onboarding.customer_id)
    )


REFUND_KILL_POINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "refund, before it took effect": (
        "stripe",
        {"method": "POST", "path": "/v1/refunds", "status": None, "delay": 3},
    ),
    "refund, after it took effect": (
        "stripe",
        {"method": "POST", "path": "/v1/refunds", "status": None, "delay": 3, "after": True},
    ),
    "cancel the subscription, after": (
        "stripe",
        {
            "method": "DELETE",
            "path": "/v1/subscriptions/",
            "status": None,
            "delay": 3,
            "after": True,
        },
    ),
    "delete the failed order's project, after": (
        "cs",
        {**CS_HOLD, "method": "DELETE", "path": "/api/projects/", "hold": "after"},
    ),
}


@pytest.mark.parametrize("point", list(REFUND_KILL_POINTS))
def test_a_worker_killed_while_refunding_refunds_once(shop: Shop, point: str) -> None:
    shop.env["CSONBOARD_ONBOARDING_REFUND_AFTER_HOURS"] = str(1 / 3600)  # after a second
    shop.post("cs", "orders", {"outcome": "fail"})
    first = shop.start_worker()
    session_id = shop.buy()
    dead = shop.finished(session_id)
    [failed] = shop.ledger.onboardings.orders(session_id)
    service, fault = REFUND_KILL_POINTS[point]
    shop.post(service, "faults", fault)

    if service == "cs":
        shop.wait_until(lambda: shop.get("cs", "held")["held"], f"the held call ({point})")
    else:
        shop.wait_until(lambda: not shop.get("stripe", "faults")["faults"], f"the call ({point})")
    first.send_signal(signal.SIGKILL)
    first.wait()
    if service == "cs":
        shop.post("cs", "release", {})  # the server goes on without its caller
    shop.start_worker()

    def refunded() -> bool:
        found = shop.ledger.onboardings.get(session_id)
        return found is not None and found.status == "refunded"

    shop.wait_until(refunded, f"the refund of {session_id}", timeout=60)
    session = shop.stripe.v1.checkout.sessions.retrieve(session_id)
    invoice = shop.stripe.v1.invoices.retrieve(str(session.invoice))
    [paid] = shop.stripe.v1.invoice_payments.list({"invoice": invoice.id}).data
    intent = str(paid.payment.payment_intent)
    refunds = shop.stripe.v1.refunds.list({"payment_intent": intent}).data
    assert [r.status for r in refunds] == ["succeeded"], shop.log.read_text()[-3000:]
    subscription = shop.stripe.v1.subscriptions.retrieve(dead.subscription_id or "")
    assert subscription.status == "canceled"
    projects = {p["id"]: p["state"] for p in shop.get("cs", "state")["projects"]}
    assert projects.get(failed.leftover or 0, "deleting") == "deleting"
