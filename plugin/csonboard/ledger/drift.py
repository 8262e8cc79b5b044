"""Drift passes in the ledger: which customers a pass has checked, and what it found.

A full pass checks customers in order and records, page by page and in one
transaction each, the differences found on the page and the last customer
checked (``cursor``). Its lease is renewed with every page; a pass whose
worker died (lease expired) is taken over by the next pass of the same kind
(``fix`` or report-only) and resumed after its cursor, so a crash repeats at
most one page. One pass runs at a time (a unique index on the running row).
Only the newest finished passes are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from csonboard.ledger.schema import drift_items, drift_passes
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger

KINDS = (
    "should_be_stopped",
    "should_be_running",
    "wrong_package",
    "should_be_suspended",
    "should_be_active",
    "missing_project",
    "missing_user",
    "unpaid_project",
    "orphan_user",
    "unchecked",
)
"""Every kind of difference (``csonboard.drift.rules`` says what each means);
``unchecked``: a customer a pass could not check (its detail says why)."""
KEPT_PASSES = 20
"""Finished passes kept (with their items); older ones are deleted."""
OUTCOMES = ("open", "fixed", "left", "failed", "busy")
"""``open``: found, not fixed (a report-only pass); ``fixed``; ``left``: --fix does
not repair this kind (or policy says leave it); ``failed``: the repair raised;
``busy``: another worker held the customer, so it was not repaired this time."""


@dataclass(frozen=True)
class DriftPass:
    id: int
    fix: bool
    status: str  # running | done | abandoned
    cursor: str | None
    customers: int
    note: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class DriftItem:
    """A difference between what Stripe and the ledger say a customer should have
    in ComputeStacks and what it has."""

    customer_id: str
    kind: str
    object: str
    """What differs: ``user #12``, ``project #40``, ``service #7``."""
    detail: str
    fix: str
    """What ``--fix`` does about it, or why it does not."""
    outcome: str = "open"


