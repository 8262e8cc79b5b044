"""Onboardings in the ledger: one per Checkout Session, worked step by step
under a lease, each step's result checkpointed before the next step starts.

Statuses:

- ``pending``: due to run (``next_attempt_at`` empty or reached);
- ``running``: a worker holds the lease;
- ``waiting``: re-check scheduled (an order being provisioned), due at ``next_attempt_at``;
- ``failed``: a transient failure, retried at ``next_attempt_at``;
- ``awaiting_payment``: the session is not paid yet; an async-payment event reopens it;
- ``done``; ``closed`` (payment failed or session expired: nothing provisioned);
- ``dead`` (needs a person) and ``stuck`` (an order never finished): both
  replayable once the cause is fixed.

Every write by a worker names the lease owner and changes nothing (returns
False) if the lease has passed to someone else meanwhile.

Orders (one row per ComputeStacks order placed, by unit). ``status`` is
ComputeStacks's (``pending``, ``processing``, ``completed``, ``failed``,
``cancelled``) or one of ours; ``project_id`` is the project ComputeStacks made
for the order, and whose it is depends on the status:

- ``completed``: the customer's project (:attr:`OrderRecord.project_id`);
- ``failed`` / ``cancelled``: the project the order left behind (ComputeStacks
  makes the project when processing starts and removes nothing when the order
  fails), still to be deleted (:attr:`OrderRecord.left_project_id`); NULL when
  it left none;
- ``abandoned``: a replay placed a new order for the unit instead; a
  ``project_id`` is a leftover still to be deleted (``place_order`` deletes it
  before it orders again);
- ``leftover_deleted``: abandoned, and the project it left was deleted.

Pending and processing orders have no ``project_id``, even once ComputeStacks
shows one: a project is the customer's only when its order has completed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from csonboard.ledger import leases
from csonboard.ledger.schema import onboarding_steps, onboardings, orders
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger

ONBOARDING_STATUSES = (
    "pending",
    "running",
    "waiting",
    "failed",
    "awaiting_payment",
    "done",
    "closed",
    "dead",
    "stuck",
    "refunding",
    "refunded",
    "refund_failed",
)
_DUE = ("pending", "waiting", "failed")
REFUNDABLE = (
    "pending",
    "waiting",
    "failed",
    "running",
    "dead",
    "stuck",
    "refunding",
    "refund_failed",
)
"""Paid for and not provisioned: what provision-or-refund may refund (one a
worker holds under its lease only once that lease has run out)."""
REFUNDED_BY_THE_WORKER = ("dead", "stuck", "refunding")
"""What provision-or-refund refunds on its own: what needs a person, and a
refund a dead process left under way (never one still being tried)."""
REFUND_ENDED = ("refunded", "refund_failed")
"""Given up for a refund: never provisioned, and never provisioned later."""
_NEVER_REQUEUED = ("refunding", *REFUND_ENDED)
READY_STEP = "await_project"
"""The step after which a purchase's projects are ready: never refunded here."""
IN_PROGRESS = ("pending", "running", "waiting", "failed")
COMPLETED = "completed"
ABANDONED = "abandoned"  # an order status of ours: a replay placed a new one instead
LEFTOVER_DELETED = "leftover_deleted"  # abandoned, and the project it left was deleted
GIVEN_UP = (ABANDONED, LEFTOVER_DELETED)
# Statuses in which nothing has been provisioned yet, so closing is safe.
_CLOSABLE = ("pending", "awaiting_payment", "failed", "dead")


@dataclass(frozen=True)
class Onboarding:
    session_id: str
    status: str
    livemode: bool
    step: str | None
    customer_id: str | None
    subscription_id: str | None
    cs_user_id: int | None
    note: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    deadline_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    source: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    refund_attempts: int = 0


@dataclass(frozen=True)
class StepRecord:
    step: str
    status: str  # running | done | failed
    result: dict[str, Any]
    attempts: int
    last_error: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class OrderRecord:
    """A ComputeStacks order an onboarding placed (one per unit bought)."""

    order_id: str
    session_id: str
    unit: int
    cs_user_id: int
    project_name: str
    status: str
    project_id: int | None
    """The customer's project: set only once the order has completed."""
    placed_at: datetime
    updated_at: datetime
    left_project_id: int | None = None
    """The project a failed (or cancelled, then abandoned) order left behind,
    never the customer's; deleted once ``status`` is ``leftover_deleted``."""

    @property
    def leftover(self) -> int | None:
        """The project this order left behind that is still to be deleted."""
        return None if self.status == LEFTOVER_DELETED else self.left_project_id


