"""The receiver's ack path under load, against a bare endpoint that only verifies
the signature, under the same gunicorn settings, in the same run.

    python bench/ack.py [--duration 15] [--connections 16] [--backends sqlite,postgres]

Each target is a gunicorn server (``serve --no-worker``'s default options: 2 workers of
16 threads) loaded by wrk (Debian package ``wrk``) with distinct, correctly
signed ``checkout.session.completed`` events, so every request is a new event
that is verified, stored and rung. The baseline is a Flask endpoint that only
verifies the signature with the stripe library and answers 200. Reported:
requests per second, p50 and p99 latency, and throughput as a ratio of the
baseline's. Targets (issue 8): at least 0.9x the baseline and p99 <= 50 ms at
16 connections.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import stripe
from common import (
    DEFAULT_POSTGRES,
    DEFAULT_REDIS,
    drop_database,
    free_port,
    fresh_database,
    wait_ready,
)

SECRET = os.environ.get("ACK_BENCH_SECRET") or f"whsec_{secrets.token_hex(16)}"
EVENTS = 200_000
HALF = EVENTS // 2
LUA = """
-- Every request is a distinct, signed event: thread t of n sends lines
-- base+t+1, base+t+1+n, ... of the file given after "--".
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local requests = {}
local next_index, stride
function init(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("^([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/webhooks/stripe",
      {["Content-Type"] = "application/json", ["Stripe-Signature"] = signature}, body)
  end
  stride = tonumber(args[3])
  next_index = tonumber(args[2]) + id + 1
end
function request()
  local r = requests[next_index]
  next_index = next_index + stride
  if next_index > #requests then next_index = next_index - #requests end
  return r
end
"""


def event_lines(count: int) -> str:
    """``signature<TAB>body`` lines: realistic checkout events, signed now."""
    stamp = int(time.time())
    lines = []
    for n in range(count):
        session = f"cs_test_{uuid.uuid4().hex}{uuid.uuid4().hex[:24]}"
        body = json.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex[:24]}",
                "object": "event",
                "api_version": "2026-10-28.endive",
                "created": stamp,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": "checkout.session.completed",
                "data": {
                    "object": {
                        "id": session,
                        "object": "checkout.session",
                        "amount_total": 1500,
                        "currency": "usd",
                        "customer": f"cus_{uuid.uuid4().hex[:14]}",
                        "customer_details": {
                            "email": f"buyer{n}@example.com",
                            "name": f"Buyer {n}",
                            "address": {"city": "Amsterdam", "country": "NL", "line1": "Dam 1"},
                        },
                        "mode": "subscription",
                        "payment_status": "paid",
                        "status": "complete",
                        "subscription": f"sub_{uuid.uuid4().hex[:14]}",
                        "metadata": {},
                    }
                },
            }
        )
        signature = stripe.WebhookSignature.generate_signature_header(body, SECRET, stamp)
        lines.append(f"{signature}\t{body}")
    return "\n".join(lines) + "\n"


def serve_bare(port: int) -> None:
    """The baseline: verify the signature, answer 200, nothing else."""
    from flask import Flask, request

    from csonboard.cli.serve import run_gunicorn
    from csonboard.settings import ReceiverSettings

    def load() -> Flask:
        app = Flask("bare")

        @app.post("/webhooks/stripe")
        def receive() -> tuple[dict[str, str], int]:
            body = request.get_data()
            stripe.WebhookSignature.verify_header(
                body.decode(), request.headers["Stripe-Signature"], SECRET, 300
            )
            return {"status": "accepted"}, 200

        @app.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"status": "ok"}

        return app

    defaults = ReceiverSettings()
    run_gunicorn(load, bind=f"127.0.0.1:{port}", workers=defaults.workers, threads=defaults.threads)


def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    args: argparse.Namespace,
    requests_file: Path,
) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        script = requests_file.with_suffix(".lua")
        script.write_text(LUA)
        threads = 2
        results = []
        # A warm-up on the first half of the events, then the measurement on the
        # second: no event is sent twice.
        for duration, base in ((3, 0), (args.duration, HALF)):
            output = subprocess.run(
                [
                    "wrk",
                    f"-t{threads}",
                    f"-c{args.connections}",
                    f"-d{duration}s",
                    "--latency",
                    "-s",
                    str(script),
                    url,
                    "--",
                    str(requests_file),
                    str(base),
                    str(threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results.append(output)
        return {"target": name, **parse_wrk(results[-1])}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def parse_wrk(output: str) -> dict[str, Any]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    percentiles = {
        p: _ms(v, u)
        for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "requests_per_second": round(rps),
        "p50_ms": percentiles.get("50"),
        "p99_ms": percentiles.get("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str, unit: str) -> float:
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--queue-url", default=DEFAULT_REDIS)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.port)
        return 0

    work = Path(tempfile.mkdtemp(prefix="csonboard-ack-"))
    requests_file = work / "requests.tsv"
    requests_file.write_text(event_lines(EVENTS))
    # The baseline server is this script in another process: it must sign-check
    # with the same secret.
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CSONBOARD_")}
    base_env["ACK_BENCH_SECRET"] = SECRET
    python = [sys.executable]
    rows = [
        measure(
            "bare endpoint (signature only)",
            [*python, __file__, "--serve-bare"],
            base_env,
            args,
            requests_file,
        )
    ]
    for backend in args.backends.split(","):
        env = {
            **base_env,
            "CSONBOARD_DATA_DIR": str(work / backend),
            "CSONBOARD_STRIPE_MODE": "test",
            "CSONBOARD_STRIPE_WEBHOOK_SECRETS": SECRET,
            "CSONBOARD_LOG_LEVEL": "WARNING",
        }
        database = None
        if backend == "postgres":
            database = fresh_database(args.database_url, work.name + "_ack")
            env.update(
                CSONBOARD_DATABASE_URL=database,
                CSONBOARD_QUEUE_URL=args.queue_url,
                CSONBOARD_QUEUE_NAME=f"ack{secrets.token_hex(4)}",
            )
        command = [*python, "-m", "csonboard", "serve", "--no-worker"]
        subprocess.run(
            [*python, "-m", "csonboard", "db", "upgrade"], env=env, check=True, capture_output=True
        )
        try:
            rows.append(
                measure(f"csonboard receiver ({backend})", command, env, args, requests_file)
            )
        finally:
            if database:
                drop_database(database)
    baseline = rows[0]["requests_per_second"]
    for row in rows:
        row["ratio"] = round(row["requests_per_second"] / baseline, 2)
        row["meets_targets"] = row["ratio"] >= 0.9 and (row["p99_ms"] or 1e9) <= 50
    print(json.dumps(rows, indent=2))
    return 0 if all(row["meets_targets"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
