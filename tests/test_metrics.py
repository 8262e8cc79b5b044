"""GET /metrics: Prometheus text, parsed with prometheus_client's own parser,
after real runs -- the sandbox stack in one process, and ``csonboard serve``
as the operator runs it (gunicorn workers and a worker process adding up
through the multiprocess directory)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import stripe
from prometheus_client.parser import text_string_to_metric_families

from conftest import WEBHOOK_SECRET, Sandboxes, base_env, make_settings
from csonboard.metrics.instruments import endpoint_template, event_type_label
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from csonboard_webhooks import create_app
from processes import csonboard, free_port, running, wait_until_ready
from stripe_events import event_body, signed_headers

STATIC = "price_sandbox_static_monthly"
UNMAPPED = "price_sandbox_unmapped"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when absent (a labelled counter not yet touched)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(url: str) -> Samples:
    answer = requests.get(f"{url}/metrics", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(answer.text)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(tmp_path / "data", CSONBOARD_ONBOARDING_POLL_SECONDS="0.1") as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.2, "processing_seconds": 0.2}
        )
        yield stack


def test_computestacks_paths_become_bounded_endpoint_templates() -> None:
    email_key = base64.b64encode(b"ada@example.com").decode()
    assert endpoint_template("get", f"/api/admin/users/{email_key}") == "GET /api/admin/users/{id}"
    assert endpoint_template("GET", "/api/admin/users/cus_Q1w2e3") == "GET /api/admin/users/{id}"
    assert (
        endpoint_template("DELETE", "/api/admin/users/42/api_credentials/7")
        == "DELETE /api/admin/users/{id}/api_credentials/{id}"
    )
    assert (
        endpoint_template("GET", "/api/admin/orders/0b8e4a8c-32a1-4a44-9d5b-2f0c4b1b8c11")
        == "GET /api/admin/orders/{id}"
    )
    assert endpoint_template("POST", "/api/admin/users/42/user_sso") == (
        "POST /api/admin/users/{id}/user_sso"
    )
    assert endpoint_template("GET", "/api/projects/9/services?page=2") == (
        "GET /api/projects/{id}/services"
    )
    # Whatever a path holds, only known words survive.
    assert endpoint_template("GET", "/api/something_new/../x") == "GET /api/{id}/{id}/{id}"


def test_event_types_must_look_like_stripes() -> None:
    assert event_type_label("checkout.session.completed") == "checkout.session.completed"
    assert event_type_label("invoice.paid") == "invoice.paid"
    for made_up in ("nodots", "Checkout.Session", "a.b c", "x." * 40, "<script>.x"):
        assert event_type_label(made_up) == "other"


def test_a_sandbox_run_shows_in_the_metrics(shop: SandboxStack) -> None:
    before = scrape(shop.receiver_url)

    done = shop.checkout({STATIC: 1}, email="ada@example.com")
    shop.pay(done, name="Ada Lovelace", email="ada@example.com")
    dead = shop.checkout({UNMAPPED: 1}, mode="payment", email="ada@example.com")
    shop.pay(dead, name="Ada Lovelace", email="ada@example.com")
    assert shop.wait_for(done).status == "done"
    assert shop.wait_for(dead).status == "dead"
    body = event_body(created=int(time.time()))
    forged = requests.post(
        f"{shop.receiver_url}/webhooks/stripe",
        data=body,
        headers=signed_headers(body, "whsec_not_the_secret"),
        timeout=30,
    )
    assert forged.status_code == 400

    after = scrape(shop.receiver_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    completed = {"type": "checkout.session.completed", "outcome": "accepted"}
    assert grew("csonboard_webhook_events_total", **completed) == 2
    assert grew("csonboard_webhook_events_total", type="unverified", outcome="rejected") == 1
    assert grew("csonboard_webhook_signature_failures_total") == 1
    step = "csonboard_onboarding_step_duration_seconds_count"
    assert grew(step, step="fetch_session", outcome="done") == 2
    assert grew(step, step="resolve_plan", outcome="failed") == 1
    assert grew(step, step="link_back", outcome="done") == 1
    assert grew(step, step="await_project", outcome="waiting") >= 1
    cs = "csonboard_computestacks_request_duration_seconds_count"
    assert grew(cs, endpoint="POST /api/orders") == 1
    assert grew(cs, endpoint="POST /api/admin/users") == 1
    # The first lookup of a new customer answers 404: counted, by endpoint.
    assert (
        grew(
            "csonboard_computestacks_errors_total",
            endpoint="GET /api/admin/users/{id}",
            error="not_found",
        )
        == 1
    )
    # State, read from the ledger and the queue at scrape time.
    assert value(after, "csonboard_ledger_up") == 1
    assert value(after, "csonboard_queue_up") == 1
    assert value(after, "csonboard_onboardings", state="done") == 1
    assert value(after, "csonboard_onboardings", state="dead") == 1
    assert value(after, "csonboard_onboardings", state="stuck") == 0
    assert value(after, "csonboard_dead_letters", kind="onboarding") == 1
    assert value(after, "csonboard_dead_letters", kind="event") == 0
    assert ("csonboard_queue_depth", frozenset()) in after
    assert value(after, "csonboard_oldest_unfinished_onboarding_age_seconds") == 0
    # No raw ids in any label: only templates, step names and event types.
    labels = {v for (_, pairs) in after for (_, v) in pairs}
    assert not any(done in v or dead in v or "cus_" in v for v in labels)


def test_the_oldest_unfinished_onboarding_is_timed_from_the_ledger(shop: SandboxStack) -> None:
    shop.stop_worker()
    shop.ledger.onboardings.start("cs_test_waiting_for_a_worker", livemode=False, source="test")
    later = datetime.now(UTC) + timedelta(hours=1)
    app = create_app(
        shop.settings, ledger=shop.ledger, doorbell=shop.worker.doorbell, clock=lambda: later
    )

    samples = parse(app.test_client().get("/metrics").text)

    age = value(samples, "csonboard_oldest_unfinished_onboarding_age_seconds")
    assert 3590 < age < 3610
    assert value(samples, "csonboard_onboardings", state="pending") == 1


def test_a_scrape_answers_while_the_ledger_and_queue_are_down(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        CSONBOARD_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
        CSONBOARD_QUEUE_URL="redis://127.0.0.1:9/0",
    )
    answer = create_app(settings).test_client().get("/metrics")

    assert answer.status_code == 200
    samples = parse(answer.text)
    assert value(samples, "csonboard_ledger_up") == 0
    assert value(samples, "csonboard_queue_up") == 0
    assert ("csonboard_onboardings", frozenset({("state", "done")})) not in samples


# -- as the operator runs it ---------------------------------------------------------------


def _buy(sandboxes: Sandboxes, email: str) -> str:
    buyer = stripe.StripeClient(sandboxes.stripe_key, base_addresses={"api": sandboxes.stripe_url})
    session = buyer.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": STATIC, "quantity": 1}],
            "customer_email": email,
            "success_url": "https://shop.example/thanks",
        }
    )
    requests.post(
        f"{sandboxes.stripe_url}/_sandbox/checkout/sessions/{session.id}/complete",
        json={"name": "Grace Hopper"},
        timeout=10,
    ).raise_for_status()
    return str(session.id)


def _wait_done(session_id: str, env: dict[str, str]) -> None:
    shown: dict[str, object] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and shown.get("status") not in ("done", "dead"):
        time.sleep(0.3)
        result = csonboard("onboardings", "show", session_id, "--json", env=env)
        shown = json.loads(result.stdout) if result.returncode == 0 else {}
    assert shown.get("status") == "done", shown


def _forge(url: str, count: int) -> None:
    body = event_body(created=int(time.time()))
    for _ in range(count):
        answer = requests.post(
            f"{url}/webhooks/stripe",
            data=body,
            headers=signed_headers(body, "whsec_forged"),
            timeout=30,
        )
        assert answer.status_code == 400


def test_serve_adds_up_its_gunicorn_workers_and_its_worker_process(
    tmp_path: Path, sandboxes: Sandboxes
) -> None:
    env = sandboxes.env(**base_env(tmp_path))
    url = f"http://127.0.0.1:{(port := free_port())}"
    sandboxes.deliver_to(f"{url}/webhooks/stripe", WEBHOOK_SECRET)
    metrics_dir = Path(env["CSONBOARD_DATA_DIR"]) / "metrics"
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_1.db").write_bytes(b"left over from an earlier run")
    with running("serve", "--port", str(port), env=env, log=tmp_path / "serve.log"):
        wait_until_ready(url)
        session_id = _buy(sandboxes, "grace@example.com")
        _wait_done(session_id, env)
        _forge(url, 12)  # spread over both gunicorn workers
        samples = scrape(url)
        files = sorted(p.name for p in metrics_dir.glob("*.db"))

    assert "counter_1.db" not in files  # emptied at start
    assert len([f for f in files if f.startswith("counter_")]) >= 2  # several processes wrote
    # From the gunicorn workers:
    completed = {"type": "checkout.session.completed", "outcome": "accepted"}
    assert value(samples, "csonboard_webhook_events_total", **completed) == 1
    assert value(samples, "csonboard_webhook_signature_failures_total") == 12
    # From the worker process, through the shared directory:
    step = "csonboard_onboarding_step_duration_seconds_count"
    assert value(samples, step, step="link_back", outcome="done") == 1
    cs = "csonboard_computestacks_request_duration_seconds_count"
    assert value(samples, cs, endpoint="POST /api/orders") == 1
    # From the ledger:
    assert value(samples, "csonboard_onboardings", state="done") == 1


def test_a_standalone_worker_serves_its_own_metrics(tmp_path: Path, sandboxes: Sandboxes) -> None:
    env = sandboxes.env(**base_env(tmp_path))
    url = f"http://127.0.0.1:{(port := free_port())}"
    worker_url = f"http://127.0.0.1:{(worker_port := free_port())}"
    sandboxes.deliver_to(f"{url}/webhooks/stripe", WEBHOOK_SECRET)
    with (
        running("serve", "--no-worker", "--port", str(port), env=env, log=tmp_path / "r.log"),
        running(
            "worker",
            "--metrics-port",
            str(worker_port),
            env=env,
            log=tmp_path / "w.log",
        ),
    ):
        wait_until_ready(url)
        session_id = _buy(sandboxes, "ada@example.com")
        _wait_done(session_id, env)
        _forge(url, 3)
        receiver = scrape(url)
        worker = scrape(worker_url)

    step = "csonboard_onboarding_step_duration_seconds_count"
    assert value(worker, step, step="link_back", outcome="done") == 1
    assert (
        value(
            worker,
            "csonboard_computestacks_request_duration_seconds_count",
            endpoint="POST /api/orders",
        )
        == 1
    )
    # The receiver has its own counts (its gunicorn workers, added up) and the
    # ledger's state, but not the other process's timings.
    assert value(receiver, "csonboard_webhook_signature_failures_total") == 3
    assert value(receiver, step, step="link_back", outcome="done") == 0
    assert value(receiver, "csonboard_onboardings", state="done") == 1
    assert (Path(env["CSONBOARD_DATA_DIR"]) / "metrics").is_dir()