_FIELDS = list(Onboarding.__dataclass_fields__)


def _ready() -> Any:
    """Whether the onboarding's projects became ready (correlated EXISTS)."""
    return (
        select(onboarding_steps.c.session_id)
        .where(
            onboarding_steps.c.session_id == onboardings.c.session_id,
            onboarding_steps.c.step == READY_STEP,
            onboarding_steps.c.status == "done",
        )
        .exists()
    )


def _onboarding(row: RowMapping) -> Onboarding:
    return Onboarding(**{name: row[name] for name in _FIELDS})


def _order(row: RowMapping) -> OrderRecord:
    """The row's ``project_id`` is the customer's only when the order completed;
    otherwise it is what the order left behind (see the module docstring)."""
    fields = dict(row)
    project_id = fields.pop("project_id")
    completed = fields["status"] == COMPLETED
    return OrderRecord(
        **fields,
        project_id=project_id if completed else None,
        left_project_id=None if completed else project_id,
    )


def _step(row: RowMapping) -> StepRecord:
    return StepRecord(
        step=row["step"],
        status=row["status"],
        result=json.loads(row["result"]) if row["result"] else {},
        attempts=row["attempts"],
        last_error=row["last_error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


class OnboardingStore:
    """Reads and writes of onboardings and their steps; each method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    # -- creating and reopening -----------------------------------------------------

    def start(self, session_id: str, *, livemode: bool, source: str) -> bool:
        """Create the onboarding for a session if there is none. Returns True if
        created; an existing one (in any status) is left as it is."""
        now = self._ledger.now()
        row = {
            "session_id": session_id,
            "status": "pending",
            "livemode": livemode,
            "source": source[:64],
            "created_at": now,
            "updated_at": now,
        }
        with self._ledger.write() as connection:
            created = connection.execute(
                insert_ignoring_conflicts(connection, onboardings)
                .values(row)
                .returning(onboardings.c.session_id)
            ).first()
            return created is not None

    def reopen(self, session_id: str, statuses: Sequence[str], note: str) -> bool:
        """Make an onboarding in one of ``statuses`` due now. False if it is not."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            return _changed(
                connection,
                update(onboardings)
                .where(onboardings.c.session_id == session_id, onboardings.c.status.in_(statuses))
                .values(status="pending", next_attempt_at=None, note=note, updated_at=now),
            )

    def close(self, session_id: str, *, livemode: bool, reason: str, source: str) -> str:
        """Close an onboarding that has provisioned nothing (payment failed,
        session expired), creating it closed if need be. Returns the status it
        ends in: ``closed``, or whatever it already was if it had gone further."""
        self.start(session_id, livemode=livemode, source=source)
        now = self._ledger.now()
        with self._ledger.write() as connection:
            connection.execute(
                update(onboardings)
                .where(
                    onboardings.c.session_id == session_id,
                    onboardings.c.status.in_(_CLOSABLE),
                    onboardings.c.cs_user_id.is_(None),
                )
                .values(
                    status="closed",
                    note=reason,
                    next_attempt_at=None,
                    finished_at=now,
                    updated_at=now,
                )
            )
            status: str = connection.execute(
                select(onboardings.c.status).where(onboardings.c.session_id == session_id)
            ).scalar_one()
            return status

    def refund_failed(self, session_id: str, reason: str) -> bool:
        """Mark a ``refunded`` onboarding ``refund_failed``: Stripe says its
        refund did not go through. True if it was changed (once)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            return _changed(
                connection,
                update(onboardings)
                .where(onboardings.c.session_id == session_id, onboardings.c.status == "refunded")
                .values(status="refund_failed", note=reason, last_error=reason, updated_at=now),
            )

    def requeue(
        self,
        session_ids: Sequence[str],
        *,
        statuses: Sequence[str] = (),
        forget_steps: Sequence[str] = (),
        note: str,
    ) -> list[str]:
        """Make onboardings due now with fresh attempts, unless a worker holds
        them; with ``statuses``, only those still in one of them (what an
        operator listed may have moved on meanwhile). Finished steps stay
        checkpointed, except ``forget_steps``, which run again. A stuck one gets
        a new order deadline. Returns the session ids requeued."""
        now = self._ledger.now()
        query = update(onboardings).where(
            onboardings.c.session_id.in_(session_ids),
            or_(onboardings.c.status != "running", onboardings.c.lease_expires_at < now),
            onboardings.c.status.not_in(_NEVER_REQUEUED),  # refunded: never provisioned
        )
        if statuses:
            query = query.where(onboardings.c.status.in_(statuses))
        with self._ledger.write() as connection:
            ids = list(
                connection.execute(
                    query.values(
                        status="pending",
                        next_attempt_at=None,
                        deadline_at=None,
                        lease_owner=None,
                        lease_expires_at=None,
                        last_error=None,
                        note=note,
                        updated_at=now,
                    ).returning(onboardings.c.session_id)
                ).scalars()
            )
            if not ids:
                return ids
            connection.execute(
                delete(onboarding_steps).where(
                    onboarding_steps.c.session_id.in_(ids),
                    onboarding_steps.c.step.in_(forget_steps),
                )
            )
            if "place_order" in forget_steps:
                # Orders that never completed are placed again; their records
                # stay (abandoned) so that no retry adopts them, with the project
                # a failed one left, which place_order deletes before ordering.
                connection.execute(
                    update(orders)
                    .where(
                        orders.c.session_id.in_(ids),
                        orders.c.status.not_in((COMPLETED, *GIVEN_UP)),
                    )
                    .values(status=ABANDONED, updated_at=now)
                )
            connection.execute(
                update(onboarding_steps)
                .where(onboarding_steps.c.session_id.in_(ids), onboarding_steps.c.status != "done")
                .values(attempts=0, last_error=None)
            )
            return ids

    # -- reading ------------------------------------------------------------------------

    def get(self, session_id: str) -> Onboarding | None:
        with self._ledger.read() as connection:
            row = (
                connection.execute(
                    select(onboardings).where(onboardings.c.session_id == session_id)
                )
                .mappings()
                .first()
            )
            return _onboarding(row) if row else None

    def steps(self, session_id: str) -> list[StepRecord]:
        """The steps started so far, in the order they ran."""
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(onboarding_steps)
                .where(onboarding_steps.c.session_id == session_id)
                .order_by(onboarding_steps.c.started_at, onboarding_steps.c.step)
            ).mappings()
            return [_step(row) for row in rows]

    def plans_bought(self, cs_user_id: int) -> list[str]:
        """The names of the plans a ComputeStacks user's finished onboardings
        provisioned (from their ``resolve_plan`` checkpoints), each once."""
        with self._ledger.read() as connection:
            results = connection.execute(
                select(onboarding_steps.c.result)
                .join(onboardings, onboardings.c.session_id == onboarding_steps.c.session_id)
                .where(
                    onboardings.c.cs_user_id == cs_user_id,
                    onboardings.c.status == "done",
                    onboarding_steps.c.step == "resolve_plan",
                )
                .order_by(onboardings.c.created_at)
            ).scalars()
            names = [
                unit.get("plan")
                for result in results
                for unit in (json.loads(result or "{}").get("units") or [])
            ]
        return list(dict.fromkeys(name for name in names if isinstance(name, str)))

    def find(
        self,
        *,
        statuses: Sequence[str] = (),
        customer_id: str | None = None,
        subscription_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Onboarding]:
        """Onboardings matching every given filter, newest first."""
        query = select(onboardings)
        if statuses:
            query = query.where(onboardings.c.status.in_(statuses))
        if customer_id:
            query = query.where(onboardings.c.customer_id == customer_id)
        if subscription_id:
            query = query.where(onboardings.c.subscription_id == subscription_id)
        if since:
            query = query.where(onboardings.c.created_at >= since)
        if until:
            query = query.where(onboardings.c.created_at < until)
        query = query.order_by(onboardings.c.created_at.desc(), onboardings.c.session_id).limit(
            limit
        )
        with self._ledger.read() as connection:
            return [_onboarding(row) for row in connection.execute(query).mappings()]

    def customers(self, *, after: str | None = None, limit: int = 100) -> list[str]:
        """The Stripe customers with an onboarding, in id order, after ``after``
        (for walking them all in pages)."""
        query = select(onboardings.c.customer_id).where(onboardings.c.customer_id.is_not(None))
        if after is not None:
            query = query.where(onboardings.c.customer_id > after)
        query = query.group_by(onboardings.c.customer_id).order_by(onboardings.c.customer_id)
        with self._ledger.read() as connection:
            return list(connection.execute(query.limit(limit)).scalars())

    def counts(self) -> dict[str, int]:
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(onboardings.c.status, func.count()).group_by(onboardings.c.status)
            )
            return dict(rows.all())

    def oldest_in_progress(self) -> datetime | None:
        """When the oldest onboarding csonboard is still working on was created
        (one indexed aggregate; None when there is none). ``awaiting_payment``
        waits on the buyer's bank, legitimately for days, so it is not counted;
        ``dead`` and ``stuck`` are dead letters, counted elsewhere."""
        with self._ledger.read() as connection:
            oldest: datetime | None = connection.execute(
                select(func.min(onboardings.c.created_at)).where(
                    onboardings.c.status.in_(IN_PROGRESS)
                )
            ).scalar_one()
            return oldest

    def due(self, limit: int = 500) -> list[str]:
        """Sessions a worker should pick up now, oldest first (for the sweep)."""
        now = self._ledger.now()
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(onboardings.c.session_id)
                .where(_due(now))
                .order_by(onboardings.c.created_at)
                .limit(limit)
            )
            return list(rows.scalars())

    def refund_due(self, older_than: datetime | None, limit: int = 100) -> list[str]:
        """Sessions bought before ``older_than`` that a person is needed for
        (dead or stuck) and whose projects never became ready, and refunds
        under way whose next attempt is due (also with ``older_than`` None,
        when nothing is refunded on its own): what provision-or-refund refunds
        now, oldest first. One still being tried (or replayed) is not among
        them."""
        now = self._ledger.now()
        free = or_(onboardings.c.lease_expires_at.is_(None), onboardings.c.lease_expires_at < now)
        whose = (
            onboardings.c.status == "refunding"
            if older_than is None
            else and_(
                onboardings.c.status.in_(REFUNDED_BY_THE_WORKER),
                onboardings.c.created_at <= older_than,
            )
        )
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(onboardings.c.session_id)
                .where(
                    whose,
                    free,
                    or_(
                        onboardings.c.next_attempt_at.is_(None),
                        onboardings.c.next_attempt_at <= now,
                    ),
                    ~_ready(),
                )
                .order_by(onboardings.c.created_at)
                .limit(limit)
            )
            return list(rows.scalars())

    # -- working under a lease --------------------------------------------------------------

    def claim_refund(
        self,
        session_id: str,
        owner: str,
        lease_seconds: float,
        statuses: Sequence[str] = REFUNDABLE,
    ) -> Onboarding | None:
        """Take the lease to refund an onboarding in one of ``statuses`` whose
        projects never became ready (status ``refunding`` from now on: no
        worker, replay or retry runs it again), counting the attempt. None
        when it is not refundable (any more) or someone holds it."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            row = (
                connection.execute(
                    update(onboardings)
                    .where(
                        onboardings.c.session_id == session_id,
                        onboardings.c.status.in_([s for s in statuses if s in REFUNDABLE]),
                        or_(
                            onboardings.c.lease_expires_at.is_(None),
                            onboardings.c.lease_expires_at < now,
                        ),
                        ~_ready(),
                    )
                    .values(
                        status="refunding",
                        lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        next_attempt_at=None,
                        refund_attempts=onboardings.c.refund_attempts + 1,
                        updated_at=now,
                    )
                    .returning(*onboardings.c)
                )
                .mappings()
                .first()
            )
            return _onboarding(row) if row else None

    def claim(self, session_id: str, owner: str, lease_seconds: float) -> Onboarding | None:
        """Take the lease if the onboarding is due; None otherwise. Exactly one
        of any number of racing workers, replays and status pages wins."""
        with self._ledger.write() as connection:
            row = leases.claim(
                connection,
                onboardings.c.session_id == session_id,
                onboardings,
                owner=owner,
                now=self._ledger.now(),
                lease_seconds=lease_seconds,
                waiting=_DUE,
                running="running",
            )
            return _onboarding(row) if row else None

    def begin_step(
        self, session_id: str, owner: str, step: str, lease_seconds: float
    ) -> int | None:
        """Record that ``step`` is being tried and renew the lease. Returns the
        number of tries so far, this one included; None if the lease is lost."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._renew(connection, session_id, owner, lease_seconds, step=step):
                return None
            tries = connection.execute(
                update(onboarding_steps)
                .where(onboarding_steps.c.session_id == session_id, onboarding_steps.c.step == step)
                .values(status="running", attempts=onboarding_steps.c.attempts + 1)
                .returning(onboarding_steps.c.attempts)
            ).scalar_one_or_none()
            if tries is None:
                connection.execute(
                    onboarding_steps.insert().values(
                        session_id=session_id,
                        step=step,
                        status="running",
                        attempts=1,
                        started_at=now,
                    )
                )
            return int(tries or 1)

    def checkpoint(
        self,
        session_id: str,
        owner: str,
        step: str,
        result: dict[str, Any],
        *,
        done: bool,
        lease_seconds: float,
        **fields: Any,
    ) -> bool:
        """Save ``step``'s result -- final when ``done`` -- plus onboarding ``fields``
        (customer_id, cs_user_id, ...), and renew the lease. False if the lease is lost."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._renew(connection, session_id, owner, lease_seconds, **fields):
                return False
            values: dict[str, Any] = {"result": json.dumps(result, sort_keys=True)}
            if done:
                values.update(status="done", finished_at=now, last_error=None)
            connection.execute(
                update(onboarding_steps)
                .where(onboarding_steps.c.session_id == session_id, onboarding_steps.c.step == step)
                .values(**values)
            )
            return True

    def release(
        self,
        session_id: str,
        owner: str,
        *,
        status: str,
        step: str | None = None,
        step_status: str | None = None,
        error: str | None = None,
        note: str | None = None,
        next_attempt_at: datetime | None = None,
        uncount_try: bool = False,
        **fields: Any,
    ) -> bool:
        """Give up the lease, leaving the onboarding in ``status``. For the
        current ``step``: its status, its error, and with ``uncount_try`` the
        try is not counted (a deliberate wait is not a failure)."""
        now = self._ledger.now()
        terminal = status in ("done", "closed", "dead", "stuck", *REFUND_ENDED)
        with self._ledger.write() as connection:
            released = _changed(
                connection,
                update(onboardings)
                .where(onboardings.c.session_id == session_id, onboardings.c.lease_owner == owner)
                .values(
                    status=status,
                    last_error=error,
                    note=note,
                    next_attempt_at=next_attempt_at,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                    **({"finished_at": now} if terminal else {}),
                    **fields,
                ),
            )
            if released and step:
                values: dict[str, Any] = {"last_error": error}
                if step_status:
                    values["status"] = step_status
                if uncount_try:
                    values["attempts"] = onboarding_steps.c.attempts - 1
                connection.execute(
                    update(onboarding_steps)
                    .where(
                        onboarding_steps.c.session_id == session_id, onboarding_steps.c.step == step
                    )
                    .values(**values)
                )
            return released

    # -- orders ---------------------------------------------------------------------------

    def record_order(
        self,
        session_id: str,
        owner: str,
        *,
        unit: int,
        order_id: str,
        cs_user_id: int,
        project_name: str,
        status: str,
        lease_seconds: float,
    ) -> bool:
        """Record a placed order under the lease (at once: nothing else knows it)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._renew(connection, session_id, owner, lease_seconds):
                return False
            connection.execute(
                orders.insert().values(
                    order_id=order_id,
                    session_id=session_id,
                    unit=unit,
                    cs_user_id=cs_user_id,
                    project_name=project_name,
                    status=status,
                    placed_at=now,
                    updated_at=now,
                )
            )
            return True

    def update_order(
        self,
        session_id: str,
        owner: str,
        order_id: str,
        *,
        status: str,
        project_id: int | None,
        lease_seconds: float,
    ) -> bool:
        """Record what ComputeStacks says of an order: ``completed`` with the
        customer's project, or ``failed``/``cancelled`` with the project it left
        behind (None if none). False if the lease is lost."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._renew(connection, session_id, owner, lease_seconds):
                return False
            connection.execute(
                update(orders)
                .where(orders.c.order_id == order_id)
                .values(status=status, project_id=project_id, updated_at=now)
            )
            return True

    def order_ended(self, order_id: str, status: str, left_project_id: int | None) -> None:
        """Record an order ComputeStacks says ended without completing
        (``failed`` or ``cancelled``), with the project it left, before a
        replay abandons it (no lease: nothing else works on a dead or stuck
        onboarding, and an order that ended cannot change again)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            connection.execute(
                update(orders)
                .where(
                    orders.c.order_id == order_id, orders.c.status.not_in((COMPLETED, *GIVEN_UP))
                )
                .values(status=status, project_id=left_project_id, updated_at=now)
            )

    def leftover_deleted(
        self, session_id: str, owner: str, order_id: str, *, lease_seconds: float
    ) -> bool:
        """Record that the project an abandoned order left was deleted (its id
        stays, for the record). False if the lease is lost."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._renew(connection, session_id, owner, lease_seconds):
                return False
            connection.execute(
                update(orders)
                .where(
                    orders.c.order_id == order_id,
                    orders.c.session_id == session_id,
                    orders.c.status == ABANDONED,
                )
                .values(status=LEFTOVER_DELETED, updated_at=now)
            )
            return True

    def completed_order_of_project(self, project_id: int) -> str | None:
        """The completed order (of any onboarding) whose project this is, if any:
        such a project is a customer's and is never deleted as a leftover."""
        with self._ledger.read() as connection:
            found: str | None = connection.execute(
                select(orders.c.order_id)
                .where(orders.c.project_id == project_id, orders.c.status == COMPLETED)
                .limit(1)
            ).scalar_one_or_none()
            return found

    def orders(self, session_id: str, *, abandoned: bool = False) -> list[OrderRecord]:
        """The orders an onboarding placed, by unit; with ``abandoned``, also
        those a replay gave up on (``abandoned``, ``leftover_deleted``)."""
        query = select(orders).where(orders.c.session_id == session_id)
        if not abandoned:
            query = query.where(orders.c.status.not_in(GIVEN_UP))
        with self._ledger.read() as connection:
            rows = connection.execute(query.order_by(orders.c.placed_at, orders.c.unit)).mappings()
            return [_order(row) for row in rows]

    def order_ids_of_user(self, cs_user_id: int) -> set[str]:
        """Every order recorded for a ComputeStacks user, by any onboarding."""
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(orders.c.order_id).where(orders.c.cs_user_id == cs_user_id)
            )
            return set(rows.scalars())

    def projects_of_customer(self, customer_id: str) -> list[int]:
        """ComputeStacks project ids of every completed order of a Stripe customer
        (never a project a failed order left behind)."""
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(orders.c.project_id)
                .join(onboardings, onboardings.c.session_id == orders.c.session_id)
                .where(
                    onboardings.c.customer_id == customer_id,
                    orders.c.status == COMPLETED,
                    orders.c.project_id.is_not(None),
                )
                .order_by(orders.c.placed_at, orders.c.unit)
            )
            return [int(project_id) for project_id in rows.scalars()]

    def _renew(
        self,
        connection: Connection,
        session_id: str,
        owner: str,
        lease_seconds: float,
        **fields: Any,
    ) -> bool:
        now = self._ledger.now()
        return _changed(
            connection,
            update(onboardings)
            .where(
                onboardings.c.session_id == session_id,
                onboardings.c.lease_owner == owner,
                onboardings.c.lease_expires_at >= now,
            )
            .values(
                lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now, **fields
            ),
        )


def _changed(connection: Connection, statement: Any) -> bool:
    return connection.execute(statement.returning(onboardings.c.session_id)).first() is not None


def _due(now: datetime) -> ColumnElement[bool]:
    return leases.due(onboardings, now, _DUE, "running")
