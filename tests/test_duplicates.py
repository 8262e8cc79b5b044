"""Duplicates: every event of several purchases delivered many times, at once,
to two receiver processes and two workers sharing one ledger, while operators run
``csonboard replay --session`` against the same purchases. Each buyer still
gets exactly one account, one order per unit and one Stripe customer."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import stripe

from conftest import WEBHOOK_SECRET, Sandboxes, Stack
from processes import csonboard, free_port, running, wait_until_ready
from stripe_events import signed_headers
from test_crashes import WORKER_ENV

PURCHASES = 4
COPIES = 3  # of every event, to each receiver, on top of Stripe's own delivery


def test_duplicate_deliveries_and_racing_replays_provision_once(
    stack: Stack, sandboxes: Sandboxes, tmp_path: Path
) -> None:
    stack.ledger()  # migrated
    env = {**stack.env, **sandboxes.env(**WORKER_ENV)}
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    sandboxes.deliver_to(f"{urls[0]}/webhooks/stripe", WEBHOOK_SECRET)
    buyer = stripe.StripeClient(sandboxes.stripe_key, base_addresses={"api": sandboxes.stripe_url})
    http = requests.Session()

    with (
        running("serve", "--no-worker", "--port", str(ports[0]), env=env, log=tmp_path / "a.log"),
        running("serve", "--no-worker", "--port", str(ports[1]), env=env, log=tmp_path / "b.log"),
        running("worker", env=env, log=tmp_path / "worker-1.log"),
        running("worker", env=env, log=tmp_path / "worker-2.log"),
    ):
        for url in urls:
            wait_until_ready(url)
        sessions = []
        for n in range(PURCHASES):
            session = buyer.v1.checkout.sessions.create(
                {
                    "mode": "subscription",
                    "line_items": [
                        {"price": "price_sandbox_wordpress_monthly", "quantity": 1 + n % 2}
                    ],
                    "customer_email": f"buyer{n}@example.com",
                    "success_url": "https://shop.example/thanks",
                }
            )
            sessions.append(session.id)
            http.post(
                f"{sandboxes.stripe_url}/_sandbox/checkout/sessions/{session.id}/complete",
                json={"name": f"Buyer {n}"},
                timeout=10,
            ).raise_for_status()

        # Every event again, many times, to both receivers at once...
        events = buyer.v1.events.list({"limit": 100}).data
        bodies = [json.dumps(event.to_dict(for_json=True)) for event in events]
        posts = [(url, body) for body in bodies for url in urls for _ in range(COPIES)]

        def post(delivery: tuple[str, str]) -> int:
            url, body = delivery
            return http.post(
                f"{url}/webhooks/stripe",
                data=body,
                headers=signed_headers(body, WEBHOOK_SECRET),
                timeout=30,
            ).status_code

        # ... while operators replay the same purchases.
        replays: list[int] = []
        stop = threading.Event()

        def replay() -> None:
            while not stop.is_set():
                for session_id in sessions:
                    replays.append(csonboard("replay", "--session", session_id, env=env).returncode)

        operator = threading.Thread(target=replay)
        operator.start()
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = set(pool.map(post, posts))
        ledger = stack.ledger()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if all((o := ledger.onboardings.get(s)) and o.status == "done" for s in sessions):
                break
            time.sleep(0.3)
        stop.set()
        operator.join(timeout=60)

    assert statuses == {200}
    assert replays, "no replay ran"
    assert set(replays) <= {0, 1}  # a replay refused because a worker holds the work is fine
    assert [ledger.onboardings.get(s).status for s in sessions] == ["done"] * PURCHASES  # type: ignore[union-attr]
    cs = http.get(f"{sandboxes.cs_url}/_sandbox/state", timeout=10).json()
    users = [u for u in cs["users"] if not u["is_admin"]]
    assert len(users) == PURCHASES
    assert len({u["external_id"] for u in users}) == PURCHASES
    units = sum(1 + n % 2 for n in range(PURCHASES))
    assert len(cs["orders"]) == units
    assert sum(u["credentials"] for u in users) == 0
    counts = http.get(f"{sandboxes.stripe_url}/_sandbox/state", timeout=10).json()["counts"]
    assert counts["customer"] == PURCHASES
