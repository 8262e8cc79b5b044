"""The sign-in and lookup limits kept in Redis, shared by every receiver
process (see ``limiter``). Imported only when the queue is on Redis: redis is
in the ``scale`` extra."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)


# Atomic, so that two processes at the limit cannot both slip in.
_HIT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return false
"""


class RedisSlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``window`` seconds, kept in Redis
    and shared by every process using the same ``prefix``. Keys expire a
    window after their last hit.

    Fails open: when Redis does not answer, the hit is allowed (and logged),
    since the limit is a guard, not a rule, and ComputeStacks' own rate
    limit stands behind it.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        limit: int,
        window: float,
        clock: Callable[[], float],
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit and window must be positive")
        self._hit = client.register_script(_HIT)
        self._prefix = prefix
        self._limit = limit
        self._window = window
        self._clock = clock

    def hit(self, key: str) -> float | None:
        now = self._clock()
        try:
            wait = self._hit(
                keys=[f"{self._prefix}:{key}"],
                args=[now, self._window, self._limit, f"{now}:{uuid.uuid4().hex}"],
            )
        except redis.RedisError as exc:
            log.warning("rate limit not checked (%s): allowing %s", exc.__class__.__name__, key)
            return None
        return None if wait is None else max(0.0, float(wait))
