"""SQL the ledger's stores share that differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_ignoring_conflicts(connection: Connection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` into ``table`` in the connection's
    dialect: a row whose key exists is skipped, not an error, so racing writers
    store it once. Add ``.values(...)`` and, to learn what was new, ``.returning(...)``
    (rowcount after ON CONFLICT is unreliable on some drivers; RETURNING is not)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()
