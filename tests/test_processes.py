"""The receiver and worker as the operator runs them: real processes, real HTTP."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from conftest import WEBHOOK_SECRET, Stack, base_env
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
    assert stack.doorbell().depth() == 10  # one job per event, none per duplicate

    burst = csonboard("worker", "--burst", env=stack.env)
    assert burst.returncode == 0, burst.stderr
    assert ledger.events.counts() == {"done": 10}


def test_serve_runs_a_worker_logs_json_and_keeps_secrets_and_bodies_out(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    url = f"http://127.0.0.1:{(port := free_port())}"
    log = tmp_path / "serve.log"
    marker = "buyer-address-line-that-must-not-be-logged"
    body = event_body(
        event_id="evt_served",
        obj={
            "id": "cs_test_served",
            "object": "checkout.session",
            "customer_details": {"address": marker},
        },
    )
    with running("--log-format", "json", "serve", "--port", str(port), env=env, log=log) as serve:
        wait_until_ready(url)
        assert post(url, body) == (200, "accepted")
        listed: list[dict[str, str]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = json.loads(csonboard("events", "list", "--json", env=env).stdout)
            if listed and listed[0]["status"] == "done":
                break
            time.sleep(0.3)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0

    assert listed[0]["id"] == "evt_served"
    assert listed[0]["status"] == "done"
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    received = [r for r in records if r["message"] == "event received"]
    processed = [r for r in records if r["message"] == "event processed"]
    assert received[0]["event_id"] == processed[0]["event_id"] == "evt_served"
    assert received[0]["event_type"] == "checkout.session.completed"
    text = log.read_text()
    assert WEBHOOK_SECRET not in text
    assert marker not in text
