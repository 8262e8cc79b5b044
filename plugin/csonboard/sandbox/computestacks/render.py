"""JSON views of the simulator's records, shaped like the controller's RABL
templates (api_version >= 51). Decimals go out as strings, as Rails sends them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from ipaddress import IPv4Address

from csonboard.sandbox.computestacks.records import (
    ContainerRecord,
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
from csonboard.sandbox.computestacks.state import World

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

_CREATE_ATTRIBUTES = (
    "id", "fname", "lname", "email", "active", "company_name", "is_admin", "api_key",
    "api_version", "external_id", "currency", "confirmed_at", "confirmation_sent_at",
    "last_request_at", "last_sign_in_at", "current_sign_in_at", "sign_in_count",
    "reset_password_sent_at", "locked_at", "failed_attempts", "address1", "address2", "city",
    "state", "zip", "country", "vat", "user_group_id", "created_at", "updated_at",
    "auth_token", "auth_token_exp", "labels",
)  # fmt: skip
"""``app/views/api/admin/users/create.rabl``'s attributes a ``User`` has: its
``billing_plan_id`` is no attribute of the model, and rabl leaves out what the
object does not respond to."""

_SHOW_ATTRIBUTES = (
    "id", "fname", "lname", "email", "phone", "active", "is_admin", "api_key", "api_version",
    "external_id", "currency", "confirmed_at", "confirmation_sent_at", "last_request_at",
    "last_sign_in_at", "current_sign_in_at", "sign_in_count", "reset_password_sent_at",
    "locked_at", "failed_attempts", "address1", "address2", "city", "state", "zip", "country",
    "vat", "company_name", "run_rate", "labels", "created_at", "updated_at",
)  # fmt: skip
"""``show.v51.rabl``'s attributes (the version an unversioned request gets)."""

_INDEX_ATTRIBUTES = tuple(
    a for a in _SHOW_ATTRIBUTES if a not in ("phone", "company_name", "run_rate")
)
"""``index.v51.rabl``'s attributes: no phone, company name or run rate."""


def _user_attributes(
    w: World, u: UserRecord, names: tuple[str, ...], auth_token: str | None = None
) -> dict[str, object]:
    d = u.details
    values: dict[str, object] = {
        "id": u.id,
        "fname": u.fname,
        "lname": u.lname,
        "email": u.email,
        "phone": d.get("phone"),
        "active": u.active,
        "company_name": d.get("company_name"),
        "is_admin": u.is_admin,
        "api_key": None,
        "api_version": 0,
        "external_id": u.external_id,
        "currency": u.currency,
        "confirmed_at": iso(u.confirmed_at),
        "confirmation_sent_at": None if u.confirmed_at else iso(u.created_at),
        "last_request_at": None,
        "last_sign_in_at": None,
        "current_sign_in_at": None,
        "sign_in_count": 0,
        "reset_password_sent_at": None,
        # The column as stored: set by the lock, kept after it expired.
        "locked_at": iso(u.locked_at),
        "failed_attempts": u.failed_attempts,
        "address1": d.get("address1"),
        "address2": d.get("address2"),
        "city": d.get("city"),
        "state": d.get("state"),
        "zip": d.get("zip"),
        "country": d.get("country"),
        "vat": d.get("vat"),
        "run_rate": 0,
        "user_group_id": u.user_group_id,
        "labels": u.labels,
        "created_at": iso(u.created_at),
        "updated_at": iso(u.updated_at),
        "auth_token": auth_token,
        "auth_token_exp": iso(u.auth_token_exp),
    }
    return {name: values[name] for name in names}


def _user_nodes(u: UserRecord) -> dict[str, object]:
    return {
        "currency_symbol": _SYMBOLS.get(u.currency, u.currency),
        "current_sign_in_ip": "",
        "last_sign_in_ip": "",
    }


def _user_children(w: World, u: UserRecord) -> dict[str, object]:
    """``security_keys``, ``billing_plan`` (the group's plan, a record of its
    own), ``user_group`` and ``external_integrations``."""
    group = w.catalog.groups[u.user_group_id]
    return {
        "security_keys": [],
        "billing_plan": {"id": group.billing_plan_id, "name": group.billing_plan_name},
        "user_group": {"id": group.id, "name": group.name},
        "external_integrations": [],
    }


def _unprocessed_usage(w: World, u: UserRecord) -> str:
    """``User#unprocessed_usage``: the sum of the unprocessed rows' totals."""
    total = sum((r.total for r in w.user_usages(u.id) if not r.processed), Decimal(0))
    return decimal_text(total)


