"""PostgreSQL restarting under a running receiver and worker (real processes):
deliveries made during the outage are refused with 503 and re-delivered, work
interrupted by it resumes, and every purchase completes exactly once.

This restarts the local PostgreSQL server with ``pg_ctlcluster``; it skips where
the server is not local or cannot be controlled from here.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import stripe
from sqlalchemy.engine import make_url

from conftest import WEBHOOK_SECRET, Sandboxes, Stack, base_env
from csonboard.settings import load_settings
from processes import free_port, running, wait_until_ready
from test_crashes import WORKER_ENV


def _cluster() -> list[str]:
    if shutil.which("pg_ctlcluster") is None:
        pytest.skip("pg_ctlcluster is not installed: cannot restart PostgreSQL from here")
    versions = sorted(Path("/etc/postgresql").glob("*/main"))
    if not versions:
        pytest.skip("no local PostgreSQL cluster under /etc/postgresql")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].parent.name, "main"]


def test_work_survives_a_postgresql_restart(
    postgres_url: str, redis_server: str, sandboxes: Sandboxes, tmp_path: Path
) -> None:
    if make_url(postgres_url).host not in ("127.0.0.1", "localhost"):
        pytest.skip("PostgreSQL is not local: it cannot be restarted from here")
    cluster = _cluster()
    base = base_env(tmp_path)
    base.update(CSONBOARD_DATABASE_URL=postgres_url, CSONBOARD_QUEUE_URL=redis_server)
    stack = Stack("postgres+redis", load_settings(None, base), base)
    stack.ledger()  # migrated
    env = {**stack.env, **sandboxes.env(**WORKER_ENV)}
    url = f"http://127.0.0.1:{(port := free_port())}"
    sandboxes.deliver_to(f"{url}/webhooks/stripe", WEBHOOK_SECRET)
    buyer = stripe.StripeClient(sandboxes.stripe_key, base_addresses={"api": sandboxes.stripe_url})
    requests.post(
        f"{sandboxes.cs_url}/_sandbox/orders",
        json={"pending_seconds": 0.3, "processing_seconds": 0.3},
        timeout=10,
    ).raise_for_status()

    with (
        running("serve", "--no-worker", "--port", str(port), env=env, log=tmp_path / "serve.log"),
        running("worker", env=env, log=tmp_path / "worker.log"),
    ):
        wait_until_ready(url)
        sessions = []
        for n in range(4):
            session = buyer.v1.checkout.sessions.create(
                {
                    "mode": "subscription",
                    "line_items": [{"price": "price_sandbox_wordpress_monthly", "quantity": 1}],
                    "customer_email": f"buyer{n}@example.com",
                    "success_url": "https://shop.example/thanks",
                }
            )
            sessions.append(session.id)
            requests.post(
                f"{sandboxes.stripe_url}/_sandbox/checkout/sessions/{session.id}/complete",
                json={"name": f"Buyer {n}"},
                timeout=10,
            ).raise_for_status()
            if n == 1:
                # The outage starts while the first purchases are in flight.
                subprocess.run([*cluster, "restart"], check=True, capture_output=True, timeout=60)

        ledger = stack.ledger()
        deadline = time.monotonic() + 90
        statuses: list[str] = []
        while time.monotonic() < deadline:
            try:
                found = [ledger.onboardings.get(s) for s in sessions]
            except Exception:  # noqa: BLE001 -- the ledger may still be coming back
                found = []
            statuses = [o.status if o else "absent" for o in found]
            if statuses and all(s == "done" for s in statuses):
                break
            time.sleep(0.5)

    stack.doorbell().huey.flush()
    stack.close()
    assert statuses == ["done"] * 4, (statuses, (tmp_path / "worker.log").read_text()[-3000:])
    cs = requests.get(f"{sandboxes.cs_url}/_sandbox/state", timeout=10).json()
    assert len([u for u in cs["users"] if not u["is_admin"]]) == 4
    assert len(cs["orders"]) == 4
    deliveries = requests.get(f"{sandboxes.stripe_url}/_sandbox/deliveries", timeout=10).json()[
        "deliveries"
    ]
    refused = [d for d in deliveries if d["status"] == 503]
    assert refused, "no delivery met the outage; the restart came too late to test anything"
