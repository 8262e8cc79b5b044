"""The receiver and worker as the operator runs them: real processes, real HTTP."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import stripe

from conftest import WEBHOOK_SECRET, Sandboxes, Stack, base_env
from processes import csonboard, free_port, running, wait_until_ready
from stripe_events import event_body, signed_headers


def post(url: str, body: str) -> tuple[int, str]:
    response = requests.post(
        f"{url}/webhooks/stripe",
        data=body,
        headers=signed_headers(body, WEBHOOK_SECRET),
        timeout=30,
    )
    return response.status_code, response.json().get("status", "")


def test_two_receivers_on_one_ledger_store_concurrent_duplicates_once(
    stack: Stack, tmp_path: Path
) -> None:
    stack.ledger()  # migrated before the receivers start, as `serve` would
    urls = []
    with (
        running(
            "serve",
            "--no-worker",
            "--port",
            str(port_a := free_port()),
            env=stack.env,
            log=tmp_path / "a.log",
        ),
        running(
            "serve",
            "--no-worker",
            "--port",
            str(port_b := free_port()),
            env=stack.env,
            log=tmp_path / "b.log",
        ),
    ):
        urls = [f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"]
        for url in urls:
            wait_until_ready(url)
        bodies = [event_body(event_id=f"evt_burst_{n}") for n in range(10)]
        deliveries = [(urls[i % 2], body) for body in bodies for i in range(4)]  # 4 copies each
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda d: post(*d), deliveries))

    assert {status for status, _ in answers} == {200}
    assert sorted(kind for _, kind in answers).count("accepted") == 10
    ledger = stack.ledger()
    assert ledger.events.counts() == {"received": 10}
    # Every new event is rung exactly once (receivers ring in groups), duplicates never.
    huey = stack.doorbell().huey
    rung: list[str] = []
    while (task := huey.dequeue()) is not None:
        _kind, idents = task.args
        rung += [idents] if isinstance(idents, str) else idents
    assert sorted(rung) == sorted(f"evt_burst_{n}" for n in range(10))


def test_a_purchase_through_serve_becomes_a_project_and_logs_json_without_secrets(
    tmp_path: Path, sandboxes: Sandboxes
) -> None:
    env = sandboxes.env(**base_env(tmp_path))
    url = f"http://127.0.0.1:{(port := free_port())}"
    sandboxes.deliver_to(f"{url}/webhooks/stripe", WEBHOOK_SECRET)
    buyer = stripe.StripeClient(sandboxes.stripe_key, base_addresses={"api": sandboxes.stripe_url})
    log = tmp_path / "serve.log"
    with running("--log-format", "json", "serve", "--port", str(port), env=env, log=log) as serve:
        wait_until_ready(url)
        session = buyer.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": "price_sandbox_static_monthly", "quantity": 1}],
                "customer_email": "grace@example.com",
                "success_url": "https://shop.example/thanks",
            }
        )
        requests.post(
            f"{sandboxes.stripe_url}/_sandbox/checkout/sessions/{session.id}/complete",
            json={"name": "Grace Hopper", "address": {"line1": "1 Navy Yard", "country": "US"}},
            timeout=10,
        ).raise_for_status()
        shown: dict[str, object] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and shown.get("status") not in ("done", "dead"):
            time.sleep(0.3)
            result = csonboard("onboardings", "show", session.id, "--json", env=env)
            shown = json.loads(result.stdout) if result.returncode == 0 else {}
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0

    assert shown["status"] == "done", shown
    assert [step["step"] for step in shown["steps"]][-1] == "link_back"
    [order] = shown["orders"]
    assert order["project_id"] is not None
    records = [json.loads(line) for line in log.read_text().splitlines()]  # every line is JSON
    received = {r["event_type"] for r in records if r["message"] == "event received"}
    assert "checkout.session.completed" in received
    assert any(r["message"] == "onboarding done" and r["session_id"] == session.id for r in records)
    text = log.read_text()
    for secret in (WEBHOOK_SECRET, sandboxes.admin[1], sandboxes.stripe_key, "1 Navy Yard"):
        assert secret not in text


def test_serve_refuses_to_start_when_its_worker_could_not(
    tmp_path: Path, sandboxes: Sandboxes
) -> None:
    env = sandboxes.env(**base_env(tmp_path))
    env["CSONBOARD_PLANS"] = str(tmp_path / "missing-plans.toml")

    done = csonboard("serve", "--port", str(free_port()), env=env, timeout=60)

    assert done.returncode == 2, done.stderr
    assert "plans" in done.stderr and "missing-plans.toml" in done.stderr
