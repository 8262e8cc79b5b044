"""Raw Stripe events in the ledger: kept exactly once, worked under a lease.

Life of an event: ``received`` -> ``processing`` (a worker holds the lease) ->
``done`` | ``ignored``; a failure sends it to ``failed`` (retried at
``next_attempt_at``) or ``dead`` (needs a person). A worker that dies leaves the
event ``processing`` with a lease that expires; the sweep then hands it out again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.engine import RowMapping

from csonboard.ledger import leases
from csonboard.ledger.schema import event_conflicts, events
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger

EventStatus = Literal["received", "processing", "done", "ignored", "failed", "dead"]
EVENT_STATUSES: tuple[EventStatus, ...] = (
    "received",
    "processing",
    "done",
    "ignored",
    "failed",
    "dead",
)
EventSource = Literal["webhook", "operator", "stripe_api"]


@dataclass(frozen=True)
class IncomingEvent:
    """What the receiver (or an operator) hands to the ledger."""

    id: str
    type: str
    api_version: str | None
    livemode: bool
    created: datetime
    object_id: str | None
    customer_id: str | None
    body: bytes
    signature: str | None
    source: EventSource


@dataclass(frozen=True)
class Added:
    """What :meth:`EventStore.add_many` did: the ids stored, and the ids that
    were known with a different body (a conflict, kept aside)."""

    new: frozenset[str]
    conflicts: frozenset[str]


@dataclass(frozen=True)
class EventConflict:
    """A body that arrived under a stored event's id and differs from it."""

    digest: str
    body: bytes
    signature: str | None
    source: str
    received_at: datetime


@dataclass(frozen=True)
class EventRecord:
    """An event as the ledger holds it, without its body (see ``EventStore.body``)."""

    id: str
    type: str
    api_version: str | None
    livemode: bool
    created: datetime
    object_id: str | None
    customer_id: str | None
    signature: str | None
    source: str
    received_at: datetime
    status: str
    attempts: int
    last_error: str | None
    outcome: str | None
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    updated_at: datetime


_RECORD_COLUMNS = [events.c[name] for name in EventRecord.__dataclass_fields__]


def _record(row: RowMapping) -> EventRecord:
    return EventRecord(**{name: row[name] for name in EventRecord.__dataclass_fields__})


