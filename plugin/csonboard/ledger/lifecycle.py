"""Subscription lifecycle in the ledger: per-customer work under a lease, the
facts learnt about each subscription, and the actions taken, declined or
scheduled (see ``csonboard.lifecycle``).

Account statuses: ``pending`` (due), ``running`` (leased), ``waiting`` (re-check
scheduled at ``next_attempt_at``), ``failed`` (retry scheduled), ``idle``
(nothing scheduled), ``waiting_onboarding`` (until an onboarding of this
customer finishes), ``dead`` (needs a person).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, insert, literal, null, select, update
from sqlalchemy.engine import Connection, RowMapping

from csonboard.ledger import leases
from csonboard.ledger.schema import accounts, lifecycle_actions, subscriptions
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger

_WAITING = ("pending", "waiting", "failed")


@dataclass(frozen=True)
class Account:
    customer_id: str
    cs_user_id: int | None
    status: str
    attempts: int
    note: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    suspended_reason: str | None
    suspended_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SubscriptionFacts:
    subscription_id: str
    customer_id: str
    stripe_status: str | None
    price_ids: tuple[str, ...] | None
    past_due_since: datetime | None
    wants_suspension: bool
    reason: str | None
    terminated_at: datetime | None
    ours: bool | None
    last_event_at: datetime | None
    ended_seen_at: datetime | None = None


@dataclass(frozen=True)
class LifecycleAction:
    id: int
    customer_id: str
    subscription_id: str | None
    cs_user_id: int | None
    action: str  # suspend | unsuspend | terminate | resize | plan_change | delete_user
    status: str  # scheduled | done | cancelled | declined | needs_operator | failed
    reason: str
    due_at: datetime | None
    created_at: datetime
    done_at: datetime | None


def _account(row: RowMapping) -> Account:
    return Account(**{name: row[name] for name in Account.__dataclass_fields__})


def _facts(row: RowMapping) -> SubscriptionFacts:
    values = {name: row[name] for name in SubscriptionFacts.__dataclass_fields__}
    values["price_ids"] = tuple(json.loads(row["price_ids"])) if row["price_ids"] else None
    return SubscriptionFacts(**values)


def _action(row: RowMapping) -> LifecycleAction:
    return LifecycleAction(**{name: row[name] for name in LifecycleAction.__dataclass_fields__})


class LifecycleStore:
    """Reads and writes of lifecycle rows; each method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    # -- from events --------------------------------------------------------------------

    def note_event(self, subscription_id: str, customer_id: str, event_created: datetime) -> bool:
        """Record that an event about a subscription arrived and make its
        customer's account due. Returns False -- changing nothing -- when the
        event is stale: an event created later has already been noted."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            _insert_ignore(
                connection,
                subscriptions,
                subscription_id=subscription_id,
                customer_id=customer_id,
                wants_suspension=False,
                created_at=now,
                updated_at=now,
            )
            fresh = connection.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.subscription_id == subscription_id,
                    (subscriptions.c.last_event_at.is_(None))
                    | (subscriptions.c.last_event_at <= event_created),
                )
                .values(last_event_at=event_created, updated_at=now)
                .returning(subscriptions.c.subscription_id)
            ).first()
            if fresh is None:
                return False
            self._make_due(connection, customer_id, now, from_statuses=None)
            return True

    def touch(self, customer_id: str) -> None:
        """Make a customer's account due now, creating it if needed (news about
        one of their purchases that is not a subscription's)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            self._make_due(connection, customer_id, now, from_statuses=None)

    def wake(self, customer_id: str) -> bool:
        """Make a customer's account due now if it exists and is not running
        (an onboarding of theirs finished). True if it was woken."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            return self._make_due(
                connection,
                customer_id,
                now,
                from_statuses=("waiting_onboarding", "idle", "waiting"),
                create=False,
            )

    def _make_due(
        self,
        connection: Connection,
        customer_id: str,
        now: datetime,
        *,
        from_statuses: Sequence[str] | None,
        create: bool = True,
    ) -> bool:
        if create:
            _insert_ignore(
                connection,
                accounts,
                customer_id=customer_id,
                status="pending",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        query = update(accounts).where(
            accounts.c.customer_id == customer_id, accounts.c.status != "running"
        )
        if from_statuses is not None:
            query = query.where(accounts.c.status.in_(from_statuses))
        changed = connection.execute(
            query.values(status="pending", next_attempt_at=None, updated_at=now).returning(
                accounts.c.customer_id
            )
        ).first()
        if changed is None:
            # A worker is on it: its pass may have read Stripe before this news,
            # so it must not release the account as settled (see release).
            connection.execute(
                update(accounts)
                .where(accounts.c.customer_id == customer_id, accounts.c.status == "running")
                .values(dirty=True)
            )
        return changed is not None

    # -- reading ------------------------------------------------------------------------

    def account(self, customer_id: str) -> Account | None:
        with self._ledger.read() as connection:
            row = (
                connection.execute(select(accounts).where(accounts.c.customer_id == customer_id))
                .mappings()
                .first()
            )
            return _account(row) if row else None

    def subscriptions(self, customer_id: str) -> list[SubscriptionFacts]:
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(subscriptions)
                .where(subscriptions.c.customer_id == customer_id)
                .order_by(subscriptions.c.created_at, subscriptions.c.subscription_id)
            ).mappings()
            return [_facts(row) for row in rows]

    def subscription(self, subscription_id: str) -> SubscriptionFacts | None:
        with self._ledger.read() as connection:
            row = (
                connection.execute(
                    select(subscriptions).where(subscriptions.c.subscription_id == subscription_id)
                )
                .mappings()
                .first()
            )
            return _facts(row) if row else None

    def actions(
        self,
        *,
        customer_id: str | None = None,
        subscription_id: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 100,
    ) -> list[LifecycleAction]:
        """Actions matching every given filter: scheduled ones by due time first,
        then the rest newest first."""
        query = select(lifecycle_actions)
        if customer_id:
            query = query.where(lifecycle_actions.c.customer_id == customer_id)
        if subscription_id:
            query = query.where(lifecycle_actions.c.subscription_id == subscription_id)
        if statuses:
            query = query.where(lifecycle_actions.c.status.in_(statuses))
        query = query.order_by(
            (lifecycle_actions.c.status != "scheduled"),
            lifecycle_actions.c.due_at,
            lifecycle_actions.c.created_at.desc(),
            lifecycle_actions.c.id.desc(),
        ).limit(limit)
        with self._ledger.read() as connection:
            return [_action(row) for row in connection.execute(query).mappings()]

    def find(
        self,
        *,
        statuses: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Account]:
        """Accounts matching every given filter, most recently changed first."""
        query = select(accounts)
        if statuses:
            query = query.where(accounts.c.status.in_(statuses))
        if since:
            query = query.where(accounts.c.updated_at >= since)
        if until:
            query = query.where(accounts.c.updated_at < until)
        query = query.order_by(accounts.c.updated_at.desc(), accounts.c.customer_id).limit(limit)
        with self._ledger.read() as connection:
            return [_account(row) for row in connection.execute(query).mappings()]

    def requeue(self, customer_ids: Sequence[str], *, statuses: Sequence[str] = ()) -> list[str]:
        """Make accounts due now with fresh attempts, unless a worker holds them;
        with ``statuses``, only those still in one of them. Returns the ids requeued."""
        now = self._ledger.now()
        query = update(accounts).where(
            accounts.c.customer_id.in_(customer_ids),
            (accounts.c.status != "running") | (accounts.c.lease_expires_at < now),
        )
        if statuses:
            query = query.where(accounts.c.status.in_(statuses))
        with self._ledger.write() as connection:
            rows = connection.execute(
                query.values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                ).returning(accounts.c.customer_id)
            )
            return list(rows.scalars())

    def counts(self) -> dict[str, int]:
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(accounts.c.status, func.count()).group_by(accounts.c.status)
            )
            return dict(rows.all())

    def due(self, limit: int = 500) -> list[str]:
        now = self._ledger.now()
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(accounts.c.customer_id)
                .where(leases.due(accounts, now, _WAITING, "running"))
                .order_by(accounts.c.updated_at)
                .limit(limit)
            )
            return list(rows.scalars())

    # -- working under the lease ----------------------------------------------------------

    def claim(self, customer_id: str, owner: str, lease_seconds: float) -> Account | None:
        now = self._ledger.now()
        with self._ledger.write() as connection:
            row = leases.claim(
                connection,
                accounts.c.customer_id == customer_id,
                accounts,
                owner=owner,
                now=now,
                lease_seconds=lease_seconds,
                waiting=_WAITING,
                running="running",
            )
            if row is None:
                return None
            connection.execute(
                update(accounts).where(accounts.c.customer_id == customer_id).values(dirty=False)
            )
            return _account(row)

    def hold(self, customer_id: str, owner: str, lease_seconds: float) -> Account | None:
        """Take the account's lease whatever its status (due or not; the account
        is made if the customer has none), unless a worker holds it now: for
        repairs outside the lifecycle's schedule (``csonboard drift --fix``).
        Release it ``pending`` so the lifecycle re-decides right after."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            _insert_ignore(
                connection,
                accounts,
                customer_id=customer_id,
                status="pending",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            row = (
                connection.execute(
                    update(accounts)
                    .where(
                        accounts.c.customer_id == customer_id,
                        (accounts.c.status != "running") | (accounts.c.lease_expires_at < now),
                    )
                    .values(
                        status="running",
                        lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        updated_at=now,
                    )
                    .returning(*accounts.c)
                )
                .mappings()
                .first()
            )
            return _account(row) if row else None

    def follow(self, subscription_id: str, customer_id: str) -> None:
        """Make sure the lifecycle follows this subscription (a purchase's, whose
        events were all lost): no effect when it already does."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            _insert_ignore(
                connection,
                subscriptions,
                subscription_id=subscription_id,
                customer_id=customer_id,
                wants_suspension=False,
                created_at=now,
                updated_at=now,
            )

    def save_facts(self, owner: str, facts: SubscriptionFacts) -> bool:
        """Store what was learnt about a subscription (under the account's lease)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._held(connection, facts.customer_id, owner, now):
                return False
            connection.execute(
                update(subscriptions)
                .where(subscriptions.c.subscription_id == facts.subscription_id)
                .values(
                    stripe_status=facts.stripe_status,
                    price_ids=json.dumps(list(facts.price_ids))
                    if facts.price_ids is not None
                    else None,
                    past_due_since=facts.past_due_since,
                    ended_seen_at=facts.ended_seen_at,
                    wants_suspension=facts.wants_suspension,
                    reason=facts.reason,
                    terminated_at=facts.terminated_at,
                    ours=facts.ours,
                    updated_at=now,
                )
            )
            return True

    def record(
        self,
        owner: str,
        customer_id: str,
        *,
        action: str,
        status: str,
        reason: str,
        subscription_id: str | None = None,
        cs_user_id: int | None = None,
        due_at: datetime | None = None,
    ) -> bool:
        """Add an action to the customer's record (under the account's lease)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._held(connection, customer_id, owner, now):
                return False
            connection.execute(
                insert(lifecycle_actions).values(
                    customer_id=customer_id,
                    subscription_id=subscription_id,
                    cs_user_id=cs_user_id,
                    action=action,
                    status=status,
                    reason=reason,
                    due_at=due_at,
                    created_at=now,
                    done_at=None if status == "scheduled" else now,
                )
            )
            return True

    def reschedule(
        self,
        owner: str,
        customer_id: str,
        subscription_id: str,
        planned: Sequence[tuple[str, datetime, str]],
        *,
        cs_user_id: int | None,
        settled: str,
    ) -> bool:
        """Make ``planned`` (action, due, reason) the subscription's scheduled
        actions: those still planned stay, new ones are added, the rest are
        closed as ``cancelled`` -- or, when their time has come, as ``done`` --
        with ``settled`` appended to their reason."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._held(connection, customer_id, owner, now):
                return False
            existing = connection.execute(
                select(lifecycle_actions).where(
                    lifecycle_actions.c.subscription_id == subscription_id,
                    lifecycle_actions.c.status == "scheduled",
                )
            ).mappings()
            keep = set()
            for row in existing:
                key = (row["action"], row["due_at"])
                if key in {(a, d) for a, d, _ in planned}:
                    keep.add(key)
                    continue
                ended = row["due_at"] is not None and row["due_at"] <= now
                connection.execute(
                    update(lifecycle_actions)
                    .where(lifecycle_actions.c.id == row["id"])
                    .values(
                        status="done" if ended else "cancelled",
                        done_at=now,
                        reason=f"{row['reason']}; {settled}",
                    )
                )
            for action, due_at, reason in planned:
                if (action, due_at) not in keep:
                    connection.execute(
                        insert(lifecycle_actions).values(
                            customer_id=customer_id,
                            subscription_id=subscription_id,
                            cs_user_id=cs_user_id,
                            action=action,
                            status="scheduled",
                            reason=reason,
                            due_at=due_at,
                            created_at=now,
                        )
                    )
            return True

    def lifted_for_purchase(
        self, customer_id: str, session_id: str, cs_user_id: int, was: str
    ) -> None:
        """A new purchase lifted csonboard's suspension (``was``) before ordering:
        forget it, record it, and make the customer due (a pass that is running
        runs again), all in one transaction. Made without the account's lease:
        the lifecycle decides again from what it finds afterwards."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            connection.execute(
                update(accounts)
                .where(accounts.c.customer_id == customer_id)
                .values(suspended_reason=None, suspended_at=None, updated_at=now)
            )
            connection.execute(
                insert(lifecycle_actions).values(
                    customer_id=customer_id,
                    subscription_id=None,
                    cs_user_id=cs_user_id,
                    action="unsuspend",
                    status="done",
                    reason=f"a new purchase ({session_id}) lifted csonboard's suspension "
                    f"before ordering (it was: {was})",
                    created_at=now,
                    done_at=now,
                )
            )
            self._make_due(connection, customer_id, now, from_statuses=None, create=False)

    def set_suspension(self, owner: str, customer_id: str, reason: str | None) -> bool:
        """Remember that csonboard suspended the customer's user (``reason``), or
        that it no longer holds a suspension (None)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._held(connection, customer_id, owner, now):
                return False
            connection.execute(
                update(accounts)
                .where(accounts.c.customer_id == customer_id)
                .values(
                    suspended_reason=reason, suspended_at=now if reason else None, updated_at=now
                )
            )
            return True

    def release(
        self,
        customer_id: str,
        owner: str,
        *,
        status: str,
        note: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        attempts: int = 0,
        cs_user_id: int | None = None,
    ) -> str | None:
        """Give up the lease, leaving the account in ``status``; or ``pending``
        (due now) if news arrived during the pass, unless it failed. Returns
        the status it was left in, or None when ``owner`` no longer held it."""
        now = self._ledger.now()
        values: dict[str, Any] = {
            "status": status,
            "note": note,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
            "attempts": attempts,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if cs_user_id is not None:
            values["cs_user_id"] = cs_user_id
        if status != "failed":  # a failed pass runs again anyway
            # News arrived during the pass (``dirty``): due again at once. Decided
            # in the UPDATE itself, so news that lands meanwhile is never missed.
            values["status"] = case((accounts.c.dirty, "pending"), else_=status)
            values["next_attempt_at"] = case(
                (accounts.c.dirty, null()),
                else_=literal(next_attempt_at, accounts.c.next_attempt_at.type),
            )
        with self._ledger.write() as connection:
            left: str | None = connection.execute(
                update(accounts)
                .where(accounts.c.customer_id == customer_id, accounts.c.lease_owner == owner)
                .values(**values)
                .returning(accounts.c.status)
            ).scalar()
            return left

    def _held(self, connection: Connection, customer_id: str, owner: str, now: datetime) -> bool:
        row = connection.execute(
            select(accounts.c.customer_id).where(
                leases.held(accounts, accounts.c.customer_id == customer_id, owner, now)
            )
        ).first()
        return row is not None


def _insert_ignore(connection: Connection, table: Any, **values: Any) -> None:
    connection.execute(insert_ignoring_conflicts(connection, table).values(**values))
