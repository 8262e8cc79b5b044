"""What a scrape reports: every process's counters and histograms, plus the
state of the ledger and the queue, read when scraped.

State -- onboardings by status, dead letters, queue depth, the age of the
oldest unfinished onboarding -- is computed from the ledger and the queue by
:class:`LedgerCollector` on every scrape, not kept in gauges: the ledger is
shared by every process and machine, so one scrape of any receiver is right
for all of them, with nothing to keep in step.

Counters and histograms (:mod:`csonboard.metrics.instruments`) come from the
multiprocess directory when ``PROMETHEUS_MULTIPROC_DIR`` is set (``csonboard
serve`` sets it for its children), else from this process.

Failure policy: a scrape never fails because the ledger or queue is down; it
reports ``csonboard_ledger_up 0`` / ``csonboard_queue_up 0`` and leaves out
what it could not read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from csonboard.errors import CsonboardError
from csonboard.ledger.drift import KINDS
from csonboard.ledger.onboardings import ONBOARDING_STATUSES
from csonboard.ledger.usage import NEEDS_OPERATOR, UsageStats

if TYPE_CHECKING:
    from csonboard.ledger import Ledger
    from csonboard.queue import Doorbell

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def oldest_in_progress(ledger: Ledger) -> datetime | None:
    """When the oldest onboarding csonboard is still working on was created."""
    return ledger.onboardings.oldest_in_progress()


class LedgerCollector(Collector):
    """Gauges computed from the ledger and the queue on every scrape."""

    def __init__(self, ledger: Ledger, doorbell: Doorbell, clock: Callable[[], datetime]) -> None:
        self._ledger = ledger
        self._doorbell = doorbell
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # collect() queries the ledger; registering must not

    def collect(self) -> Iterable[Metric]:
        ledger_up = GaugeMetricFamily(
            "csonboard_ledger_up", "1 when the ledger answered this scrape, else 0."
        )
        try:
            families = self._from_ledger()
        except CsonboardError as exc:
            log.warning("metrics: cannot read the ledger: %s", exc)
            ledger_up.add_metric([], 0)
            families = []
        else:
            ledger_up.add_metric([], 1)
        yield ledger_up
        yield from families

        queue_up = GaugeMetricFamily(
            "csonboard_queue_up", "1 when the queue answered this scrape, else 0."
        )
        try:
            depth = self._doorbell.depth()
        except CsonboardError as exc:
            log.warning("metrics: cannot read the queue: %s", exc)
            queue_up.add_metric([], 0)
            yield queue_up
            return
        queue_up.add_metric([], 1)
        yield queue_up
        yield GaugeMetricFamily(
            "csonboard_queue_depth",
            "Messages waiting in the queue now (scheduled re-checks not counted).",
            value=depth,
        )

    def _from_ledger(self) -> list[Metric]:
        by_status = self._ledger.onboardings.counts()
        states = GaugeMetricFamily(
            "csonboard_onboardings", "Onboardings in the ledger, by state.", labels=["state"]
        )
        for status in ONBOARDING_STATUSES:
            states.add_metric([status], by_status.get(status, 0))

        dead = GaugeMetricFamily(
            "csonboard_dead_letters",
            "Work that needs a person, by kind: events dead, onboardings dead or stuck, "
            "subscription accounts dead, usage uncertain or failed. Each is listed by "
            "`csonboard ... list`.",
            labels=["kind"],
        )
        dead.add_metric(["event"], self._ledger.events.counts().get("dead", 0))
        dead.add_metric(["onboarding"], by_status.get("dead", 0) + by_status.get("stuck", 0))
        dead.add_metric(["account"], self._ledger.lifecycle.counts().get("dead", 0))
        usage = self._ledger.usage.stats()
        waiting = sum(usage.by_status.get(status, 0) for status in NEEDS_OPERATOR)
        dead.add_metric(["usage"], waiting)

        oldest = oldest_in_progress(self._ledger)
        age = 0.0 if oldest is None else max(0.0, (self._clock() - oldest).total_seconds())
        return [
            states,
            dead,
            *self._usage(usage),
            *self._drift(),
            self._reversals(),
            GaugeMetricFamily(
                "csonboard_event_conflicts",
                "Bodies that arrived under a stored event's id and differ from it, kept "
                "aside, never processed (`csonboard events show` shows them).",
                value=self._ledger.events.conflict_count(),
            ),
            GaugeMetricFamily(
                "csonboard_oldest_unfinished_onboarding_age_seconds",
                "Age of the oldest onboarding still in progress (pending, running, waiting "
                "or failed and due for a retry); 0 when there is none.",
                value=age,
            ),
        ]

    def _usage(self, usage: UsageStats) -> list[Metric]:
        reported = CounterMetricFamily(
            "csonboard_usage_reported",
            "Usage rows reported to Stripe as meter events, by meter (from the ledger).",
            labels=["meter"],
        )
        for meter, count in sorted(usage.reported_by_meter.items()):
            reported.add_metric([meter], count)
        oldest = usage.oldest_unreported
        age = 0.0 if oldest is None else max(0.0, (self._clock() - oldest).total_seconds())
        return [
            reported,
            GaugeMetricFamily(
                "csonboard_usage_unbillable",
                "Usage rows too old for Stripe to take (35 days): never billed. "
                "`csonboard usage list --status unbillable` lists them.",
                value=usage.by_status.get("unbillable", 0),
            ),
            GaugeMetricFamily(
                "csonboard_usage_oldest_unreported_age_seconds",
                "Age of the oldest usage not yet reported (pending, uncertain or failed), "
                "from the end of its period; 0 when there is none.",
                value=age,
            ),
        ]

    def _reversals(self) -> Metric:
        reversals = CounterMetricFamily(
            "csonboard_money_reversals",
            "Payments whose money went back, by kind and outcome (from the ledger): "
            "refund full|partial, dispute by its Stripe status, early_fraud_warning "
            "recorded|refunded; not_a_purchase for a charge no Checkout Session made.",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), count in sorted(self._ledger.payments.reversals().items()):
            reversals.add_metric([kind, outcome], count)
        return reversals

    def _drift(self) -> list[Metric]:
        items = GaugeMetricFamily(
            "csonboard_drift_items",
            "Differences between Stripe and ComputeStacks the newest finished drift pass "
            "found and did not fix, by kind (every kind listed, 0 included; none before "
            "the first pass). `csonboard drift` lists them.",
            labels=["kind"],
        )
        latest = self._ledger.drift.latest()
        if latest is None:
            return [items]
        found = self._ledger.drift.unsettled_by_kind()
        for kind in KINDS:
            items.add_metric([kind], found.get(kind, 0))
        age = max(0.0, (self._clock() - (latest.finished_at or latest.started_at)).total_seconds())
        return [
            items,
            GaugeMetricFamily(
                "csonboard_drift_last_pass_age_seconds",
                "Time since the newest drift pass finished.",
                value=age,
            ),
        ]


class _ThisProcess(Collector):
    """The default registry's metrics, for a registry that also holds a
    :class:`LedgerCollector` (single-process mode: tests, the sandbox)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def multiprocess_dir() -> Path | None:
    """The multiprocess directory this process writes to, if any."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def scrape_registry(
    ledger: Ledger | None = None,
    doorbell: Doorbell | None = None,
    clock: Callable[[], datetime] | None = None,
) -> CollectorRegistry:
    """What a scrape reports: every process's counters and histograms (the
    multiprocess directory when there is one, else this process's), plus the
    ledger and queue gauges when ``ledger`` and ``doorbell`` are given."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    if ledger is not None and doorbell is not None and clock is not None:
        registry.register(LedgerCollector(ledger, doorbell, clock))
    return registry


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty ``path`` (creating it) before the processes that write to it
    start: files left by an earlier run would add old counts to new ones."""
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("*.db"):
        leftover.unlink()


def serve_process_metrics(host: str, port: int) -> None:
    """Serve this process's metrics (or its multiprocess directory's) over
    HTTP at ``host:port`` from a daemon thread: for a ``csonboard worker``
    that no receiver's ``/metrics`` covers. Raises OSError if the port is taken."""
    start_http_server(port, addr=host, registry=scrape_registry())
    log.info("metrics served at http://%s:%d/metrics", host, port)
