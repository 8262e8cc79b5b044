"""Leases on ledger rows: the rule that one worker at a time works on one thing.

A row is due when it waits in one of its ``waiting`` statuses and its
``next_attempt_at`` is empty or reached, or when it is ``running`` under a lease
that has expired (its worker died). Claiming is one conditional UPDATE, so of
any number of racing workers exactly one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, update
from sqlalchemy.engine import Connection, RowMapping


def due(table: Table, now: datetime, waiting: Sequence[str], running: str) -> ColumnElement[bool]:
    """Rows a worker should pick up at ``now``."""
    ready = and_(
        table.c.status.in_(waiting),
        or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
    )
    abandoned = and_(table.c.status == running, table.c.lease_expires_at < now)
    return or_(ready, abandoned)


def claim(
    connection: Connection,
    key: ColumnElement[bool],
    table: Table,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    waiting: Sequence[str],
    running: str,
    **values: Any,
) -> RowMapping | None:
    """Take the lease on the row matching ``key`` if it is due; its new state, or None."""
    return (
        connection.execute(
            update(table)
            .where(key, due(table, now, waiting, running))
            .values(
                status=running,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                updated_at=now,
                **values,
            )
            .returning(*table.c)
        )
        .mappings()
        .first()
    )


def held(table: Table, key: ColumnElement[bool], owner: str, now: datetime) -> ColumnElement[bool]:
    """``key``'s row, if ``owner`` still holds a live lease on it."""
    return and_(key, table.c.lease_owner == owner, table.c.lease_expires_at >= now)
