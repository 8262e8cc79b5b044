"""The services csonboard stopped because their purchase went out of service.

A row is written (``stopping``) before the stop is asked for and marked
``stopped`` once ComputeStacks accepted it; it is deleted after csonboard has
started the service again. Only services with a row are ever started by
csonboard: one the customer or an operator stopped has none. Every write is
made under the customer's account lease (the lifecycle's unit of work) and
does nothing once that lease has passed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from csonboard.ledger import leases
from csonboard.ledger.schema import accounts, stopped_services
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger


@dataclass(frozen=True)
class StoppedService:
    service_id: int
    customer_id: str
    session_id: str
    project_id: int | None
    status: str  # stopping | stopped
    reason: str
    created_at: datetime
    updated_at: datetime


class PowerStore:
    """Reads and writes of ``stopped_services``; each method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def stopping(
        self,
        owner: str,
        customer_id: str,
        session_id: str,
        service_id: int,
        project_id: int | None,
        reason: str,
    ) -> bool:
        """Record that csonboard is about to stop ``service_id`` (before asking).
        False when the lease on the customer is gone."""
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._holds(connection, customer_id, owner, now):
                return False
            connection.execute(
                insert_ignoring_conflicts(connection, stopped_services).values(
                    service_id=service_id,
                    customer_id=customer_id,
                    session_id=session_id,
                    project_id=project_id,
                    status="stopping",
                    reason=reason,
                    created_at=now,
                    updated_at=now,
                )
            )
            return True

    def stopped(self, owner: str, customer_id: str, service_id: int) -> bool:
        """ComputeStacks took the stop."""
        return self._write(
            owner,
            customer_id,
            update(stopped_services)
            .where(stopped_services.c.service_id == service_id)
            .values(status="stopped", updated_at=self._ledger.now()),
        )

    def started(self, owner: str, customer_id: str, service_ids: Sequence[int]) -> bool:
        """csonboard started these again (or they are gone): forget them."""
        return self._write(
            owner,
            customer_id,
            delete(stopped_services).where(stopped_services.c.service_id.in_(service_ids)),
        )

    def of(
        self, *, customer_id: str | None = None, session_id: str | None = None
    ) -> list[StoppedService]:
        """The services csonboard holds stopped, for a customer or one purchase."""
        query = select(stopped_services).order_by(stopped_services.c.service_id)
        if customer_id:
            query = query.where(stopped_services.c.customer_id == customer_id)
        if session_id:
            query = query.where(stopped_services.c.session_id == session_id)
        with self._ledger.read() as connection:
            return [
                StoppedService(**{k: row[k] for k in StoppedService.__dataclass_fields__})
                for row in connection.execute(query).mappings()
            ]

    def _write(self, owner: str, customer_id: str, statement: Any) -> bool:
        now = self._ledger.now()
        with self._ledger.write() as connection:
            if not self._holds(connection, customer_id, owner, now):
                return False
            connection.execute(statement)
            return True

    def _holds(self, connection: Any, customer_id: str, owner: str, now: datetime) -> bool:
        held = leases.held(accounts, accounts.c.customer_id == customer_id, owner, now)
        return connection.execute(select(accounts.c.customer_id).where(held)).first() is not None
