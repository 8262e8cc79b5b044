"""Container service rules of the user API: resizing
(``POST /api/container_services/{id}/resize``) and power
(``PUT /api/container_services/{id}/power/{action}``). Services themselves are
made by the order job (:meth:`~.state.World.advance`).

The controller checks only that the product exists and carries a package; it
does not check the billing plan, the image's minimums or whether the owner is
suspended (the admin subscriptions path does the plan check, this one does
not). The resize itself runs in the background: see
:meth:`~.state.World.start_resize` for when the product changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from csonboard.sandbox.computestacks.accounts import cast_int, cast_text, is_scalar
from csonboard.sandbox.computestacks.records import PowerAction, Refusal, ServiceRecord
from csonboard.sandbox.computestacks.state import World

POWER_ACTIONS: dict[str, PowerAction] = {
    "start": "start",
    "stop": "stop",
    "restart": "restart",
    "rebuild": "rebuild",
}
"""The controller's ``allowed_actions``, in its order."""


def permit_resize(root: object) -> dict[str, object] | None:
    """Strong params for ``container_service``: only a scalar ``product_id``
    survives. None when the root is missing or empty (the controller's
    ``require`` is not rescued there: a plain 400)."""
    if not isinstance(root, dict) or not root:
        return None
    value = root.get("product_id")
    return {"product_id": value} if is_scalar(value) else {}


def resize(w: World, service: ServiceRecord, params: Mapping[str, object]) -> Refusal | None:
    """Accept a resize (None: answer ``202 {}``) or refuse it.

    An unknown product is ``422 ["Missing package id: <id>"]`` with the id as
    sent. The product the service already has is accepted and changes
    nothing; the comparison is with the product the service has now, not
    with one a resize still in progress is moving it to.
    """
    raw = params.get("product_id")
    product = w.catalog.products.get(cast_int(raw) or -1)
    if product is None:
        shown = "" if raw is None else cast_text(raw)
        return Refusal(422, [f"Missing package id: {shown}"])
    if product.id != service.product_id:
        w.start_resize(service, product.id)
    return None


def power(w: World, service: ServiceRecord, action: str) -> Refusal | None:
    """Accept a power action on every container of the service (None: answer
    ``202 {}``) or refuse an unknown one, as
    ``app/controllers/api/container_services/power_controller.rb`` does:
    ``422 ["Unknown action.", "Available actions are: start, stop, restart,
    rebuild"]``.

    Each container gets its own ``PowerCycleContainerService``; a container
    with a power action still running, or whose order is still processing,
    has the new one cancelled ("Action already in progress") while the
    answer is still 202. Nothing checks the owner's ``active``: a suspended
    user may start its services.
    """
    chosen = POWER_ACTIONS.get(action)
    if chosen is None:
        return Refusal(
            422, ["Unknown action.", f"Available actions are: {', '.join(POWER_ACTIONS)}"]
        )
    for container in w.service_containers(service.id):
        if container.action is not None or service.provision == "working":
            continue
        w.start_power(container, chosen)
    return None
