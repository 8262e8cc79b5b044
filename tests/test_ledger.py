"""The ledger: migrations, exactly-once storage and leases, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import Stack
from csonboard.errors import LedgerUnavailable
from csonboard.ledger import IncomingEvent, Ledger
from csonboard.ledger.payments import PaymentState
from csonboard.ledger.schema import metadata

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def incoming(event_id: str = "evt_1", body: bytes = b'{"id": "evt_1"}') -> IncomingEvent:
    return IncomingEvent(
        id=event_id,
        type="checkout.session.completed",
        api_version="2026-10-28.endive",
        livemode=False,
        created=T0,
        object_id="cs_test_1",
        customer_id="cus_1",
        body=body,
        signature="t=1,v1=00",
        source="webhook",
    )


def test_migrations_build_exactly_the_declared_schema(stack: Stack) -> None:
    ledger = stack.ledger()
    with ledger.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    assert ledger.pending_migrations() == []


def test_instances_starting_together_migrate_safely(stack: Stack) -> None:
    fresh = Ledger.open(stack.settings.ledger_url)
    revisions = fresh.pending_migrations()
    fresh.close()
    env = {**os.environ, **stack.env}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "csonboard", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [child.communicate(timeout=60) for child in children]

    assert [child.returncode for child in children] == [0, 0, 0], results
    outputs = sorted(out.strip() for out, _ in results)
    assert len(revisions) >= 2
    applied = f"applied {', '.join(revisions)}"
    assert outputs == [applied, "the ledger is up to date", "the ledger is up to date"]
    assert stack.ledger().pending_migrations() == []


_RACE = """
import sys
from csonboard.ledger import Ledger, IncomingEvent
from datetime import datetime, UTC
ledger = Ledger.open(sys.argv[1])
event = IncomingEvent(id="evt_race", type="t", api_version=None, livemode=False,
    created=datetime.now(UTC), object_id=None, customer_id=None, body=b"{}",
    signature=None, source="webhook")
