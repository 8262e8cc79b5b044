"""Usage billed through Stripe Billing Meters: cursors (one per ComputeStacks user,
leased like accounts) and reports (one per ComputeStacks usage row).

A report's life:

- ``pending``: recorded, to be sent;
- ``reported``: Stripe took it, or refused a repeat of its identifier (which
  proves an earlier attempt arrived);
- ``carried``: under one whole unit once the user's earlier fractions are
  added; Stripe takes whole numbers only, so it is billed with a later row and
  nothing is sent for it;
- ``unbillable``: older than Stripe accepts; never sent, counted;
- ``uncertain``: an attempt's answer was lost more than a day ago; Stripe may
  have it and would now take a repeat as new usage, so it is not resent on its
  own;
- ``failed``: Stripe refused it for another reason.

The last two wait for an operator (``csonboard usage resolve``).
``first_sent_at`` is committed before the first attempt leaves, so however a
sync ends (a crash, a lost answer), the ledger knows the row may be at Stripe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, or_, select, update

from csonboard.ledger import leases
from csonboard.ledger.schema import onboardings, usage_cursors, usage_reports
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger

USAGE_STATUSES = ("pending", "reported", "carried", "unbillable", "uncertain", "failed")
NEEDS_OPERATOR = ("uncertain", "failed")
_WAITING = ("idle",)


@dataclass(frozen=True)
class UsageCursor:
    cs_user_id: int
    customer_id: str
    status: str
    billable_from: datetime
    watermark: datetime | None
    carry: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    synced_at: datetime | None


@dataclass(frozen=True)
class NewReport:
    """A usage row to bill, as the sync makes it."""

    usage_id: int
    meter: str
    resource: str
    quantity: str
    value: str
    period_start: datetime
    period_end: datetime
    timestamp: datetime
    identifier: str
    status: str  # pending; carried (under one unit); unbillable (too old for Stripe)


@dataclass(frozen=True)
class UsageReport:
    usage_id: int
    cs_user_id: int
    customer_id: str
    meter: str
    resource: str
    quantity: str
    value: str
    period_start: datetime
    period_end: datetime
    timestamp: datetime
    identifier: str
    status: str
    attempts: int
    first_sent_at: datetime | None
    reported_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class UsageStats:
    """What the metrics report, read in one go."""

    reported_by_meter: dict[str, int]
    by_status: dict[str, int]
    oldest_unreported: datetime | None


def _cursor(row: Any) -> UsageCursor:
    return UsageCursor(**{name: row[name] for name in UsageCursor.__dataclass_fields__})


def _report(row: Any) -> UsageReport:
    return UsageReport(**{name: row[name] for name in UsageReport.__dataclass_fields__})


class UsageStore:
    """Reads and writes of ``usage_cursors`` and ``usage_reports``; each method
    is one transaction. Writes a sync makes are refused (False) once its lease
    is gone."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    # -- cursors -------------------------------------------------------------------------

    def ensure_cursors(self) -> int:
        """A cursor for every ComputeStacks user an onboarding finished for that has
        none yet, billable from that user's first onboarding. Returns how many."""
        now = self._ledger.now()
        first = (
            select(
                onboardings.c.cs_user_id,
                func.min(onboardings.c.customer_id).label("customer_id"),
                func.min(onboardings.c.created_at).label("billable_from"),
            )
            .where(
                onboardings.c.status == "done",
                onboardings.c.cs_user_id.is_not(None),
                onboardings.c.customer_id.is_not(None),
                ~exists().where(usage_cursors.c.cs_user_id == onboardings.c.cs_user_id),
            )
            .group_by(onboardings.c.cs_user_id)
        )
        with self._ledger.write() as connection:
            found = connection.execute(first).mappings().all()
            if not found:
                return 0
            rows = [
                {
                    "cs_user_id": row["cs_user_id"],
                    "customer_id": row["customer_id"],
                    "billable_from": row["billable_from"],
                    "status": "idle",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for row in found
            ]
            inserted = connection.execute(
                insert_ignoring_conflicts(connection, usage_cursors).returning(
                    usage_cursors.c.cs_user_id
                ),
                rows,
            )
            return len(inserted.all())

    def due(self, limit: int = 500) -> list[str]:
        """Users whose usage is due a sync (ids as text, for the queue)."""
        now = self._ledger.now()
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(usage_cursors.c.cs_user_id)
                .where(leases.due(usage_cursors, now, _WAITING, "running"))
                .order_by(usage_cursors.c.next_attempt_at, usage_cursors.c.cs_user_id)
                .limit(limit)
            )
            return [str(ident) for ident in rows.scalars()]

    def cursors(self, customer_id: str | None = None) -> list[UsageCursor]:
        query = select(*usage_cursors.c).order_by(usage_cursors.c.cs_user_id)
        if customer_id:
            query = query.where(usage_cursors.c.customer_id == customer_id)
        with self._ledger.read() as connection:
            return [_cursor(row) for row in connection.execute(query).mappings()]

    def claim(
        self, cs_user_id: int, owner: str, lease_seconds: float, *, whenever: bool = False
    ) -> UsageCursor | None:
        """Take the lease on a user's cursor when it is due or, ``whenever`` (an
        operator's sync), whenever no live lease holds it. None if not taken."""
        now = self._ledger.now()
        free = or_(usage_cursors.c.status.in_(_WAITING), usage_cursors.c.lease_expires_at < now)
        ready = free if whenever else leases.due(usage_cursors, now, _WAITING, "running")
        with self._ledger.write() as connection:
            row = (
                connection.execute(
                    update(usage_cursors)
                    .where(usage_cursors.c.cs_user_id == cs_user_id, ready)
                    .values(
                        status="running",
                        lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        updated_at=now,
                    )
                    .returning(*usage_cursors.c)
                )
                .mappings()
                .first()
            )
            return None if row is None else _cursor(row)

    def release(
        self,
        cs_user_id: int,
        owner: str,
        *,
        next_attempt_at: datetime,
        watermark: datetime | None = None,
        error: str | None = None,
        attempts: int = 0,
        synced: bool = False,
    ) -> bool:
        """Give the cursor back (``idle``, due again at ``next_attempt_at``)."""
        now = self._ledger.now()
        values: dict[str, Any] = {
            "status": "idle",
            "next_attempt_at": next_attempt_at,
            "last_error": error,
            "attempts": attempts,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if watermark is not None:
            values["watermark"] = watermark
        if synced:
            values["synced_at"] = now
        held = leases.held(usage_cursors, usage_cursors.c.cs_user_id == cs_user_id, owner, now)
        with self._ledger.write() as connection:
            return (
                connection.execute(update(usage_cursors).where(held).values(values)).rowcount == 1
            )

    # -- reports under the cursor's lease ----------------------------------------------------

    def known(self, usage_ids: Sequence[int]) -> set[int]:
        """Which of these usage rows are recorded already."""
        found: set[int] = set()
        with self._ledger.read() as connection:
            for start in range(0, len(usage_ids), 500):
                batch = usage_ids[start : start + 500]
                found.update(
                    connection.execute(
                        select(usage_reports.c.usage_id).where(usage_reports.c.usage_id.in_(batch))
                    ).scalars()
                )
        return found

    def record(
        self,
        cs_user_id: int,
        owner: str,
        customer_id: str,
        reports: Sequence[NewReport],
        carry: str | None,
    ) -> int | None:
        """Store the reports not stored yet (a row already recorded is left as it
        is) and the user's fractions carried forward, in one transaction;
        returns how many reports were new, or None when the lease is gone."""
        now = self._ledger.now()
        rows = [
            {
                **{name: getattr(r, name) for name in NewReport.__dataclass_fields__},
                "cs_user_id": cs_user_id,
                "customer_id": customer_id,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for r in sorted(reports, key=lambda r: r.usage_id)
        ]
        with self._ledger.write() as connection:
            if not self._holds(connection, cs_user_id, owner, now):
                return None
            connection.execute(
                update(usage_cursors)
                .where(usage_cursors.c.cs_user_id == cs_user_id)
                .values(carry=carry, updated_at=now)
            )
            if not rows:
                return 0
            inserted = connection.execute(
                insert_ignoring_conflicts(connection, usage_reports).returning(
                    usage_reports.c.usage_id
                ),
                rows,
            )
            return len(inserted.all())

    def pending(self, cs_user_id: int, limit: int = 1000) -> list[UsageReport]:
        """The user's reports still to send, oldest usage first."""
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(*usage_reports.c)
                .where(
                    usage_reports.c.cs_user_id == cs_user_id, usage_reports.c.status == "pending"
                )
                .order_by(usage_reports.c.timestamp, usage_reports.c.usage_id)
                .limit(limit)
            )
            return [_report(row) for row in rows.mappings()]

    def about_to_send(
        self, cs_user_id: int, owner: str, usage_ids: Sequence[int], lease_seconds: float
    ) -> bool:
        """Before the attempts leave: count them, start the 24 hours of each
        report's first attempt, and extend the lease for the sending. False
        (nothing written) when the lease is gone."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._holds(connection, cs_user_id, owner, now):
                return False
            connection.execute(
                update(usage_cursors)
                .where(usage_cursors.c.cs_user_id == cs_user_id)
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
            connection.execute(
                update(usage_reports)
                .where(usage_reports.c.usage_id.in_(usage_ids))
                .values(
                    attempts=usage_reports.c.attempts + 1,
                    first_sent_at=func.coalesce(usage_reports.c.first_sent_at, now),
                    updated_at=now,
                )
            )
            return True

    def settle(
        self,
        usage_id: int,
        status: str,
        *,
        error: str | None = None,
        expected: Sequence[str] = (),
    ) -> bool:
        """An operator's outcome for one report (``reported``, ``unbillable``;
        ``pending`` again to resend, with a new 24 hours), only from one of the
        ``expected`` statuses. False when nothing changed."""
        values = self._outcome(status, error)
        query = update(usage_reports).where(usage_reports.c.usage_id == usage_id)
        if expected:
            query = query.where(usage_reports.c.status.in_(expected))
        with self._ledger.write() as connection:
            return connection.execute(query.values(values)).rowcount == 1

    def settle_sent(
        self, cs_user_id: int, owner: str, outcomes: Sequence[tuple[int, str, str | None]]
    ) -> bool:
        """The outcomes of a sync's batch, ``(usage_id, status, error)`` each, in
        one transaction while the sync holds the user's lease (False, nothing
        written, when it does not). Until this commits the reports stay
        ``pending`` with their ``first_sent_at``: a crash costs a retry that
        Stripe confirms as a repeat, never a second bill."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._holds(connection, cs_user_id, owner, now):
                return False
            for usage_id, status, error in outcomes:
                connection.execute(
                    update(usage_reports)
                    .where(
                        usage_reports.c.usage_id == usage_id,
                        usage_reports.c.cs_user_id == cs_user_id,
                    )
                    .values(self._outcome(status, error))
                )
            return True

    def _outcome(self, status: str, error: str | None) -> dict[str, Any]:
        now = self._ledger.now()
        values: dict[str, Any] = {"status": status, "last_error": error, "updated_at": now}
        if status == "reported":
            values["reported_at"] = now
        if status == "pending":  # an operator's resend: a new 24 hours
            values["first_sent_at"] = None
        return values

    # -- reading -------------------------------------------------------------------------------

    def get(self, usage_id: int) -> UsageReport | None:
        with self._ledger.read() as connection:
            row = (
                connection.execute(
                    select(*usage_reports.c).where(usage_reports.c.usage_id == usage_id)
                )
                .mappings()
                .first()
            )
            return None if row is None else _report(row)

    def find(
        self,
        *,
        customer_id: str | None = None,
        statuses: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[UsageReport]:
        """Reports matching every filter, the newest usage first (``since`` and
        ``until`` bound the usage's timestamp)."""
        query = select(*usage_reports.c)
        if customer_id:
            query = query.where(usage_reports.c.customer_id == customer_id)
        if statuses:
            query = query.where(usage_reports.c.status.in_(statuses))
        if since:
            query = query.where(usage_reports.c.timestamp >= since)
        if until:
            query = query.where(usage_reports.c.timestamp < until)
        query = query.order_by(
            usage_reports.c.timestamp.desc(), usage_reports.c.usage_id.desc()
        ).limit(limit)
        with self._ledger.read() as connection:
            return [_report(row) for row in connection.execute(query).mappings()]

    def stats(self) -> UsageStats:
        with self._ledger.read() as connection:
            by_meter = connection.execute(
                select(usage_reports.c.meter, func.count())
                .where(usage_reports.c.status == "reported")
                .group_by(usage_reports.c.meter)
            ).all()
            by_status = connection.execute(
                select(usage_reports.c.status, func.count()).group_by(usage_reports.c.status)
            ).all()
            oldest = connection.execute(
                select(func.min(usage_reports.c.timestamp)).where(
                    usage_reports.c.status.in_(("pending", *NEEDS_OPERATOR))
                )
            ).scalar_one_or_none()
        return UsageStats(dict(by_meter), dict(by_status), oldest)

    def _holds(self, connection: Any, cs_user_id: int, owner: str, now: datetime) -> bool:
        held = leases.held(usage_cursors, usage_cursors.c.cs_user_id == cs_user_id, owner, now)
        return (
            connection.execute(select(usage_cursors.c.cs_user_id).where(held)).first() is not None
        )
