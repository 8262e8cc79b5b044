"""The worker: takes a ledger entry's lease, runs its handler, records the outcome.

Failure policy, by error type (``csonboard.errors``):

- transient (network, 5xx, 429, ledger locked): retried with exponential
  backoff and jitter, at most ``worker.max_attempts`` times, then ``dead``;
- permanent (a 422, an unmapped price, a policy refusal): ``dead`` at once,
  with the message a person needs to act on it;
- anything unexpected (a bug) is logged with its traceback and treated as
  transient, so it is retried a few times and then dead-lettered, never lost.

A periodic sweep re-rings every entry the ledger says is due, which recovers
lost queue messages and the work of killed workers (expired leases).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from csonboard.errors import CsonboardError, LedgerUnavailable, QueueUnavailable, TransientError
from csonboard.ledger import EventRecord, Ledger
from csonboard.queue import Doorbell, Kind
from csonboard.retry import next_attempt
from csonboard.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a handler did with an event, in words an operator can read."""

    status: Literal["done", "ignored"]
    detail: str


EventHandler = Callable[[EventRecord], Outcome]


@dataclass(frozen=True)
class Job:
    """A kind of leased ledger work besides events: how to run one (by id) and
    which are due (for the sweep)."""

    run: Callable[[str], None]
    due: Callable[[], list[str]]


def worker_name() -> str:
    """A lease owner id unique to this process: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs ledger work. ``routes`` maps Stripe event types to handlers; types
    without a handler are stored as ``ignored``."""

    def __init__(
        self,
        ledger: Ledger,
        doorbell: Doorbell,
        routes: Mapping[str, EventHandler],
        settings: WorkerSettings,
        *,
        jobs: Mapping[Kind, Job] | None = None,
        name: str | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.ledger = ledger
        self.doorbell = doorbell
        self.routes = routes
        self.settings = settings
        self.jobs = dict(jobs or {})
        self.name = name or worker_name()
        self._rng = rng

    def handle(self, kind: Kind, ident: str) -> None:
        """The doorbell's handler: one message, one unit of work.

        If the ledger itself is out of reach nothing can be recorded; the work
        stays due in the ledger and the sweep rings for it again later.
        """
        try:
            if kind == "event":
                self.process_event(ident)
            elif kind in self.jobs:
                self.jobs[kind].run(ident)
            else:
                log.warning("no handler for %s %s; ignored", kind, ident)
        except LedgerUnavailable as exc:
            log.warning("%s %s left for the sweep: %s", kind, ident, exc)

    def process_event(self, event_id: str) -> None:
        """Process one event if it is due and nobody else holds it."""
        record = self.ledger.events.claim(event_id, self.name, self.settings.lease_seconds)
        if record is None:
            return  # not due, already done, or another worker has it
        handler = self.routes.get(record.type)
        started = time.monotonic()
        try:
            outcome = handler(record) if handler else Outcome("ignored", "type not handled")
        except CsonboardError as exc:
            self._fail_event(record, exc)
            return
        except Exception as exc:
            log.exception("bug while processing event %s", record.id)
            self._fail_event(record, TransientError(f"unexpected {exc.__class__.__name__}: {exc}"))
            return
        if not self.ledger.events.finish(record.id, self.name, outcome.status, outcome.detail):
            log.warning("lost the lease on event %s before finishing it", record.id)
        log.info(
            "event processed",
            extra={
                "event_id": record.id,
                "event_type": record.type,
                "status": outcome.status,
                "outcome": outcome.detail,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )

    def _fail_event(self, record: EventRecord, exc: CsonboardError) -> None:
        retry_at = next_attempt(record.attempts, exc, self.settings, self.ledger.now(), self._rng)
        self.ledger.events.fail(record.id, self.name, str(exc), retry_at)
        fields = {"event_id": record.id, "event_type": record.type, "attempts": record.attempts}
        if retry_at is None:
            log.error("event dead-lettered: %s", exc, extra=fields)
            return
        log.warning("event failed, retrying at %s: %s", retry_at.isoformat(), exc, extra=fields)
        self._ring_quietly("event", record.id, retry_at)

    def _ring_quietly(self, kind: Kind, ident: str, eta: datetime | None = None) -> None:
        try:
            self.doorbell.ring(kind, ident, eta)
        except QueueUnavailable as exc:
            log.warning("could not ring the queue for %s %s (the sweep will): %s", kind, ident, exc)

    def sweep(self) -> int:
        """Ring the doorbell for every entry that is due. Returns how many."""
        rung = 0
        for kind, due in [
            ("event", self.ledger.events.due),
            *((k, j.due) for k, j in self.jobs.items()),
        ]:
            for ident in due():
                self._ring_quietly(kind, ident)
                rung += 1
        return rung

    def run_burst(self) -> int:
        """Process everything due now in this thread, then return (tests, ``--burst``).

        Returns the number of messages handled.
        """
        handled = 0
        while True:
            self.sweep()
            ran = self.doorbell.drain()
            handled += ran
            if ran == 0:
                return handled

    def run_forever(self) -> None:
        """Consume the queue with ``worker.threads`` threads and sweep periodically,
        until SIGINT or SIGTERM."""
        stop = threading.Event()
        sweeper = threading.Thread(target=self._sweep_loop, args=(stop,), name="sweep", daemon=True)
        sweeper.start()
        log.info(
            "worker %s started: %d thread(s), sweeping every %g s",
            self.name,
            self.settings.threads,
            self.settings.sweep_seconds,
        )
        try:
            self.doorbell.consumer(self.settings.threads, self.settings.poll_seconds).run()
        finally:
            stop.set()
            sweeper.join(timeout=5)

    def _sweep_loop(self, stop: threading.Event) -> None:
        # Sweep at once: work accepted while no worker ran is picked up on start.
        while True:
            try:
                self.sweep()
            except CsonboardError as exc:
                log.warning("sweep failed (will try again): %s", exc)
            if stop.wait(self.settings.sweep_seconds):
                return
