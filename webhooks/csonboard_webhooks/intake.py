"""Group commit for incoming events: one transaction for every event that
arrived while the previous one was being written.

A durable write (a commit, an fsync) per webhook would make the ack path cost
far more than verifying the signature. Instead each receiver process has one
writer thread: request threads hand it their verified event and wait; it
stores whatever has gathered (up to MAX_GROUP events) in one transaction and
answers all those requests. Under no load a group is one event and nothing
waits for anything; under load, commits are shared. Only after the commit
does a request answer 200.

A second thread rings the queue for the new ids, one message for everything
stored since its last ring (up to MAX_GROUP ids), so the writer never waits
for the queue. If this process dies before ringing, the events are safe in
the ledger and the worker's sweep rings for them.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Literal, TypeVar

from csonboard.errors import CsonboardError, LedgerUnavailable, QueueUnavailable
from csonboard.ledger import IncomingEvent, Ledger
from csonboard.queue import Doorbell

log = logging.getLogger(__name__)

MAX_GROUP = 500

T = TypeVar("T")
Stored = Literal["accepted", "duplicate", "conflict"]
"""New; known with this body; known with another body (kept aside)."""


class Intake:
    """Stores events for the request threads of one process (see the module)."""

    def __init__(self, ledger: Ledger, doorbell: Doorbell) -> None:
        self._ledger = ledger
        self._doorbell = doorbell
        self._pending: list[tuple[IncomingEvent, Future[Stored]]] = []
        self._ready = threading.Condition()
        self._to_ring: list[str] = []
        self._ring_ready = threading.Condition()
        self._started = False
        self._starting = threading.Lock()

    def store(self, incoming: IncomingEvent, timeout: float = 20.0) -> Stored:
        """Store ``incoming`` durably; whether it was new, a duplicate, or a
        different body under a known id (a conflict, kept beside the event).

        Raises LedgerUnavailable if the ledger could not store it (or did not
        answer within ``timeout``): the caller answers 503 and Stripe retries.
        """
        self._start()
        done: Future[Stored] = Future()
        with self._ready:
            self._pending.append((incoming, done))
            self._ready.notify()
        try:
            return done.result(timeout)
        except TimeoutError:
            raise LedgerUnavailable(
                f"the ledger did not store {incoming.id} within {timeout:g} s"
            ) from None

    def _start(self) -> None:
        # Started on first use, in the process that serves requests: gunicorn
        # forks its workers after the app is built, and threads do not survive a fork.
        if not self._started:
            with self._starting:
                if not self._started:
                    for target, name in ((self._write, "intake"), (self._ring, "intake-ring")):
                        threading.Thread(target=target, name=name, daemon=True).start()
                    self._started = True

    def _write(self) -> None:
        while True:
            group = _take(self._ready, self._pending)
            if not self._commit(group):
                # One bad row must not fail the others: each alone, so only
                # the row that cannot be stored fails.
                for one in group:
                    self._commit([one])

    def _commit(self, group: list[tuple[IncomingEvent, Future[Stored]]]) -> bool:
        """Store ``group`` in one transaction and answer its requests. When
        the ledger is down, every request gets that error. Any other failure
        is one row's (the input is validated before it comes here, so a bug):
        False, nothing answered, for a group; a single event's request gets
        LedgerUnavailable, and the error is logged."""
        try:
            added = self._ledger.events.add_many([event for event, _ in group])
        except CsonboardError as exc:
            for _, done in group:
                done.set_exception(exc)
            return True
        except Exception as exc:
            if len(group) > 1:
                return False
            log.exception("could not store event %s", group[0][0].id)
            group[0][1].set_exception(LedgerUnavailable(f"unexpected {exc.__class__.__name__}"))
            return True
        answered = set()
        for event, done in group:
            if event.id in added.new and event.id not in answered:
                done.set_result("accepted")
            else:
                done.set_result("conflict" if event.id in added.conflicts else "duplicate")
            answered.add(event.id)
        if added.new:
            with self._ring_ready:
                self._to_ring.extend(sorted(added.new))
                self._ring_ready.notify()
        return True

    def _ring(self) -> None:
        while True:
            event_ids = _take(self._ring_ready, self._to_ring)
            try:
                self._doorbell.ring_many("event", event_ids)
            except QueueUnavailable as exc:
                # The events are safe in the ledger; the worker's sweep will find them.
                log.warning(
                    "stored %d event(s) but could not ring the queue: %s", len(event_ids), exc
                )
            except Exception:  # a bug: keep ringing for later events; the sweep covers these
                log.exception("could not ring the queue for %d event(s)", len(event_ids))


def _take(ready: threading.Condition, items: list[T]) -> list[T]:
    """Wait until ``items`` (guarded by ``ready``) has something, then remove
    and return up to MAX_GROUP of them, oldest first."""
    with ready:
        while not items:
            ready.wait()
        taken = items[:MAX_GROUP]
        del items[:MAX_GROUP]
        return taken
