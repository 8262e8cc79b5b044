"""JSON views of the simulator's records, shaped like the controller's RABL
templates (api_version >= 51). Decimals go out as strings, as Rails sends them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from csonboard.sandbox.computestacks.records import (
    OrderRecord,
    ProjectRecord,
    ServiceRecord,
    UsageRecord,
    UserRecord,
)
from csonboard.sandbox.computestacks.seed import (
    ImageSeed,
    LocationSeed,
    ProductSeed,
    ResourceProductSeed,
)
from csonboard.sandbox.computestacks.state import LOCK_SECONDS, World

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def iso(t: float | None) -> str | None:
    """An ISO-8601 UTC timestamp with milliseconds and ``Z``."""
    if t is None:
        return None
    moment = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def decimal_text(d: Decimal) -> str:
    """A decimal column as Rails renders it (``BigDecimal#to_s``, plain
    notation, at least one decimal place): ``"12.5"``, ``"0.0"``, ``"3.0"``."""
    text = format(d.normalize(), "f")
    return text if "." in text else f"{text}.0"


# -- users ----------------------------------------------------------------------------


def _user_base(w: World, u: UserRecord) -> dict[str, object]:
    locked = u.locked_at is not None and w.clock() - u.locked_at < LOCK_SECONDS
    d = u.details
    return {
        "id": u.id,
        "fname": u.fname,
        "lname": u.lname,
        "email": u.email,
        "active": u.active,
        "company_name": d.get("company_name"),
        "is_admin": u.is_admin,
        "api_key": None,
        "api_version": 0,
        "external_id": u.external_id,
        "billing_plan_id": u.user_group_id,
        "currency": u.currency,
        "confirmed_at": iso(u.confirmed_at),
        "confirmation_sent_at": None if u.confirmed_at else iso(u.created_at),
        "last_request_at": None,
        "last_sign_in_at": None,
        "current_sign_in_at": None,
        "sign_in_count": 0,
        "reset_password_sent_at": None,
        "locked_at": iso(u.locked_at) if locked else None,
        "failed_attempts": u.failed_attempts,
        "address1": d.get("address1"),
        "address2": d.get("address2"),
        "city": d.get("city"),
        "state": d.get("state"),
        "zip": d.get("zip"),
        "country": d.get("country"),
        "vat": d.get("vat"),
        "labels": u.labels,
        "created_at": iso(u.created_at),
        "updated_at": iso(u.updated_at),
        "currency_symbol": _SYMBOLS.get(u.currency, u.currency),
        "current_sign_in_ip": "",
        "last_sign_in_ip": "",
    }


def created_user(w: World, u: UserRecord, auth_token: str) -> dict[str, object]:
    """The 201 body of an admin create: with ``user_group_id`` and the SSO
    token; without phone, locale, bypass_billing, user_group."""
    body = _user_base(w, u)
    body.update(user_group_id=u.user_group_id, auth_token=auth_token)
    body["auth_token_exp"] = iso(u.auth_token_exp)
    return {"user": body}


def shown_user(w: World, u: UserRecord) -> dict[str, object]:
    """The show/update body: ``user_group{id,name}`` instead of ``user_group_id``."""
    group = w.catalog.groups[u.user_group_id]
    projects = sum(1 for _ in w.live_projects(u.id))
    services = sum(1 for s in w.services.values() if w.projects[s.project_id].user_id == u.id)
    body = _user_base(w, u)
    body.update(
        phone=u.details.get("phone"),
        run_rate=0,
        security_keys=[],
        billing_plan={"id": group.id, "name": group.name},
        user_group={"id": group.id, "name": group.name},
        external_integrations=[],
        services={
            "deployments": projects,
            "containers": services,
            "container_services": services,
            "container_images": 0,
            "container_registries": 0,
            "dns_zones": 0,
        },
    )
    return {"user": body}


def short_user(u: UserRecord | None) -> dict[str, object] | None:
    """The short user block of admin orders and projects."""
    if u is None:
        return None
    return {
        "id": u.id,
        "full_name": f"{u.fname} {u.lname}".strip(),
        "email": u.email,
        "external_id": u.external_id,
    }


# -- catalog ---------------------------------------------------------------------------


def product_rows(w: World, u: UserRecord) -> list[dict[str, object]]:
    """One row per package product of the user's billing plan x region it is
    sold in; the plan's resource products are not packages and not listed."""
    plan = w.catalog.groups[u.user_group_id].product_ids
    products = [p for pid, p in sorted(w.catalog.products.items()) if pid in plan]
    return [_product(p, region) for p in products for region in p.region_ids]


