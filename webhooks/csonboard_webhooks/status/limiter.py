"""Per-key sliding-window limits, kept in this process's memory.

Used for "Open your control panel": each press costs an admin call to
ComputeStacks and mints a sign-in token, so one purchase may press it
``limit`` times an hour; and for /welcome's Stripe reads. With a Redis queue
(the scale-out deployment) the same limits are kept in Redis instead
(``shared_limiter``), so every receiver process shares them; in memory, the
effective limit is ``limit`` x processes and a restart forgets it
(docs/security.md). Not in the ledger: the limit guards ComputeStacks against
a runaway script, it is not an accounting rule, and a ledger-backed limit
would put a write on every press. Memory is bounded: past ``max_keys`` the
least recently used key is forgotten.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    def hit(self, key: str) -> float | None:
        """Record a hit and return None if it is allowed; if not, record
        nothing and return the seconds until the next hit would be allowed."""


class SlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``window`` seconds. Thread-safe."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float],
        *,
        max_keys: int = 10_000,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit and window must be positive")
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record a hit and return None if it is allowed; if not, record
        nothing and return the seconds until the next hit would be allowed."""
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - self._window:
                hits.popleft()
            if len(hits) >= self._limit:
                self._hits[key] = hits
                return max(0.0, hits[0] + self._window - now)
            hits.append(now)
            self._hits[key] = hits  # most recently used last
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
            return None
