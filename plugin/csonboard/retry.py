"""When to try again: one policy for events and onboardings alike.

Transient errors (``csonboard.errors.TransientError``) are retried with
exponential backoff and jitter, at most ``max_attempts`` tries; permanent ones
are not retried at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from csonboard.errors import CsonboardError, TransientError
from csonboard.settings import WorkerSettings


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: Callable[[], float] = random.random,
    at_least: float | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, with
    jitter in [50 %, 100 %] so that a burst of failures does not retry in step.
    ``at_least`` (a server's own retry hint) raises the floor."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1)) * (0.5 + rng() / 2)
    return max(delay, at_least or 0.0)


def next_attempt(
    attempts: int,
    exc: CsonboardError,
    policy: WorkerSettings,
    now: datetime,
    rng: Callable[[], float] = random.random,
) -> datetime | None:
    """When to try again after ``attempts`` tries ended in ``exc``; None = give up."""
    if not exc.transient or attempts >= policy.max_attempts:
        return None
    hint = exc.retry_after if isinstance(exc, TransientError) else None
    delay = backoff_seconds(
        attempts,
        base=policy.backoff_seconds,
        cap=policy.backoff_max_seconds,
        rng=rng,
        at_least=hint,
    )
    return now + timedelta(seconds=delay)
