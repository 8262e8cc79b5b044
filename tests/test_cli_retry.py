"""``csonboard retry``: which work each filter selects, that a dry run changes
nothing, that bulk changes ask first, and that work which moved on since it was
listed is left alone. On SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conftest import Stack
from csonboard.ledger import Ledger
from csonboard.operations.retry import find_retryable, retry_work
from operator_support import ledger_rows, run
from test_ledger import incoming

COMPLETED = "checkout.session.completed"


class Clock:
    """The ledger's clock, set back to seed rows "received an hour ago"."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def ago(self, **delta: float) -> None:
        self.now = datetime.now(UTC) - timedelta(**delta)


def add_event(
    ledger: Ledger, clock: Clock, event_id: str, kind: str, status: str, **ago: float
) -> None:
    clock.ago(**ago)
    ledger.events.add(replace(incoming(event_id), type=kind, object_id=None))
    if status == "received":
        return
    assert ledger.events.claim(event_id, "w", 60)
    if status == "done":
        ledger.events.finish(event_id, "w", "done", "fine")
    else:
        retry_at = clock.now + timedelta(hours=1) if status == "failed" else None
        ledger.events.fail(event_id, "w", f"{event_id} broke", retry_at)


def add_onboarding(
    ledger: Ledger, clock: Clock, session_id: str, status: str, **ago: float
) -> None:
    clock.ago(**ago)
    ledger.onboardings.start(session_id, livemode=False, source="test")
    assert ledger.onboardings.claim(session_id, "w", 60)
    ledger.onboardings.begin_step(session_id, "w", "fetch_session", 60)
    ledger.onboardings.checkpoint(
        session_id, "w", "fetch_session", {"ok": 1}, done=True, lease_seconds=60
    )
    ledger.onboardings.begin_step(session_id, "w", "ensure_cs_user", 60)
    ledger.onboardings.release(
        session_id,
        "w",
        status=status,
        step="ensure_cs_user",
        step_status="failed",
        error=f"{session_id} broke",
        next_attempt_at=clock.now + timedelta(hours=1) if status == "failed" else None,
    )


def seeded(stack: Stack) -> Ledger:
    """Work in every status, at different ages."""
    clock = Clock()
    ledger = stack.ledger(clock)
    add_event(ledger, clock, "evt_dead_old", COMPLETED, "dead", hours=3)
    add_event(ledger, clock, "evt_dead_new", COMPLETED, "dead", minutes=60)
    add_event(ledger, clock, "evt_dead_other", "customer.created", "dead", minutes=50)
    add_event(ledger, clock, "evt_failed", COMPLETED, "failed", minutes=40)
    add_event(ledger, clock, "evt_done", COMPLETED, "done", minutes=30)
    add_onboarding(ledger, clock, "cs_dead", "dead", minutes=45)
    add_onboarding(ledger, clock, "cs_stuck", "stuck", minutes=35)
    add_onboarding(ledger, clock, "cs_failed", "failed", minutes=25)
    add_onboarding(ledger, clock, "cs_dead_old", "dead", hours=5)
    return ledger


def listed(output: str) -> list[str]:
    """The ids in the table ``retry`` prints (third column)."""
    rows = [line.split() for line in output.splitlines()]
    return [row[3] for row in rows if len(row) > 4 and row[2] in ("event", "onboarding")]


def test_a_dry_run_lists_exactly_the_matches_and_changes_nothing(stack: Stack) -> None:
    ledger = seeded(stack)
    before = (ledger_rows(ledger), stack.doorbell().depth())

    result = run(stack.env, "retry", "--dead", "--type", COMPLETED, "--since", "2h", "--dry-run")

    assert result.exit_code == 0, result.output
    assert listed(result.stdout) == ["evt_dead_new"]
    assert "evt_dead_new broke" in result.stdout
    assert result.stdout.rstrip().endswith("dry run: nothing was changed")
    assert (ledger_rows(ledger), stack.doorbell().depth()) == before


