"""The webhook deliverer: signs events and POSTs them to the endpoint, retrying failures.

Like Stripe: the body is the event JSON (pretty-printed, UTF-8), sent with
``Content-Type: application/json; charset=utf-8`` and a ``Stripe-Signature``
made by the official library over the exact body, timestamped by the injected
clock. Only a 2xx counts as delivered; any other status (redirects included, which
are not followed), a connection error or a timeout is retried on
``retry_schedule`` and given up after its last step. ``duplicate_rate`` sends
some events twice, as Stripe occasionally does.

Unlike Stripe: one endpoint, deliveries are sent one at a time in publication
order (Stripe promises no order), and the retry schedule is seconds, not hours.

The sending thread is a daemon started on the first publication. :meth:`stop`
ends it; :meth:`wait_idle` lets a test wait until nothing is queued, in flight
or scheduled for retry. Scheduling uses the real monotonic clock so that a
frozen injected clock cannot stall deliveries.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
import stripe

from csonboard.sandbox.stripe.state import Json

DEFAULT_RETRY_SCHEDULE = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Seconds to wait before each re-delivery; after the last one the event is given up."""

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass(frozen=True)
class WebhookConfig:
    """One webhook endpoint and how deliveries to it behave.

    ``enabled_events`` are the event types it takes (``*`` for all); ``payload``
    is ``snapshot`` (v1 events, the whole object) or ``thin`` (an event
    destination's v2 notifications, whose types are ``v1.<type>`` for v1 events).
    """

    url: str | None = None
    secret: str | None = None
    enabled_events: tuple[str, ...] = ("*",)
    payload: Literal["snapshot", "thin"] = "snapshot"
    paused: bool = False
    duplicate_rate: float = 0.0
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    timeout: float = 10.0

    def public(self) -> dict[str, Any]:
        """The settings as JSON, with the secret left out."""
        shown = dataclasses.asdict(self)
        shown["retry_schedule"] = list(self.retry_schedule)
        shown["enabled_events"] = list(self.enabled_events)
        shown["secret"] = None if self.secret is None else "(set)"
        return shown


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event: Json = field(compare=False)
    attempt: int = field(compare=False, default=1)
    duplicate: bool = field(compare=False, default=False)