class DriftStore:
    """Reads and writes of ``drift_passes`` and ``drift_items``; one transaction each."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def begin(self, owner: str, *, fix: bool, lease_seconds: float) -> DriftPass | None:
        """Start a pass, or take over the unfinished one of this kind whose
        lease has expired. One pass runs at a time: None while another holds
        its lease. An abandoned pass of the other kind is closed
        (``abandoned``), not resumed, and a new one started."""
        now = self._ledger.now()
        lease = {"lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
        with self._ledger.write() as connection:
            current = (
                connection.execute(select(drift_passes).where(drift_passes.c.status == "running"))
                .mappings()
                .first()
            )
            if current is not None:
                expired = current["lease_expires_at"] is None or current["lease_expires_at"] < now
                if not expired:
                    return None
                if current["fix"] == fix:
                    taken = (
                        connection.execute(
                            update(drift_passes)
                            .where(
                                drift_passes.c.id == current["id"],
                                drift_passes.c.status == "running",
                                drift_passes.c.lease_expires_at < now,
                            )
                            .values(**lease, updated_at=now)
                            .returning(*drift_passes.c)
                        )
                        .mappings()
                        .first()
                    )
                    return _pass(taken) if taken is not None else None
                connection.execute(
                    update(drift_passes)
                    .where(drift_passes.c.id == current["id"], drift_passes.c.status == "running")
                    .values(
                        status="abandoned",
                        note="died; replaced by a pass of the other kind",
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                )
            try:
                with connection.begin_nested():
                    created = (
                        connection.execute(
                            insert(drift_passes)
                            .values(
                                fix=fix,
                                status="running",
                                customers=0,
                                started_at=now,
                                updated_at=now,
                                **lease,
                            )
                            .returning(*drift_passes.c)
                        )
                        .mappings()
                        .one()
                    )
            except IntegrityError:
                return None  # another process started one at this very moment
            return _pass(created)

    def advance(
        self,
        pass_id: int,
        owner: str,
        *,
        cursor: str,
        checked: int,
        items: Sequence[DriftItem],
        lease_seconds: float,
    ) -> bool:
        """Record a page: its items, the last customer checked, and ``checked``
        more customers; renews the lease. False (nothing written) when the lease
        has passed to another worker."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            moved = connection.execute(
                update(drift_passes)
                .where(_held(pass_id, owner, now))
                .values(
                    cursor=cursor,
                    customers=drift_passes.c.customers + checked,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
            ).rowcount
            if not moved:
                return False
            for item in items:
                connection.execute(
                    insert_ignoring_conflicts(connection, drift_items).values(
                        pass_id=pass_id,
                        customer_id=item.customer_id,
                        kind=item.kind,
                        object=item.object,
                        detail=item.detail,
                        fix=item.fix,
                        outcome=item.outcome,
                        created_at=now,
                    )
                )
            return True

    def renew(self, pass_id: int, owner: str, lease_seconds: float) -> bool:
        """Extend the lease (during long reads); False when it has passed on."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            return bool(
                connection.execute(
                    update(drift_passes)
                    .where(_held(pass_id, owner, now))
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
                ).rowcount
            )

    def finish(self, pass_id: int, owner: str, *, note: str | None) -> bool:
        """Mark the pass done and delete all but the newest finished passes."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            done = connection.execute(
                update(drift_passes)
                .where(_held(pass_id, owner, now))
                .values(
                    status="done",
                    note=note,
                    finished_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            ).rowcount
            if not done:
                return False
            kept = (
                select(drift_passes.c.id)
                .where(drift_passes.c.status == "done")
                .order_by(drift_passes.c.finished_at.desc(), drift_passes.c.id.desc())
                .limit(KEPT_PASSES)
                .scalar_subquery()
            )
            old = select(drift_passes.c.id).where(
                drift_passes.c.status == "done", drift_passes.c.id.not_in(kept)
            )
            stale = list(connection.execute(old).scalars())
            if stale:
                connection.execute(delete(drift_items).where(drift_items.c.pass_id.in_(stale)))
                connection.execute(delete(drift_passes).where(drift_passes.c.id.in_(stale)))
            return True

    # -- reading ------------------------------------------------------------------------

    def latest(self) -> DriftPass | None:
        """The newest finished pass."""
        with self._ledger.read() as connection:
            row = (
                connection.execute(
                    select(drift_passes)
                    .where(drift_passes.c.status == "done")
                    .order_by(drift_passes.c.finished_at.desc(), drift_passes.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return _pass(row) if row else None

    def running(self) -> DriftPass | None:
        """An unfinished pass whose worker still holds it."""
        now = self._ledger.now()
        with self._ledger.read() as connection:
            row = (
                connection.execute(
                    select(drift_passes)
                    .where(
                        drift_passes.c.status == "running", drift_passes.c.lease_expires_at >= now
                    )
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return _pass(row) if row else None

    def abandoned(self) -> bool:
        """Whether an unfinished pass lost its worker (the next pass resumes or
        replaces it)."""
        now = self._ledger.now()
        with self._ledger.read() as connection:
            return (
                connection.execute(
                    select(drift_passes.c.id).where(
                        drift_passes.c.status == "running",
                        or_(
                            drift_passes.c.lease_expires_at.is_(None),
                            drift_passes.c.lease_expires_at < now,
                        ),
                    )
                ).first()
                is not None
            )

    def items(self, pass_id: int) -> list[DriftItem]:
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(drift_items)
                .where(drift_items.c.pass_id == pass_id)
                .order_by(drift_items.c.customer_id, drift_items.c.kind, drift_items.c.object)
            ).mappings()
            return [
                DriftItem(
                    customer_id=row["customer_id"],
                    kind=row["kind"],
                    object=row["object"],
                    detail=row["detail"],
                    fix=row["fix"],
                    outcome=row["outcome"],
                )
                for row in rows
            ]

    def unsettled_by_kind(self) -> dict[str, int]:
        """Items of the newest finished pass not fixed, by kind (the metric)."""
        latest = self.latest()
        if latest is None:
            return {}
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(drift_items.c.kind, func.count())
                .where(drift_items.c.pass_id == latest.id, drift_items.c.outcome != "fixed")
                .group_by(drift_items.c.kind)
            ).all()
            return {str(kind): int(count) for kind, count in rows}


def _held(pass_id: int, owner: str, now: datetime) -> ColumnElement[bool]:
    return and_(
        drift_passes.c.id == pass_id,
        drift_passes.c.status == "running",
        drift_passes.c.lease_owner == owner,
        drift_passes.c.lease_expires_at >= now,
    )


def _pass(row: RowMapping) -> DriftPass:
    return DriftPass(**{name: row[name] for name in DriftPass.__dataclass_fields__})
