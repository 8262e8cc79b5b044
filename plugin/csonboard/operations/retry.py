"""Bulk retries: failed, dead-lettered or stuck work, made due again.

:func:`find_retryable` selects with the same filters and order as ``csonboard
events list`` / ``onboardings list`` (events by the time they were received,
onboardings by the time they were created; newest first), so an operator can
look first and retry exactly what was listed.

:func:`retry_work` requeues what was selected, each item only if it is *still*
in the status it was selected in and no worker holds it: minutes may pass
between listing and confirming, and work that succeeded or is running
meanwhile must not be touched. Events start their attempts again from zero;
onboardings keep their checkpoints and resume at their first unfinished step.

Failure policy: a ledger outage raises (LedgerUnavailable); a queue outage does
not (the work is due in the ledger; see :mod:`.ringing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from csonboard.errors import QueueUnavailable
from csonboard.ledger import Ledger
from csonboard.operations.ringing import QUEUE_DOWN
from csonboard.queue import Doorbell, Kind

Selector = Literal["failed", "dead", "stuck"]
ONBOARDING: Kind = "onboarding"
ACCOUNT: Kind = "account"
"""The --type values that select onboardings and customers' lifecycle work;
any other value is an event type."""

# Which ledger statuses each selector means, per kind of work. Events have no
# "stuck": an event whose worker died is picked up again by the sweep.
_EVENT_STATUSES: dict[Selector, tuple[str, ...]] = {"failed": ("failed",), "dead": ("dead",)}
_ONBOARDING_STATUSES: dict[Selector, tuple[str, ...]] = {
    "failed": ("failed",),
    "dead": ("dead",),
    "stuck": ("stuck",),
}
_ACCOUNT_STATUSES: dict[Selector, tuple[str, ...]] = {"failed": ("failed",), "dead": ("dead",)}
_BATCH = 50


@dataclass(frozen=True)
class WorkItem:
    """One event or onboarding that matched."""

    kind: Kind
    ident: str
    status: str
    what: str
    """The event's type, or the step an onboarding stopped at."""
    when: datetime
    last_error: str | None


@dataclass
class RetryResult:
    requeued: list[WorkItem] = field(default_factory=list)
    skipped: list[WorkItem] = field(default_factory=list)
    """Changed since they were selected (done, running, retried by someone else)."""
    warning: str | None = None


def find_retryable(
    ledger: Ledger,
    selectors: Iterable[Selector],
    *,
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[WorkItem]:
    """Events and onboardings in the statuses ``selectors`` name, newest first.

    ``types`` narrows to those event types, and to onboardings only if it
    contains ``"onboarding"``; empty means both kinds, every type.
    """
    chosen = set(selectors)
    event_types = [t for t in types if t not in (ONBOARDING, ACCOUNT)]
    want_events = not types or bool(event_types)
    want_onboardings = not types or ONBOARDING in types
    want_accounts = not types or ACCOUNT in types
    cap = limit if limit is not None else 10**9
    items: list[WorkItem] = []
    event_statuses = [s for sel in chosen for s in _EVENT_STATUSES.get(sel, ())]
    if want_events and event_statuses:
        for e in ledger.events.find(
            statuses=event_statuses, types=event_types, since=since, until=until, limit=cap
        ):
            items.append(WorkItem("event", e.id, e.status, e.type, e.received_at, e.last_error))
    onboarding_statuses = [s for sel in chosen for s in _ONBOARDING_STATUSES.get(sel, ())]
    if want_onboardings and onboarding_statuses:
        for o in ledger.onboardings.find(
            statuses=onboarding_statuses, since=since, until=until, limit=cap
        ):
            items.append(
                WorkItem(
                    ONBOARDING,
                    o.session_id,
                    o.status,
                    o.step or "-",
                    o.created_at,
                    o.last_error or o.note,
                )
            )
    account_statuses = [s for sel in chosen for s in _ACCOUNT_STATUSES.get(sel, ())]
    if want_accounts and account_statuses:
        for a in ledger.lifecycle.find(
            statuses=account_statuses, since=since, until=until, limit=cap
        ):
            items.append(
                WorkItem(ACCOUNT, a.customer_id, a.status, "lifecycle", a.updated_at, a.last_error)
            )
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:cap]


def retry_work(
    ledger: Ledger,
    doorbell: Doorbell,
    items: Sequence[WorkItem],
    *,
    progress: Callable[[int], None] = lambda _done: None,
) -> RetryResult:
    """Requeue ``items`` (each only if unchanged since it was selected) and ring
    the queue for each. ``progress`` is called with the number of items handled
    after each batch."""
    result = RetryResult()
    ringing = True
    for start in range(0, len(items), _BATCH):
        batch = items[start : start + _BATCH]
        done = set(_requeue(ledger, batch))
        for item in batch:
            (result.requeued if (item.kind, item.ident) in done else result.skipped).append(item)
            if ringing and (item.kind, item.ident) in done:
                try:
                    doorbell.ring(item.kind, item.ident)
                except QueueUnavailable as exc:
                    ringing = False
                    result.warning = QUEUE_DOWN.format(reason=exc)
        progress(len(batch))
    return result


def _requeue(ledger: Ledger, batch: Sequence[WorkItem]) -> list[tuple[Kind, str]]:
    done: list[tuple[Kind, str]] = []
    by_status: dict[tuple[Kind, str], list[str]] = {}
    for item in batch:
        by_status.setdefault((item.kind, item.status), []).append(item.ident)
    for (kind, status), idents in by_status.items():
        if kind == "event":
            requeued = ledger.events.requeue(idents, statuses=(status,))
        elif kind == ACCOUNT:
            requeued = ledger.lifecycle.requeue(idents, statuses=(status,))
        else:
            requeued = ledger.onboardings.requeue(
                idents, statuses=(status,), note=f"retried by an operator (was {status})"
            )
        done.extend((kind, ident) for ident in requeued)
    return done
