"""An onboarding burst: many paid checkouts at once, against a ComputeStacks
whose every call takes 50 ms and whose orders take 2 s to provision.

    python bench/burst.py [--checkouts 1000] [--workers 2] [--threads 4] [--backend sqlite|postgres]

The checkouts are made and paid in the Stripe stand-in with its webhooks
paused; then the clock starts and every ``checkout.session.completed`` is
delivered to the receiver at once (16 at a time), and the script waits until
every onboarding is done. Reported: wall time, onboardings per second, CPU
seconds per onboarding (receiver and worker processes), peak worker memory, and
the floor -- the least time the work could take: the ComputeStacks time every
onboarding must spend in a worker slot (its calls times 50 ms, over the slots),
or the CPU csonboard needed spread over the cores, whichever is larger, plus
one order's provisioning. Target (issue 8): within 1.5x the floor.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import stripe
from common import (
    DEFAULT_POSTGRES,
    DEFAULT_REDIS,
    drop_database,
    free_port,
    fresh_database,
    wait_ready,
)

from csonboard.ledger import Ledger
from csonboard.sandbox.catalog import example_plans
from csonboard.sandbox.computestacks import create_app as create_cs_app
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stripe import create_app as create_stripe_app
from csonboard.sandbox.stripe import sandbox_account

KEY = "sk_test_sandbox"
CALL_LATENCY = 0.05
PENDING, PROCESSING = 1.0, 1.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def family(pid: int) -> list[int]:
    """A process and its children (gunicorn's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]


def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="csonboard-burst-"))
    admin = ("burst-admin", secrets.token_urlsafe(12))
    secret = f"whsec_{secrets.token_hex(12)}"
    cs = start_in_thread(create_cs_app(admin_username=admin[0], admin_password=admin[1]))
    stripe_app = create_stripe_app(api_key=KEY)
    stripe_server = start_in_thread(stripe_app)
    http = requests.Session()
    http.post(
        f"{cs.url}/_sandbox/orders",
        json={"pending_seconds": PENDING, "processing_seconds": PROCESSING},
        timeout=10,
    )
    http.post(f"{cs.url}/_sandbox/latency", json={"seconds": CALL_LATENCY}, timeout=10)
    http.post(
        f"{stripe_server.url}/_sandbox/webhooks",
        json={"url": "http://127.0.0.1:9/none", "secret": secret, "paused": True},
        timeout=10,
    )

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CSONBOARD_")},
        "CSONBOARD_DATA_DIR": str(work),
        "CSONBOARD_STRIPE_API_KEY": KEY,
        "CSONBOARD_STRIPE_API_BASE": stripe_server.url,
        "CSONBOARD_STRIPE_WEBHOOK_SECRETS": secret,
        "CSONBOARD_CS_URL": cs.url,
        "CSONBOARD_CS_ADMIN_USERNAME": admin[0],
        "CSONBOARD_CS_ADMIN_PASSWORD": admin[1],
        "CSONBOARD_PLANS": str(example_plans()),
        "CSONBOARD_LOG_LEVEL": "WARNING",
        "CSONBOARD_WORKER_THREADS": str(args.threads),
        "CSONBOARD_WORKER_POLL_SECONDS": "0.05",
        "CSONBOARD_ONBOARDING_POLL_SECONDS": "0.5",
        "CSONBOARD_ONBOARDING_POLL_MAX_SECONDS": "0.5",
        "CSONBOARD_CS_TIMEOUT_SECONDS": "30",
    }
    database = None
    if args.backend == "postgres":
        database = fresh_database(args.database_url, work.name)
        env.update(
            CSONBOARD_DATABASE_URL=database,
            CSONBOARD_QUEUE_URL=args.queue_url,
            CSONBOARD_QUEUE_NAME=f"burst{secrets.token_hex(4)}",
        )
    subprocess.run(
        [sys.executable, "-m", "csonboard", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )

    # The purchases, made before the clock starts.
    client = stripe.StripeClient(KEY, base_addresses={"api": stripe_server.url})

    def buy(n: int) -> str:
        session = client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": "price_sandbox_wordpress_monthly", "quantity": 1}],
                "customer_email": f"buyer{n}@example.com",
                "success_url": "https://shop.example/thanks",
            }
        )
        http.post(
            f"{stripe_server.url}/_sandbox/checkout/sessions/{session.id}/complete",
            json={"name": f"Buyer {n}"},
            timeout=30,
        ).raise_for_status()
        return str(session.id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        sessions = set(pool.map(buy, range(args.checkouts)))
    completed = list(
        client.v1.events.list(
            {"type": "checkout.session.completed", "limit": 100}
        ).auto_paging_iter()
    )
    bodies = [
        json.dumps(e.to_dict(for_json=True)) for e in completed if e.data.object.id in sessions
    ]

    port = free_port()
    log = (work / "processes.log").open("ab")
    receiver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "csonboard",
            "serve",
            "--no-worker",
            "--no-migrate",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "csonboard", "worker", "--no-migrate"],
            env=env,
            stdout=log,
            stderr=log,
        )
        for _ in range(args.workers)
    ]
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    time.sleep(2)  # the workers are up too
    cpu_before = sum(cpu_seconds(p) for w in [receiver, *workers] for p in family(w.pid))

    started = time.monotonic()

    def deliver(body: str) -> int:
        signature = stripe.WebhookSignature.generate_signature_header(body, secret)
        return http.post(
            f"{url}/webhooks/stripe",
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = set(pool.map(deliver, bodies))
    ledger = Ledger.open(env.get("CSONBOARD_DATABASE_URL") or f"sqlite:///{work / 'ledger.db'}")
    deadline = time.monotonic() + args.timeout
    done = 0
    while time.monotonic() < deadline:
        done = ledger.onboardings.counts().get("done", 0)
        if done >= len(sessions):
            break
        time.sleep(0.2)
    wall = time.monotonic() - started
    cpu = sum(cpu_seconds(p) for w in [receiver, *workers] for p in family(w.pid)) - cpu_before
    memory = max(peak_memory_mb(w.pid) for w in workers)
    cs_calls = _cs_calls_per_onboarding(http, cs.url, len(sessions))

    for process in [receiver, *workers]:
        process.send_signal(signal.SIGTERM)
    for process in [receiver, *workers]:
        process.wait(timeout=30)
    ledger.close()
    if database:
        drop_database(database)
    sandbox_account(stripe_app).stop()
    stripe_server.stop()
    cs.stop()

    slots = args.workers * args.threads
    latency_floor = len(sessions) * cs_calls * CALL_LATENCY / slots
    cpu_floor = cpu / (os.cpu_count() or 1)
    floor = max(latency_floor, cpu_floor) + PENDING + PROCESSING
    return {
        "backend": args.backend,
        "checkouts": len(sessions),
        "answers": sorted(answers),
        "onboardings_done": done,
        "worker_slots": slots,
        "wall_seconds": round(wall, 1),
        "onboardings_per_second": round(done / wall, 1),
        "cpu_seconds_per_onboarding": round(cpu / max(done, 1), 4),
        "peak_worker_memory_mb": round(memory, 1),
        "computestacks_calls_per_onboarding": round(cs_calls, 1),
        "floor_seconds": round(floor, 1),
        "ratio_to_floor": round(wall / floor, 2),
        "meets_target": wall <= 1.5 * floor and done == len(sessions),
    }


def _cs_calls_per_onboarding(http: requests.Session, cs_url: str, onboardings: int) -> float:
    return float(http.get(f"{cs_url}/_sandbox/state", timeout=60).json()["api_calls"]) / onboardings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkouts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--queue-url", default=DEFAULT_REDIS)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(report, indent=2))
    return 0 if report["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
