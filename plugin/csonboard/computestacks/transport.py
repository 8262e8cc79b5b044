"""HTTP for the ComputeStacks client: one request, its error mapping, retries,
pacing and pagination. Nothing here knows what the endpoints mean.

Error policy. The ComputeStacks controller answers its API in JSON, with a few
known exceptions (its source: ``app/controllers/concerns/api_response.rb``,
``api_auth.rb`` and ``api_missing_route.rb``); an answer it cannot have sent
means ``cs.url`` points at something else, and says so:

- ``cs.url`` misdirected -> :class:`ConfigError` naming ``cs.url``, never
  retried, so work is dead-lettered at once with that line. That is: any
  redirect (the API never redirects); or, below 500, a body that is neither
  empty nor JSON (a web server's "404 page not found", an HTML 404 page, a
  welcome page with 200); or the controller's own "Unknown API Call" 404 for
  a call it has (the address ends in a path too many, such as ``/api``).
  Exempt are the statuses at which ComputeStacks
  itself may send text: 400 (Rails' bad-request page), 401, 406 (unknown
  format), 422 and 429 (the throttle's ``Throttled``). A URL ``requests``
  cannot use (no scheme, no host) is the same ConfigError.
- 401 -> :class:`ComputeStacksAuthError`, never retried: five wrong passwords
  lock the user and every credential it owns, and through the API the lock
  does not end by itself (after four hours the next try locks it again; only
  the unlock e-mail or a web sign-in ends it).
- 404 with an empty body (how the controller answers a missing record) or a
  JSON body -> :class:`ComputeStacksNotFound`.
- 422 -> :class:`ComputeStacksValidationError` with ``errors`` exactly as sent.
- 429 -> :class:`ComputeStacksRateLimited`; ``retry_after`` from
  ``RateLimit-Reset`` (epoch seconds) against the injected clock.
- 5xx, connection errors, timeouts -> :class:`ComputeStacksUnavailable`. A
  5xx that is not JSON (the controller's own 500 is) names its content type
  and says a proxy in front of ComputeStacks may be answering for it.
- anything else (400, 403 and 406 with a JSON or empty body, a 422 without an
  ``errors`` list, an empty 2xx where JSON is promised, JSON that is not the
  promised shape) -> :class:`ComputeStacksProtocolError`.

Messages name the method and path, never credentials, headers or bodies; a
ConfigError also names what came back (status, content type) and the
configured address without its user info, query or fragment.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests

from csonboard.computestacks.models import Listing
from csonboard.computestacks.parse import Call, Fields
from csonboard.errors import (
    ComputeStacksAuthError,
    ComputeStacksError,
    ComputeStacksNotFound,
    ComputeStacksProtocolError,
    ComputeStacksRateLimited,
    ComputeStacksUnavailable,
    ComputeStacksValidationError,
    ConfigError,
)
from csonboard.metrics.instruments import timed_computestacks_call

log = logging.getLogger(__name__)

PAGE_SIZE = 100
"""Default rows per page; the server has no maximum, fewer pages mean fewer calls."""

_DETAIL_LIMIT = 200

_TEXT_FROM_COMPUTESTACKS = frozenset({400, 401, 406, 422, 429})
"""Statuses below 500 at which ComputeStacks itself may answer in plain text or
HTML: there a body that is not JSON says nothing about the address."""

_CHECK_URL = (
    "Check CSONBOARD_CS_URL: it must be the address of your ComputeStacks "
    "(e.g. https://cloud.example.com, without /api)"
)


class HasId(Protocol):
    """A row of a list: de-duplicated by its ``id``."""

    @property
    def id(self) -> object: ...


T = TypeVar("T", bound=HasId)


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent calls are retried on transient errors.

    Attempt ``n`` (1-based) that failed is followed by a pause of
    ``backoff * 2**(n-1) * (1 + jitter())`` seconds, or the server's
    ``retry_after`` when that is longer. A ``retry_after`` beyond ``max_wait``
    is not waited for here: the error is raised so the caller's queue can
    reschedule instead of parking a worker for minutes.
    """

    attempts: int
    backoff: float
    max_wait: float
    sleep: Callable[[float], None]
    jitter: Callable[[], float]

    def pause(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if attempt >= self.attempts:
            return None
        delay = self.backoff * 2.0 ** (attempt - 1) * (1 + self.jitter())
        if retry_after is not None:
            if retry_after > self.max_wait:
                return None
            delay = max(delay, retry_after)
        return delay


class Pacer:
    """Spaces requests at least ``interval`` seconds apart, start to start.

    ``wait`` is called before every request; it sleeps (with the injected
    ``sleep``) until ``interval`` has passed since the previous request's
    start on the ``monotonic`` clock. Time spent elsewhere (a retry's
    backoff, the caller's own work) counts towards the interval. Callers
    sharing one Pacer are spaced together; a lock keeps two threads from
    taking the same slot.
    """

    def __init__(
        self, interval: float, *, monotonic: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: float | None = None

    def wait(self) -> None:
        """Return once the next request may start, and book its slot."""
        with self._lock:
            slot, now = self._next, self._monotonic()
            if slot is not None and now < slot:
                self._sleep(slot - now)
                # Never earlier than the slot, even if the sleep did not move the clock.
                now = max(self._monotonic(), slot)
            self._next = now + self.interval


class Transport:
    """Sends requests to one ComputeStacks with one credential."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        *,
        auth: tuple[str, str],
        accept: str,
        timeout: float,
        retry: RetryPolicy,
        clock: Callable[[], float],
        page_size: int = PAGE_SIZE,
        pacer: Pacer | None = None,
    ) -> None:
        self._pacer = pacer
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._auth = auth
        self._headers = {"Accept": accept, "Content-Type": "application/json"}
        self._timeout = timeout
        self._retry = retry
        self._clock = clock
        self._page_size = page_size
        self._warned_deprecated = False

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: object = None,
        retry: bool,
    ) -> requests.Response:
        """Send one call and return its 2xx response, or raise the mapped error.

        ``retry`` marks the call idempotent: transient errors are then retried
        per the :class:`RetryPolicy`; otherwise the first error is raised.
        With a :class:`Pacer`, every attempt waits for its slot first.
        """
        attempt = 1
        while True:
            if self._pacer is not None:
                self._pacer.wait()
            try:
                with timed_computestacks_call(method, path):
                    return self._send_once(method, path, params, body)
            except ComputeStacksUnavailable as exc:
                pause = self._retry.pause(attempt, exc.retry_after) if retry else None
                if pause is None:
                    raise
                log.info("ComputeStacks %s %s: %s; retrying in %.2fs", method, path, exc, pause)
                self._retry.sleep(pause)
                attempt += 1

    def _send_once(
        self, method: str, path: str, params: Mapping[str, str | int] | None, body: object
    ) -> requests.Response:
        call = Call(method, path)
        try:
            response = self._session.request(
                method,
                self._base_url + path,
                params=params,
                json=body,
                headers=self._headers,
                auth=self._auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise ComputeStacksUnavailable(
                f"no answer within {self._timeout:g}s", method=method, path=path
            ) from exc
        except requests.ConnectionError as exc:
            raise ComputeStacksUnavailable(
                f"could not connect ({type(exc).__name__})", method=method, path=path
            ) from exc
        except (
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
        ) as exc:
            raise ConfigError(
                "cs.url",
                f"{method} {path}: {_shown_url(self._base_url)} is not a usable URL "
                f"({type(exc).__name__}). {_CHECK_URL}",
            ) from exc
        except requests.RequestException as exc:
            raise call.protocol_error(f"request failed ({type(exc).__name__})") from exc
        if _misdirected(response):
            raise self._misdirected_error(response, call)
        if 200 <= response.status_code < 300:
            self._note_deprecation(response)
            return response
        raise self._error_for(response, call)

    def _misdirected_error(self, response: requests.Response, call: Call) -> ConfigError:
        """The ConfigError for an answer ComputeStacks cannot have sent."""
        status = response.status_code
        where = f"{call.method} {call.path}"
        got = f"HTTP {status} {_content_type(response)}"
        url = _shown_url(self._base_url)
        if 300 <= status < 400:
            what = (
                f"{where} was redirected ({got}) by {url}, and the ComputeStacks API never "
                "redirects (http instead of https? a path too many?)"
            )
        elif status == 404 and _unknown_call(response):
            what = (
                f'{where} answered HTTP 404 "Unknown API Call" from {url}: ComputeStacks has '
                "that call, so the address carries a path too many"
            )
        elif status == 404:
            what = (
                f"{where} answered {got}, not JSON, from {url}: a web server's page, so that "
                "path does not exist there (ComputeStacks answers a missing record with an "
                "empty 404)"
            )
        else:
            what = (
                f"{where} answered {got}, not JSON, from {url}: that is not the ComputeStacks API"
            )
        return ConfigError("cs.url", f"{what}. {_CHECK_URL}")

    def _note_deprecation(self, response: requests.Response) -> None:
        if response.headers.get("API-Deprecated") == "true" and not self._warned_deprecated:
            self._warned_deprecated = True
            log.warning("ComputeStacks says the configured api_version is deprecated")

    def _error_for(self, response: requests.Response, call: Call) -> ComputeStacksError:
        status = response.status_code
        method, path = call.method, call.path
        if status == 401:
            return ComputeStacksAuthError(
                "not authorized: the API credential is wrong or deleted, its user is locked, "
                "or it is not an admin (not retried: five failures lock the user until unlocked)",
                method=method,
                path=path,
                status=status,
            )
        if status == 404:
            return ComputeStacksNotFound("not found", method=method, path=path, status=status)
        if status == 422:
            errors = _errors_of(response)
            if errors is None:
                return call.protocol_error("HTTP 422 without an errors list")
            return ComputeStacksValidationError(errors, method=method, path=path)
        if status == 429:
            retry_after = self._retry_after(response)
            return ComputeStacksRateLimited(
                "throttled (HTTP 429)",
                method=method,
                path=path,
                status=status,
                retry_after=retry_after,
            )
        if status >= 500:
            if _is_json(response):
                message = f"server error (HTTP {status}){_detail(response)}"
            else:
                message = (
                    f"server error (HTTP {status} {_content_type(response)}, not JSON: a proxy "
                    "or load balancer in front of ComputeStacks may be answering for it)"
                )
            return ComputeStacksUnavailable(message, method=method, path=path, status=status)
        message = f"unexpected HTTP {status}{_detail(response)}"
        return ComputeStacksProtocolError(message, method=method, path=path, status=status)

    def _retry_after(self, response: requests.Response) -> float | None:
        try:
            reset = float(response.headers["RateLimit-Reset"])
        except (KeyError, ValueError):
            return None
        return max(0.0, reset - self._clock())

    def fetch_all(self, path: str, key: str, parse: Callable[[Fields], T]) -> tuple[T, ...]:
        """The rows of :meth:`fetch_listing` with the client's page size."""
        return self.fetch_listing(path, key, parse).rows

    def fetch_listing(
        self,
        path: str,
        key: str,
        parse: Callable[[Fields], T],
        *,
        params: Mapping[str, str] | None = None,
        per_page: int | None = None,
    ) -> Listing[T]:
        """Every row of a paginated list, following pages while ``Link`` has
        ``next``, with the ``Total`` of the last page read.

        ``params`` are sent with every page, beside ``page`` and ``per_page``
        (``per_page`` rows a page, the client's page size by default). Rows
        are de-duplicated by id: a row inserted while we page pushes older
        rows onto the next page, and ties of a sort key that is not unique
        may come on two pages. The walk ends at a page without ``next`` or
        without rows, and at a page adding nothing new once past ``Total``
        (or at once without ``Total``), so a server that ignores ``page``
        cannot loop us forever, while a page of repeats inside ``Total`` does
        not hide the pages after it.

        When the pages returned fewer rows than ``Total`` (ties of a sort key
        that is not unique, ordered differently on each page, can leave rows
        on no page), the list is read once more as one page larger than
        ``Total``: a single page from the first row cannot skip any. The
        controller sets no maximum page size.
        """
        listing = self._walk(path, key, parse, params, per_page or self._page_size)
        if listing.missed == 0 or listing.total is None:
            return listing
        size = listing.total + max(100, listing.total // 10)
        query: dict[str, str | int] = {**(params or {}), "page": 1, "per_page": size}
        response = self.send("GET", path, params=query, retry=True)
        listed = [parse(r) for r in read_fields(response, Call("GET", path)).items(key)]
        if len(listed) >= size:
            return listing  # it grew past the larger page too: keep what paging gave
        return Listing(tuple({r.id: r for r in listed}.values()), _total(response))

    def _walk(
        self,
        path: str,
        key: str,
        parse: Callable[[Fields], T],
        params: Mapping[str, str] | None,
        size: int,
    ) -> Listing[T]:
        """The rows of every page, each once (see :meth:`fetch_listing`)."""
        call = Call("GET", path)
        rows: dict[object, T] = {}
        page = 1
        while True:
            query: dict[str, str | int] = {**(params or {}), "page": page, "per_page": size}
            response = self.send("GET", path, params=query, retry=True)
            listed = [parse(r) for r in read_fields(response, call).items(key)]
            fresh = [r for r in listed if r.id not in rows]
            rows.update((r.id, r) for r in fresh)
            total = _total(response)
            if (
                not listed
                or "next" not in response.links
                or (not fresh and (total is None or page * size >= total))
            ):
                return Listing(tuple(rows.values()), total)
            page += 1

    def fetch_shifting(
        self,
        path: str,
        key: str,
        parse: Callable[[Fields], T],
        *,
        per_page: int | None = None,
        stop: Callable[[Sequence[T]], bool] | None = None,
    ) -> tuple[T, ...]:
        """The rows of a newest-first list that changes while we page, each once.

        The controller pages with ``OFFSET`` and no tiebreaker, so rows move
        between page reads. A row made meanwhile pushes older rows down a
        page: they come again and are dropped by id. A row deleted meanwhile
        pulls older rows up, across the page boundary, where they would be
        skipped: when ``Total`` drops below the previous page's, the walk steps
        back as many pages as rows vanished and reads on from there.

        ``stop`` sees each page's rows as sent (newest first); once it
        returns True no further page is read (that page's rows are kept), so a
        caller can stop at rows older than what it already has. The walk also
        ends at a page without ``next`` or without rows, and at a page adding
        nothing new once past ``Total`` (or at once without ``Total``), so a
        server that ignores ``page`` cannot loop it forever.
        """
        size = per_page or self._page_size
        rows: dict[object, T] = {}
        page, seen_total = 1, None
        while True:
            call = Call("GET", path)
            response = self.send("GET", path, params={"page": page, "per_page": size}, retry=True)
            listed = [parse(r) for r in read_fields(response, call).items(key)]
            fresh = 0
            for row in listed:
                if row.id not in rows:
                    rows[row.id] = row
                    fresh += 1
            if stop is not None and stop(listed):
                return tuple(rows.values())
            total = _total(response)
            if seen_total is not None and total is not None and total < seen_total:
                page = max(1, page - math.ceil((seen_total - total) / size))
                seen_total = total
                continue
            seen_total = total if total is not None else seen_total
            if not listed or "next" not in response.links:
                return tuple(rows.values())
            if not fresh and (total is None or page * size >= total):
                return tuple(rows.values())
            page += 1


def _total(response: requests.Response) -> int | None:
    """The ``Total`` header (api-pagination's row count), None when absent or not a count."""
    raw = response.headers.get("Total", "").strip()
    return int(raw) if raw.isdigit() else None


def read_json(response: requests.Response, call: Call) -> object:
    """The parsed JSON body, or a protocol error naming the content type.

    A body that is not JSON at all never gets here (the transport raises a
    ConfigError for it), so this fails for an empty body where JSON is promised.
    """
    try:
        return response.json()
    except ValueError as exc:
        empty = "empty body, " if not response.content.strip() else ""
        raise call.protocol_error(
            f"response is not JSON ({empty}{_content_type(response)})"
        ) from exc


def read_fields(response: requests.Response, call: Call) -> Fields:
    """The body as a JSON object."""
    return Fields(read_json(response, call), call, "")


def _errors_of(response: requests.Response) -> list[object] | None:
    """The ``errors`` of an error body: a list as sent, a lone string wrapped."""
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, str):
        return [errors]
    return errors if isinstance(errors, list) else None


def _detail(response: requests.Response) -> str:
    """The server's own error text, shortened; only from a JSON errors list,
    because HTML error pages are long and say nothing useful."""
    errors = _errors_of(response)
    if not errors:
        return ""
    text = "; ".join(str(e) for e in errors)
    return ": " + (text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT] + "...")


def _is_json(response: requests.Response) -> bool:
    """True when the body parses as JSON."""
    try:
        response.json()
    except ValueError:
        return False
    return True


def _misdirected(response: requests.Response) -> bool:
    """True for an answer ComputeStacks cannot have sent: a redirect, or below
    500 a body neither empty nor JSON where ComputeStacks always sends JSON."""
    status = response.status_code
    if 300 <= status < 400:
        return True
    if status >= 500 or status in _TEXT_FROM_COMPUTESTACKS:
        return False
    if status == 404 and _unknown_call(response):
        return True
    return bool(response.content.strip()) and not _is_json(response)


def _unknown_call(response: requests.Response) -> bool:
    """The controller's own answer for a path it has no route for
    (``api_missing_route.rb``). csonboard calls only paths ComputeStacks has, so
    this means the base URL carries a path too many (``.../api``)."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return False
    return isinstance(errors, list) and any(
        isinstance(e, str) and e.startswith("Unknown API Call") for e in errors
    )


def _content_type(response: requests.Response) -> str:
    """The media type sent, without parameters, shortened and reduced to the
    characters a media type has (it goes into messages and logs)."""
    media = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
    media = "".join(c for c in media if c.isascii() and (c.isalnum() or c in "/.+-_"))[:60]
    return media or "no Content-Type"


def _shown_url(url: str) -> str:
    """``url`` without user info, query or fragment, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not a URL)"
    if not parts.netloc:
        # No "//": whatever is before an "@" may be a user and password.
        return url.rpartition("@")[2].split("?", 1)[0].split("#", 1)[0] or "(empty)"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