class EventStore:
    """Reads and writes of the ``events`` table. Every method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def add(self, incoming: IncomingEvent) -> bool:
        """Store a new event. Returns False if its id is known (and keeps a
        different body as a conflict, see :meth:`add_many`)."""
        return incoming.id in self.add_many([incoming]).new

    def add_many(self, incoming: Sequence[IncomingEvent]) -> Added:
        """Store new events in one transaction; returns the ids that were new,
        and those that were known with a different body (kept in
        ``event_conflicts``, once per distinct body; the stored event is never
        replaced).

        The primary key decides, so two receivers racing with the same event id
        store it once: the loser's insert is ignored, not an error. Of the same
        id given twice here, the first is the one stored.
        """
        now = self._ledger.now()
        rows: dict[str, dict[str, object]] = {}
        for event in incoming:
            rows.setdefault(
                event.id,
                {
                    **{name: getattr(event, name) for name in IncomingEvent.__dataclass_fields__},
                    "received_at": now,
                    "status": "received",
                    "attempts": 0,
                    "updated_at": now,
                },
            )
        if not rows:
            return Added(frozenset(), frozenset())
        with self._ledger.write() as connection:
            # Rows as parameters (not .values()) keep the statement cached; in id
            # order, so that two receivers storing overlapping groups take their
            # row locks in the same order and cannot deadlock (PostgreSQL).
            inserted = connection.execute(
                insert_ignoring_conflicts(connection, events).returning(events.c.id),
                [rows[event_id] for event_id in sorted(rows)],
            )
            new = frozenset(inserted.scalars())
            known = [event_id for event_id in rows if event_id not in new]
            if not known:
                return Added(new, frozenset())
            found = connection.execute(
                select(events.c.id, events.c.body).where(events.c.id.in_(known))
            )
            stored = {row.id: bytes(row.body) for row in found}
            differing = [
                rows[event_id]
                for event_id in sorted(known)
                if stored.get(event_id) != rows[event_id]["body"]
            ]
            if differing:
                connection.execute(
                    insert_ignoring_conflicts(connection, event_conflicts),
                    [
                        {
                            "event_id": row["id"],
                            "digest": hashlib.sha256(row["body"]).hexdigest(),  # type: ignore[arg-type]
                            "body": row["body"],
                            "signature": row["signature"],
                            "source": row["source"],
                            "received_at": now,
                        }
                        for row in differing
                    ],
                )
            return Added(new, frozenset(str(row["id"]) for row in differing))

    def conflicts(self, event_id: str) -> list[EventConflict]:
        """The other bodies that arrived under ``event_id``, oldest first."""
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(event_conflicts)
                .where(event_conflicts.c.event_id == event_id)
                .order_by(event_conflicts.c.received_at, event_conflicts.c.digest)
            ).mappings()
            return [
                EventConflict(
                    digest=row["digest"],
                    body=bytes(row["body"]),
                    signature=row["signature"],
                    source=row["source"],
                    received_at=row["received_at"],
                )
                for row in rows
            ]

    def conflict_count(self) -> int:
        """How many conflicting bodies are kept, for the metric."""
        with self._ledger.read() as connection:
            return int(
                connection.execute(select(func.count()).select_from(event_conflicts)).scalar_one()
            )

    def get(self, event_id: str) -> EventRecord | None:
        with self._ledger.read() as connection:
            row = (
                connection.execute(select(*_RECORD_COLUMNS).where(events.c.id == event_id))
                .mappings()
                .first()
            )
            return _record(row) if row else None

    def body(self, event_id: str) -> bytes | None:
        """The raw body exactly as received, or None for an unknown id."""
        with self._ledger.read() as connection:
            body = connection.execute(
                select(events.c.body).where(events.c.id == event_id)
            ).scalar_one_or_none()
            return bytes(body) if body is not None else None

    def find(
        self,
        *,
        statuses: Sequence[str] = (),
        types: Sequence[str] = (),
        object_id: str | None = None,
        customer_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Events matching every given filter, newest first."""
        query = select(*_RECORD_COLUMNS)
        if statuses:
            query = query.where(events.c.status.in_(statuses))
        if types:
            query = query.where(events.c.type.in_(types))
        if object_id:
            query = query.where(events.c.object_id == object_id)
        if customer_id:
            query = query.where(events.c.customer_id == customer_id)
        if since:
            query = query.where(events.c.received_at >= since)
        if until:
            query = query.where(events.c.received_at < until)
        query = query.order_by(events.c.received_at.desc(), events.c.id).limit(limit)
        with self._ledger.read() as connection:
            return [_record(row) for row in connection.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        """Number of events in each status (statuses with none are left out)."""
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(events.c.status, func.count()).group_by(events.c.status)
            )
            return dict(rows.all())

    def claim(self, event_id: str, owner: str, lease_seconds: float) -> EventRecord | None:
        """Take the lease on an event that is due, or return None.

        Due means: new or failed with its retry time reached, or ``processing``
        under a lease that has expired (its worker died). The conditional UPDATE
        is the arbiter: of any number of workers racing, exactly one wins. Each
        claim counts as an attempt, so an event that kills its worker every time
        still runs out of attempts.
        """
        with self._ledger.write() as connection:
            row = leases.claim(
                connection,
                events.c.id == event_id,
                events,
                owner=owner,
                now=self._ledger.now(),
                lease_seconds=lease_seconds,
                waiting=("received", "failed"),
                running="processing",
                attempts=events.c.attempts + 1,
            )
            return _record(row) if row else None

    def finish(
        self, event_id: str, owner: str, status: Literal["done", "ignored"], outcome: str
    ) -> bool:
        """Record the result of the work; False if the lease was lost meanwhile."""
        return self._release(
            event_id, owner, status=status, outcome=outcome, last_error=None, next_attempt_at=None
        )

    def fail(self, event_id: str, owner: str, error: str, retry_at: datetime | None) -> bool:
        """Record a failure: ``failed`` until ``retry_at``, or ``dead`` when it is None."""
        return self._release(
            event_id,
            owner,
            status="failed" if retry_at else "dead",
            outcome=None,
            last_error=error,
            next_attempt_at=retry_at,
        )

    def _release(self, event_id: str, owner: str, **values: object) -> bool:
        with self._ledger.write() as connection:
            result = connection.execute(
                update(events)
                .where(events.c.id == event_id, events.c.lease_owner == owner)
                .values(
                    **values, lease_owner=None, lease_expires_at=None, updated_at=self._ledger.now()
                )
                .returning(events.c.id)
            )
            return result.first() is not None

    def requeue(self, event_ids: Sequence[str], *, statuses: Sequence[str] = ()) -> list[str]:
        """Make events due now with fresh attempts, unless a worker holds them;
        with ``statuses``, only those still in one of them (what an operator
        listed may have moved on meanwhile). Returns the ids requeued; the
        others are left exactly as they were.
        """
        now = self._ledger.now()
        query = update(events).where(
            events.c.id.in_(event_ids),
            or_(events.c.status != "processing", events.c.lease_expires_at < now),
        )
        if statuses:
            query = query.where(events.c.status.in_(statuses))
        with self._ledger.write() as connection:
            rows = connection.execute(
                query.values(
                    status="received",
                    attempts=0,
                    next_attempt_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                ).returning(events.c.id)
            )
            return list(rows.scalars())

    def due(self, limit: int = 500) -> list[str]:
        """Ids of events a worker should pick up now, oldest first (for the sweep)."""
        now = self._ledger.now()
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(events.c.id).where(_due(now)).order_by(events.c.received_at).limit(limit)
            )
            return list(rows.scalars())


def _due(now: datetime) -> ColumnElement[bool]:
    return leases.due(events, now, ("received", "failed"), "processing")
