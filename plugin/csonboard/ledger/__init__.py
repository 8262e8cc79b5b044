"""The ledger: the durable truth about every event and every onboarding.

The queue only says "look at id X"; everything a worker needs it reads here, so
a lost or duplicated queue message can never lose or double work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    DatabaseError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
)

from csonboard.errors import LedgerUnavailable
from csonboard.ledger.access import AccessStore
from csonboard.ledger.database import make_engine, pending_migrations, upgrade
from csonboard.ledger.drift import DriftStore
from csonboard.ledger.events import EVENT_STATUSES, EventRecord, EventStore, IncomingEvent
from csonboard.ledger.lifecycle import LifecycleStore
from csonboard.ledger.onboardings import (
    ONBOARDING_STATUSES,
    Onboarding,
    OnboardingStore,
    OrderRecord,
    StepRecord,
)
from csonboard.ledger.payments import PaymentStore
from csonboard.ledger.power import PowerStore
from csonboard.ledger.usage import UsageStore


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The ledger on one database. ``clock`` is injected so tests control time."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.now = clock
        self.events = EventStore(self)
        self.onboardings = OnboardingStore(self)
        self.lifecycle = LifecycleStore(self)
        self.power = PowerStore(self)
        self.usage = UsageStore(self)
        self.drift = DriftStore(self)
        self.payments = PaymentStore(self)
        self.access = AccessStore(self)

    @classmethod
    def open(
        cls,
        url: str,
        clock: Callable[[], datetime] = utcnow,
        *,
        pool_size: int = 5,
        max_overflow: int = 5,
    ) -> Ledger:
        """Open the ledger at ``url`` (no migration; see :meth:`upgrade`).
        The pool sizes apply to PostgreSQL; SQLite opens a connection per thread."""
        return cls(make_engine(url, pool_size=pool_size, max_overflow=max_overflow), clock)

    def upgrade(self) -> list[str]:
        """Apply pending migrations (safe to race with other processes); returns
        the revisions this call applied."""
        with self._wrap_outages():
            return upgrade(self.engine)

    def pending_migrations(self) -> list[str]:
        with self._wrap_outages():
            return pending_migrations(self.engine)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; commits on success. Outages become LedgerUnavailable."""
        with self._wrap_outages(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it does not take the write lock)."""
        with (
            self._wrap_outages(),
            self.engine.connect().execution_options(read_only=True) as connection,
            connection.begin(),
        ):
            yield connection

    def ping(self) -> None:
        """Raise LedgerUnavailable unless the database answers."""
        with self.read() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _wrap_outages(self) -> Iterator[None]:
        try:
            yield
        except (DatabaseError, InterfaceError) as exc:
            # A plain DatabaseError is SQLite's "file is not a database" (corrupt);
            # its other subclasses (integrity, data) are bugs and stay as they are.
            outage = (OperationalError, InterfaceError, InternalError, ProgrammingError)
            if not isinstance(exc, outage) and type(exc) is not DatabaseError:
                raise
            # The driver's message names the host or file, never the password.
            # One line: drivers add hints on lines of their own.
            reason = " ".join((str(exc.orig) if exc.orig is not None else str(exc)).split())
            if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
                raise LedgerUnavailable(
                    "the ledger has no tables yet: run `csonboard db upgrade`"
                ) from exc
            if isinstance(exc, ProgrammingError):
                raise
            raise LedgerUnavailable(f"ledger unavailable: {reason}") from exc


__all__ = [
    "EVENT_STATUSES",
    "ONBOARDING_STATUSES",
    "EventRecord",
    "IncomingEvent",
    "Ledger",
    "Onboarding",
    "OrderRecord",
    "StepRecord",
    "utcnow",
]