def test_dead_work_of_both_kinds_is_requeued_and_rung(stack: Stack) -> None:
    ledger = seeded(stack)

    result = run(stack.env, "retry", "--dead", "--since", "2h")

    assert result.exit_code == 0, result.output
    assert listed(result.stdout) == ["cs_dead", "evt_dead_other", "evt_dead_new"]
    assert "re-queued 2 event(s) and 1 onboarding(s)" in result.stdout
    for event_id in ("evt_dead_new", "evt_dead_other"):
        record = ledger.events.get(event_id)
        assert record is not None and (record.status, record.attempts) == ("received", 0)
    onboarding = ledger.onboardings.get("cs_dead")
    assert onboarding is not None and onboarding.status == "pending"
    steps = {s.step: s for s in ledger.onboardings.steps("cs_dead")}
    assert steps["fetch_session"].status == "done"  # kept: resumes at ensure_cs_user
    assert (steps["ensure_cs_user"].attempts, steps["ensure_cs_user"].last_error) == (0, None)
    untouched = {"evt_dead_old": "dead", "evt_failed": "failed", "evt_done": "done"}
    assert {e: ledger.events.get(e).status for e in untouched} == untouched  # type: ignore[union-attr]
    old = ledger.onboardings.get("cs_dead_old")
    assert old is not None and old.status == "dead"
    assert stack.doorbell().depth() == 3


def test_json_says_what_matched_and_what_was_requeued(stack: Stack) -> None:
    seeded(stack)

    dry = run(stack.env, "retry", "--dead", "--since", "2h", "--dry-run", "--json")
    done = run(stack.env, "retry", "--dead", "--since", "2h", "--json")

    assert dry.exit_code == 0 and done.exit_code == 0, dry.output + done.output
    listed_dry = json.loads(dry.stdout)
    assert listed_dry["dry_run"] is True and listed_dry["requeued"] == []
    matched = sorted(item["ident"] for item in listed_dry["matched"])
    assert matched == ["cs_dead", "evt_dead_new", "evt_dead_other"]
    report = json.loads(done.stdout)  # nothing but the JSON on stdout
    assert sorted(item["ident"] for item in report["requeued"]) == matched
    assert report["skipped"] == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--stuck"], ["cs_stuck"]),
        (["--failed"], ["cs_failed", "evt_failed"]),
        (["--failed", "--stuck", "--type", "onboarding"], ["cs_failed", "cs_stuck"]),
        (["--dead", "--type", "onboarding"], ["cs_dead", "cs_dead_old"]),
        (["--dead", "--type", "customer.created"], ["evt_dead_other"]),
        (["--dead", "--until", "2h"], ["evt_dead_old", "cs_dead_old"]),
        (["--dead", "--limit", "2"], ["cs_dead", "evt_dead_other"]),
    ],
)
def test_filters_select_by_status_type_time_and_count(
    stack: Stack, args: list[str], expected: list[str]
) -> None:
    seeded(stack)

    result = run(stack.env, "retry", *args, "--dry-run")

    assert result.exit_code == 0, result.output
    assert listed(result.stdout) == expected


def test_more_than_ten_items_ask_first_and_a_no_changes_nothing(stack: Stack) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    for n in range(12):
        add_event(ledger, clock, f"evt_bulk_{n:02d}", COMPLETED, "dead", minutes=60 - n)
    before = ledger_rows(ledger)

    declined = run(stack.env, "retry", "--dead", input="n\n")

    assert declined.exit_code == 1
    assert "Re-queue these 12 event(s)? [y/N]" in declined.stderr
    assert "not confirmed: nothing was re-queued" in declined.stderr
    assert ledger_rows(ledger) == before

    confirmed = run(stack.env, "retry", "--dead", "--yes")

    assert confirmed.exit_code == 0, confirmed.output
    assert "[y/N]" not in confirmed.stderr
    assert "re-queueing" in confirmed.stderr  # the progress bar
    assert "re-queued 12 event(s)" in confirmed.stdout
    assert {e.status for e in ledger.events.find(limit=100)} == {"received"}


