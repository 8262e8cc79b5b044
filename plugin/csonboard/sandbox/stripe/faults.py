"""Injected failures for ``/v1`` calls: errors Stripe can send, and slow answers.

A fault models trouble before Stripe starts executing the request (a
load-balancer 503, a rate limit, a slow network), so it is not saved under the
request's idempotency key: the library's retry with the same key runs for real.
With ``after``, the request takes effect first and only its answer is slow or
lost (the caller cannot tell whether it worked); the real answer is what the
idempotency key keeps.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from csonboard.sandbox.stripe.errors import ApiError, invalid

_DEFAULT_MESSAGES = {
    429: "Request rate limit exceeded. You can learn more about rate limits here "
    "https://stripe.com/docs/rate-limits.",
    500: "An unknown error occurred (injected by the sandbox).",
}


@dataclass
class Fault:
    """Fail (``status``) and/or slow down (``delay`` seconds) the next ``count`` calls
    whose method matches (None = any) and whose path starts with ``path``;
    ``after``: once the call has taken effect.

    ``should_retry`` sets the ``Stripe-Should-Retry`` header (None = absent, the
    usual case; Stripe sends ``true`` for a 429 ``lock_timeout``, which is also the
    default for that code).
    """

    path: str = "/v1/"
    method: str | None = None
    status: int | None = 500
    count: int = 1
    delay: float = 0.0
    code: str | None = None
    message: str | None = None
    should_retry: bool | None = None
    after: bool = False

    def error(self) -> ApiError | None:
        """The error to answer with, or None for a delay-only fault."""
        if self.status is None:
            return None
        code = self.code or ("rate_limit" if self.status == 429 else None)
        retry = self.should_retry
        if retry is None and code == "lock_timeout":
            retry = True
        headers = {} if retry is None else {"Stripe-Should-Retry": "true" if retry else "false"}
        return ApiError(
            self.status,
            self.message or _DEFAULT_MESSAGES.get(self.status, f"Injected HTTP {self.status}."),
            error_type="api_error" if self.status >= 500 else "invalid_request_error",
            code=code,
            headers=headers,
        )


def parse_fault(body: dict[str, Any]) -> Fault:
    """A :class:`Fault` from a ``POST /_sandbox/faults`` JSON body; 400 on bad fields."""
    known = set(Fault.__dataclass_fields__)
    for name in body:
        if name not in known:
            raise invalid(f"Unknown fault field: {name}", name)
    fault = Fault(**body)
    if not isinstance(fault.path, str) or not fault.path.startswith("/"):
        raise invalid("path must be a path prefix such as /v1/customers", "path")
    if fault.method is not None:
        fault.method = str(fault.method).upper()
    if fault.status is not None and not (
        isinstance(fault.status, int) and 400 <= fault.status <= 599
    ):
        raise invalid("status must be an HTTP error status (400-599) or null", "status")
    if not isinstance(fault.count, int) or fault.count < 1:
        raise invalid("count must be a positive integer", "count")
    if not isinstance(fault.delay, int | float) or fault.delay < 0:
        raise invalid("delay must be a non-negative number of seconds", "delay")
    if not isinstance(fault.after, bool):
        raise invalid("after must be true or false", "after")
    if fault.status is None and fault.delay == 0:
        raise invalid("a fault needs a status, a delay, or both", "status")
    return fault


@dataclass
class FaultPlan:
    """The pending faults, consumed in the order they were added."""

    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> None:
        """Arm ``fault``."""
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this call, counting it as used once."""
        with self._lock:
            for fault in self._faults:
                if fault.method in (None, method) and path.startswith(fault.path):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        """The armed faults, as JSON."""
        with self._lock:
            return [asdict(f) for f in self._faults]

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()
