"""Usage billing at scale: many customers' ComputeStacks usage synced to Stripe meters.

    python bench/usage.py [--customers 10000] [--rows 3] [--backend sqlite|postgres]

Sets up, before the clock starts: the ComputeStacks simulator and the Stripe
stand-in on loopback (contract checking off), one ComputeStacks user and one
Stripe customer per customer, their finished onboardings in a fresh ledger,
and ``--rows`` bandwidth usage rows each (the example catalog bills bandwidth).

Then, in one run:

- **bare**: the same calls with no ledger -- one usage read per user, one
  meter event per row -- the least any sync must do (its own meter, so the two
  do not mix);
- **csonboard, first sync**: ``csonboard usage sync``'s code path, every row
  recorded then reported;
- **csonboard, second sync**: nothing new: one read per user, nothing sent.

Reported: wall time of each, csonboard's time over bare, requests to each API,
and the floor the real services' rate limits set for the same requests:
ComputeStacks throttles every client IP to 2,500 requests per 5 minutes
(``config/initializers/rack_attack.rb``); Stripe takes up to 1,000 meter events
a second in live mode. The sandboxes enforce neither, so the measured times show
csonboard's own cost and the floor shows what the real services allow.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import requests
import stripe
from common import DEFAULT_POSTGRES, drop_database, fresh_database, sandbox_env
from prometheus_client import REGISTRY
from sqlalchemy import insert

from csonboard.ledger import Ledger
from csonboard.ledger.schema import onboarding_steps, onboardings
from csonboard.runtime import build_services, usage_sync
from csonboard.sandbox.computestacks import create_app as create_cs_app
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stripe import create_app as create_stripe_app
from csonboard.sandbox.stripe import sandbox_account
from csonboard.settings import load_settings

KEY = "sk_test_sandbox"
BANDWIDTH = 20
CS_LIMIT = 2500 / 300  # requests a second per client IP (rack_attack.rb)
STRIPE_METER_LIMIT = 1000.0  # meter events a second, live mode
USAGE_ENDPOINT = "GET /api/admin/users/{id}/billing_usages"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=3, help="usage rows per customer")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:>34}: {value}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("csonboard").setLevel(logging.WARNING)
    work = Path(mkdtemp(prefix="csonboard-usage-"))
    admin = ("usage-admin", secrets.token_urlsafe(12))
    cs = start_in_thread(create_cs_app(admin_username=admin[0], admin_password=admin[1]))
    stripe_app = create_stripe_app(api_key=KEY, check_contract=False)
    stripe_server = start_in_thread(stripe_app)
    database = None
    env = sandbox_env(work, stripe_server.url, KEY, cs.url, admin)
    if args.backend == "postgres":
        database = fresh_database(args.database_url, work.name)
        env["CSONBOARD_DATABASE_URL"] = database
    settings = load_settings(None, env)
    ledger = Ledger.open(settings.ledger_url)
    ledger.upgrade()
    http = requests.Session()
    client = stripe.StripeClient(KEY, base_addresses={"api": stripe_server.url})
    try:
        started = time.monotonic()
        customers = _customers(args.customers, cs.url, admin, client, ledger)
        _usage(http, cs.url, customers, args.rows)
        setup = time.monotonic() - started

        bare = _bare(http, client, cs.url, admin, customers)
        services = build_services(settings)
        sync = usage_sync(settings, services, ledger, "bench")
        reads_before = _usage_reads()
        first_started = time.monotonic()
        first = sync.sync()
        first_time = time.monotonic() - first_started
        second_started = time.monotonic()
        second = sync.sync()
        second_time = time.monotonic() - second_started
        reads = _usage_reads() - reads_before
        accepted = http.get(f"{stripe_server.url}/_sandbox/state", timeout=60).json()["billing"]
    finally:
        sandbox_account(stripe_app).stop()
        stripe_server.stop()
        cs.stop()
        ledger.close()
        if database:
            drop_database(database)

    rows = args.customers * args.rows
    cs_requests = args.customers  # one page per user: the rows fit in it
    floor = max(cs_requests / CS_LIMIT, rows / STRIPE_METER_LIMIT)
    assert first.reported == rows, first
    assert second.reported == 0, second
    return {
        "customers": args.customers,
        "usage rows": rows,
        "backend": args.backend,
        "setup (s)": round(setup, 1),
        "bare: reads + meter events (s)": round(bare, 1),
        "csonboard first sync (s)": round(first_time, 1),
        "csonboard / bare": round(first_time / bare, 2),
        "csonboard second sync (s)": round(second_time, 1),
        "ComputeStacks usage reads": int(reads),
        "Stripe meter events accepted": accepted["accepted_meter_events"],
        "floor at the real rate limits (s)": round(floor, 1),
        "floor: ComputeStacks (s)": round(cs_requests / CS_LIMIT, 1),
        "floor: Stripe (s)": round(rows / STRIPE_METER_LIMIT, 1),
    }


def _customers(
    count: int, cs_url: str, admin: tuple[str, str], client: stripe.StripeClient, ledger: Ledger
) -> list[tuple[int, str]]:
    """(ComputeStacks user id, Stripe customer id) per customer, onboarded a day ago."""
    http = requests.Session()

    def one(n: int) -> tuple[int, str]:
        customer = client.v1.customers.create({"email": f"user{n}@example.com"})
        made = http.post(
            f"{cs_url}/api/admin/users",
            json={
                "user": {
                    "fname": "User",
                    "lname": str(n),
                    "email": f"user{n}@example.com",
                    "password": secrets.token_urlsafe(16),
                    "skip_email_confirm": True,
                    "bypass_billing": True,
                    "external_id": customer.id,
                }
            },
            auth=admin,
            timeout=60,
        )
        made.raise_for_status()
        return int(made.json()["user"]["id"]), str(customer.id)

    with ThreadPoolExecutor(8) as pool:
        customers = list(pool.map(one, range(count)))
    bought = datetime.now(UTC) - timedelta(days=1)
    with ledger.write() as connection:
        connection.execute(
            insert(onboardings),
            [
                {
                    "session_id": f"cs_bench_{user_id}",
                    "status": "done",
                    "livemode": False,
                    "customer_id": customer_id,
                    "cs_user_id": user_id,
                    "source": "bench",
                    "created_at": bought,
                    "updated_at": bought,
                    "finished_at": bought,
                }
                for user_id, customer_id in customers
            ],
        )
        connection.execute(
            insert(onboarding_steps),
            [
                {
                    "session_id": f"cs_bench_{user_id}",
                    "step": "resolve_plan",
                    "status": "done",
                    "result": json.dumps({"units": [{"plan": "wordpress"}]}),
                    "attempts": 1,
                    "started_at": bought,
                    "finished_at": bought,
                }
                for user_id, _ in customers
            ],
        )
    return customers


def _usage(
    http: requests.Session, cs_url: str, customers: list[tuple[int, str]], rows: int
) -> None:
    now = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    for user_id, _ in customers:
        for n in range(rows):
            end = now - timedelta(hours=3 * (rows - n))
            batch.append(
                {
                    "user_id": user_id,
                    "qty": "1.5",
                    "product_id": BANDWIDTH,
                    "period_start": (end - timedelta(hours=3)).isoformat(),
                    "period_end": end.isoformat(),
                }
            )
    for start in range(0, len(batch), 5000):
        http.post(
            f"{cs_url}/_sandbox/billing_usages",
            json={"rows": batch[start : start + 5000]},
            timeout=120,
        ).raise_for_status()


def _bare(
    http: requests.Session,
    client: stripe.StripeClient,
    cs_url: str,
    admin: tuple[str, str],
    customers: list[tuple[int, str]],
) -> float:
    """The same reads and sends as a sync, with no ledger; seconds taken."""
    client.v1.billing.meters.create(
        {
            "display_name": "bench bare",
            "event_name": "bench_bare",
            "default_aggregation": {"formula": "sum"},
        }
    )
    started = time.monotonic()
    for user_id, customer_id in customers:
        answer = http.get(
            f"{cs_url}/api/admin/users/{user_id}/billing_usages",
            params={"per_page": 100},
            auth=admin,
            timeout=60,
        )
        for row in answer.json()["billing_usages"]:
            client.v1.billing.meter_events.create(
                {
                    "event_name": "bench_bare",
                    "identifier": f"bare-{row['id']}",
                    "payload": {"stripe_customer_id": customer_id, "value": "1"},
                }
            )
    return time.monotonic() - started


def _usage_reads() -> float:
    """ComputeStacks usage reads csonboard made so far (its own request histogram)."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name != "csonboard_computestacks_request_duration_seconds":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("endpoint") == USAGE_ENDPOINT:
                total += sample.value
    return total


if __name__ == "__main__":
    main()