def created_user(w: World, u: UserRecord, auth_token: str) -> dict[str, object]:
    """The 201 body of an admin create (``create.rabl``): with
    ``user_group_id`` and the SSO token; without phone, locale,
    bypass_billing, billing plan or user group."""
    body = _user_attributes(w, u, _CREATE_ATTRIBUTES, auth_token)
    body.update(_user_nodes(u))
    return {"user": body}


def shown_user(w: World, u: UserRecord, *, include_usage: bool = False) -> dict[str, object]:
    """The show/update body (``show.v51.rabl``): ``user_group{id,name}``
    instead of ``user_group_id``, ``billing_plan{id,name}``, the counts of
    what the user has; ``unprocessed_usage`` with ``?include=balance`` on a
    show (an update never has it)."""
    body = _user_attributes(w, u, _SHOW_ATTRIBUTES)
    body.update(_user_children(w, u))
    body.update(_user_nodes(u))
    if include_usage:
        body["unprocessed_usage"] = _unprocessed_usage(w, u)
    projects = w.user_projects(u.id)
    services = [s for p in projects for s in w.project_services(p.id)]
    body["services"] = {
        "deployments": len(projects),
        "containers": w.user_containers(u.id),
        "container_services": len(services),
        "container_images": 0,
        "container_registries": 0,
        "dns_zones": 0,
    }
    return {"user": body}


def listed_user(w: World, u: UserRecord, *, include_usage: bool = False) -> dict[str, object]:
    """An element of ``GET /api/admin/users`` (``index.v51.rabl``): the show
    body without phone, company name, run rate and the counts."""
    body = _user_attributes(w, u, _INDEX_ATTRIBUTES)
    body.update(_user_children(w, u))
    body.update(_user_nodes(u))
    if include_usage:
        body["unprocessed_usage"] = _unprocessed_usage(w, u)
    return body


def admin_short_user(u: UserRecord) -> dict[str, object]:
    """``app/views/api/admin/users/_short.rabl``, the ``user`` of admin
    projects, container services and billing usage rows. ``User#full_name``
    is ``"#{fname} #{lname}"``, not stripped."""
    return {
        "id": u.id,
        "full_name": f"{u.fname} {u.lname}",
        "email": u.email,
        "external_id": u.external_id,
        "labels": u.labels,
    }


def short_user(u: UserRecord | None) -> dict[str, object] | None:
    """The user block of admin orders (``app/views/api/admin/orders/show.rabl``):
    :func:`admin_short_user` without ``labels``."""
    if u is None:
        return None
    body = admin_short_user(u)
    del body["labels"]
    return body


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


def _ref(w: World, project_id: int | None) -> dict[str, object] | None:
    """``child deployment``: null until the order job links a project, and
    again once the project is removed (``has_many :orders, dependent:
    :nullify``)."""
    project = w.projects.get(project_id) if project_id is not None else None
    return {"id": project.id, "name": project.name} if project else None


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
    project = _ref(w, o.project_id)
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
        "project": _ref(w, o.project_id),
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


def _project_images(w: World, p: ProjectRecord) -> list[ImageSeed]:
    """The images of the project's services, each once, in service order."""
    seen: dict[int, ImageSeed] = {}
    for s in w.project_services(p.id):
        seen.setdefault(s.image_id, w.catalog.images[s.image_id])
    return list(seen.values())


def project(w: World, p: ProjectRecord, *, admin: bool = False) -> dict[str, object]:
    """A project as ``app/views/api/projects/show.rabl`` renders it (``region``
    is the location, ``availability_zone`` the region) or, for the admin
    API, ``app/views/api/admin/projects/show.rabl`` (the owner instead of
    region and availability zone)."""
    body: dict[str, object] = {
        "id": p.id,
        "name": p.name,
        "skip_ssh": p.skip_ssh,
        "current_state": p.state,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }
    if admin:
        owner = w.users.get(p.user_id)
        body["user"] = admin_short_user(owner) if owner is not None else None
    else:
        loc = w.catalog.locations[p.location_id]
        region = w.catalog.regions[p.region_id]
        body["region"] = {"id": loc.id, "name": loc.name}
        body["availability_zone"] = {"id": region.id, "name": region.name}
    images = _project_images(w, p)
    body["container_image_ids"] = [i.id for i in images]
    body["links"] = {
        "services": f"/api/projects/{p.id}/services",
        "container_images": f"/api/projects/{p.id}/images",
        "bastions": f"/api/projects/{p.id}/bastions",
    }
    body["metadata"] = {
        "icons": [f"/assets/icons/stacks/{i.label.lower()}.png" for i in images],
        "image_names": [i.label for i in images],
    }
    return body