def test_work_that_moved_on_after_it_was_listed_is_left_alone(stack: Stack) -> None:
    ledger = seeded(stack)
    items = find_retryable(ledger, ["dead", "stuck"])
    # Meanwhile: someone replayed evt_dead_new, cs_dead was replayed and
    # finished, and a worker is running cs_stuck.
    assert ledger.events.requeue(["evt_dead_new"])
    assert ledger.onboardings.requeue(["cs_dead", "cs_stuck"], note="replayed") == [
        "cs_dead",
        "cs_stuck",
    ]
    assert ledger.onboardings.claim("cs_dead", "w", 60)
    assert ledger.onboardings.release("cs_dead", "w", status="done", note="onboarded")
    assert ledger.onboardings.claim("cs_stuck", "other-worker", 600)

    result = retry_work(ledger, stack.doorbell(), items)

    skipped = {item.ident for item in result.skipped}
    assert skipped == {"evt_dead_new", "cs_dead", "cs_stuck"}
    assert {i.ident for i in result.requeued} == {"evt_dead_old", "evt_dead_other", "cs_dead_old"}
    done = ledger.onboardings.get("cs_dead")
    assert done is not None and (done.status, done.note) == ("done", "onboarded")
    busy = ledger.onboardings.get("cs_stuck")
    assert busy is not None and (busy.status, busy.lease_owner) == ("running", "other-worker")


def test_with_the_queue_down_the_work_is_still_requeued_in_the_ledger(stack: Stack) -> None:
    ledger = seeded(stack)
    env = {**stack.env, "CSONBOARD_QUEUE_URL": "redis://127.0.0.1:1/0"}  # nothing listens

    result = run(env, "retry", "--stuck")

    assert result.exit_code == 0, result.output
    assert "re-queued 1 onboarding(s)" in result.stdout
    assert "warning: the queue is unavailable" in result.stderr
    assert "a running worker's sweep picks it up" in result.stderr
    onboarding = ledger.onboardings.get("cs_stuck")
    assert onboarding is not None and onboarding.status == "pending"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "say which work: --failed, --dead and/or --stuck"),
        (["--dead", "--since", "1h", "--until", "2h"], "--since must be before --until"),
        (["--dead", "--since", "yesterday"], "neither a duration like 2h"),
        (["--dead", "--since", "99999999d"], "too far from now"),
        (["--dead", "--until", "9999-12-31T23:59:59-05:00"], "too far from now"),
    ],
)
def test_bad_arguments_exit_2(stack: Stack, args: list[str], problem: str) -> None:
    result = run(stack.env, "retry", *args)

    assert result.exit_code == 2
    assert problem in result.stderr


def test_a_customer_lifecycle_that_ran_out_of_tries_is_retried_by_type_account(
    stack: Stack,
) -> None:
    clock = Clock()
    ledger = stack.ledger(clock)
    ledger.lifecycle.note_event("sub_broken", "cus_broken", clock.now)
    assert ledger.lifecycle.claim("cus_broken", "w", 60)
    ledger.lifecycle.release(
        "cus_broken", "w", status="dead", error="Stripe retrieve subscription: HTTP 500"
    )
    add_onboarding(ledger, clock, "cs_dead", "dead", minutes=5)

    listing = run(stack.env, "retry", "--dead", "--type", "account", "--dry-run")
    result = run(stack.env, "retry", "--dead", "--type", "account", "--yes")

    assert "cus_broken" in listing.stdout and "HTTP 500" in listing.stdout
    assert "cs_dead" not in listing.stdout
    assert result.exit_code == 0, result.output
    assert "re-queued 1 customer lifecycle(s)" in result.stdout
    account = ledger.lifecycle.account("cus_broken")
    assert account is not None
    assert (account.status, account.attempts, account.last_error) == ("pending", 0, None)
    assert ledger.onboardings.get("cs_dead").status == "dead"  # type: ignore[union-attr]
