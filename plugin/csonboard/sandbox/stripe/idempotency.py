"""Idempotency keys: the first response to a POST is kept and replayed for the same key.

Stripe's rules, as modelled here:

- the key is remembered with the request's method, path and parameters; the
  same key with anything different is a 400 ``idempotency_error``;
- a replay returns the stored status and body, with ``Idempotent-Replayed: true``;
- a second request while the first is still running gets a 409
  ``idempotency_error`` (the library retries 409s);
- results are saved only once the endpoint started executing: 2xx and 5xx
  answers are kept, 4xx answers (validation, unknown ids) are not, so a
  corrected retry with the same key runs for real. Keys are at most 255
  characters; the sandbox never prunes them (Stripe may after 24 hours).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from csonboard.sandbox.stripe.errors import ApiError

MAX_KEY_LENGTH = 255

Fingerprint = tuple[str, str, tuple[tuple[str, str], ...]]
"""(method, path, sorted parameter pairs)."""


@dataclass(frozen=True)
class StoredResponse:
    """What a replay sends back."""

    status: int
    body: bytes
    request_id: str


@dataclass
class _Entry:
    fingerprint: Fingerprint
    response: StoredResponse | None = None  # None while the first request runs


@dataclass
class IdempotencyCache:
    """Responses by idempotency key, safe to use from many request threads."""

    _entries: dict[str, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, key: str, fingerprint: Fingerprint) -> StoredResponse | None:
        """Claim ``key`` for a new request, or return the response to replay.

        Raises :class:`ApiError` when the key is too long, was used with other
        parameters, or is held by a request still running.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise ApiError(
                400,
                f"Idempotency keys can be at most {MAX_KEY_LENGTH} characters long.",
                error_type="idempotency_error",
            )
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(fingerprint)
                return None
            if entry.fingerprint != fingerprint:
                raise ApiError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    error_type="idempotency_error",
                )
            if entry.response is None:
                raise ApiError(
                    409,
                    "There is currently another in-progress request using this idempotency "
                    f"key (that probably means you submitted twice, and the other request is "
                    f"still going through): {key}. Please try again later.",
                    error_type="idempotency_error",
                )
            return entry.response

    def finish(self, key: str, response: StoredResponse) -> None:
        """Keep ``response`` for ``key`` if Stripe would; otherwise release the key."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.response is not None:
                return
            if 400 <= response.status < 500:
                del self._entries[key]
            else:
                entry.response = response

    def abandon(self, key: str) -> None:
        """Release a key whose request ended without a response worth keeping."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.response is None:
                del self._entries[key]

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()
