"""Ringing the queue after the ledger says work is due."""

from __future__ import annotations

from collections.abc import Iterable

from csonboard.errors import QueueUnavailable
from csonboard.queue import Doorbell, Kind

QUEUE_DOWN = (
    "the queue is unavailable ({reason}); the work is due in the ledger, so a "
    "running worker's sweep picks it up within worker.sweep_seconds"
)


def ring_all(doorbell: Doorbell, kind: Kind, idents: Iterable[str]) -> str | None:
    """Ring for each id. Returns None, or -- when the queue is down -- a warning
    for the operator; it stops at the first failure instead of waiting on every
    id. Never raises: the ledger already holds the work as due."""
    for ident in idents:
        try:
            doorbell.ring(kind, ident)
        except QueueUnavailable as exc:
            return QUEUE_DOWN.format(reason=exc)
    return None
