"""Chaos: many checkouts through the sandboxes while things go wrong, then count.

    python bench/chaos.py [--checkouts 500] [--duplicates 0.3] [--backend sqlite|postgres]

What runs, all on this machine:
- the ComputeStacks simulator and the Stripe stand-in (threads of this process);
  the stand-in delivers a share of its webhooks twice (``--duplicates``);
- two receivers (``csonboard serve --no-worker``, gunicorn) behind a round-robin
  balancer, sharing one ledger (SQLite, or PostgreSQL + Redis);
- two workers (``csonboard worker``), one of them SIGKILLed and restarted every
  few seconds at random while the checkouts are processed.

Then it reports what was delivered and what exists: onboardings completed,
users and projects in the simulator, and the two numbers that must be 0 --
purchases lost (paid, but no completed onboarding) and purchases duplicated
(a second user, project or Stripe customer) -- and checks that every API
credential left in ComputeStacks is one an onboarding reported. Exit status 1
if anything is lost, duplicated or left unreported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
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
from flask import Flask, Response, request

from csonboard.ledger import Ledger
from csonboard.sandbox.catalog import example_plans
from csonboard.sandbox.computestacks import create_app as create_cs_app
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stripe import create_app as create_stripe_app
from csonboard.sandbox.stripe import sandbox_account

STRIPE_KEY = "sk_test_sandbox"
PRICES = [  # (price, mode): what the buyers buy, in turn
    ("price_sandbox_wordpress_monthly", "subscription"),
    ("price_sandbox_static_monthly", "subscription"),
    ("price_sandbox_static_once", "payment"),
]


def balancer(targets: list[str]) -> Flask:
    """Round-robin for POST /webhooks/stripe, passing bodies and headers through."""
    app = Flask("balancer")
    turn = itertools.cycle(targets)
    lock = threading.Lock()
    http = requests.Session()

    @app.post("/webhooks/stripe")
    def forward() -> Response:
        with lock:
            target = next(turn)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "stripe-signature")
        }
        try:
            answer = http.post(
                f"{target}/webhooks/stripe", data=request.get_data(), headers=headers, timeout=30
            )
        except requests.RequestException:
            return Response("receiver unreachable", status=502)
        return Response(
            answer.content,
            status=answer.status_code,
            content_type=answer.headers.get("Content-Type"),
        )

    return app


class Workers:
    """Two worker processes; ``chaos()`` kills one at random now and then."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.kills = 0
        self.processes = [self._start(), self._start()]

    def _start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as sink:
            return subprocess.Popen(
                [sys.executable, "-m", "csonboard", "worker", "--no-migrate"],
                env=self.env,
                stdout=sink,
                stderr=sink,
            )

    def chaos(self, stop: threading.Event, rng: random.Random, every: tuple[float, float]) -> None:
        while not stop.wait(rng.uniform(*every)):
            victim = rng.randrange(len(self.processes))
            self.processes[victim].send_signal(signal.SIGKILL)
            self.processes[victim].wait()
            self.kills += 1
            self.processes[victim] = self._start()

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="csonboard-chaos-"))
    admin = ("chaos-admin", secrets.token_urlsafe(12))
    secret = f"whsec_{secrets.token_hex(12)}"
    cs = start_in_thread(create_cs_app(admin_username=admin[0], admin_password=admin[1]))
    stripe_app = create_stripe_app(
        api_key=STRIPE_KEY, duplicate_rate=args.duplicates, rng=random.Random(args.seed)
    )
    stripe_server = start_in_thread(stripe_app)
    http = requests.Session()
    http.post(
        f"{cs.url}/_sandbox/orders",
        json={"pending_seconds": 0.2, "processing_seconds": 0.3},
        timeout=10,
    )

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CSONBOARD_")},
        "CSONBOARD_DATA_DIR": str(workdir),
        "CSONBOARD_STRIPE_API_KEY": STRIPE_KEY,
        "CSONBOARD_STRIPE_API_BASE": stripe_server.url,
        "CSONBOARD_STRIPE_WEBHOOK_SECRETS": secret,
        "CSONBOARD_CS_URL": cs.url,
        "CSONBOARD_CS_ADMIN_USERNAME": admin[0],
        "CSONBOARD_CS_ADMIN_PASSWORD": admin[1],
        "CSONBOARD_PLANS": str(example_plans()),
        "CSONBOARD_LOG_LEVEL": "WARNING",
        "CSONBOARD_WORKER_LEASE_SECONDS": "5",
        "CSONBOARD_WORKER_SWEEP_SECONDS": "1",
        "CSONBOARD_WORKER_POLL_SECONDS": "0.2",
        "CSONBOARD_WORKER_BACKOFF_SECONDS": "0.5",
        "CSONBOARD_WORKER_BACKOFF_MAX_SECONDS": "5",
        "CSONBOARD_ONBOARDING_POLL_SECONDS": "0.3",
        "CSONBOARD_ONBOARDING_POLL_MAX_SECONDS": "1",
    }
    if args.backend == "postgres":
        # A database of its own: ids repeat from run to run (the seed is fixed),
        # and a ledger that already knows them would rightly call them duplicates.
        env["CSONBOARD_DATABASE_URL"] = fresh_database(args.database_url, workdir.name)
        env["CSONBOARD_QUEUE_URL"] = args.queue_url
        env["CSONBOARD_QUEUE_NAME"] = f"chaos{secrets.token_hex(4)}"
    subprocess.run(
        [sys.executable, "-m", "csonboard", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )

    log = workdir / "processes.log"
    ports = [free_port(), free_port()]
    receivers = []
    for port in ports:
        with log.open("ab") as sink:
            receivers.append(
                subprocess.Popen(
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
                    stdout=sink,
                    stderr=sink,
                )
            )
    for port in ports:
        wait_ready(f"http://127.0.0.1:{port}")
    front = start_in_thread(balancer([f"http://127.0.0.1:{p}" for p in ports]))
    http.post(
        f"{stripe_server.url}/_sandbox/webhooks",
        json={"url": f"{front.url}/webhooks/stripe", "secret": secret},
        timeout=10,
    ).raise_for_status()

    workers = Workers(env, log)
    stop = threading.Event()
    killer = threading.Thread(
        target=workers.chaos, args=(stop, rng, (args.kill_min, args.kill_max)), daemon=True
    )
    started = time.monotonic()
    killer.start()

    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_server.url})

    def checkout(n: int) -> tuple[str, int]:
        price, mode = PRICES[n % len(PRICES)]
        quantity = 2 if n % 10 == 0 else 1
        session = client.v1.checkout.sessions.create(
            {
                "mode": mode,
                "line_items": [{"price": price, "quantity": quantity}],
                "customer_email": f"buyer{n}@example.com",
                "success_url": "https://shop.example/thanks",
            }
        )
        http.post(
            f"{stripe_server.url}/_sandbox/checkout/sessions/{session.id}/complete",
            json={"name": f"Buyer {n}"},
            timeout=30,
        ).raise_for_status()
        return str(session.id), quantity

    with ThreadPoolExecutor(max_workers=8) as pool:
        bought = dict(pool.map(checkout, range(args.checkouts)))
    paid_after = time.monotonic() - started
    print(
        f"{len(bought)} checkouts paid in {paid_after:.0f} s; waiting for onboarding ...",
        file=sys.stderr,
    )

    ledger = Ledger.open(env.get("CSONBOARD_DATABASE_URL") or f"sqlite:///{workdir / 'ledger.db'}")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        done = sum(
            1
            for o in ledger.onboardings.find(statuses=["done"], limit=100_000)
            if o.session_id in bought
        )
        if done == len(bought):
            break
        time.sleep(2)
    stop.set()
    killer.join()
    elapsed = time.monotonic() - started
    sandbox_account(stripe_app).wait_for_deliveries(timeout=30)

    report = _report(args, bought, ledger, http, cs.url, stripe_server.url, workers.kills, elapsed)
    workers.stop()
    for receiver in receivers:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=20)
    ledger.close()
    if args.backend == "postgres":
        drop_database(env["CSONBOARD_DATABASE_URL"])
    front.stop()
    sandbox_account(stripe_app).stop()
    stripe_server.stop()
    cs.stop()
    report["workdir"] = str(workdir)
    return report


