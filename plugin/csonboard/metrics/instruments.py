"""The metrics counted where things happen: webhooks received, onboarding
steps timed, ComputeStacks calls timed, status-page sign-ins.

Each process counts its own. Under ``csonboard serve`` every child process
writes to one multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``), which the
receiver's ``/metrics`` adds up (see :mod:`csonboard.metrics.collector`).

Label values are bounded: step names come from the code, ComputeStacks paths
are reduced to templates (:func:`endpoint_template`), event types are checked
against Stripe's naming (:func:`event_type_label`).

Failure policy: the helpers never raise on their own; the exception of the
code they measure passes through untouched. Nothing here touches the ledger,
so the ComputeStacks client can use it without depending on the database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

from csonboard.errors import (
    ComputeStacksAuthError,
    ComputeStacksError,
    ComputeStacksNotFound,
    ComputeStacksRateLimited,
    ComputeStacksUnavailable,
    ComputeStacksValidationError,
    ConfigError,
    LeaseLost,
    OnboardingHalted,
    StillWaiting,
)

# -- counted where it happens -----------------------------------------------------------
# Metric objects live at module level: that is prometheus_client's idiom (each
# is registered once per process, and in multiprocess mode each process writes
# its own file that the scrape adds up). They hold no connection and no client.

WEBHOOK_EVENTS = Counter(
    "csonboard_webhook_events",
    "Stripe webhooks received, by event type and outcome (accepted, duplicate, rejected). "
    "Rejected deliveries are counted with type 'unverified'.",
    ["type", "outcome"],
)
SIGNATURE_FAILURES = Counter(
    "csonboard_webhook_signature_failures",
    "Webhook deliveries refused because the Stripe-Signature did not verify "
    "(missing, wrong secret, or timestamp outside the tolerance).",
)
STEP_SECONDS = Histogram(
    "csonboard_onboarding_step_duration_seconds",
    "Time one try of an onboarding step took, by step and outcome "
    "(done, waiting, halted, failed, lease_lost).",
    ["step", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
CS_SECONDS = Histogram(
    "csonboard_computestacks_request_duration_seconds",
    "Time one HTTP exchange with ComputeStacks took (each retry counts), by endpoint.",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CS_ERRORS = Counter(
    "csonboard_computestacks_errors",
    "ComputeStacks calls that failed, by endpoint and error (unavailable, rate_limited, "
    "auth, not_found, validation, protocol, config: cs.url leads to something that is not "
    "the ComputeStacks API). A 404 from a lookup is an answer, and counted.",
    ["endpoint", "error"],
)
STATUS_LOGINS = Counter(
    "csonboard_status_page_logins",
    "'Open your control panel' presses on the status page, by outcome (issued, refused, "
    "rate_limited, failed).",
    ["outcome"],
)

# -- endpoint templates -------------------------------------------------------------------

# Every literal path segment csonboard's ComputeStacks client uses; any other
# segment is an identifier and becomes ``{id}``, so the label set stays bounded
# whatever the ids are (numbers, order UUIDs, base64 emails, Stripe ids).
_PATH_WORDS = frozenset(
    {
        "api",
        "admin",
        "users",
        "user_sso",
        "api_credentials",
        "suspension",
        "projects",
        "container_images",
        "orders",
        "products",
        "locations",
        "services",
        "container_services",
        "resize",
        "power",
        "start",
        "stop",
        "restart",
        "rebuild",
        "containers",
        "billing_usages",
    }
)


def endpoint_template(method: str, path: str) -> str:
    """``("GET", "/api/admin/users/42")`` -> ``"GET /api/admin/users/{id}"``."""
    segments = path.split("?", 1)[0].strip("/").split("/")
    shown = [s if s in _PATH_WORDS else "{id}" for s in segments if s]
    return f"{method.upper()} /{'/'.join(shown)}"


_EVENT_TYPE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+){1,4}")


def event_type_label(event_type: str) -> str:
    """The event type if it looks like Stripe's (``checkout.session.completed``),
    else ``other``: only verified events get here, but a label must never
    carry whatever a sender chose."""
    return event_type if len(event_type) <= 64 and _EVENT_TYPE.fullmatch(event_type) else "other"


def _error_kind(exc: ComputeStacksError | ConfigError) -> str:
    if isinstance(exc, ConfigError):
        return "config"
    kinds: tuple[tuple[type[ComputeStacksError], str], ...] = (
        (ComputeStacksRateLimited, "rate_limited"),
        (ComputeStacksUnavailable, "unavailable"),
        (ComputeStacksAuthError, "auth"),
        (ComputeStacksNotFound, "not_found"),
        (ComputeStacksValidationError, "validation"),
    )
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "protocol")


def _step_outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "done"
    if isinstance(exc, LeaseLost):
        return "lease_lost"
    if isinstance(exc, StillWaiting):
        return "waiting"
    if isinstance(exc, OnboardingHalted):
        return "halted"
    return "failed"


# -- instrumentation helpers (used by the receiver, the runner and the transport) -------


def count_webhook(event_type: str | None, outcome: str) -> None:
    """Count one delivery: ``event_type`` None when it was not verified."""
    label = "unverified" if event_type is None else event_type_label(event_type)
    WEBHOOK_EVENTS.labels(type=label, outcome=outcome).inc()


@contextmanager
def timed_step(step: str) -> Iterator[None]:
    """Time the block as one try of ``step``; its exception (re-raised
    untouched) decides the outcome label."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        STEP_SECONDS.labels(step=step, outcome=_step_outcome(exc)).observe(
            time.perf_counter() - started
        )
        raise
    STEP_SECONDS.labels(step=step, outcome="done").observe(time.perf_counter() - started)


@contextmanager
def timed_computestacks_call(method: str, path: str) -> Iterator[None]:
    """Time one HTTP exchange with ComputeStacks and count its mapped error,
    if any (the error is re-raised untouched)."""
    endpoint = endpoint_template(method, path)
    started = time.perf_counter()
    try:
        yield
    except (ComputeStacksError, ConfigError) as exc:
        CS_ERRORS.labels(endpoint=endpoint, error=_error_kind(exc)).inc()
        raise
    finally:
        CS_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)