def _product(p: ProductSeed, region: int) -> dict[str, object]:
    return {
        "id": p.id,
        "name": p.name,
        "price": p.price,
        "term": p.term,
        "cpu": p.cpu,
        "memory": p.memory,
        "storage": p.storage,
        "bandwidth": p.bandwidth,
        "backup": 0,
        "local_disk": 0,
        "memory_swap": None,
        "memory_swappiness": None,
        "region": region,
    }


def location(loc: LocationSeed) -> dict[str, object]:
    """A location with its regions."""
    return {
        "id": loc.id,
        "name": loc.name,
        "regions": [{"id": r.id, "name": r.name} for r in loc.regions],
    }


def _image_base(w: World, image: ImageSeed) -> dict[str, object]:
    t = iso(w.started_at)
    required_by = [i.id for i in w.catalog.images.values() if image.id in i.required_containers]
    return {
        "id": image.id,
        "active": True,
        "can_scale": True,
        "command": None,
        "container_image_provider_id": 1,
        "description": "",
        "is_free": False,
        "label": image.label,
        "min_cpu": str(image.min_cpu),
        "min_memory": image.min_memory,
        "registry_custom": False,
        "registry_image_path": image.label.lower(),
        "registry_auth": False,
        "registry_username": None,
        "is_load_balancer": False,
        "role": image.label.lower(),
        "category": "web",
        "labels": {},
        "shm_size": None,
        "docker_init": False,
        "created_at": t,
        "updated_at": t,
        "icon_url": None,
        "system_image": True,
        "available_vars": [],
        "required_containers": list(image.required_containers),
        "required_by": required_by,
        "links": {"container_image_provider": "/api/container_image_providers/1"},
        "container_image_env_params": [],
        "container_image_custom_host_entries": [],
        "container_image_ingress_params": [],
        "container_image_setting_params": [
            {
                "id": image.id * 100 + i,
                "container_image_id": image.id,
                "name": p.name,
                "label": p.label,
                "param_type": p.param_type,
                "value": p.value,
                "created_at": t,
                "updated_at": t,
            }
            for i, p in enumerate(image.setting_params, start=1)
        ],
    }


