"""A subscription's price changed: resize the project's services where
ComputeStacks allows it, otherwise say what a person has to do.

Automated: the new price belongs to another plan with the same services (same
names, same images); each service whose product differs is resized
(``POST /api/container_services/{id}/resize``, the controller's
``app/controllers/api/container_services/resize_controller.rb``), which
ComputeStacks does in the background. Everything else -- images that differ,
services added or removed, several items, a changed quantity, a price in no
plan -- becomes a "needs an operator" record that says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from csonboard.errors import ComputeStacksNotFound, ComputeStacksValidationError
from csonboard.ledger import Ledger, Onboarding
from csonboard.onboarding import Services
from csonboard.plans import Catalog, Container, Plan
from csonboard.stripe_api import Subscription


def change_plan(
    services: Services, ledger: Ledger, onboarding: Onboarding, subscription: Subscription
) -> tuple[str, str]:
    """Apply a price change; returns the record's (status, reason): ``done`` or
    ``needs_operator``. Transient errors propagate (the caller retries; resizing
    to the product a service already has changes nothing)."""
    old_name, new, why = target_plan(
        services.catalog,
        _result(ledger, onboarding, "resolve_plan").get("units", []),
        _result(ledger, onboarding, "fetch_session").get("line_items", []),
        subscription,
    )
    if new is None:
        return "needs_operator", why
    if new.name == old_name:
        price = subscription.items[0].price_id
        return "done", f"price {price} is the same plan {new.name!r}: nothing to resize"
    return _resize(services, ledger, onboarding, old_name, new)


def target_plan(
    catalog: Catalog,
    units: Sequence[Mapping[str, Any]],
    bought: Sequence[Mapping[str, Any]],
    subscription: Subscription,
) -> tuple[str, Plan | None, str]:
    """(the plan bought, the plan the subscription's price now maps to, why not):
    the second is None, with the reason, when a person has to decide how the
    services change. ``units`` and ``bought`` are the purchase's
    ``resolve_plan`` units and ``fetch_session`` line items."""
    old_plans = {unit["plan"] for unit in units}
    if len(subscription.items) != 1 or len(old_plans) != 1:
        return "", None, "the subscription's items changed: resize or re-order by hand"
    [old_name] = old_plans
    [item] = subscription.items
    if item.quantity != sum(line["quantity"] for line in bought):
        return (
            old_name,
            None,
            f"the quantity changed to {item.quantity}: add or remove projects by hand",
        )
    new = catalog.match(item.price_id, item.lookup_key, item.product_id)
    if new is None:
        return (
            old_name,
            None,
            f"price {item.price_id} is in no plan: add it to the catalog, or resize by hand",
        )
    if new.name == old_name:
        return old_name, new, ""
    old = catalog.plans.get(old_name)
    if old is None:
        return (
            old_name,
            None,
            f"plan {old_name!r} is no longer in the catalog: compare and resize by hand",
        )
    mismatch = _services_differ(old, new)
    if mismatch:
        return old_name, None, f"plan {old_name!r} -> {new.name!r}: {mismatch}; migrate by hand"
    return old_name, new, ""


def _services_differ(old: Plan, new: Plan) -> str | None:
    before = {c.name: c for c in old.containers}
    after = {c.name: c for c in new.containers}
    if before.keys() != after.keys():
        return f"services {sorted(before)} become {sorted(after)}"
    for name, container in after.items():
        if _image(container) != _image(before[name]):
            return f"service {name!r} changes its image"
    return None


def _image(container: Container) -> tuple[str, int | None]:
    return (
        ("variant", container.image_variant_id)
        if container.image_variant_id
        else ("image", container.image_id)
    )


def _resize(
    services: Services, ledger: Ledger, onboarding: Onboarding, old_name: str, new: Plan
) -> tuple[str, str]:
    products = {c.name: c.product_id for c in new.containers}
    resized = []
    for order in ledger.onboardings.orders(onboarding.session_id):
        if order.project_id is None:
            continue
        try:
            found = services.cs.list_project_services(order.project_id)
        except ComputeStacksNotFound:
            # Deleted in ComputeStacks (by the customer, say): not a reason to
            # stop following the subscription.
            return "needs_operator", f"project #{order.project_id} is gone from ComputeStacks"
        for service in found:
            target = products.get(service.label or service.name or "")
            if target is None or service.product_id == target:
                continue
            try:
                services.cs.resize_service(service.id, target)
            except (ComputeStacksValidationError, ComputeStacksNotFound) as exc:
                return (
                    "needs_operator",
                    f"ComputeStacks refused to resize service #{service.id}: {exc}",
                )
            resized.append(f"#{service.id} to product {target}")
    done = ", ".join(resized) or "nothing (already sized)"
    return "done", f"plan {old_name!r} -> {new.name!r}: resized {done}"


def _result(ledger: Ledger, onboarding: Onboarding, step: str) -> dict[str, Any]:
    for record in ledger.onboardings.steps(onboarding.session_id):
        if record.step == step:
            return record.result
    return {}
