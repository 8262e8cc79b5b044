"""``/v1/webhook_endpoints``: create, retrieve, update, delete and list.

As on Stripe: the signing ``secret`` is in the answer to the create call and
never again; ``enabled_events`` must be event types Stripe has (or ``*``) and
``api_version`` one of Stripe's versions, both as listed by stripe-python's own
request types; ``api_version`` cannot be changed later (a new endpoint is the
way); ``disabled=true`` sets ``status`` to ``disabled``, and a disabled
endpoint is sent nothing, not even later. Deliveries follow every change at
once (:class:`destinations.Destinations`).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Literal, get_args, get_origin

from stripe.params import WebhookEndpointCreateParams

from csonboard.sandbox.stripe.destinations import Destinations
from csonboard.sandbox.stripe.errors import invalid, missing, unsupported
from csonboard.sandbox.stripe.forms import (
    Params,
    as_bool,
    as_metadata,
    as_opt_str,
    as_str,
    as_str_list,
    check_known,
    merge_metadata,
    require,
)
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, paginate
from csonboard.sandbox.stripe.state import Json, Store

_CREATE = ("api_version", "description", "enabled_events", "expand", "metadata", "url")
_UPDATE = ("description", "disabled", "enabled_events", "expand", "metadata", "url")
_URL = re.compile(r"^https?://[^\s/]+[^\s]*$")


def create_endpoint(store: Store, destinations: Destinations, params: Params) -> Json:
    """``POST /v1/webhook_endpoints``: the endpoint, with its secret (this once)."""
    if "connect" in params:
        raise unsupported("connect")
    check_known(params, _CREATE)
    url = _read_url(require(params, "url"))
    events = _read_events(require(params, "enabled_events"))
    version = None
    if "api_version" in params:
        version = as_str(params["api_version"], "api_version")
        if version not in _allowed("api_version"):
            raise invalid(f"Invalid API version: {version}", "api_version")
    with store.lock:
        endpoint_id = store.new_object_id("webhook_endpoint")
        secret = f"whsec_{store.token(32)}"
        endpoint = store.put(
            {
                "id": endpoint_id,
                "object": "webhook_endpoint",
                "api_version": version,
                "application": None,
                "created": store.now(),
                "description": as_opt_str(params, "description"),
                "enabled_events": events,
                "livemode": False,
                "metadata": {k: v for k, v in as_metadata(params.get("metadata", {})).items() if v},
                "status": "enabled",
                "url": url,
            }
        )
        store.hidden[endpoint_id] = {"secret": secret}
        destinations.attach(endpoint, secret)
        return {**endpoint, "secret": secret}


def update_endpoint(
    store: Store, destinations: Destinations, endpoint_id: str, params: Params
) -> Json:
    """``POST /v1/webhook_endpoints/{id}``: url, enabled_events, disabled,
    description, metadata. The secret is not shown."""
    if "api_version" in params:
        raise invalid(
            "api_version cannot be changed; create a new endpoint with the version you want.",
            "api_version",
        )
    check_known(params, _UPDATE)
    with store.lock:
        endpoint = store.get("webhook_endpoint", endpoint_id)
        changes: dict[str, Any] = {}
        if "url" in params:
            changes["url"] = _read_url(params["url"])
        if "enabled_events" in params:
            changes["enabled_events"] = _read_events(params["enabled_events"])
        if "disabled" in params:
            disabled = as_bool(params["disabled"], "disabled")
            changes["status"] = "disabled" if disabled else "enabled"
        if "description" in params:
            changes["description"] = as_opt_str(params, "description") or None
        if "metadata" in params:
            changes["metadata"], _ = merge_metadata(endpoint["metadata"], params["metadata"])
        endpoint.update(changes)
        destinations.attach(endpoint, store.hidden[endpoint_id]["secret"])
        return endpoint


def delete_endpoint(store: Store, destinations: Destinations, endpoint_id: str) -> Json:
    """``DELETE /v1/webhook_endpoints/{id}``: gone, deliveries to it stop."""
    with store.lock:
        store.get("webhook_endpoint", endpoint_id)
        del store.objects["webhook_endpoint"][endpoint_id]
        store.hidden.pop(endpoint_id, None)
    destinations.detach(endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def list_endpoints(store: Store, params: Params) -> Json:
    """``GET /v1/webhook_endpoints``: newest first, paginated."""
    check_known(params, PAGE_PARAMS)
    with store.lock:
        return paginate(
            store.newest_first("webhook_endpoint"),
            params,
            url="/v1/webhook_endpoints",
            label="webhook endpoint",
        )


def _read_url(value: Any) -> str:
    url = as_str(value, "url")
    if not _URL.match(url):
        raise invalid("Invalid URL: URL must be publicly accessible.", "url", code="url_invalid")
    return url


def _read_events(value: Any) -> list[str]:
    events = as_str_list(value, "enabled_events")
    if not events:
        raise missing("enabled_events")
    allowed = _allowed("enabled_events")
    for index, event_type in enumerate(events):
        if event_type not in allowed:
            raise invalid(
                f"Invalid value for enabled_events: {event_type}", f"enabled_events[{index}]"
            )
    if "*" in events and len(events) > 1:
        raise invalid("`*` cannot be combined with other event types.", "enabled_events")
    return events


@cache
def _allowed(param: Literal["api_version", "enabled_events"]) -> frozenset[str]:
    """The values stripe-python's own request type allows for ``param``."""
    # The raw annotation: resolving the whole TypedDict would need names the
    # library imports only for type checkers.
    hint = WebhookEndpointCreateParams.__annotations__[param]
    return frozenset(_literals(hint))


def _literals(hint: Any) -> list[str]:
    if get_origin(hint) is Literal:
        return [str(v) for v in get_args(hint)]
    return [value for arg in get_args(hint) for value in _literals(arg)]