def _report(
    args: argparse.Namespace,
    bought: dict[str, int],
    ledger: Ledger,
    http: requests.Session,
    cs_url: str,
    stripe_url: str,
    kills: int,
    elapsed: float,
) -> dict[str, Any]:
    deliveries = http.get(f"{stripe_url}/_sandbox/deliveries", timeout=60).json()["deliveries"]
    stripe_state = http.get(f"{stripe_url}/_sandbox/state", timeout=60).json()
    cs_state = http.get(f"{cs_url}/_sandbox/state", timeout=60).json()
    onboardings = {o.session_id: o for o in ledger.onboardings.find(limit=100_000)}
    users = [u for u in cs_state["users"] if not u["is_admin"]]
    orders_by_owner = Counter(o["owner"] for o in cs_state["orders"])
    users_by_customer = Counter(u["external_id"] for u in users)

    lost = [s for s in bought if onboardings.get(s) is None or onboardings[s].status != "done"]
    extra_users = sum(n - 1 for n in users_by_customer.values() if n > 1)
    expected_orders = {onboardings[s].cs_user_id: q for s, q in bought.items() if s in onboardings}
    extra_orders = sum(max(0, orders_by_owner[u] - q) for u, q in expected_orders.items())
    customers = list(stripe_state["objects"]["customer"])
    extra_customers = sum(
        n - 1 for n in Counter(c.get("email") for c in customers).values() if n > 1
    )
    # A worker killed while ComputeStacks mints a credential leaves one that the
    # API cannot find again; the onboarding reports it by name for an operator.
    reported = sum(
        len(step.result.get("credentials_unaccounted", []))
        for session_id in bought
        for step in ledger.onboardings.steps(session_id)
        if step.step == "place_order"
    )
    return {
        "backend": args.backend,
        "checkouts": len(bought),
        "units_bought": sum(bought.values()),
        "deliveries_sent": len(deliveries),
        "duplicate_deliveries": sum(1 for d in deliveries if d.get("duplicate")),
        "deliveries_refused": sum(1 for d in deliveries if not d.get("succeeded")),
        "worker_kills": kills,
        "onboardings_completed": sum(
            1 for s in bought if s in onboardings and onboardings[s].status == "done"
        ),
        "users_in_simulator": len(users),
        "projects_in_simulator": len(cs_state["projects"]),
        "credentials_left": sum(u["credentials"] for u in users),
        "credentials_reported": reported,
        "lost": len(lost),
        "duplicated": extra_users + extra_orders + extra_customers,
        "seconds": round(elapsed, 1),
        "lost_sessions": lost[:10],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkouts", type=int, default=500)
    parser.add_argument(
        "--duplicates", type=float, default=0.3, help="share of webhooks delivered twice"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--queue-url", default=DEFAULT_REDIS)
    parser.add_argument(
        "--kill-min", type=float, default=2.0, help="seconds between worker kills, at least"
    )
    parser.add_argument("--kill-max", type=float, default=6.0, help="... and at most")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for onboarding"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>24}: {value}")
    unreported = report["credentials_left"] != report["credentials_reported"]
    return 1 if report["lost"] or report["duplicated"] or unreported else 0


if __name__ == "__main__":
    sys.exit(main())
