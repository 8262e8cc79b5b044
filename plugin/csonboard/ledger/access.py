"""What the buyer did with a purchase once it was ready: status page visits and
control panel sign-ins from it, one row per purchase, kind and day (UTC), with
the first and last time and a count. Kept as evidence for a dispute; no IP
address, browser or other personal data is recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select, update

from csonboard.ledger.schema import buyer_access
from csonboard.ledger.statements import insert_ignoring_conflicts

if TYPE_CHECKING:
    from csonboard.ledger import Ledger

AccessKind = Literal["visit", "sign_in"]


@dataclass(frozen=True)
class Access:
    session_id: str
    kind: str
    day: str
    first_at: datetime
    last_at: datetime
    count: int


class AccessStore:
    """Reads and writes of ``buyer_access``; each method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def record(self, session_id: str, kind: AccessKind) -> None:
        now = self._ledger.now()
        day = f"{now:%Y-%m-%d}"
        with self._ledger.write() as connection:
            inserted = connection.execute(
                insert_ignoring_conflicts(connection, buyer_access)
                .values(
                    session_id=session_id, kind=kind, day=day, first_at=now, last_at=now, count=1
                )
                .returning(buyer_access.c.session_id)
            ).first()
            if inserted is None:
                connection.execute(
                    update(buyer_access)
                    .where(
                        buyer_access.c.session_id == session_id,
                        buyer_access.c.kind == kind,
                        buyer_access.c.day == day,
                    )
                    .values(last_at=now, count=buyer_access.c.count + 1)
                )

    def of_session(self, session_id: str) -> list[Access]:
        """Oldest first."""
        with self._ledger.read() as connection:
            rows = connection.execute(
                select(buyer_access)
                .where(buyer_access.c.session_id == session_id)
                .order_by(buyer_access.c.first_at, buyer_access.c.kind)
            ).mappings()
            return [Access(**{k: row[k] for k in Access.__dataclass_fields__}) for row in rows]
