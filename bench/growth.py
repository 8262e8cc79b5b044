"""Does the receiver slow down as the ledger grows?

    python bench/growth.py [--sizes 10000,100000,1000000] [--backend sqlite|postgres]

The ledger is filled with realistic events (about 1.4 KB each, a mix of types,
statuses and customers) up to each size in turn. At each size it measures,
against the same ledger:

- the ack path: p50/p99 of 300 signed deliveries of new events, one after the
  other, through the receiver app (``create_app``; in process, so that only the
  ledger's growth can change the figure);
- ``events list``: the queries behind ``csonboard events list`` (newest 50;
  ``--status dead``; ``--customer``), median of 20 runs each;
- bytes per stored event (the database's size over the number of events).

Flat means the figure at 1 M is within a small factor of the one at 10 k.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import stripe
from common import DEFAULT_POSTGRES, drop_database, fresh_database
from sqlalchemy import func, insert, select, text

from csonboard.ledger import Ledger
from csonboard.ledger.schema import events
from csonboard.queue import open_doorbell
from csonboard.settings import load_settings
from csonboard_webhooks import create_app

SECRET = "whsec_growth_benchmark"  # noqa: S105 -- a throw-away benchmark secret
TYPES = [
    "checkout.session.completed",
    "customer.subscription.updated",
    "invoice.paid",
    "customer.created",
]
STATUSES = ["done"] * 90 + ["ignored"] * 8 + ["dead", "failed"]


def body_of(event_id: str, kind: str, customer: str, created: int) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": created,
            "livemode": False,
            "type": kind,
            "data": {
                "object": {
                    "id": f"cs_test_{uuid.uuid4().hex}{uuid.uuid4().hex[:20]}",
                    "object": "checkout.session",
                    "customer": customer,
                    "customer_details": {
                        "email": "buyer@example.com",
                        "name": "A Buyer",
                        "address": {"city": "Amsterdam", "country": "NL", "line1": "Dam 1"},
                    },
                    "amount_total": 1500,
                    "currency": "usd",
                    "metadata": {},
                    "padding": "x" * 700,
                }
            },
        }
    ).encode()


def fill(ledger: Ledger, start: int, stop: int, rng: random.Random) -> None:
    """Add events ``start`` .. ``stop`` (ids are numbered), in big transactions."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[dict[str, Any]] = []
    for n in range(start, stop):
        kind = TYPES[n % len(TYPES)]
        customer = f"cus_{n % 50_000:014d}"
        received = base + timedelta(seconds=n)
        status = rng.choice(STATUSES)
        batch.append(
            {
                "id": f"evt_growth_{n:012d}",
                "type": kind,
                "api_version": "2026-10-28.endive",
                "livemode": False,
                "created": received,
                "object_id": f"cs_test_{n:030d}",
                "customer_id": customer,
                "body": body_of(f"evt_growth_{n:012d}", kind, customer, int(received.timestamp())),
                "signature": "t=0,v1=" + "0" * 64,
                "source": "webhook",
                "received_at": received,
                "status": status,
                "attempts": 1,
                "last_error": "ComputeStacks 422: refused" if status == "dead" else None,
                "outcome": "type not handled" if status == "ignored" else "onboarding started",
                "updated_at": received,
            }
        )
        if len(batch) == 5_000:
            _insert(ledger, batch)
            batch = []
    if batch:
        _insert(ledger, batch)


def _insert(ledger: Ledger, rows: list[dict[str, Any]]) -> None:
    with ledger.write() as connection:
        connection.execute(insert(events), rows)


def ack_latency(app: Any, count: int = 300) -> tuple[float, float]:
    client = app.test_client()
    timings = []
    for _ in range(count):
        body = body_of(
            f"evt_{uuid.uuid4().hex[:24]}",
            "checkout.session.completed",
            "cus_new",
            int(time.time()),
        ).decode()
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET),
        }
        started = time.perf_counter()
        response = client.post("/webhooks/stripe", data=body, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data()
    timings.sort()
    return round(timings[len(timings) // 2], 2), round(timings[int(len(timings) * 0.99)], 2)


def list_latency(ledger: Ledger) -> dict[str, float]:
    queries = {
        "newest 50": lambda: ledger.events.find(limit=50),
        "--status dead": lambda: ledger.events.find(statuses=["dead"], limit=50),
        "--customer": lambda: ledger.events.find(customer_id="cus_00000000004242", limit=50),
    }
    result = {}
    for name, query in queries.items():
        runs = []
        for _ in range(20):
            started = time.perf_counter()
            query()
            runs.append((time.perf_counter() - started) * 1000)
        result[name] = round(statistics.median(runs), 2)
    return result


def size_bytes(ledger: Ledger, path: Path | None) -> int:
    if path is not None:
        return sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    with ledger.read() as connection:
        return int(connection.execute(text("SELECT pg_total_relation_size('events')")).scalar_one())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="csonboard-growth-"))
    env = {
        "CSONBOARD_DATA_DIR": str(work),
        "CSONBOARD_STRIPE_MODE": "test",
        "CSONBOARD_STRIPE_WEBHOOK_SECRETS": SECRET,
    }
    database = None
    if args.backend == "postgres":
        database = fresh_database(args.database_url, work.name)
        env["CSONBOARD_DATABASE_URL"] = database
    settings = load_settings(None, env)
    ledger = Ledger.open(settings.ledger_url)
    ledger.upgrade()
    doorbell = open_doorbell(settings)
    app = create_app(settings, ledger=ledger, doorbell=doorbell)
    sqlite_file = None if database else settings.data_dir / "ledger.db"
    rng = random.Random(7)
    rows = []
    filled = 0
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            started = time.monotonic()
            fill(ledger, filled, size, rng)
            filled = size
            if database:
                with ledger.write() as connection:
                    connection.execute(text("ANALYZE events"))
            fill_seconds = time.monotonic() - started
            p50, p99 = ack_latency(app)
            doorbell.huey.flush()
            with ledger.read() as connection:
                stored = int(
                    connection.execute(select(func.count()).select_from(events)).scalar_one()
                )
            rows.append(
                {
                    "events": stored,
                    "ack_p50_ms": p50,
                    "ack_p99_ms": p99,
                    "events_list_ms": list_latency(ledger),
                    "bytes_per_event": round(size_bytes(ledger, sqlite_file) / stored),
                    "fill_seconds": round(fill_seconds, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        doorbell.close()
        ledger.close()
        if database:
            drop_database(database)
    print(json.dumps({"backend": args.backend, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
