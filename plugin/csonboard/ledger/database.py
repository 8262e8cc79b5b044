"""Engines and migrations for the ledger.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL``: an
event we answered 200 for has to survive a power cut, because Stripe will not
send it again. Transactions start with ``BEGIN IMMEDIATE`` so that two
processes racing for the same row queue up on the write lock (with a busy
timeout) instead of failing on a stale snapshot; read-only work asks for a
deferred ``BEGIN`` with ``execution_options(read_only=True)``.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from csonboard.errors import ConfigError, LedgerUnavailable

# Seconds a writer waits for SQLite's write lock before giving up.
_BUSY_TIMEOUT = 30
_MIGRATIONS = Path(__file__).parent / "migrations"
# An arbitrary constant: the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x63736F6E  # "cson"


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    """Create the engine for ``url``; SQLite files get their directory created.

    Raises ConfigError for a URL we cannot use (unknown scheme, missing driver).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("database_url", f"not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    try:
        return create_engine(
            url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow
        )
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(
            "database_url", f"driver not installed ({exc}); install csonboard[scale]"
        ) from None


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": _BUSY_TIMEOUT})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; we emit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get("read_only", False)
        if read_only:
            connection.exec_driver_sql("BEGIN")
        else:
            _begin_immediate(connection)

    return engine


def _begin_immediate(connection: Connection) -> None:
    """Take SQLite's write lock, trying again every millisecond or so for up
    to the busy timeout.

    SQLite's own busy handler backs off to sleeps of up to 100 ms, so a writer
    that loses the lock to another process often sleeps long after it was
    freed; with two receiver processes that put hundreds of milliseconds on
    the ack path's p99. Raises SQLAlchemy's error, like any other statement:
    OperationalError "database is locked" when the lock stays taken for the
    whole timeout, and whatever else SQLite says (a closed or corrupt file).
    """
    raw = connection.connection.dbapi_connection
    assert raw is not None  # a connection that is beginning is checked out
    try:
        if not _poll_write_lock(raw, time.monotonic() + _BUSY_TIMEOUT):
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # fails again, as SQLAlchemy's error
    finally:
        with contextlib.suppress(sqlite3.Error):  # a dead handle: keep the first error
            raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT * 1000}")


def _poll_write_lock(raw: Any, deadline: float) -> bool:
    """True once ``BEGIN IMMEDIATE`` succeeded; False at ``deadline`` or on any
    error other than "locked" (the caller reports it)."""
    try:
        raw.execute("PRAGMA busy_timeout=0")
        while time.monotonic() < deadline:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    return False
            time.sleep(random.uniform(0.0005, 0.0015))
    except sqlite3.Error:
        return False
    return False


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> list[str]:
    """Apply pending migrations; returns the revisions applied (oldest first).

    Safe when several processes start at once. On PostgreSQL a
    transaction-scoped advisory lock serialises the upgrades; on SQLite the
    ``BEGIN IMMEDIATE`` write lock does. What is pending is read under the
    lock, so the later processes find the schema current and do nothing.
    """
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            pending = _pending(connection)
            if pending:
                command.upgrade(_alembic_config(connection), "head")
            return pending
    except SQLAlchemyError as exc:
        # One line, without SQLAlchemy's link: the driver's own words.
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise LedgerUnavailable(f"cannot migrate the ledger: {reason}") from exc


def pending_migrations(engine: Engine) -> list[str]:
    """Revision ids not yet applied, oldest first (empty when current)."""
    with engine.connect().execution_options(read_only=True) as connection, connection.begin():
        return _pending(connection)


def _pending(connection: Connection) -> list[str]:
    current = set(MigrationContext.configure(connection).get_current_heads())
    script = ScriptDirectory.from_config(_alembic_config(connection))
    pending = []
    for revision in script.walk_revisions():  # newest first
        if revision.revision in current:
            break
        pending.append(revision.revision)
    return list(reversed(pending))
