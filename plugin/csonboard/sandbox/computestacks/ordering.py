"""``POST /api/orders`` rules: strong params (the controller's
``app/controllers/api/orders_controller.rb``), validation in the order of its
``app/services/build_order_service.rb``, and placement. Progress after placement is
:meth:`~.state.World.advance`.

Validation runs in stages, each answering with everything it found:
request shape (422) -> location (500, as the real nil dereference) ->
containers (422) -> region capacity (500) -> dependencies, domains (422) ->
quota (422 with an empty list).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from decimal import Decimal

from csonboard.sandbox.computestacks.accounts import cast_bool, cast_int, cast_text, is_present
from csonboard.sandbox.computestacks.records import (
    OrderedContainer,
    OrderRecord,
    Refusal,
    UserRecord,
)
from csonboard.sandbox.computestacks.seed import LocationSeed, RegionSeed
from csonboard.sandbox.computestacks.state import World

_NIL_ERROR = "undefined method `id' for nil:NilClass"
_CONTAINER_SCALARS = ("image_variant_id", "name", "container_image_id", "product_id", "package_id")


def permit_order(root: object) -> dict[str, object] | None:
    """Strong params for ``order``; unpermitted keys (``image_id``, ``qty``,
    ``region_id`` ...) vanish. None when the root is missing."""
    if not isinstance(root, dict) or not root:
        return None
    order = {
        k: root[k] for k in ("project_name", "skip_ssh", "location_id", "project_id") if k in root
    }
    containers = root.get("containers")
    if isinstance(containers, list):
        order["containers"] = [_permit_container(c) for c in containers if isinstance(c, dict)]
    return order


def _permit_container(raw: dict[str, object]) -> dict[str, object]:
    container = {k: raw[k] for k in _CONTAINER_SCALARS if k in raw}
    resources = raw.get("resources")
    if isinstance(resources, dict):
        container["resources"] = {
            k: resources[k] for k in ("product_id", "package_id") if k in resources
        }
    params = raw.get("params")
    if isinstance(params, list):
        container["params"] = [
            {"key": p.get("key"), "value": p.get("value")} for p in params if isinstance(p, dict)
        ]
    domains = raw.get("domains")
    if isinstance(domains, list):
        container["domains"] = [d for d in domains if isinstance(d, str)]
    return container


def place_order(w: World, user: UserRecord, order: Mapping[str, object]) -> OrderRecord | Refusal:
    """Validate and store an order as ``pending``, or refuse as the controller would."""
    containers = [c for c in _list(order.get("containers")) if isinstance(c, dict)]
    errors: list[object] = []
    if not is_present(order.get("project_name")):
        errors.append("Missing project name")
    if not containers:
        errors.append("Missing containers")
    existing = None
    if is_present(order.get("project_id")):
        existing = w.projects.get(cast_int(order.get("project_id")) or -1)
        if (
            existing is None
            or existing.deleting_since is not None
            or (existing.user_id != user.id and not user.is_admin)
        ):
            errors.append("Unknown project")
    if errors:
        return Refusal(422, errors)
    location_id = existing.location_id if existing else cast_int(order.get("location_id"))
    location = _allowed_location(w, user, location_id)
    if location is None:
        return Refusal(500, [_NIL_ERROR])
    ordered = [_check_container(w, user, c, errors) for c in containers]
    placed = [c for c in ordered if c is not None]
    if errors:
        return Refusal(422, errors)
    region = _region_for(w, user, location, placed)
    if region is None:
        return Refusal(500, [_NIL_ERROR])
    _check_dependencies(w, placed, containers, errors)
    _check_domains(w, placed, errors)
    if errors:
        return Refusal(422, errors)
    if _over_quota(w, user, len(placed)):
        return Refusal(422, [])
    now = w.clock()
    record = OrderRecord(
        id=str(uuid.uuid4()),
        user_id=user.id,
        # Saved as `open`, moved to `pending` before the 201 is sent.
        status="pending",
        plan=w.plan,
        # BuildOrderService keeps an existing project's own name.
        project_name=existing.name if existing else str(cast_text(order.get("project_name"))),
        skip_ssh=cast_bool(order.get("skip_ssh", False)),
        location_id=location.id,
        region_id=region.id,
        load_balancer_ip=region.load_balancer_ip,
        containers=tuple(placed),
        created_at=now,
        updated_at=now,
        existing_project_id=existing.id if existing else None,
    )
    w.add_order(record)
    return record


def _allowed_location(w: World, user: UserRecord, location_id: int | None) -> LocationSeed | None:
    """The location to order in, if the user's group may; with no id, the
    first location the group may use."""
    allowed = w.catalog.groups[user.user_group_id].region_ids
    if location_id is None:
        candidates = list(w.catalog.locations.values())
    else:
        chosen = w.catalog.locations.get(location_id)
        candidates = [chosen] if chosen else []
    return next((loc for loc in candidates if any(r.id in allowed for r in loc.regions)), None)


def _region_for(
    w: World, user: UserRecord, location: LocationSeed, placed: list[OrderedContainer]
) -> RegionSeed | None:
    allowed = w.catalog.groups[user.user_group_id].region_ids
    for region in location.regions:
        products = (w.catalog.products[c.product_id] for c in placed)
        if region.id in allowed and all(region.id in p.region_ids for p in products):
            return region
    return None


def _check_container(
    w: World, user: UserRecord, raw: Mapping[str, object], errors: list[object]
) -> OrderedContainer | None:
    found = w.catalog.variants.get(cast_int(raw.get("image_variant_id")) or -1)
    if found is None:
        variant, name = _ruby(raw.get("image_variant_id")), _ruby(raw.get("name"))
        errors.append(f"Invalid image. Image Variant ID: {variant} | {name}.")
        return None
    image, variant_seed = found
    resources = raw.get("resources")
    product_raw = raw.get("product_id", raw.get("package_id"))
    if product_raw is None and isinstance(resources, dict):
        product_raw = resources.get("product_id")
    if not is_present(product_raw):
        errors.append(f"Missing package selection for {image.label}")
        return None
    product_id = cast_int(product_raw) or -1
    product = w.catalog.products.get(product_id)
    resource = w.catalog.resources.get(product_id)
    if product is None and resource is None:
        errors.append(f"Unknown package: {_ruby(product_raw)}")
        return None
    if product_id not in w.catalog.groups[user.user_group_id].product_ids:
        errors.append(f"Invalid package: {product_id}")
        return None
    if product is None:
        # A resource product (bandwidth, storage) exists but has no package.
        assert resource is not None
        errors.append(f"Product is missing package config data: {resource.label}")
        return None
    if Decimal(product.cpu) < image.min_cpu or product.memory < image.min_memory:
        errors.append(
            f"Package {product.name} not suitable for the image {image.label}. "
            f"CPU must be greater than {image.min_cpu}, and memory greater than "
            f"{image.min_memory} MB."
        )
        return None
    return OrderedContainer(
        label=cast_text(raw.get("name")) or image.label,
        image_id=image.id,
        variant_id=variant_seed.id,
        product_id=product.id,
        params=_settings(w, image.id, raw.get("params")),
        domains=tuple(d for d in _list(raw.get("domains")) if isinstance(d, str)),
    )


def _settings(w: World, image_id: int, raw: object) -> dict[str, tuple[str, str]]:
    """Known params by name -> (value, type); unknown keys are ignored and
    omitted password params are generated, as the controller does."""
    given = {p.get("key"): p.get("value") for p in _list(raw) if isinstance(p, dict)}
    settings = {}
    for param in w.catalog.images[image_id].setting_params:
        value = cast_text(given.get(param.name))
        if value is None:
            value = secrets.token_urlsafe(12) if param.param_type == "password" else param.value
        settings[param.name] = (value, param.param_type)
    return settings


def _check_dependencies(
    w: World,
    placed: list[OrderedContainer],
    raw: list[dict[str, object]],
    errors: list[object],
) -> None:
    """Every image's required images must be in the same order. Called only
    when every container passed, so ``placed`` and ``raw`` align."""
    have = sorted({c.image_id for c in placed})
    for container, raw_container in zip(placed, raw, strict=True):
        need = list(w.catalog.images[container.image_id].required_containers)
        if not set(need) <= set(have):
            errors.append(f"Missing required dependent services. Have {have}, Need {need}")
            # The controller appends the raw variant id as its own element,
            # so `errors` may hold a non-string.
            errors.append(raw_container.get("image_variant_id"))


def _check_domains(w: World, placed: list[OrderedContainer], errors: list[object]) -> None:
    taken = _domains_in_use(w)
    for domain in (d for c in placed for d in c.domains):
        if domain in taken:
            errors.append(f"Domain {domain} already in use.")
        taken.add(domain)


def _domains_in_use(w: World) -> set[str]:
    """Domains of orders still alive: not failed, and their project not gone."""
    taken: set[str] = set()
    for order in w.orders.values():
        if order.status in ("failed", "cancelled"):
            continue
        if order.status == "completed":
            project = w.projects.get(order.project_id or -1)
            if project is None or project.deleting_since is not None:
                continue
        taken.update(d for c in order.containers for d in c.domains)
    return taken


def _over_quota(w: World, user: UserRecord, adding: int) -> bool:
    """``User#can_order_containers?``: the containers of the user's projects
    (those being deleted and those a failed order left too) plus, as the
    simulator's stricter reading, those of orders not yet processing."""
    if w.max_containers is None:
        return False
    mine = (o for o in w.orders.values() if o.user_id == user.id)
    queued = sum(len(o.containers) for o in mine if o.status == "pending")
    return w.user_containers(user.id) + queued + adding > w.max_containers


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _ruby(value: object) -> str:
    """How Ruby interpolates a JSON value into a message (nil is empty)."""
    return "" if value is None else str(cast_text(value))