sys.stdin.readline()  # start together
print("stored" if ledger.events.add(event) else "duplicate")
"""


def test_one_event_racing_into_several_processes_is_stored_once(stack: Stack) -> None:
    stack.ledger()  # migrated
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, stack.settings.ledger_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    answers = sorted(child.communicate(timeout=60)[0].strip() for child in children)

    assert answers == ["duplicate"] * 5 + ["stored"]
    assert stack.ledger().events.counts() == {"received": 1}


def test_a_writer_waits_for_another_process_s_write_lock_then_stores(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.upgrade()
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    stored: list[frozenset[str]] = []
    writer = threading.Thread(
        target=lambda: stored.append(ledger.events.add_many([incoming()]).new)
    )
    writer.start()
    writer.join(0.3)
    assert writer.is_alive() and not stored, "the writer waits for the lock rather than failing"

    other.execute("COMMIT")
    writer.join(5)

    assert stored == [{"evt_1"}]
    assert ledger.events.counts() == {"received": 1}
    other.close()
    ledger.close()


def test_receivers_storing_overlapping_groups_in_any_order_do_not_deadlock(
    stack: Stack,
) -> None:
    # Two receiver processes' groups hold the same events in opposite orders
    # (PostgreSQL would deadlock on row locks taken in different orders).
    first, second = stack.ledger(), stack.ledger()
    group = [incoming(f"evt_{n:05d}") for n in range(2000)]
    stored: dict[str, frozenset[str] | Exception] = {}

    def store(name: str, ledger: Ledger, events: list[IncomingEvent]) -> None:
        try:
            stored[name] = ledger.events.add_many(events).new
        except Exception as exc:  # noqa: BLE001 -- reported by the assertion
            stored[name] = exc

    threads = [
        threading.Thread(target=store, args=("forward", first, group)),
        threading.Thread(target=store, args=("backward", second, group[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    new = [ids for ids in stored.values() if isinstance(ids, frozenset)]
    assert len(new) == 2, stored
    assert new[0] | new[1] == {event.id for event in group}
    assert not new[0] & new[1]
    assert first.events.counts() == {"received": 2000}


def test_a_corrupt_sqlite_ledger_is_reported_as_unavailable_on_write_and_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(f"sqlite:///{path}")
    ledger.upgrade()
    ledger.close()
    with path.open("r+b") as file:
        file.write(b"this is not SQLite" * 8)  # the header, destroyed
    broken = Ledger.open(f"sqlite:///{path}")

    with pytest.raises(LedgerUnavailable, match="file is not a database"):
        broken.events.add(incoming())
    with pytest.raises(LedgerUnavailable, match="file is not a database"):
        broken.events.get("evt_1")
    broken.close()


def test_the_body_is_kept_byte_for_byte(stack: Stack) -> None:
    ledger = stack.ledger()
    body = '{"name": "Zoë 🚀",\r\n  "x":\t1 }'.encode()
    ledger.events.add(incoming(body=body))
    assert ledger.events.body("evt_1") == body


def test_only_one_of_many_racing_workers_gets_the_lease(stack: Stack) -> None:
    ledger = stack.ledger()
    ledger.events.add(incoming())
    winners: list[str] = []
    start = threading.Barrier(8)

    def claim(name: str) -> None:
        start.wait()
        if ledger.events.claim("evt_1", name, 60):
            winners.append(name)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1


def test_an_expired_lease_passes_to_another_worker_and_the_first_loses_it(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    ledger.events.add(incoming())
    assert ledger.events.claim("evt_1", "crashed", 60) is not None

    clock.advance(30)
    assert ledger.events.claim("evt_1", "second", 60) is None
    assert ledger.events.due() == []

    clock.advance(31)
    assert ledger.events.due() == ["evt_1"]
    taken = ledger.events.claim("evt_1", "second", 60)
    assert taken is not None and taken.attempts == 2
    assert ledger.events.finish("evt_1", "crashed", "done", "late") is False
    assert ledger.events.finish("evt_1", "second", "done", "ok") is True
    record = ledger.events.get("evt_1")
    assert record is not None and (record.status, record.outcome) == ("done", "ok")


def test_a_failed_event_is_due_again_at_its_retry_time_and_a_dead_one_never(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    ledger.events.add(incoming("evt_retry"))
    ledger.events.add(incoming("evt_dead"))
    ledger.events.claim("evt_retry", "w", 60)
    ledger.events.claim("evt_dead", "w", 60)

    ledger.events.fail("evt_retry", "w", "ComputeStacks 503", T0 + timedelta(seconds=90))
    ledger.events.fail("evt_dead", "w", "unknown price price_x", None)

    assert ledger.events.due() == []
    clock.advance(90)
    assert ledger.events.due() == ["evt_retry"]
    dead = ledger.events.get("evt_dead")
    assert dead is not None and (dead.status, dead.last_error) == ("dead", "unknown price price_x")


def test_requeue_makes_dead_work_due_with_fresh_attempts_but_spares_held_work(stack: Stack) -> None:
    ledger = stack.ledger()
    ledger.events.add(incoming("evt_dead"))
    ledger.events.add(incoming("evt_held"))
    ledger.events.claim("evt_dead", "w", 60)
    ledger.events.fail("evt_dead", "w", "boom", None)
    ledger.events.claim("evt_held", "w", 600)

    assert ledger.events.requeue(["evt_dead", "evt_held"]) == ["evt_dead"]
    requeued = ledger.events.get("evt_dead")
    assert requeued is not None and (requeued.status, requeued.attempts) == ("received", 0)
    assert ledger.events.due() == ["evt_dead"]


def test_find_filters_by_status_type_customer_object_and_time(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    ledger.events.add(incoming("evt_old"))
    clock.advance(3600)
    ledger.events.add(incoming("evt_new"))
    ledger.events.claim("evt_new", "w", 60)
    ledger.events.finish("evt_new", "w", "ignored", "type not handled")

    assert [e.id for e in ledger.events.find()] == ["evt_new", "evt_old"]
    assert [e.id for e in ledger.events.find(statuses=["ignored"])] == ["evt_new"]
    assert [e.id for e in ledger.events.find(since=T0 + timedelta(minutes=30))] == ["evt_new"]
    assert [e.id for e in ledger.events.find(until=T0 + timedelta(minutes=30))] == ["evt_old"]
    assert len(ledger.events.find(customer_id="cus_1", object_id="cs_test_1")) == 2
    assert ledger.events.find(types=["invoice.paid"]) == []
    assert len(ledger.events.find(limit=1)) == 1


def test_naive_times_are_refused_rather_than_guessed(tmp_path: object) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path}/l.db", clock=lambda: datetime(2026, 1, 1))
    ledger.upgrade()
    with pytest.raises(Exception, match="naive datetime"):
        ledger.events.add(incoming())
    ledger.close()


def test_a_daemon_waits_for_an_unreachable_ledger_then_gives_up() -> None:
    from csonboard.runtime import migrate_when_ready

    unreachable = Ledger.open("postgresql+psycopg://nobody@127.0.0.1:9/none")
    pauses: list[float] = []
    try:
        with pytest.raises(LedgerUnavailable, match="ledger"):
            migrate_when_ready(unreachable, patience=40, sleep=pauses.append)
    finally:
        unreachable.close()

    assert pauses == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]  # backing off, capped,
    assert sum(pauses) <= 40  # and within its patience


def test_news_during_a_lifecycle_pass_makes_the_account_due_again(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    ledger.lifecycle.note_event("sub_1", "cus_1", clock.now)
    assert ledger.lifecycle.claim("cus_1", "w", 60)
    clock.advance(1)
    assert ledger.lifecycle.note_event("sub_1", "cus_1", clock.now)  # the customer pays
    assert not ledger.lifecycle.wake("cus_1")  # an onboarding of theirs finishes

    assert ledger.lifecycle.release("cus_1", "w", status="idle") == "pending"
    account = ledger.lifecycle.account("cus_1")
    assert account is not None and (account.status, account.next_attempt_at) == ("pending", None)

    # The next pass hears no news: it settles as it decides.
    assert ledger.lifecycle.claim("cus_1", "w", 60)
    later = clock.now + timedelta(days=3)
    assert ledger.lifecycle.release("cus_1", "w", status="waiting", next_attempt_at=later) == (
        "waiting"
    )
    account = ledger.lifecycle.account("cus_1")
    assert account is not None and (account.status, account.next_attempt_at) == ("waiting", later)


def test_reversals_are_counted_on_either_database(stack: Stack) -> None:
    """What ``csonboard_money_reversals_total`` reads, on both backends."""
    ledger = stack.ledger()
    assert ledger.payments.reversals() == {}

    def paid(charge: str, session: str | None, refunded: int, dispute: str | None) -> None:
        ledger.payments.record(
            PaymentState(
                charge, session, "cus_1", 500, refunded, "usd", None, dispute, None, None, False, ""
            )
        )

    paid("ch_full", "cs_1", 500, None)
    paid("ch_part", "cs_2", 100, "won")
    paid("ch_none", "cs_3", 0, None)
    paid("ch_stray", None, 500, None)
    ledger.payments.fraud_action("ch_none", "recorded")

    assert ledger.payments.reversals() == {
        ("refund", "full"): 1,
        ("refund", "partial"): 1,
        ("refund", "not_a_purchase"): 1,
        ("dispute", "won"): 1,
        ("early_fraud_warning", "recorded"): 1,
    }


def test_a_failed_refund_waits_its_backoff_and_counts_its_attempts(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    ledger.onboardings.start("cs_test_r", livemode=False, source="test")
    assert ledger.onboardings.claim("cs_test_r", "w1", 30) is not None
    assert ledger.onboardings.release("cs_test_r", "w1", status="dead", note="order failed")
    clock.advance(3600)
    bought_before = clock() - timedelta(minutes=30)

    assert ledger.onboardings.refund_due(bought_before) == ["cs_test_r"]
    assert ledger.onboardings.refund_due(None) == []  # not under way: only by policy
    first = ledger.onboardings.claim_refund("cs_test_r", "w1", 30)
    assert first is not None and (first.status, first.refund_attempts) == ("refunding", 1)
    retry_at = clock() + timedelta(seconds=60)
    assert ledger.onboardings.release(
        "cs_test_r", "w1", status="refunding", error="HTTP 500", next_attempt_at=retry_at
    )

    assert ledger.onboardings.refund_due(bought_before) == []  # backing off
    assert ledger.onboardings.refund_due(None) == []
    clock.advance(61)
    assert ledger.onboardings.refund_due(None) == ["cs_test_r"]  # under way: always finished
    second = ledger.onboardings.claim_refund("cs_test_r", "w2", 30)
    assert second is not None and second.refund_attempts == 2
    assert ledger.onboardings.release("cs_test_r", "w2", status="refunded", note="refunded")
    assert ledger.onboardings.refund_failed("cs_test_r", "Stripe could not refund ch_1")
    assert not ledger.onboardings.refund_failed("cs_test_r", "again")  # once
    ended = ledger.onboardings.get("cs_test_r")
    assert ended is not None and ended.status == "refund_failed"
    assert ledger.onboardings.refund_due(None) == []  # left for a person
    assert ledger.onboardings.refund_due(clock()) == []
