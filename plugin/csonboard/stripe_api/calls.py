"""How a failed Stripe call becomes one of csonboard's errors.

- Connection errors, 429 and 5xx: :class:`StripeUnavailable` (retried later).
- An answer that is not Stripe's JSON (below 500), or Stripe's own "Unrecognized
  request URL" for a path Stripe has: :class:`ConfigError` naming
  ``stripe.api_base``. Retrying cannot help: whatever answered is not the Stripe
  API (a wrong ``CSONBOARD_STRIPE_API_BASE``, a proxy, a stand-in that lacks the
  call).
- Everything else Stripe refuses: :class:`StripeRefused`.

``reading`` adds, for operator commands: a key Stripe refuses (401) or that
lacks the permission (403) is a ConfigError naming ``stripe.api_key``.
Messages name the call; Stripe masks keys in its own messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import stripe

from csonboard.errors import ConfigError, StripeRefused, StripeUnavailable

STRIPE_API = "https://api.stripe.com"

_T = TypeVar("_T")


@contextmanager
def calling(what: str, api_base: str = STRIPE_API) -> Iterator[None]:
    """Map any stripe-python error raised inside the block (see the module)."""
    try:
        yield
    except stripe.APIConnectionError as exc:
        raise StripeUnavailable(
            f"Stripe {what}: cannot reach {api_base} ({_network_cause(exc)})"
        ) from exc
    except stripe.RateLimitError as exc:
        raise StripeUnavailable(f"Stripe {what}: {message(exc)}") from exc
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        stranger = _not_stripe(exc)
        if stranger and status < 500:
            raise ConfigError(
                "stripe.api_base",
                f"Stripe {what}: {stranger}: {api_base} does not answer as the Stripe API "
                "(check CSONBOARD_STRIPE_API_BASE; leave it empty for Stripe itself)",
            ) from exc
        if isinstance(exc, stripe.APIError) or status >= 500:
            hint = f" ({stranger}: a proxy in the way?)" if stranger else ""
            raise StripeUnavailable(f"Stripe {what}: {message(exc)}{hint}") from exc
        raise StripeRefused(f"Stripe {what}: {message(exc)}") from exc


@contextmanager
def reading(what: str, api_base: str = STRIPE_API) -> Iterator[None]:
    """:func:`calling`, with a refused or under-privileged key as a ConfigError."""
    with calling(what, api_base):
        try:
            yield
        except stripe.AuthenticationError as exc:
            raise ConfigError(
                "stripe.api_key", f"Stripe refused the key ({what}): {message(exc)}"
            ) from exc
        except stripe.PermissionError as exc:
            raise ConfigError(
                "stripe.api_key",
                f"the key may not {what}: {message(exc)}; give the restricted key that access",
            ) from exc


def unless_missing(what: str, fetch: Callable[[], _T], api_base: str = STRIPE_API) -> _T | None:
    """``fetch()`` under :func:`reading`, or None when Stripe answers 404 for an
    object it does not have (``resource_missing``)."""
    try:
        with reading(what, api_base):
            return fetch()
    except StripeRefused as exc:
        cause = exc.__cause__
        if isinstance(cause, stripe.InvalidRequestError) and cause.http_status == 404:
            return None
        raise


def message(exc: stripe.StripeError) -> str:
    """``HTTP 404: No such customer: 'cus_x'``: the status and Stripe's own
    words, on one line."""
    status = f"HTTP {exc.http_status}: " if exc.http_status else ""
    return " ".join(f"{status}{exc.user_message or exc.__class__.__name__}".split())


_CAUSES = (
    re.compile(r"\[Errno -?\d+\] ([^\"')(]+)"),
    re.compile(r"(Read timed out|timed out|Name or service not known|SSL[A-Za-z]*Error)"),
)


def _network_cause(exc: stripe.APIConnectionError) -> str:
    """The network's reason in a few words (``Connection refused``), not the
    library's paragraph about contacting support."""
    text = str(exc.user_message or exc)
    for pattern in _CAUSES:
        found = pattern.search(text)
        if found:
            return found.group(1).strip()
    return "a network error"


def _is_json(body: object) -> bool:
    try:
        json.loads(body)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _not_stripe(exc: stripe.StripeError) -> str | None:
    """Why the answer cannot have come from the Stripe API, or None."""
    status = exc.http_status or 0
    if status and not _is_json(exc.http_body):
        # stripe-python raises APIError("Invalid response body ...") for a body
        # it cannot parse; Stripe itself always answers JSON.
        return f"HTTP {status} with a body that is not JSON"
    if (
        status == 404
        and exc.code is None
        and (exc.user_message or "").startswith("Unrecognized request URL")
    ):
        return "HTTP 404 Unrecognized request URL for a path the Stripe API has"
    return None
