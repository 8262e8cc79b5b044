"""The queue is a doorbell: it tells a worker "look at X", nothing more.

Messages carry a kind and an id only. Every handler re-reads the ledger and
takes a lease before doing anything, so a duplicated message is harmless; a
lost one (Huey does not redeliver after a killed consumer) is rung again by the
worker's periodic sweep of the ledger.

Backends (Huey): ``SqliteHuey`` in the data directory by default, ``RedisHuey``
when ``queue_url`` is ``redis://...``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from huey import RedisHuey, SqliteHuey
from huey.storage import RedisStorage

from csonboard.errors import ConfigError, QueueUnavailable
from csonboard.settings import Settings

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

Kind = Literal["event", "onboarding", "account", "usage", "drift", "refund"]
Handler = Callable[[Kind, str], None]

_TASK_NAME = "csonboard.ring"
_BATCH_TASK_NAME = "csonboard.ring_many"


class Doorbell:
    """Rings workers about ledger entries. Construct with :func:`open_doorbell`."""

    def __init__(self, huey: Any, handler: Handler | None) -> None:
        self.huey = huey
        self._handler = handler

        # Huey finds a task by name in the consumer; the producer side registers
        # the same names so that it can enqueue. Only a worker passes a handler.
        @huey.task(name=_TASK_NAME, retries=0)  # type: ignore[untyped-decorator]
        def ring(kind: Kind, ident: str) -> None:
            self._handle(kind, [ident])

        @huey.task(name=_BATCH_TASK_NAME, retries=0)  # type: ignore[untyped-decorator]
        def ring_many(kind: Kind, idents: list[str]) -> None:
            self._handle(kind, idents)

        self._ring = ring
        self._ring_many = ring_many

    def _handle(self, kind: Kind, idents: list[str]) -> None:
        if self._handler is None:
            raise RuntimeError("this process only rings the doorbell; it has no worker")
        for ident in idents:
            self._handler(kind, ident)

    def ring(self, kind: Kind, ident: str, eta: datetime | None = None) -> None:
        """Enqueue a message; at ``eta`` if given. Raises QueueUnavailable."""
        with _outages():
            if eta is None:
                self._ring(kind, ident)
            else:
                self._ring.schedule(args=(kind, ident), eta=eta)

    def ring_or_log(self, kind: Kind, ident: str, eta: datetime | None = None) -> None:
        """:meth:`ring`, for work the ledger already holds as due: a queue outage is
        logged, not raised (the worker's sweep finds the work)."""
        try:
            self.ring(kind, ident, eta)
        except QueueUnavailable as exc:
            log.warning("could not ring for %s %s (the sweep will): %s", kind, ident, exc)

    def ring_many(self, kind: Kind, idents: list[str]) -> None:
        """One message for several ids (they are worked one after the other).
        Raises QueueUnavailable."""
        if idents:
            with _outages():
                self._ring_many(kind, idents)

    def depth(self) -> int:
        """Messages waiting (not counting scheduled ones). Raises QueueUnavailable."""
        with _outages():
            return int(self.huey.pending_count())

    def drain(self, limit: int = 10_000) -> int:
        """Run queued messages in this thread until none is left (tests, ``--burst``).

        Scheduled messages are not waited for; the sweep covers them. Returns
        how many messages ran.
        """
        count = 0
        while count < limit:
            with _outages():
                # Redis dequeues block for a while on an empty queue; look first.
                task = self.huey.dequeue() if self.huey.pending_count() else None
            if task is None:
                return count
            self.huey.execute(task)
            count += 1
        return count

    def consumer(self, threads: int, poll_seconds: float) -> Any:
        """A Huey consumer running ``threads`` worker threads."""
        return self.huey.create_consumer(
            workers=threads,
            worker_type="thread",
            periodic=False,
            initial_delay=min(0.05, poll_seconds),
            max_delay=poll_seconds,
            check_worker_health=True,
        )

    def redis(self) -> Redis | None:
        """A Redis client on the queue's connection pool (closed with the
        doorbell), or None when the queue is not on Redis."""
        storage = self.huey.storage
        if not isinstance(storage, RedisStorage):
            return None
        from redis import Redis

        return Redis(connection_pool=storage.pool)

    def close(self) -> None:
        """Release the queue's connections (SQLite handle or Redis pool)."""
        storage = self.huey.storage
        storage.close()
        if isinstance(storage, RedisStorage):
            # Huey's Redis client was handed its pool, so closing the client
            # leaves the pool's sockets open: disconnect the pool itself.
            storage.pool.disconnect()


def open_doorbell(settings: Settings, handler: Handler | None = None) -> Doorbell:
    """The doorbell for ``settings.queue_url``; pass ``handler`` in a worker."""
    url = settings.queue_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from redis import ConnectionPool
        except ModuleNotFoundError:
            raise ConfigError(
                "queue_url", "redis is not installed; install csonboard[scale]"
            ) from None
        # Every connection carries a name, so `CLIENT LIST` tells csonboard's apart.
        pool = ConnectionPool.from_url(url, client_name=f"csonboard:{settings.queue_name}")
        huey = RedisHuey(settings.queue_name, connection_pool=pool, results=False, utc=True)
    else:
        path = Path(url.removeprefix("sqlite:///")) if url else settings.data_dir / "queue.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(settings.queue_name, filename=str(path), results=False, utc=True)
    return Doorbell(huey, handler)


@contextmanager
def _outages() -> Iterator[None]:
    try:
        yield
    except QueueUnavailable:
        raise
    except Exception as exc:  # sqlite3, redis and OS errors alike
        raise QueueUnavailable(f"queue unavailable: {exc.__class__.__name__}: {exc}") from exc
