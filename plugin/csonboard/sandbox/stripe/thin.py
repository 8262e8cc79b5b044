"""Thin events: what an event destination with ``event_payload: thin`` receives.

For every v1 event Stripe makes a thin twin typed ``v1.<type>``: a v2 event
(``object: "v2.core.event"``) that names the object it is about
(``related_object``) and, fetched whole from ``GET /v2/core/events/{id}``, the
snapshot event it mirrors (``snapshot_event``). The notification POSTed to the
destination is the v2 event without ``snapshot_event`` and ``changes``: a
receiver must fetch before it decides. v2 events are unversioned; ``created``
is an RFC 3339 time with milliseconds.

``event_generation_failure`` makes the health event Stripe sends when it could
not make an event at all (``v2.core.health.event_generation_failure.resolved``,
its ``data.impact`` naming the event type and object that were missed).
"""

from __future__ import annotations

from datetime import UTC, datetime

from csonboard.sandbox.stripe.state import Json, Store

GENERATION_FAILURE = "v2.core.health.event_generation_failure.resolved"

_PATHS = {
    "checkout.session": "/v1/checkout/sessions",
    "customer": "/v1/customers",
    "invoice": "/v1/invoices",
    "payment_intent": "/v1/payment_intents",
    "price": "/v1/prices",
    "product": "/v1/products",
    "subscription": "/v1/subscriptions",
}


def related_object(obj: Json) -> Json:
    """``{id, type, url}`` for an API object."""
    kind = str(obj.get("object", ""))
    base = _PATHS.get(kind, "/v1/" + kind.replace(".", "/") + "s")
    return {"id": obj.get("id"), "type": kind, "url": f"{base}/{obj.get('id')}"}


def twin(store: Store, event: Json) -> Json:
    """The stored v2 event mirroring the v1 snapshot ``event`` (made now)."""
    request = event.get("request") or {}
    reason = None
    if request.get("id"):
        key = request.get("idempotency_key") or ""
        reason = {"type": "request", "request": {"id": request["id"], "idempotency_key": key}}
    return _v2_event(
        store,
        event_type=f"v1.{event['type']}",
        livemode=bool(event.get("livemode")),
        reason=reason,
        related=related_object(event["data"]["object"]),
        snapshot_event=str(event["id"]),
    )


def event_generation_failure(store: Store, *, event_type: str, obj: Json) -> Json:
    """The stored health event saying an ``event_type`` event about ``obj`` was never made."""
    related = related_object(obj)
    event = _v2_event(store, event_type=GENERATION_FAILURE, livemode=False, reason=None)
    event["data"] = {
        "alert_id": f"halert_test_{store.token(40)}",
        "grouping_key": f"_grouping_{store.token(48)}",
        "impact": {
            "event_type": event_type,
            "related_object_id": related["id"],
            "related_object": related,
        },
        "resolved_at": _rfc3339(store.clock()),
        "summary": "We have failed to create a notification for your Stripe account.",
    }
    return event


def notification(v2_event: Json) -> Json:
    """What the destination is sent for ``v2_event``: everything but the parts a
    receiver has to fetch."""
    return {k: v for k, v in v2_event.items() if k not in ("snapshot_event", "changes", "data")}


def _v2_event(
    store: Store,
    *,
    event_type: str,
    livemode: bool,
    reason: Json | None,
    related: Json | None = None,
    snapshot_event: str | None = None,
) -> Json:
    event: Json = {
        "id": store.new_object_id("v2.core.event"),
        "object": "v2.core.event",
        "changes": None,
        "context": None,
        "created": _rfc3339(store.clock()),
        "livemode": livemode,
        "reason": reason,
        "snapshot_event": snapshot_event,
        "type": event_type,
    }
    if related is not None:
        event["related_object"] = related
    return event


def _rfc3339(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
