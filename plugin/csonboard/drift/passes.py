"""A drift pass over every customer, in pages, resumable.

1. Survey the whole installation (``views.Survey``: a few hundred paged
   requests to each side, however many customers there are).
2. Walk the customers -- every Stripe customer with an onboarding, and every
   ``cus_...`` external_id in ComputeStacks -- in id order, a page at a time.
   A customer the rules find nothing for in the survey is done; one with a
   candidate difference is confirmed (and, with ``fix``, repaired) by reading
   it afresh (``repair.Repairer``). Each page's findings and the last customer
   checked are recorded in one transaction, under the pass's lease.
3. Finish: the pass is done; ``csonboard_drift_items`` shows what it left.

A pass whose process died is resumed by the next pass of the same kind after
its last recorded page (the survey is read again: it is cheap). ComputeStacks
requests are paced (``drift.computestacks_requests_per_minute``) so a pass
never takes the rate limit (2,500 requests per 5 minutes per client IP) from
onboardings; a 429 is waited out by the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from csonboard.drift.repair import Repairer
from csonboard.drift.rules import PERSON, Record, Rules, check
from csonboard.drift.views import Survey
from csonboard.errors import ComputeStacksAuthError, ConfigError, CsonboardError, LeaseLost
from csonboard.ledger import Ledger
from csonboard.ledger.drift import DriftItem
from csonboard.plans import Catalog
from csonboard.settings import DriftSettings, LifecycleSettings

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    """What a pass found (those of a resumed pass's earlier pages included)."""

    pass_id: int | None
    fix: bool
    customers: int
    items: list[DriftItem] = field(default_factory=list)
    resumed_after: str | None = None
    missed: dict[str, int] = field(default_factory=dict)
    """Rows ComputeStacks' lists counted but paging did not return."""

    @property
    def unsettled(self) -> list[DriftItem]:
        return [i for i in self.items if i.outcome != "fixed"]


@dataclass(frozen=True)
class Drift:
    """Drift checks of one process: a whole pass, or one customer."""

    repairer: Repairer
    catalog: Catalog
    lifecycle: LifecycleSettings
    settings: DriftSettings
    clock: Callable[[], datetime]

    def rules(self) -> Rules:
        orders = self.repairer.ledger.onboardings
        return Rules(
            self.lifecycle,
            self.catalog,
            self.settings.unowned,
            self.clock(),
            bought_elsewhere=lambda project: orders.completed_order_of_project(project) is not None,
        )

    def customer(self, customer_id: str, *, fix: bool) -> list[DriftItem]:
        """One customer, read now (not recorded as a pass)."""
        return self.repairer.confirm(customer_id, self.rules(), fix=fix)

    def full_pass(self, *, fix: bool) -> PassReport | None:
        """Every customer; recorded, and resumed if an earlier one died. None
        (nothing done) while another pass runs: one at a time."""
        ledger = self.repairer.ledger
        owner = self.repairer.owner
        lease = self.repairer.lease_seconds
        run = ledger.drift.begin(owner, fix=fix, lease_seconds=lease)
        if run is None:
            return None
        log.info(
            "drift pass %s %s",
            run.id,
            f"resumed after {run.cursor}" if run.cursor else "started",
            extra={"fix": fix},
        )

        def keep() -> None:
            if not ledger.drift.renew(run.id, owner, lease):
                raise LeaseLost(f"lost the lease on drift pass {run.id}")

        survey = Survey.read(self.repairer.cs, self.repairer.stripe, keep)
        customers = sorted(set(_ledger_customers(ledger)) | survey.external_ids())
        todo = [c for c in customers if run.cursor is None or c > run.cursor]
        page_size = self.settings.page_size
        for start in range(0, len(todo), page_size):
            page = todo[start : start + page_size]
            items: list[DriftItem] = []
            for customer_id in page:
                found = self._customer(survey, customer_id, fix)
                if found is not None:
                    items += found
                    keep()  # confirming reads are paced: a page may take minutes
            if not ledger.drift.advance(
                run.id, owner, cursor=page[-1], checked=len(page), items=items, lease_seconds=lease
            ):
                raise LeaseLost(f"lost the lease on drift pass {run.id}")
        note = (
            "ComputeStacks lists shifted while paged; not read: "
            + ", ".join(f"{n} {name}" for name, n in sorted(survey.missed.items()))
            if survey.missed
            else None
        )
        if not ledger.drift.finish(run.id, owner, note=note):
            raise LeaseLost(f"lost the lease on drift pass {run.id}")
        done = ledger.drift.latest()
        return PassReport(
            pass_id=run.id,
            fix=fix,
            customers=done.customers if done and done.id == run.id else len(todo),
            items=ledger.drift.items(run.id),
            resumed_after=run.cursor,
            missed=survey.missed,
        )

    def _customer(self, survey: Survey, customer_id: str, fix: bool) -> list[DriftItem] | None:
        """The customer's confirmed items; None when the survey shows nothing."""
        rules = self.rules()
        record = Record.read(self.repairer.ledger, customer_id, livemode=self.repairer.livemode)
        if not check(record, survey, rules):
            return None
        try:
            return self.repairer.confirm(customer_id, rules, fix=fix)
        except (LeaseLost, ConfigError, ComputeStacksAuthError):
            raise  # the pass stops: nothing else can be checked either
        except CsonboardError as exc:
            if exc.transient:
                raise  # the pass is retried (and resumed from its last page)
            log.error("drift: cannot check customer %s: %s", customer_id, exc)
            return [DriftItem(customer_id, "unchecked", customer_id, str(exc), PERSON, "failed")]


def _ledger_customers(ledger: Ledger, page: int = 1000) -> list[str]:
    found: list[str] = []
    while True:
        chunk = ledger.onboardings.customers(after=found[-1] if found else None, limit=page)
        found += chunk
        if len(chunk) < page:
            return found


def due(ledger: Ledger, settings: DriftSettings, now: datetime) -> bool:
    """Whether the worker's scheduled pass should run now: one has died and
    waits to be resumed, or the newest finished longer than the interval ago."""
    if settings.interval_minutes <= 0 or ledger.drift.running() is not None:
        return False
    if ledger.drift.abandoned():
        return True
    latest = ledger.drift.latest()
    interval = timedelta(minutes=settings.interval_minutes)
    return latest is None or (latest.finished_at or latest.started_at) + interval <= now
