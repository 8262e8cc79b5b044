"""The usage sync: ComputeStacks usage rows to Stripe meter events, each exactly once.

For each ComputeStacks user csonboard onboarded (one leased cursor each), a sync:

1. reads the user's usage rows newest first (``GET /api/admin/users/{id}/
   billing_usages``), stopping at rows older than the cursor's watermark;
2. turns every finished row that the catalog bills (``[[usage]]``) into a
   report in the ledger: the meter, the value, the period's end as the event's
   time, and an identifier derived from the row (``identifier_prefix`` + row
   id). Stripe takes whole numbers only, so the value is the row's quantity
   times the entry's ``multiply``, plus the fraction of a unit the user's
   earlier rows left over, rounded down; what is left is carried to the next
   row (a row left under one unit is ``carried``: nothing is sent for it). So
   the units billed never exceed the usage and trail it by less than one. A
   row already older than Stripe accepts (35 days) is recorded ``unbillable``;
3. sends every pending report as a meter event, having first recorded that it
   is about to (``first_sent_at``).

Why this is exactly once: a row is recorded once (the ledger's primary key is
the row id) and sent only while ``pending``. A retry of an attempt whose answer
was lost reuses its identifier, which Stripe refuses as a duplicate for at
least 24 hours; that refusal confirms the first attempt arrived. After 23 hours
without a confirmation a repeat could be taken as new usage, so the report is
left ``uncertain`` for an operator instead.

Rows whose period has not ended (monthly items) wait: the watermark stays at
the oldest such row, so they are read again until they are final. Usage that
ended before the user's first purchase through csonboard is not csonboard's.

Failure policy: an outage of either side leaves everything as it was (reports
stay pending) and the user is retried with backoff, never given up (usage must
not be lost). Stripe refusing a report for another reason marks it ``failed``
(the operator's). A customer whose plans bill one resource differently is an
error on its cursor until the catalog says which.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from urllib.parse import urlsplit

from csonboard.computestacks import BillingUsage, ComputeStacksClient
from csonboard.errors import (
    ComputeStacksNotFound,
    ConfigError,
    CsonboardError,
    StripeRefused,
    TransientError,
)
from csonboard.ledger import Ledger
from csonboard.ledger.usage import NewReport, UsageCursor, UsageReport
from csonboard.plans import Catalog, Usage
from csonboard.retry import backoff_seconds
from csonboard.settings import WorkerSettings
from csonboard.stripe_api import StripeGateway

log = logging.getLogger(__name__)

STRIPE_WINDOW = timedelta(days=35)
"""How old a meter event's time may be (Stripe: within the past 35 calendar days)."""
MARGIN = timedelta(hours=1)
"""Kept spare at the edge of Stripe's windows (clock skew, a slow request)."""
IDENTIFIER_MEMORY = timedelta(hours=24) - MARGIN
"""How long after a first attempt a retry is still safe (Stripe: at least 24 h)."""
OVERLAP = timedelta(minutes=10)
"""Rows created this long before the watermark are read again: ComputeStacks
orders its rows by creation time with no tie-breaker, and clocks drift."""
BATCH = 100


@dataclass
class SyncReport:
    """What a sync did, in counts an operator can read."""

    users: int = 0
    busy: int = 0
    rows_read: int = 0
    recorded: int = 0
    reported: int = 0
    confirmed: int = 0
    """Reported because Stripe refused the repeat of an earlier attempt's identifier."""
    unbillable: int = 0
    uncertain: int = 0
    failed: int = 0
    unmapped: int = 0
    not_final: int = 0
    would_send: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: SyncReport) -> None:
        for name in self.__dataclass_fields__:
            if name == "errors":
                self.errors.extend(other.errors)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))


