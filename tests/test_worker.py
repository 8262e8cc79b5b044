"""The worker: every accepted event is processed once, failures are retried or
dead-lettered by type, and nothing is lost to a lost message or a dead worker."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import WEBHOOK_SECRET, Stack, make_settings
from csonboard.errors import ComputeStacksUnavailable, OnboardingRefused
from csonboard.ledger import EventRecord, Ledger
from csonboard.queue import open_doorbell
from csonboard.retry import backoff_seconds
from csonboard.worker import EventHandler, Outcome, Worker
from csonboard_webhooks import create_app
from stripe_events import event_body, signed_headers
from test_ledger import T0, Clock

CHECKOUT = "checkout.session.completed"


def make_worker(
    stack: Stack, routes: Mapping[str, EventHandler], ledger: Ledger, max_attempts: int = 3
) -> Worker:
    """A worker on the stack's queue with injected routes (the units under test
    here are the worker's policies, not any particular handler)."""
    holder: list[Worker] = []
    doorbell = stack.doorbell(lambda kind, ident: holder[0].handle(kind, ident))
    settings = stack.settings.worker.model_copy(
        update={"max_attempts": max_attempts, "backoff_seconds": 10, "backoff_max_seconds": 100}
    )
    holder.append(Worker(ledger, doorbell, routes, settings, name="w-test", rng=lambda: 1.0))
    return holder[0]


def deliver(stack: Stack, ledger: Ledger, count: int, event_type: str = CHECKOUT) -> list[str]:
    """POST signed events to a receiver sharing the stack's ledger and queue."""
    client = create_app(stack.settings, ledger=ledger, doorbell=stack.doorbell()).test_client()
    ids = []
    for n in range(count):
        body = event_body(event_type, event_id=f"evt_{event_type[:8]}_{n}")
        response = client.post(
            "/webhooks/stripe", data=body, headers=signed_headers(body, WEBHOOK_SECRET)
        )
        assert response.status_code == 200
        ids.append(response.get_json()["event"])
    return ids


def test_events_accepted_while_no_worker_runs_are_all_processed_when_one_starts(
    stack: Stack,
) -> None:
    ledger = stack.ledger()
    ids = deliver(stack, ledger, 5) + deliver(stack, ledger, 2, "customer.updated")
    assert ledger.events.counts() == {"received": 7}

    worker = make_worker(stack, {CHECKOUT: lambda r: Outcome("done", "onboarding started")}, ledger)
    worker.run_burst()

    statuses = {e.id: (e.status, e.outcome) for e in ledger.events.find()}
    assert {statuses[i][0] for i in ids[:5]} == {"done"}
    assert statuses[ids[5]] == ("ignored", "type not handled")
    assert worker.doorbell.depth() == 0


def test_duplicate_messages_never_run_the_work_twice(stack: Stack) -> None:
    ledger = stack.ledger()
    calls: list[str] = []

    def handler(record: EventRecord) -> Outcome:
        calls.append(record.id)
        return Outcome("done", "ok")

    worker = make_worker(stack, {CHECKOUT: handler}, ledger)
    [event_id] = deliver(stack, ledger, 1)
    for _ in range(4):
        worker.doorbell.ring("event", event_id)

    worker.run_burst()

    assert calls == [event_id]


def test_a_lost_message_is_recovered_by_the_sweep(stack: Stack) -> None:
    ledger = stack.ledger()
    [event_id] = deliver(stack, ledger, 1)
    worker = make_worker(stack, {CHECKOUT: lambda r: Outcome("done", "ok")}, ledger)
    worker.doorbell.huey.flush()  # the message is gone; the ledger still knows

    worker.run_burst()

    record = ledger.events.get(event_id)
    assert record is not None and record.status == "done"


