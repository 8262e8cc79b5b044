"""Usage billing end to end: ComputeStacks usage rows in the simulator, the sync,
and Stripe meter events in the stand-in, over real HTTP. Whatever runs twice,
crashes, retries or loses an answer, each usage row is billed once, and none is
lost without a trace."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from csonboard.ledger import Onboarding
from csonboard.ledger.schema import usage_cursors, usage_reports
from csonboard.runtime import build_services, usage_sync
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from csonboard.usage import SyncReport
from operator_support import cli_env, run

WORDPRESS = "price_sandbox_wordpress_monthly"
BANDWIDTH = 20  # the simulator's bandwidth resource product
STORAGE = 21
METER = "mtr_sandbox_bandwidth"
EVENT_NAME = "computestacks_bandwidth_gb"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(tmp_path / "data", CSONBOARD_ONBOARDING_POLL_SECONDS="0.1") as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        yield stack


def customer(shop: SandboxStack, email: str = "ada@example.com") -> Onboarding:
    """A customer who bought WordPress, onboarded by the worker driven by hand
    (so that nothing syncs usage behind the test's back)."""
    shop.stop_worker()
    session_id = shop.checkout({WORDPRESS: 1}, email=email)
    shop.pay(session_id, name="Ada Lovelace", email=email)
    shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
    deadline = time.monotonic() + 30
    while (found := shop.ledger.onboardings.get(session_id)) is None or found.status != "done":
        assert time.monotonic() < deadline, f"not onboarded: {found}"
        shop.worker.run_burst()
        time.sleep(0.05)
    shop.worker.run_burst()  # the sweep starts following the customer's usage
    # As if the purchase were a day old, so that usage of the last hours is theirs.
    with shop.ledger.write() as connection:
        connection.execute(
            update(usage_cursors)
            .where(usage_cursors.c.customer_id == found.customer_id)
            .values(billable_from=datetime.now(UTC) - timedelta(days=1))
        )
    return found


def use(
    shop: SandboxStack,
    onboarding: Onboarding,
    qty: str,
    *,
    product_id: int = BANDWIDTH,
    ended: timedelta = timedelta(0),
    lasted: timedelta = timedelta(hours=3),
) -> int:
    """A usage row in ComputeStacks: ``qty`` used beyond the package, in a period
    that ended ``ended`` ago (negative: still running). Its id."""
    end = datetime.now(UTC) - ended
    row = shop.sandbox(
        "computestacks",
        "billing_usages",
        {
            "user_id": onboarding.cs_user_id,
            "qty": qty,
            "product_id": product_id,
            "period_start": (end - lasted).isoformat(),
            "period_end": end.isoformat(),
        },
    )
    return int(row["billing_usage"]["id"])


def sync(shop: SandboxStack, **options: Any) -> SyncReport:
    services = build_services(shop.settings)
    return usage_sync(shop.settings, services, shop.ledger, "test-sync").sync(**options)


def billed(shop: SandboxStack, onboarding: Onboarding) -> int:
    """The meter's total for the customer, as Stripe sums it."""
    start = int((datetime.now(UTC) - timedelta(days=40)).timestamp()) // 86400 * 86400
    end = (int(datetime.now(UTC).timestamp()) // 86400 + 1) * 86400
    summaries = shop.stripe.v1.billing.meters.event_summaries.list(
        METER, {"customer": onboarding.customer_id or "", "start_time": start, "end_time": end}
    )
    return sum(int(s.aggregated_value) for s in summaries.data)


def statuses(shop: SandboxStack) -> dict[int, str]:
    return {r.usage_id: r.status for r in shop.ledger.usage.find(limit=1000)}


def test_usage_is_billed_once_however_often_the_sync_runs(shop: SandboxStack) -> None:
    ada = customer(shop)
    rows = [
        use(shop, ada, qty, ended=timedelta(hours=h)) for h, qty in ((9, "3"), (6, "4"), (3, "5"))
    ]
    use(shop, ada, "7", product_id=STORAGE)  # storage: the example catalog bills none

    first = sync(shop)
    second = sync(shop)

    assert (first.recorded, first.reported, first.unmapped) == (3, 3, 1)
    assert (second.recorded, second.reported) == (0, 0)
    assert billed(shop, ada) == 12
    assert statuses(shop) == dict.fromkeys(rows, "reported")
    [report] = shop.ledger.usage.find(statuses=["reported"], limit=1)
    assert report.identifier.endswith(f"-usage-{report.usage_id}")
    assert report.meter == EVENT_NAME


def test_fractions_of_a_unit_are_carried_on_never_rounded_up(shop: SandboxStack) -> None:
    """Stripe takes whole numbers: 0.4 + 0.4 + 0.4 GB bill 1 GB, not 0 or 3."""
    ada = customer(shop)
    first = use(shop, ada, "0.4", ended=timedelta(hours=9))
    second = use(shop, ada, "0.4", ended=timedelta(hours=6))
    sync(shop)
    third = use(shop, ada, "0.4", ended=timedelta(hours=3))
    sync(shop)

    assert statuses(shop) == {first: "carried", second: "carried", third: "reported"}
    assert billed(shop, ada) == 1
    [cursor] = shop.ledger.usage.cursors(ada.customer_id)
    assert json.loads(cursor.carry or "{}") == {EVENT_NAME: "0.2"}


def test_a_row_older_than_stripe_takes_is_unbillable_never_dropped(shop: SandboxStack) -> None:
    ada = customer(shop)
    with shop.ledger.write() as connection:  # as if they had bought 40 days ago
        connection.execute(
            update(usage_cursors).values(billable_from=datetime.now(UTC) - timedelta(days=40))
        )
    old = use(shop, ada, "9", ended=timedelta(days=36))
    new = use(shop, ada, "2", ended=timedelta(hours=1))

    report = sync(shop)

    assert statuses(shop) == {old: "unbillable", new: "reported"}
    assert billed(shop, ada) == 2
    env = cli_env(shop.settings)
    listed = run(env, "usage", "list", "--status", "unbillable", "--json")
    assert listed.exit_code == 0, listed.output
    assert [r["usage_id"] for r in json.loads(listed.output)["usage"]] == [old]
    assert report.recorded == 2
    metrics = shop.http.get(f"{shop.receiver_url}/metrics", timeout=10).text
    assert "csonboard_usage_unbillable 1.0" in metrics
    assert f'csonboard_usage_reported_total{{meter="{EVENT_NAME}"}} 1.0' in metrics


def test_usage_before_the_purchase_is_not_billed_and_a_running_period_waits(
    shop: SandboxStack,
) -> None:
    ada = customer(shop)
    use(shop, ada, "50", ended=timedelta(days=2))  # ended before csonboard sold anything
    running = use(shop, ada, "6", ended=-timedelta(seconds=2))  # ends in 2 seconds

    first = sync(shop)
    assert (first.not_final, first.recorded) == (1, 0)
    time.sleep(2.5)  # the period is over: the row is final now
    second = sync(shop)

    assert statuses(shop) == {running: "reported"}
    assert second.reported == 1
    assert billed(shop, ada) == 6


def test_a_stripe_outage_mid_batch_resumes_without_doubling(shop: SandboxStack) -> None:
    ada = customer(shop)
    rows = [use(shop, ada, "1", ended=timedelta(hours=h)) for h in range(10, 0, -1)]
    meter_events = {"method": "POST", "path": "/v1/billing/meter_events"}
    # Four calls go through (slowly), then Stripe is down for the rest of the batch.
    shop.sandbox("stripe", "faults", {**meter_events, "status": None, "delay": 0.01, "count": 4})
    shop.sandbox("stripe", "faults", {**meter_events, "status": 503, "count": 100})
    first = sync(shop)
    shop.http.delete(f"{shop.stripe_url}/_sandbox/faults", timeout=10)
    second = sync(shop)

    assert first.errors and first.reported == 4
    assert second.reported == len(rows) - 4
    assert billed(shop, ada) == len(rows)
    assert set(statuses(shop).values()) == {"reported"}


def test_an_answer_lost_after_stripe_took_the_event_is_confirmed_not_resent(
    shop: SandboxStack,
) -> None:
    ada = customer(shop)
    row = use(shop, ada, "4", ended=timedelta(hours=1))
    # Stripe records the event, then every answer (and the library's retries) is lost.
    shop.sandbox(
        "stripe",
        "faults",
        {"method": "POST", "path": "/v1/billing/meter_events", "status": 502, "after": True},
    )
    shop.sandbox(  # ... and the library's two retries of it
        "stripe",
        "faults",
        {"method": "POST", "path": "/v1/billing/meter_events", "status": 502, "count": 2},
    )
    lost = sync(shop)
    assert lost.errors and statuses(shop) == {row: "pending"}

    again = sync(shop)

    assert (again.reported, again.confirmed) == (1, 1)
    assert billed(shop, ada) == 4  # once, although it was sent twice


def test_a_report_unconfirmed_for_a_day_is_uncertain_and_waits_for_a_person(
    shop: SandboxStack,
) -> None:
    ada = customer(shop)
    row = use(shop, ada, "4", ended=timedelta(hours=1))
    sync(shop)
    # As if the first attempt had been made 25 hours ago and its answer lost.
    with shop.ledger.write() as connection:
        connection.execute(
            update(usage_reports).values(
                status="pending", first_sent_at=datetime.now(UTC) - timedelta(hours=25)
            )
        )

    report = sync(shop)
    assert (report.uncertain, report.reported) == (1, 0)
    assert billed(shop, ada) == 4  # not resent: Stripe would have counted it again
    env = cli_env(shop.settings)
    refused = run(env, "usage", "resolve", str(row + 1000), "--as", "reported")
    assert refused.exit_code == 1 and "no usage" in refused.output
    resolved = run(env, "usage", "resolve", str(row), "--as", "reported")
    assert resolved.exit_code == 0, resolved.output
    assert statuses(shop) == {row: "reported"}
    again = run(env, "usage", "resolve", str(row), "--as", "resend")
    assert again.exit_code == 1 and "only uncertain or failed" in again.output


def test_two_syncs_at_once_bill_each_row_once(shop: SandboxStack) -> None:
    ada = customer(shop)
    for hours in range(20, 0, -1):
        use(shop, ada, "2", ended=timedelta(hours=hours))
    results: list[SyncReport] = []
    start = threading.Barrier(2)

    def one() -> None:
        start.wait()
        results.append(sync(shop))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(r.reported for r in results) == 20
    assert sum(r.busy for r in results) <= 1
    assert billed(shop, ada) == 40


def test_a_dry_run_changes_and_sends_nothing(shop: SandboxStack) -> None:
    ada = customer(shop)
    use(shop, ada, "3", ended=timedelta(hours=1))
    env = cli_env(shop.settings)

    result = run(env, "usage", "sync", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "dry run: 1 report(s) would be sent; nothing was changed" in result.output
    assert statuses(shop) == {}
    assert billed(shop, ada) == 0
    assert run(env, "usage", "sync").exit_code == 0
    assert billed(shop, ada) == 3


def test_the_worker_reports_usage_every_interval_on_its_own(tmp_path: Path) -> None:
    with sandbox_stack(
        tmp_path / "data",
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
        CSONBOARD_USAGE_INTERVAL_MINUTES="0.02",  # 1.2 s
    ) as shop:
        ada = customer(shop)  # the worker has synced the customer once already
        use(shop, ada, "5", ended=timedelta(hours=1))
        shop.worker.run_burst()
        assert billed(shop, ada) == 0  # not due yet
        time.sleep(1.3)

        shop.worker.run_burst()

        assert billed(shop, ada) == 5
        [cursor] = shop.ledger.usage.cursors(ada.customer_id)
        assert cursor.synced_at is not None and cursor.next_attempt_at is not None
        wait = (cursor.next_attempt_at - cursor.synced_at).total_seconds()
        assert 1.1 < wait < 1.3  # the interval


def test_a_customer_whose_plan_bills_no_usage_is_sent_nothing(tmp_path: Path) -> None:
    """Only WordPress Plus bills bandwidth here; a WordPress customer's bandwidth
    is read, counted as billed by no meter, and never sent (`plans check` warns
    about the plan)."""
    from csonboard.sandbox.catalog import example_plans

    text = example_plans().read_text()
    shared = text[text.index("[[usage]]") :]
    plans = tmp_path / "plans.toml"
    plans.write_text(
        text.replace(shared, shared.replace("[[usage]]", "[[plans.wordpress-plus.usage]]"))
    )
    with sandbox_stack(
        tmp_path / "data", CSONBOARD_ONBOARDING_POLL_SECONDS="0.1", CSONBOARD_PLANS=str(plans)
    ) as shop:
        ada = customer(shop)
        use(shop, ada, "8", ended=timedelta(hours=1))

        report = sync(shop)

        assert (report.rows_read, report.unmapped, report.recorded) == (1, 1, 0)
        assert statuses(shop) == {}
        assert billed(shop, ada) == 0
        checked = run(cli_env(shop.settings), "plans", "check")
        assert "warning: plans.wordpress.usage: the plan bills no usage" in checked.output
