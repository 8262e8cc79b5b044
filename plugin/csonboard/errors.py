"""The one error tree of csonboard.

Every error csonboard raises on purpose is a :class:`CsonboardError`. Whether
work is worth retrying is carried by the type, never by string matching:

- :class:`TransientError` -- the world may fix itself (network, 5xx, 429, a
  lock, a pending order). Retried with backoff up to a limit, then dead-lettered.
- :class:`PermanentError` -- retrying changes nothing until a person acts (a 422,
  an unmapped price, a policy refusal). Dead-lettered at once.

Third-party errors are wrapped at the boundary (``raise ... from exc``) so that
callers only ever catch these. Messages are written for the operator who reads
them at 3 a.m.: they say what is wrong and, where it helps, what to do. They
never contain secrets or raw request bodies.
"""

from __future__ import annotations

from collections.abc import Sequence


class CsonboardError(Exception):
    """Root of every error csonboard raises deliberately."""

    transient: bool = False
    """True when retrying later may succeed without anyone acting."""


class TransientError(CsonboardError):
    """A failure that may go away by itself; retry with backoff.

    ``retry_after`` is the earliest sensible retry in seconds when the other
    side said so (for example ComputeStacks' ``RateLimit-Reset``), else None.
    """

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(CsonboardError):
    """A failure that needs a person: dead-letter at once, replay after the fix."""


# -- configuration -----------------------------------------------------------


class ConfigError(PermanentError):
    """A setting or catalog entry is missing or wrong.

    ``str()`` is one line naming the key and what is wrong, e.g.
    ``"receiver.max_body_bytes: must be greater than 0 (got -1)"``.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# -- webhooks -------------------------------------------------------------------------


class WebhookRejected(PermanentError):
    """An incoming webhook is not a Stripe event we accept. ``status`` is the HTTP
    status to answer (400, 413, 415); the message names the problem and is safe
    to send back to the caller."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# -- the ledger and the queue ---------------------------------------------------------


class LedgerUnavailable(TransientError):
    """The database behind the ledger cannot be reached or is locked."""


class QueueUnavailable(TransientError):
    """The queue (SQLite file or Redis) cannot be reached."""


# -- ComputeStacks --------------------------------------------------------------


class ComputeStacksError(CsonboardError):
    """Something went wrong talking to ComputeStacks.

    ``method`` and ``path`` name the call (never the credentials); ``status``
    is the HTTP status when there was a response.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", status: int | None = None
    ) -> None:
        where = f"{method} {path}".strip()
        super().__init__(f"ComputeStacks {where}: {message}" if where else message)
        self.method = method
        self.path = path
        self.status = status


class ComputeStacksUnavailable(ComputeStacksError, TransientError):
    """5xx, connection failure or timeout: ComputeStacks may be back soon."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        ComputeStacksError.__init__(self, message, method=method, path=path, status=status)
        self.retry_after = retry_after


class ComputeStacksRateLimited(ComputeStacksUnavailable):
    """429 Throttled. ``retry_after`` comes from ``RateLimit-Reset``."""


class ComputeStacksAuthError(ComputeStacksError, PermanentError):
    """401 Not Authorized. Never retried: five wrong passwords lock the user
    (and every credential it owns); through an API credential the lock does not
    end by itself, only the unlock e-mail or a web sign-in clears it."""


class ComputeStacksNotFound(ComputeStacksError, PermanentError):
    """404: the record does not exist or is not visible to the caller."""


class ComputeStacksValidationError(ComputeStacksError, PermanentError):
    """422: ComputeStacks refused the request. ``errors`` is the list exactly as
    sent (it may contain non-strings, and may be empty for a quota refusal)."""

    def __init__(
        self, errors: Sequence[object], *, method: str = "", path: str = "", status: int = 422
    ) -> None:
        shown = "; ".join(str(e) for e in errors) or "refused with no reason given (quota?)"
        super().__init__(f"rejected: {shown}", method=method, path=path, status=status)
        self.errors = list(errors)


class ComputeStacksProtocolError(ComputeStacksError, PermanentError):
    """The response was not what the API promises: JSON of the wrong shape (a
    field missing or mistyped), an empty body where JSON is promised, or a
    status the API does not use. An answer that cannot have come from the
    ComputeStacks API at all (a web server's page, a redirect) is instead a
    :class:`ConfigError` naming ``cs.url``."""


# -- Stripe ------------------------------------------------------------------------


class StripeUnavailable(TransientError):
    """The Stripe API could not be reached or answered 5xx/429."""


class StripeRefused(PermanentError):
    """The Stripe API refused the request (bad key, unknown object, bad params)."""


# -- onboarding -----------------------------------------------------------------------


class OnboardingRefused(PermanentError):
    """Onboarding cannot proceed until a person acts; the message says why and what
    to do (an unmapped price, an email already taken, a failed order)."""


class StillWaiting(TransientError):
    """Not a failure: the thing awaited (an order, a payment) is not ready yet.
    The work is re-checked at ``retry_after`` without counting as a failed attempt."""


class OnboardingHalted(CsonboardError):
    """The onboarding stops here by design and is left in ``status``:
    ``awaiting_payment`` (not paid yet), ``closed`` (nothing to provision) or
    ``stuck`` (an order never finished; resumable). The message says why."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class LeaseLost(CsonboardError):
    """Another worker took over this work (our lease expired); stop touching it."""