def test_work_of_a_killed_worker_is_taken_over_after_its_lease_expires(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    [event_id] = deliver(stack, ledger, 1)
    assert ledger.events.claim(event_id, "killed-worker", 300)  # then it died
    worker = make_worker(stack, {CHECKOUT: lambda r: Outcome("done", "taken over")}, ledger)

    worker.run_burst()
    assert ledger.events.get(event_id).status == "processing"  # type: ignore[union-attr]

    clock.advance(301)
    worker.run_burst()
    record = ledger.events.get(event_id)
    assert record is not None
    assert (record.status, record.outcome, record.attempts) == ("done", "taken over", 2)


def test_transient_failures_back_off_exponentially_then_dead_letter(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)

    def outage(record: EventRecord) -> Outcome:
        raise ComputeStacksUnavailable("503 Service Unavailable", method="GET", path="/api/x")

    worker = make_worker(stack, {CHECKOUT: outage}, ledger, max_attempts=3)
    [event_id] = deliver(stack, ledger, 1)

    worker.run_burst()
    first = ledger.events.get(event_id)
    assert first is not None
    assert (first.status, first.attempts) == ("failed", 1)
    assert first.next_attempt_at == T0 + timedelta(seconds=10)
    assert "503 Service Unavailable" in (first.last_error or "")

    clock.advance(10)
    worker.run_burst()
    second = ledger.events.get(event_id)
    assert second is not None
    assert (second.status, second.next_attempt_at) == ("failed", T0 + timedelta(seconds=30))

    clock.advance(20)
    worker.run_burst()
    dead = ledger.events.get(event_id)
    assert dead is not None
    assert (dead.status, dead.attempts, dead.next_attempt_at) == ("dead", 3, None)


def test_a_permanent_failure_is_dead_lettered_at_once_with_its_reason(stack: Stack) -> None:
    ledger = stack.ledger()

    def refuse(record: EventRecord) -> Outcome:
        raise OnboardingRefused("price price_x is in no plan: add it to the catalog and replay")

    worker = make_worker(stack, {CHECKOUT: refuse}, ledger, max_attempts=10)
    [event_id] = deliver(stack, ledger, 1)

    worker.run_burst()

    record = ledger.events.get(event_id)
    assert record is not None
    assert (record.status, record.attempts) == ("dead", 1)
    assert record.last_error == "price price_x is in no plan: add it to the catalog and replay"


def test_a_bug_in_a_handler_is_retried_then_dead_lettered_never_lost(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)

    def buggy(record: EventRecord) -> Outcome:
        return {}["missing"]  # type: ignore[no-any-return]

    worker = make_worker(stack, {CHECKOUT: buggy}, ledger, max_attempts=2)
    [event_id] = deliver(stack, ledger, 1)

    worker.run_burst()
    clock.advance(3600)
    worker.run_burst()

    record = ledger.events.get(event_id)
    assert record is not None
    assert record.status == "dead"
    assert "unexpected KeyError" in (record.last_error or "")
    assert "Traceback" in caplog.text


def test_a_server_retry_hint_beats_a_shorter_backoff() -> None:
    assert backoff_seconds(1, base=2, cap=60, rng=lambda: 1.0) == 2
    assert backoff_seconds(1, base=2, cap=60, rng=lambda: 0.0) == 1
    assert backoff_seconds(10, base=2, cap=60, rng=lambda: 1.0) == 60
    assert backoff_seconds(1, base=2, cap=60, rng=lambda: 1.0, at_least=45) == 45


def test_closing_a_redis_doorbell_hangs_up_every_connection(
    redis_server: str, tmp_path: Path
) -> None:
    import redis

    settings = make_settings(tmp_path, CSONBOARD_QUEUE_URL=redis_server)
    name = f"csonboard:{settings.queue_name}"
    doorbell = open_doorbell(settings)
    doorbell.ring("event", "evt_1")
    assert doorbell.depth() == 1
    doorbell.huey.flush()
    with redis.Redis.from_url(redis_server) as admin:
        assert [c for c in admin.client_list() if c["name"] == name], "connections are named"

        doorbell.close()

        # The server drops a closed connection from its list a moment later.
        deadline = time.monotonic() + 5
        while (left := [c for c in admin.client_list() if c["name"] == name]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert left == []