class UsageSync:
    """Syncs users' usage for one process (a worker, or an operator's command).

    ``interval`` is how long a user waits after a good sync; failures are
    retried after a backoff capped at that interval.
    """

    def __init__(
        self,
        ledger: Ledger,
        cs: ComputeStacksClient,
        stripe: StripeGateway,
        catalog: Catalog,
        worker: WorkerSettings,
        *,
        interval: timedelta,
        identifier_prefix: str,
        name: str,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.ledger = ledger
        self.cs = cs
        self.stripe = stripe
        self.catalog = catalog
        self.worker = worker
        self.interval = interval
        self.identifier_prefix = identifier_prefix
        self.name = name
        self._rng = rng

    # -- the worker's job -----------------------------------------------------------------

    def due(self) -> list[str]:
        """Users due a sync (the worker's sweep); none when nothing is billed."""
        if not self.catalog.bills_usage:
            return []
        self.ledger.usage.ensure_cursors()
        return self.ledger.usage.due()

    def run(self, ident: str) -> None:
        """Sync one user if it is due and nobody holds it (a queue message)."""
        cursor = self.ledger.usage.claim(int(ident), self.name, self.worker.lease_seconds)
        if cursor is not None:
            self._under_lease(cursor, SyncReport())

    # -- an operator's sync -----------------------------------------------------------------

    def sync(self, *, customer_id: str | None = None, dry_run: bool = False) -> SyncReport:
        """Sync every user now (or one customer's), whatever their schedule; a
        user a worker holds is counted ``busy`` and left alone. ``dry_run``
        reads ComputeStacks and the ledger and says what would be recorded and
        sent, writing and sending nothing."""
        report = SyncReport()
        if not self.catalog.bills_usage:
            return report
        if not dry_run:
            self.ledger.usage.ensure_cursors()
        for cursor in self.ledger.usage.cursors(customer_id):
            if dry_run:
                self._dry_run(cursor, report)
                continue
            claimed = self.ledger.usage.claim(
                cursor.cs_user_id, self.name, self.worker.lease_seconds, whenever=True
            )
            if claimed is None:
                report.busy += 1
                continue
            self._under_lease(claimed, report)
        return report

    # -- one user -----------------------------------------------------------------------------

    def _under_lease(self, cursor: UsageCursor, report: SyncReport) -> None:
        mine = SyncReport(users=1)
        kept: datetime | None = None  # the watermark, once what it covers is recorded
        try:
            read = self._read(cursor, mine)
            usage = self.ledger.usage
            new = usage.record(
                cursor.cs_user_id, self.name, cursor.customer_id, read.reports, read.carry
            )
            if new is None:
                return  # the lease is gone: another worker has the user now
            mine.recorded += new
            kept = read.watermark
            self._send(cursor, mine)
        except CsonboardError as exc:
            self._fail(cursor, exc, kept, mine)
        except Exception as exc:
            log.exception("bug while syncing the usage of ComputeStacks user %s", cursor.cs_user_id)
            bug = TransientError(f"unexpected {exc.__class__.__name__}: {exc}")
            self._fail(cursor, bug, kept, mine)
        else:
            now = self.ledger.now()
            self.ledger.usage.release(
                cursor.cs_user_id,
                self.name,
                next_attempt_at=now + self.interval,
                watermark=kept,
                synced=True,
            )
            log.info(
                "usage synced",
                extra={"cs_user_id": cursor.cs_user_id, "customer_id": cursor.customer_id},
            )
        finally:
            report.add(mine)

    def _read(self, cursor: UsageCursor, report: SyncReport) -> _Read:
        """The user's new usage as reports, the fractions carried on, and the
        watermark to keep once they are recorded."""
        entries = self._entries(cursor)
        floor = (cursor.watermark - OVERLAP) if cursor.watermark else cursor.billable_from - OVERLAP
        try:
            rows: Sequence[BillingUsage] = self.cs.billing_usages(
                cursor.cs_user_id, stop=lambda page: any(r.created_at < floor for r in page)
            )
        except ComputeStacksNotFound:
            rows = ()  # the user is gone (terminated): nothing new to read
        now = self.ledger.now()
        fresh = [r for r in rows if r.created_at >= floor]
        known = self.ledger.usage.known([r.id for r in fresh])
        report.rows_read += len(fresh)
        carry = _carry_in(cursor.carry)
        reports: list[NewReport] = []
        waiting: list[datetime] = []
        # Oldest first: the fractions carried on add up in the order usage happened.
        for row in sorted(fresh, key=lambda r: (r.period_end, r.id)):
            if row.id in known:
                continue
            entry = next((e for e in entries if e.takes(row.product_id, row.resource_kind)), None)
            if entry is None:
                report.unmapped += 1
            elif row.period_end > now:
                report.not_final += 1
                waiting.append(row.created_at)
            elif row.period_end > cursor.billable_from:  # else: used before csonboard's time
                made = self._report(row, entry, now, carry)
                if made is not None:
                    reports.append(made)
        newest = max((r.created_at for r in rows), default=None)
        if waiting:
            watermark: datetime | None = min(waiting)
        elif newest is None or (cursor.watermark and cursor.watermark > newest):
            watermark = cursor.watermark
        else:
            watermark = newest
        return _Read(reports, _carry_out(carry), watermark)

    def _report(
        self, row: BillingUsage, entry: Usage, now: datetime, carry: dict[str, Decimal]
    ) -> NewReport | None:
        """The report for ``row``; ``carry`` (the fractions of a unit not billed
        yet, per meter) takes this row's fraction on. None when nothing was used."""
        quantity = row.qty if entry.quantity == "qty" else row.qty_total
        exact = quantity * entry.multiply
        if exact <= 0:
            return None  # nothing beyond the package: nothing to bill
        timestamp = min(row.period_end, now)
        if now - timestamp > STRIPE_WINDOW - MARGIN:
            status, whole = "unbillable", exact  # never sent, never carried
        else:
            total = carry.get(entry.meter, Decimal(0)) + exact
            whole = total.to_integral_value(rounding=ROUND_FLOOR)
            carry[entry.meter] = total - whole
            status = "pending" if whole > 0 else "carried"
        return NewReport(
            usage_id=row.id,
            meter=entry.meter,
            resource=row.product_label or row.resource_kind or str(row.product_id),
            quantity=_text(quantity),
            value=_text(whole),
            period_start=row.period_start,
            period_end=row.period_end,
            timestamp=timestamp,
            identifier=f"{self.identifier_prefix}-{row.id}",
            status=status,
        )

    def _entries(self, cursor: UsageCursor) -> list[Usage]:
        plans = self.ledger.onboardings.plans_bought(cursor.cs_user_id)
        try:
            return self.catalog.usage_for(plans)
        except ValueError as exc:
            raise ConfigError("usage", f"customer {cursor.customer_id}: {exc}") from None

    def _send(self, cursor: UsageCursor, report: SyncReport) -> None:
        """Send the user's pending reports, a batch at a time: the batch's first
        attempts are committed before it leaves, its outcomes after."""
        usage = self.ledger.usage
        while batch := usage.pending(cursor.cs_user_id, BATCH):
            now = self.ledger.now()
            outcomes: list[tuple[int, str, str | None]] = []
            ready = []
            for item in batch:
                if now - item.timestamp > STRIPE_WINDOW - MARGIN:
                    outcomes.append((item.usage_id, "unbillable", None))
                elif item.first_sent_at and now - item.first_sent_at > IDENTIFIER_MEMORY:
                    outcomes.append((item.usage_id, "uncertain", _uncertain(item.first_sent_at)))
                else:
                    ready.append(item)
            ids = [i.usage_id for i in ready]
            if ids and not usage.about_to_send(
                cursor.cs_user_id, self.name, ids, self.worker.lease_seconds
            ):
                return  # the lease is gone
            outage: CsonboardError | None = None
            for item in ready:
                try:
                    outcomes.append(self._send_one(cursor, item, report))
                except CsonboardError as exc:  # Stripe is down: the rest stays pending
                    outage = exc
                    break
            settled = usage.settle_sent(cursor.cs_user_id, self.name, outcomes)
            for _, status, _ in outcomes:
                if settled and status in ("unbillable", "uncertain", "failed"):
                    setattr(report, status, getattr(report, status) + 1)
            if outage is not None:
                raise outage
            if not settled:
                return  # the lease is gone; the next sync confirms what was sent

    def _send_one(
        self, cursor: UsageCursor, item: UsageReport, report: SyncReport
    ) -> tuple[int, str, str | None]:
        """One meter event; its outcome. Stripe outages propagate (the rest of the
        batch stays pending)."""
        try:
            fresh = self.stripe.send_meter_event(
                item.meter,
                customer_id=cursor.customer_id,
                value=item.value,
                identifier=item.identifier,
                timestamp=item.timestamp,
            )
        except StripeRefused as exc:
            return (item.usage_id, "failed", str(exc))
        report.reported += 1
        if not fresh:
            report.confirmed += 1
        return (item.usage_id, "reported", None)

    def _dry_run(self, cursor: UsageCursor, report: SyncReport) -> None:
        mine = SyncReport(users=1)
        try:
            read = self._read(cursor, mine)
        except CsonboardError as exc:
            mine.errors.append(f"ComputeStacks user {cursor.cs_user_id}: {exc}")
        else:
            mine.recorded += len(read.reports)
            pending = self.ledger.usage.pending(cursor.cs_user_id, limit=100_000)
            mine.would_send += len(pending) + sum(1 for r in read.reports if r.status == "pending")
        report.add(mine)

    def _fail(
        self,
        cursor: UsageCursor,
        exc: CsonboardError,
        watermark: datetime | None,
        report: SyncReport,
    ) -> None:
        now = self.ledger.now()
        attempts = cursor.attempts + 1
        if isinstance(exc, TransientError):
            delay = backoff_seconds(
                attempts,
                base=self.worker.backoff_seconds,
                cap=min(self.worker.backoff_max_seconds, self.interval.total_seconds()),
                rng=self._rng,
                at_least=exc.retry_after,
            )
            retry_at = now + timedelta(seconds=delay)
        else:
            retry_at = now + self.interval  # a person must act; keep trying meanwhile
        message = f"ComputeStacks user {cursor.cs_user_id}: {exc}"
        report.errors.append(message)
        log.warning("usage sync failed, retrying at %s: %s", retry_at.isoformat(), message)
        self.ledger.usage.release(
            cursor.cs_user_id,
            self.name,
            next_attempt_at=retry_at,
            watermark=watermark,  # None: nothing new recorded, so the rows are read again
            error=str(exc),
            attempts=attempts,
        )


def _uncertain(first_sent_at: datetime) -> str:
    return (
        f"sent first at {first_sent_at.isoformat()} with no answer recorded; Stripe no longer "
        "recognises a repeat of its identifier, so it is not sent again: check the meter's "
        "summary for the customer, then `csonboard usage resolve`"
    )


@dataclass(frozen=True)
class _Read:
    reports: list[NewReport]
    carry: str | None
    watermark: datetime | None


def _carry_in(text: str | None) -> dict[str, Decimal]:
    return {meter: Decimal(value) for meter, value in json.loads(text or "{}").items()}


def _carry_out(carry: dict[str, Decimal]) -> str | None:
    kept = {meter: _text(value) for meter, value in sorted(carry.items()) if value}
    return json.dumps(kept) if kept else None


def identifier_prefix(cs_url: str) -> str:
    """The start of every meter event identifier for usage of the ComputeStacks
    at ``cs_url``: usage rows are numbered per ComputeStacks, and two of them
    billing into one Stripe account must not share identifiers (Stripe would
    refuse the second as a repeat of the first)."""
    host = urlsplit(cs_url).netloc.lower() or cs_url
    return f"cs-{hashlib.sha256(host.encode()).hexdigest()[:12]}-usage"


def _text(value: Decimal) -> str:
    """A decimal as plain digits (no exponent, no trailing zeros)."""
    return format(value.normalize(), "f")


def report_lines(report: SyncReport) -> Sequence[str]:
    """The summary an operator reads after ``csonboard usage sync``."""
    return [
        f"{report.users} user(s) synced, {report.busy} busy (a worker holds them)",
        f"{report.rows_read} usage row(s) read: {report.recorded} recorded, "
        f"{report.unmapped} of resources no meter bills, {report.not_final} not final yet",
        f"{report.reported} reported to Stripe ({report.confirmed} confirmed from an earlier "
        f"attempt), {report.unbillable} unbillable, {report.uncertain} uncertain, "
        f"{report.failed} failed",
    ]