_HELP = {
    "general": None,
    "ssh": "<h4>SSH Bastion</h4><div>(the install's container_image.ssh_bastion block)</div>",
    "remote": "<h4>Remote Access</h4><div>(the install's container_image.ports block)</div>",
    "domain": "<h4>Your Domain</h4><div>(the install's container_image.domain block)</div>",
}
"""``help``: the install's content blocks (``db/seeds.rb`` makes them; an
operator edits them). No image of the simulator has its own, nor volumes
with SFTP, hence the bastion text."""


def service(w: World, s: ServiceRecord) -> dict[str, object]:
    """A container service (partial ``app/views/api/container_services/_service.rabl``):
    ``region`` is the project's location, ``availability_zone`` its region,
    ``project`` the deployment; ``package`` is the product's package.

    The simulator's images have no ingress params and no volumes, so a
    service has no ingress rules, domains, default domain, public IP or
    domain management, and needs no SFTP container of its own; ``bastions``
    lists its project's one SSH bastion, once the order job made it."""
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
    base = f"/api/container_services/{s.id}"
    return {
        "id": s.id,
        "name": s.name,
        "label": s.label,
        "default_domain": None,
        "public_ip": [],
        "command": None,
        "is_load_balancer": False,
        "has_domain_management": False,
        "current_state": w.service_state(s),
        "auto_scale": False,
        "auto_scale_horizontal": True,
        "auto_scale_max": "0.0",
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
        "has_sftp": False,
        "ingress_rules": [],
        "product_id": s.product_id,
        "bastions": [p.sftp_id] if p.sftp_id is not None else [],
        "domains": [],
        "deployed_containers": len(w.service_containers(s.id)),
        "help": dict(_HELP),
        "links": {
            "project": f"/api/projects/{p.id}",
            "bastions": f"{base}/bastions",
            "containers": f"{base}/containers",
            "events": f"{base}/events",
            "ingress_rules": f"{base}/ingress_rules",
            "metadata": f"{base}/metadata",
            "logs": f"{base}/logs",
            "products": "/api/products",
        },
    }


def admin_service(w: World, s: ServiceRecord, *, full: bool) -> dict[str, object]:
    """A container service of the admin API
    (``app/views/api/admin/container_services/``).

    ``full`` (``show.rabl``, and ``index.rabl`` with ``params[:all]``): the
    user API's partial (:func:`service`) plus ``override_autoremove`` and the
    owner (``child :user`` through the deployment, ``users/_short.rabl``);
    ``project`` is rendered twice by the templates, the same both times.
    Otherwise (``index.rabl`` without ``all``): only ``id``, ``name``,
    ``label``, ``override_autoremove``, the times, ``project {id, name}`` and
    the owner. Rabl leaves ``user`` out when there is none (the simulator
    removes a user's projects with the user, so there always is)."""
    p = w.projects[s.project_id]
    if full:
        body = service(w, s)
        body["override_autoremove"] = s.override_autoremove
    else:
        body = {
            "id": s.id,
            "name": s.name,
            "label": s.label,
            "override_autoremove": s.override_autoremove,
            "created_at": iso(s.created_at),
            "updated_at": iso(s.updated_at),
        }
    body["project"] = {"id": p.id, "name": p.name}
    owner = w.users.get(p.user_id)
    if owner is not None:
        body["user"] = admin_short_user(owner)
    return body


def container(w: World, c: ContainerRecord) -> dict[str, object]:
    """A container (partial ``app/views/api/containers/_container.rabl``).

    Its ``deployment_id: :project_id`` and ``service_id: :container_service_id``
    attributes name no method of ``Deployment::Container`` (it has
    ``container_service_id``; its project is reached through the service),
    and rabl leaves out what the object does not respond to: neither key is
    sent. ``stats`` is what an empty metrics store gives; ``public_ip`` is
    the node's (the simulator's one node per region: 198.51.100.<region id>);
    ``local_ip`` its address on the project's private network."""
    s = w.services[c.service_id]
    p = w.projects[s.project_id]
    loc = w.catalog.locations[p.location_id]
    region = w.catalog.regions[p.region_id]
    return {
        "id": c.id,
        "name": c.name,
        "req_state": c.req_state,
        "stats": {"cpu": 0.0, "mem": 0.0},
        "current_state": c.state,
        "local_ip": str(IPv4Address("10.0.0.0") + c.id),
        "public_ip": f"198.51.100.{region.id}",
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "region": {"id": loc.id, "name": loc.name},
        "availability_zone": {"id": region.id, "name": region.name},
        "ingress_rules": [],
        "on_latest_image": True,
        "links": {
            "container_service": f"/api/container_services/{s.id}",
            "logs": f"/api/containers/{c.id}/logs",
            "project": f"/api/projects/{p.id}",
        },
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
        body["user"] = admin_short_user(user)
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