class Deliverer:
    """Sends published events to the configured endpoint from a background thread.

    ``on_delivered(event_id)`` is called (without any deliverer lock held) after
    each 2xx. ``clock`` stamps signatures and delivery records; ``rng`` decides
    duplicates; ``http`` is the ``requests.Session`` the thread sends with.
    """

    def __init__(
        self,
        config: WebhookConfig,
        *,
        on_delivered: Callable[[str], None],
        clock: Callable[[], float],
        rng: random.Random,
        http: requests.Session | None = None,
    ) -> None:
        self._config = config
        self._on_delivered = on_delivered
        self._clock = clock
        self._rng = rng
        self._http = http or requests.Session()
        self._cond = threading.Condition()
        self._jobs: list[_Job] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._records: list[Json] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- publishing (through destinations.Destinations) ---------------------------

    def accepts(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` made now goes to this endpoint: it needs
        a URL and a secret and must take the type. Events made while it does not
        are never sent, as Stripe does not send events retroactively."""
        with self._cond:
            config = self._config
            wanted = "*" in config.enabled_events or event_type in config.enabled_events
            return bool(config.url and config.secret and wanted)

    def publish(self, event: Json) -> None:
        """Queue ``event`` for immediate delivery (twice, at ``duplicate_rate``)."""
        with self._cond:
            copies = 2 if self._rng.random() < self._config.duplicate_rate else 1
            for index in range(copies):
                self._push(_Job(time.monotonic(), next(self._seq), event, 1, index > 0))
            self._ensure_thread()

    # -- control ---------------------------------------------------------------

    @property
    def config(self) -> WebhookConfig:
        """The current settings."""
        with self._cond:
            return self._config

    def configure(self, **changes: Any) -> WebhookConfig:
        """Change settings (same names as :class:`WebhookConfig`); returns the new ones.

        Unpausing sends what queued up meanwhile; removing the URL drops queued
        deliveries when they come due, as Stripe drops retries for a deleted endpoint.
        """
        with self._cond:
            self._config = dataclasses.replace(self._config, **changes)
            self._cond.notify_all()
            return self._config

    def resend(self, event: Json) -> Json:
        """Deliver ``event`` once, now, on the caller's thread (the Dashboard's "Resend").

        No retries follow a failure. Returns the delivery record.
        """
        with self._cond:
            attempt = 1 + sum(1 for r in self._records if r["event"] == event["id"])
        job = _Job(time.monotonic(), next(self._seq), copy.deepcopy(event), attempt)
        with requests.Session() as http:
            return self._attempt(job, http, manual=True)

    def deliveries(self, event_id: str | None = None) -> list[Json]:
        """Every attempt so far (oldest first), optionally for one event."""
        with self._cond:
            return [dict(r) for r in self._records if event_id in (None, r["event"])]

    def outbox_size(self) -> int:
        """Deliveries queued, scheduled for retry or in flight."""
        with self._cond:
            return len(self._jobs) + self._in_flight

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is queued, scheduled or in flight; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._in_flight, timeout)

    def reset(self, config: WebhookConfig) -> None:
        """Let an attempt in flight finish (bounded by its timeout), then drop queued
        deliveries and records and apply ``config``."""
        with self._cond:
            self._cond.wait_for(lambda: not self._in_flight, self._config.timeout + 1)
            self._jobs.clear()
            self._records.clear()
            self._config = config
            self._cond.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        """End the sending thread (after its current attempt); queued deliveries stay unsent."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._http.close()

    # -- the sending thread ------------------------------------------------------

    def _push(self, job: _Job) -> None:
        heapq.heappush(self._jobs, job)
        self._cond.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(
                target=self._run, name="stripe-sandbox-webhooks", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next_due_job()
                if job is None:
                    return
                self._in_flight += 1
            try:
                record = self._attempt(job, self._http, manual=False)
                self._schedule_retry(job, record)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _next_due_job(self) -> _Job | None:
        """Wait (holding the condition) for a due job; None once stopping."""
        while not self._stopping:
            if self._jobs and not self._config.paused:
                wait = self._jobs[0].due - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._jobs)
                self._cond.wait(wait)
            else:
                self._cond.wait()
        return None

    def _schedule_retry(self, job: _Job, record: Json) -> None:
        with self._cond:
            schedule = self._config.retry_schedule
            if record["succeeded"] or record["dropped"] or job.attempt > len(schedule):
                return
            delay = schedule[job.attempt - 1]
            record["next_retry_in"] = delay
            retry = _Job(
                time.monotonic() + delay, next(self._seq), job.event, job.attempt + 1, job.duplicate
            )
            self._push(retry)

    def _attempt(self, job: _Job, http: requests.Session, *, manual: bool) -> Json:
        """One POST of ``job``'s event; records and returns the outcome."""
        config = self.config
        record: Json = {
            "event": job.event["id"],
            "type": job.event.get("type"),
            "attempt": job.attempt,
            "duplicate": job.duplicate,
            "manual": manual,
            "url": config.url,
            "status": None,
            "error": None,
            "succeeded": False,
            "dropped": False,
            "next_retry_in": None,
            "at": self._clock(),
        }
        if not config.url or not config.secret:
            record.update(dropped=True, error="no webhook URL and secret configured; dropped")
        else:
            record.update(self._post(job.event, config, http))
        with self._cond:
            record["id"] = len(self._records) + 1
            self._records.append(record)
        if record["succeeded"]:
            self._on_delivered(job.event["id"])
        return record

    def _post(self, event: Json, config: WebhookConfig, http: requests.Session) -> dict[str, Any]:
        assert config.url is not None
        assert config.secret is not None
        payload = json.dumps(event, indent=2, ensure_ascii=False)
        signature = stripe.WebhookSignature.generate_signature_header(
            payload, config.secret, timestamp=int(self._clock())
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature,
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-cache",
            "Accept": "*/*; q=0.5, application/xml",
        }
        try:
            response = http.post(
                config.url,
                data=payload.encode("utf-8"),
                headers=headers,
                timeout=config.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        response.close()
        return {"status": response.status_code, "succeeded": 200 <= response.status_code < 300}
