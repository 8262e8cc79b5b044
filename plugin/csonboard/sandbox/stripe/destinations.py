"""Where events go: the stand-in's own endpoint and every webhook endpoint made
through the API, each with its own deliverer (thread, retries, records).

The own endpoint is set through ``POST /_sandbox/webhooks`` and may be a thin
event destination (``payload: thin``). An API endpoint (``/v1/webhook_endpoints``)
takes the event types it lists while it is enabled; one pinned to an API version
other than the stand-in's gets nothing, because the stand-in renders events in
its own version only (Stripe would render them in the endpoint's).

``pending_webhooks`` counts the snapshot endpoints an event goes to; thin
destinations are sent the event's v2 twin (:mod:`thin`), made and stored on
first need, so ``GET /v2/core/events/{id}`` can answer for it.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable

from csonboard.sandbox.stripe import thin
from csonboard.sandbox.stripe.contract import ContractLog
from csonboard.sandbox.stripe.delivery import Deliverer, WebhookConfig
from csonboard.sandbox.stripe.state import API_VERSION, Json, Store


class Destinations:
    """Fans published events out to every deliverer that takes them.

    ``default`` is the stand-in's own endpoint; ``make`` builds a deliverer for
    an API endpoint from its settings (sharing the own endpoint's retry
    schedule and timeout, so tests steer all deliveries in one place).
    """

    def __init__(
        self,
        default: Deliverer,
        make: Callable[[WebhookConfig], Deliverer],
        store: Store,
        contract: ContractLog | None,
    ) -> None:
        self.default = default
        self._make = make
        self._store = store
        self._contract = contract
        self._endpoints: dict[str, Deliverer] = {}
        self._lock = threading.Lock()

    # -- the Publisher protocol (events.py) ------------------------------------------

    def endpoint_count(self, event_type: str) -> int:
        """How many snapshot endpoints an event of ``event_type`` made now goes to."""
        return sum(
            1
            for deliverer in self._all()
            if deliverer.config.payload == "snapshot" and deliverer.accepts(event_type)
        )

    def publish(self, event: Json) -> None:
        """Send ``event`` (a v1 snapshot) to the snapshot endpoints that take it and
        its thin twin to the thin destinations that take ``v1.<type>``. The caller
        holds the store lock."""
        twin: Json | None = None
        for deliverer in self._all():
            payload = deliverer.config.payload
            if payload == "snapshot" and deliverer.accepts(event["type"]):
                deliverer.publish(copy.deepcopy(event))
            elif payload == "thin" and deliverer.accepts(f"v1.{event['type']}"):
                twin = twin or self._store_v2(thin.twin(self._store, event))
                deliverer.publish(thin.notification(twin))

    def publish_v2(self, v2_event: Json) -> Json:
        """Store a v2-only event (a health alert) and notify the thin destinations
        that take its type; returns it. The caller holds the store lock."""
        stored = self._store_v2(v2_event)
        for deliverer in self._all():
            if deliverer.config.payload == "thin" and deliverer.accepts(stored["type"]):
                deliverer.publish(thin.notification(stored))
        return stored

    # -- API endpoints -------------------------------------------------------------------

    def attach(self, endpoint: Json, secret: str) -> None:
        """Deliver to ``endpoint`` (a stored webhook_endpoint) from now on, as it
        is configured now; call again after every change."""
        current = self.default.config
        enabled = endpoint["status"] == "enabled" and endpoint["api_version"] in (
            None,
            API_VERSION,
        )
        config = dataclasses.replace(
            current,
            url=endpoint["url"],
            secret=secret,
            enabled_events=tuple(endpoint["enabled_events"]) if enabled else (),
            payload="snapshot",
            paused=False,
            duplicate_rate=0.0,
        )
        with self._lock:
            deliverer = self._endpoints.get(endpoint["id"])
            if deliverer is None:
                self._endpoints[endpoint["id"]] = self._make(config)
                return
        deliverer.configure(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})

    def detach(self, endpoint_id: str) -> None:
        """Stop delivering to a deleted endpoint; queued deliveries are dropped."""
        with self._lock:
            deliverer = self._endpoints.pop(endpoint_id, None)
        if deliverer is not None:
            deliverer.stop()

    # -- every deliverer at once -----------------------------------------------------------

    def deliveries(self, event_id: str | None = None) -> list[Json]:
        """Every attempt to every endpoint, in the order they were made."""
        records = [r for d in self._all() for r in d.deliveries(event_id)]
        return sorted(records, key=lambda r: (r["at"], r["id"]))

    def outbox_size(self) -> int:
        return sum(d.outbox_size() for d in self._all())

    def wait_idle(self, timeout: float) -> bool:
        """True once no deliverer has anything queued, scheduled or in flight."""
        return all(d.wait_idle(timeout) for d in self._all())

    def reset(self, config: WebhookConfig) -> None:
        """Forget the API endpoints and reset the own one to ``config``."""
        with self._lock:
            endpoints = list(self._endpoints.values())
            self._endpoints.clear()
        for deliverer in endpoints:
            deliverer.stop()
        self.default.reset(config)

    def stop(self) -> None:
        for deliverer in self._all():
            deliverer.stop()

    def _all(self) -> list[Deliverer]:
        with self._lock:
            return [self.default, *self._endpoints.values()]

    def _store_v2(self, event: Json) -> Json:
        if self._contract is not None:
            self._contract.check(event, api_mode="V2")
        return self._store.put(event)
