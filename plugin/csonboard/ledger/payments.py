"""Payments of purchases and what became of their money (see ``csonboard.money``).

One row per Stripe charge, rewritten from Stripe's current state of the charge
each time an event about it arrives, so the order events arrive in does not
matter. ``hold`` is kept with the time it began (``hold_since``) while it stays
the same; ``final_since`` while the money stays gone for good: the purchase's
retention counts from it, and it is cleared if Stripe takes that back (a
refund that failed gives the money back to the merchant).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from csonboard.ledger.schema import payments
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger


@dataclass(frozen=True)
class PaymentRecord:
    charge_id: str
    session_id: str | None
    customer_id: str | None
    amount: int
    amount_refunded: int
    currency: str
    dispute_id: str | None
    dispute_status: str | None
    fraud_warning_id: str | None
    fraud_action: str | None
    hold: str | None
    """``refund`` or ``dispute``: the purchase is out of service for this payment."""
    hold_since: datetime | None
    final_since: datetime | None
    """The money is gone for good (refunded in full, dispute lost): the purchase
    ends after the retention, counted from here."""
    terminated_at: datetime | None
    evidence_submitted_at: datetime | None
    note: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PaymentState:
    """What Stripe says of a charge now, and what it means for its purchase."""

    charge_id: str
    session_id: str | None
    customer_id: str | None
    amount: int
    amount_refunded: int
    currency: str
    dispute_id: str | None
    dispute_status: str | None
    fraud_warning_id: str | None
    hold: str | None
    final: bool
    note: str


class PaymentStore:
    """Reads and writes of ``payments``; each method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def record(self, state: PaymentState) -> tuple[PaymentRecord | None, PaymentRecord]:
        """Write the charge's state; (the row before, the row after)."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            found = self._row(connection, state.charge_id)
            if found is None:
                connection.execute(
                    insert_ignoring_conflicts(connection, payments).values(
                        charge_id=state.charge_id,
                        amount=state.amount,
                        amount_refunded=0,
                        currency=state.currency,
                        created_at=now,
                        updated_at=now,
                    )
                )
            row = found or self._row(connection, state.charge_id)
            assert row is not None
            before = _record(found) if found is not None else None
            same_hold = row["hold"] == state.hold
            values = {
                "session_id": state.session_id or row["session_id"],
                "customer_id": state.customer_id or row["customer_id"],
                "amount": state.amount,
                "amount_refunded": state.amount_refunded,
                "currency": state.currency,
                "dispute_id": state.dispute_id,
                "dispute_status": state.dispute_status,
                "fraud_warning_id": state.fraud_warning_id or row["fraud_warning_id"],
                "hold": state.hold,
                "hold_since": (row["hold_since"] if same_hold else now) if state.hold else None,
                "final_since": (row["final_since"] or now) if state.final else None,
                "note": state.note,
                "updated_at": now,
            }
            after = (
                connection.execute(
                    update(payments)
                    .where(payments.c.charge_id == state.charge_id)
                    .values(**values)
                    .returning(*payments.c)
                )
                .mappings()
                .one()
            )
            return before, _record(after)

    @staticmethod
    def _row(connection: Connection, charge_id: str) -> RowMapping | None:
        return (
            connection.execute(
                select(payments).where(payments.c.charge_id == charge_id).with_for_update()
            )
            .mappings()
            .first()
        )

    def fraud_action(self, charge_id: str, action: str) -> None:
        """What csonboard did about the charge's early fraud warning: ``recorded``
        (kept only if nothing was done before) or ``refunded`` (kept for good)."""
        query = update(payments).where(payments.c.charge_id == charge_id)
        if action != "refunded":
            query = query.where(payments.c.fraud_action.is_(None))
        with self._ledger.write() as connection:
            connection.execute(query.values(fraud_action=action, updated_at=self._ledger.now()))

    def evidence_submitted(self, charge_id: str) -> None:
        now = self._ledger.now()
        with self._ledger.write() as connection:
            connection.execute(
                update(payments)
                .where(payments.c.charge_id == charge_id)
                .values(evidence_submitted_at=now, updated_at=now)
            )

    def terminated(self, session_id: str) -> None:
        """The purchase's projects were deleted for its money."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            connection.execute(
                update(payments)
                .where(payments.c.session_id == session_id, payments.c.terminated_at.is_(None))
                .values(terminated_at=now, updated_at=now)
            )

    def get(self, charge_id: str) -> PaymentRecord | None:
        with self._ledger.read() as connection:
            row = (
                connection.execute(select(payments).where(payments.c.charge_id == charge_id))
                .mappings()
                .first()
            )
            return _record(row) if row else None

    def of_sessions(self, session_ids: Sequence[str]) -> list[PaymentRecord]:
        """The payments of these purchases, oldest first."""
        if not session_ids:
            return []
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(payments)
                .where(payments.c.session_id.in_(list(session_ids)))
                .order_by(payments.c.created_at, payments.c.charge_id)
            ).mappings()
            return [_record(row) for row in rows]

    def reversals(self) -> Counter[tuple[str, str]]:
        """How many payments had their money go back, by (kind, outcome):
        ``refund`` full|partial, ``dispute`` by its status, ``early_fraud_warning``
        by what csonboard did; ``not_a_purchase`` for a charge no purchase made."""
        counts: Counter[tuple[str, str]] = Counter()
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(
                    payments.c.session_id,
                    payments.c.amount,
                    payments.c.amount_refunded,
                    payments.c.dispute_status,
                    payments.c.fraud_action,
                ).where(
                    or_(
                        payments.c.amount_refunded > 0,
                        payments.c.dispute_status.is_not(None),
                        payments.c.fraud_action.is_not(None),
                    )
                )
            ).all()
        for session_id, amount, refunded, dispute, fraud in rows:
            stray = session_id is None
            if refunded:
                extent = "full" if refunded >= amount else "partial"
                counts["refund", "not_a_purchase" if stray else extent] += 1
            if dispute:
                counts["dispute", "not_a_purchase" if stray else dispute] += 1
            if fraud:
                counts["early_fraud_warning", fraud] += 1
        return counts


def _record(row: RowMapping) -> PaymentRecord:
    return PaymentRecord(**{name: row[name] for name in PaymentRecord.__dataclass_fields__})
