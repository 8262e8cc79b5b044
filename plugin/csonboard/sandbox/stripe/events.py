"""Events: snapshots of objects at the moment something happened, kept and published.

An event's ``data.object`` is a deep copy of the object when the event was
made and never changes afterwards, as on Stripe (events are immutable and
rendered in the API version of their time). ``request`` says what caused it:
the API request's id and idempotency key, or nulls when Stripe (or the buyer on
the Checkout page) did. ``pending_webhooks`` counts endpoints that have not yet
acknowledged it; the deliverer lowers it on a 2xx.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from csonboard.sandbox.stripe.contract import ContractLog
from csonboard.sandbox.stripe.errors import invalid
from csonboard.sandbox.stripe.forms import as_bool, as_str, as_str_list, check_known
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, paginate, range_filter
from csonboard.sandbox.stripe.state import API_VERSION, Json, Store


@dataclass(frozen=True)
class Origin:
    """The API request behind an event; both fields None for automatic events."""

    request_id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = Origin()


class Publisher(Protocol):
    """Where new events go: the webhook endpoints and event destinations."""

    def endpoint_count(self, event_type: str) -> int:
        """How many snapshot endpoints will be sent an event of ``event_type`` made now."""
        ...

    def publish(self, event: Json) -> None:
        """Queue ``event`` for every endpoint that takes it; must not block."""
        ...


class EventLog:
    """Makes events from snapshots, stores them in ``store`` and publishes them;
    ``contract`` (when given) checks each one as it is made."""

    def __init__(
        self, store: Store, publisher: Publisher, contract: ContractLog | None = None
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.contract = contract

    def emit(
        self,
        event_type: str,
        obj: Json,
        *,
        previous: Mapping[str, Any] | None = None,
        origin: Origin = AUTOMATIC,
    ) -> Json:
        """Record that ``event_type`` happened to ``obj`` (as it is now) and publish it.

        ``previous`` holds the old values of the fields that changed, for
        ``*.updated`` events (``data.previous_attributes``).
        """
        data: Json = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(dict(previous))
        return self.record(
            {
                "type": event_type,
                "data": data,
                "request": {"id": origin.request_id, "idempotency_key": origin.idempotency_key},
            }
        )

    def record(self, partial: Mapping[str, Any]) -> Json:
        """Complete a (possibly hand-crafted) event, store it and publish it.

        Fields given in ``partial`` win; missing ones get Stripe's defaults, so a
        test can replay an old API version's shape verbatim.
        """
        with self.store.lock:
            event: Json = {
                "id": self.store.new_object_id("event"),
                "object": "event",
                "api_version": API_VERSION,
                "created": self.store.now(),
                "data": {"object": {}},
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": None, "idempotency_key": None},
                "type": "",
            }
            event.update(copy.deepcopy(dict(partial)))
            if "pending_webhooks" not in partial:
                event["pending_webhooks"] = self.publisher.endpoint_count(str(event["type"]))
            if self.contract is not None:
                self.contract.check(event)
            self.store.put(event)
            self.publisher.publish(copy.deepcopy(event))
            return event

    def mark_delivered(self, event_id: str) -> None:
        """An endpoint answered 2xx: the event no longer waits on it."""
        with self.store.lock:
            event = self.store.find("event", event_id)
            if event is not None and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1


EVENT_LIST_PARAMS = (*PAGE_PARAMS, "created", "delivery_success", "type", "types")


def list_events(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/events``: newest first, filtered by type(s), time and delivery state.

    ``type`` may end in ``.*`` (``customer.*``); ``types`` is an array of exact
    types and cannot be combined with ``type``. ``delivery_success=false`` lists
    events some endpoint has not acknowledged yet.
    """
    check_known(params, EVENT_LIST_PARAMS)
    checks: list[Callable[[Json], bool]] = []
    if "type" in params and "types" in params:
        raise invalid("You may only specify one of these parameters: type, types.", "types")
    if "type" in params:
        wanted = as_str(params["type"], "type")
        if wanted.endswith(".*"):
            prefix = wanted[:-1]
            checks.append(lambda e: str(e["type"]).startswith(prefix))
        else:
            checks.append(lambda e: e["type"] == wanted)
    if "types" in params:
        allowed = set(as_str_list(params["types"], "types"))
        checks.append(lambda e: e["type"] in allowed)
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda e: created(e["created"]))
    if "delivery_success" in params:
        delivered = as_bool(params["delivery_success"], "delivery_success")
        checks.append(lambda e: (e["pending_webhooks"] == 0) == delivered)
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("event"),
                params,
                url="/v1/events",
                label="event",
                keep=lambda e: all(check(e) for check in checks),
            )
        )