def user_image(w: World, image: ImageSeed) -> dict[str, object]:
    """The user API's image. ``image_variants`` and ``volumes`` reproduce what
    the controller's ``app/views/api/container_images/_container_image.rabl``
    renders on 9.3.1: the image itself passed through the variant field list,
    a single object, not the variants."""
    body = _image_base(w, image)
    itself = {
        "id": image.id,
        "label": image.label,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    body.update(image_variants=itself, volumes=dict(itself))
    return {"container_image": body}


def admin_image(w: World, image: ImageSeed) -> dict[str, object]:
    """The admin API's image, whose ``container_image_image_variants`` lists variants."""
    body = _image_base(w, image)
    t = body["created_at"]
    body["container_image_image_variants"] = [
        {
            "id": v.id,
            "label": v.label,
            "is_default": v.is_default,
            "version": i,
            "registry_image_tag": v.registry_image_tag,
            "before_migrate": None,
            "after_migrate": None,
            "rollback_migrate": None,
            "validated_tag": True,
            "validated_tag_updated": t,
            "created_at": t,
            "updated_at": t,
        }
        for i, v in enumerate(image.variants)
    ]
    return {"container_image": body}


# -- orders and projects ----------------------------------------------------------------------


def _ref(w: World, project_id: int | None, fallback_name: str) -> dict[str, object] | None:
    if project_id is None:
        return None
    project = w.projects.get(project_id)
    return {"id": project_id, "name": project.name if project else fallback_name}


def _order_data(w: World, o: OrderRecord) -> dict[str, object]:
    """The normalised order echo; like the real one it shows param values."""
    products = [w.catalog.products[c.product_id] for c in o.containers]
    monthly = sum((Decimal(p.price) for p in products), Decimal(0))
    owner = w.users.get(o.user_id) if o.user_id is not None else None
    symbol = _SYMBOLS.get(owner.currency, "") if owner else ""
    raw_order = [
        {
            "product_type": "container",
            "source": None,
            "label": c.label,
            "image_variant_id": c.variant_id,
            "qty": 1,
            "domains": list(c.domains),
            "resources": {"product_id": p.id, "cpu": p.cpu, "memory": p.memory},
            "addons": [],
            "params": {k: {"value": v, "type": t} for k, (v, t) in c.params.items()},
            "volume_config": [],
        }
        for c, p in zip(o.containers, products, strict=True)
    ]
    hourly = (monthly / 730).quantize(Decimal("0.0001"))
    return {
        "raw_order": raw_order,
        "project": {"id": o.existing_project_id, "name": o.project_name, "skip_ssh": o.skip_ssh},
        "region_id": o.region_id,
        "location_id": o.location_id,
        "load_balancer_ip": o.load_balancer_ip,
        "summary": [],
        "total": {"recurring": {"hourly": f"{symbol}{hourly}", "monthly": f"{symbol}{monthly}"}},
    }


def order(w: World, o: OrderRecord, *, admin: bool) -> dict[str, object]:
    """``GET /api/orders/{id}`` (``project``) or the admin show (``deployment``, ``user``)."""
    loc = w.catalog.locations[o.location_id]
    body: dict[str, object] = {
        "id": o.id,
        "status": o.status,
        "order_data": _order_data(w, o),
        "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at),
        "location": {"id": loc.id, "name": loc.name},
    }
    project = _ref(w, o.project_id, o.project_name)
    if admin:
        owner = w.users.get(o.user_id) if o.user_id is not None else None
        body.update(user=short_user(owner), deployment=project)
    else:
        body["project"] = project
    return {"order": body}


def order_row(w: World, o: OrderRecord) -> dict[str, object]:
    """An element of ``GET /api/orders``."""
    return {
        "id": o.id,
        "status": o.status,
        "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at),
        "project": _ref(w, o.project_id, o.project_name),
    }


def admin_order_row(w: World, o: OrderRecord) -> dict[str, object]:
    """An element of the admin order list: ``{"order": {...}}`` in a bare array."""
    owner = w.users.get(o.user_id) if o.user_id is not None else None
    user = short_user(owner)
    if user is not None:
        del user["external_id"]
    return {
        "order": {
            "id": o.id,
            "status": o.status,
            "created_at": iso(o.created_at),
            "updated_at": iso(o.updated_at),
            "user": user,
        }
    }


def project(w: World, p: ProjectRecord, *, admin: bool = False) -> dict[str, object]:
    """A project; ``region`` is the location, ``availability_zone`` the region."""
    loc = w.catalog.locations[p.location_id]
    region = w.catalog.regions[p.region_id]
    body: dict[str, object] = {
        "id": p.id,
        "name": p.name,
        "skip_ssh": p.skip_ssh,
        "current_state": p.state,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "container_image_ids": sorted(set(p.image_ids)),
        "region": {"id": loc.id, "name": loc.name},
        "availability_zone": {"id": region.id, "name": region.name},
        "links": {
            "services": f"/api/projects/{p.id}/container_services",
            "container_images": f"/api/projects/{p.id}/container_images",
            "bastions": f"/api/projects/{p.id}/sftp",
        },
        "metadata": {"icons": [], "image_names": []},
    }
    if admin:
        owner = w.users.get(p.user_id)
        short = short_user(owner)
        if short is not None and owner is not None:
            short["labels"] = owner.labels
        body["user"] = short
    return body


def service(w: World, s: ServiceRecord) -> dict[str, object]:
    """A container service (partial ``api/container_services/_service``):
    ``region`` is the project's location, ``availability_zone`` its region,
    ``project`` the deployment; ``package`` is the product's package."""
    p = w.projects[s.project_id]
    loc = w.catalog.locations[p.location_id]
    region = w.catalog.regions[p.region_id]
    image = w.catalog.images[s.image_id]
    sort, variant = next((i, v) for i, v in enumerate(image.variants) if v.id == s.variant_id)
    product = w.catalog.products.get(s.product_id)
    package: dict[str, object] = {}
    if product is not None:
        package = {
            "label": product.name,
            "cpu": product.cpu,
            "memory": product.memory,
            "storage": product.storage,
            "bandwidth": product.bandwidth,
            "local_disk": 0,
            "backup": 0,
            "memory_swap": None,
            "memory_swappiness": None,
        }
    slug = image.label.lower()
    return {
        "id": s.id,
        "name": s.name,
        "label": s.label,
        "default_domain": f"csrn-{s.id}.apps.sandbox.invalid",
        "public_ip": None,
        "command": None,
        "is_load_balancer": False,
        "has_domain_management": True,
        "current_state": s.state,
        "auto_scale": False,
        "auto_scale_horizontal": False,
        "auto_scale_max": None,
        "labels": {},
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
        "region": {"id": loc.id, "name": loc.name},
        "availability_zone": {"id": region.id, "name": region.name},
        "project": {"id": p.id, "name": p.name},
        "image": {
            "id": image.id,
            "name": slug,
            "label": image.label,
            "role": slug,
            "variant": {
                "id": variant.id,
                "label": variant.label,
                "name": variant.registry_image_tag,
                "path": f"{slug}:{variant.registry_image_tag}",
                "default": variant.is_default,
                "sort": sort,
            },
        },
        "package": package,
        # Projects ordered with skip_ssh get no SFTP container.
        "has_sftp": not p.skip_ssh,
        "ingress_rules": [],
        "product_id": s.product_id,
    }


# -- billing usage ------------------------------------------------------------------------


def billing_usage(w: World, row: UsageRecord) -> dict[str, object]:
    """A usage row, as ``app/views/api/admin/subscriptions/billing_usages/show.rabl``
    renders it: decimals as strings, times in UTC with milliseconds. Rabl's
    ``child`` leaves a key out, rather than null, when its record is missing,
    and a resource product has no ``package`` key."""
    body: dict[str, object] = {
        "id": row.id,
        "period_start": iso(row.period_start),
        "period_end": iso(row.period_end),
        "external_id": row.external_id,
        "rate": decimal_text(row.rate),
        "rate_period": row.rate_period,
        "qty": decimal_text(row.qty),
        "qty_total": decimal_text(row.qty_total),
        "total": decimal_text(row.total),
        "processed": row.processed,
        "processed_on": iso(row.processed_on),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    sub = w.subscription_products.get(row.subscription_product_id)
    if sub is not None:
        rendered: dict[str, object] = {
            "id": sub.id,
            "external_id": sub.external_id,
            "start_on": iso(sub.start_on),
            "active": sub.active,
            "phase_type": sub.phase_type,
            "created_at": iso(sub.created_at),
            "updated_at": iso(sub.updated_at),
        }
        product = w.catalog.products.get(sub.product_id) or w.catalog.resources.get(sub.product_id)
        if product is not None:
            rendered["product"] = admin_product(product)
        body["subscription_product"] = rendered
    user = w.users.get(row.user_id)
    if user is not None:
        # api/admin/users/_short.rabl; User#full_name is "#{fname} #{lname}".
        body["user"] = {
            "id": user.id,
            "full_name": f"{user.fname} {user.lname}",
            "email": user.email,
            "external_id": user.external_id,
            "labels": user.labels,
        }
    return body


def admin_product(p: ProductSeed | ResourceProductSeed) -> dict[str, object]:
    """``app/views/api/admin/products/_product.rabl``: a package product carries
    its ``package`` (the simulator gives it the product's id); a resource
    product has no package, so no ``package`` key."""
    if isinstance(p, ResourceProductSeed):
        return {
            "id": p.id,
            "label": p.label,
            "resource_kind": p.resource_kind,
            "unit": p.unit,
            "unit_type": p.unit_type,
            "external_id": p.external_id,
            "group": p.group,
        }
    return {
        "id": p.id,
        "label": p.name,
        "resource_kind": None,
        "unit": 1,
        "unit_type": None,
        "external_id": None,
        "group": p.group,
        "package": {
            "id": p.id,
            "cpu": decimal_text(Decimal(p.cpu)),
            "memory": p.memory,
            "storage": p.storage,
            "bandwidth": p.bandwidth,
            "local_disk": 0,
            "memory_swap": None,
            "memory_swappiness": None,
            "backup": 0,
        },
    }
