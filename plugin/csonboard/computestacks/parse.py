"""Turn ComputeStacks JSON into the dataclasses of :mod:`.models`.

Lenient on what is extra, strict on what is required: unknown fields are
ignored, a required field that is missing or of the wrong type raises
:class:`~csonboard.errors.ComputeStacksProtocolError` naming the call and the
field path (``order.project.id``), never the response body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from csonboard.computestacks.models import (
    AdminProduct,
    ApiCredential,
    BillingUsage,
    Container,
    ContainerImage,
    ImageVariant,
    Location,
    Order,
    OrderStatus,
    PlacedOrder,
    Product,
    Project,
    Region,
    Service,
    SettingParam,
    SsoToken,
    User,
)
from csonboard.errors import ComputeStacksProtocolError


class Call(NamedTuple):
    """The request a response belongs to, for error messages."""

    method: str
    path: str

    def protocol_error(self, problem: str) -> ComputeStacksProtocolError:
        """A protocol error about this call."""
        return ComputeStacksProtocolError(problem, method=self.method, path=self.path)


class Fields:
    """Typed reads from one JSON object; every failure names the call and field."""

    def __init__(self, data: object, call: Call, where: str) -> None:
        if not isinstance(data, dict):
            raise call.protocol_error(f"{where or 'body'} is not a JSON object")
        self._data: dict[str, object] = data
        self._call = call
        self._where = where

    def _name(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def _wrong(self, key: str, expected: str) -> ComputeStacksProtocolError:
        value = self._data.get(key)
        got = "missing" if value is None else type(value).__name__
        return self._call.protocol_error(f"field {self._name(key)} must be {expected} (got {got})")

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not null."""
        return self._data.get(key) is not None

    def is_list(self, key: str) -> bool:
        """True when ``key`` holds a JSON array."""
        return isinstance(self._data.get(key), list)

    def fail(self, problem: str) -> ComputeStacksProtocolError:
        """A protocol error about this object, for checks beyond types."""
        return self._call.protocol_error(f"{self._where or 'body'}: {problem}")

    def integer(self, key: str) -> int:
        """An integer, also accepted as a string of digits."""
        value = self._data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise self._wrong(key, "an integer")

    def opt_integer(self, key: str) -> int | None:
        """An integer, or None when absent or null."""
        return self.integer(key) if self.has(key) else None

    def text(self, key: str) -> str:
        """A string."""
        value = self._data.get(key)
        if isinstance(value, str):
            return value
        raise self._wrong(key, "a string")

    def opt_text(self, key: str) -> str | None:
        """A string, or None when absent or null; numbers are read as their text
        (``external_id`` is a string column but older data may hold numbers)."""
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return self.text(key)

    def flag(self, key: str, default: bool | None = None) -> bool:
        """A boolean; ``default`` when absent (required when ``default`` is None)."""
        value = self._data.get(key)
        if isinstance(value, bool):
            return value
        if value is None and default is not None:
            return default
        raise self._wrong(key, "a boolean")

    def decimal(self, key: str) -> Decimal:
        """A decimal sent as a number or a numeric string (``"2.0"`` or ``2``)."""
        value = self._data.get(key)
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                number = Decimal(str(value).strip())
            except InvalidOperation:
                pass
            else:
                if number.is_finite():
                    return number
        raise self._wrong(key, "a decimal number")

    def timestamp(self, key: str) -> datetime:
        """An ISO-8601 timestamp."""
        value = self._data.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        raise self._wrong(key, "an ISO-8601 timestamp")

    def instant(self, key: str) -> datetime:
        """An ISO-8601 timestamp with a UTC offset (``Z``), as UTC; one without
        an offset says nothing certain about the moment, so it is refused."""
        moment = self.timestamp(key)
        if moment.utcoffset() is None:
            raise self._wrong(key, "an ISO-8601 timestamp with a UTC offset")
        return moment.astimezone(UTC)

    def opt_instant(self, key: str) -> datetime | None:
        """An :meth:`instant`, or None when absent or null."""
        return self.instant(key) if self.has(key) else None

    def obj(self, key: str) -> Fields:
        """A nested object."""
        if not isinstance(self._data.get(key), dict):
            raise self._wrong(key, "an object")
        return Fields(self._data[key], self._call, self._name(key))

    def opt_obj(self, key: str) -> Fields | None:
        """A nested object, or None when absent or null."""
        return self.obj(key) if self.has(key) else None

    def items(self, key: str) -> list[Fields]:
        """A list of objects."""
        value = self._data.get(key)
        if not isinstance(value, list):
            raise self._wrong(key, "a list")
        return [Fields(v, self._call, f"{self._name(key)}[{i}]") for i, v in enumerate(value)]

    def integers(self, key: str) -> tuple[int, ...]:
        """A list of integers; absent or null reads as empty."""
        value = self._data.get(key)
        if value is None:
            return ()
        if isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
        raise self._wrong(key, "a list of integers")

    def labels(self, key: str) -> dict[str, object]:
        """A JSON object kept as plain data; absent or null reads as empty."""
        value = self._data.get(key)
        if value is None:
            return {}
        if isinstance(value, dict):
            return dict(value)
        raise self._wrong(key, "an object")


def root(data: object, call: Call, key: str) -> Fields:
    """The object under ``key`` of a response body such as ``{"user": {...}}``."""
    return Fields(data, call, "").obj(key)


def parse_user(f: Fields) -> User:
    """A user from the admin API's create, show, update or index JSON
    (``app/views/api/admin/users/``: ``create.rabl`` has ``user_group_id``,
    ``show.v51.rabl`` and ``index.v51.rabl`` have ``user_group {id, name}``
    instead; the index has no phone, company name or counts, none of which
    is read). Required: ``id``, ``email`` and ``active``."""
    group = f.opt_obj("user_group")
    group_id = f.opt_integer("user_group_id")
    if group_id is None and group is not None:
        group_id = group.integer("id")
    return User(
        id=f.integer("id"),
        email=f.text("email"),
        fname=f.opt_text("fname") or "",
        lname=f.opt_text("lname") or "",
        active=f.flag("active"),
        is_admin=f.flag("is_admin", default=False),
        external_id=f.opt_text("external_id"),
        currency=f.opt_text("currency"),
        user_group_id=group_id,
        labels=f.labels("labels"),
    )


def parse_credential(f: Fields) -> ApiCredential:
    """A credential from ``{"api_credential": {id, username, password}}``."""
    return ApiCredential(
        id=f.integer("id"), username=f.text("username"), password=f.text("password")
    )


def parse_sso(f: Fields) -> SsoToken:
    """An SSO token from ``{username, token, expires}``."""
    expires = f.timestamp("expires") if f.has("expires") else None
    return SsoToken(username=f.text("username"), token=f.text("token"), expires=expires)


def parse_product(f: Fields) -> Product:
    """One product x region row of ``GET /api/products``."""
    return Product(
        id=f.integer("id"),
        name=f.text("name"),
        price=f.decimal("price"),
        term=f.opt_text("term") or "",
        cpu=f.decimal("cpu"),
        memory=f.integer("memory"),
        storage=f.integer("storage"),
        bandwidth=f.integer("bandwidth"),
        region_id=f.integer("region"),
    )


def parse_admin_product(f: Fields) -> AdminProduct:
    """A product of ``GET /api/admin/products`` (the controller's
    ``app/views/api/admin/products/_product.rabl``). Required: ``id`` and
    ``label`` (``Product`` validates its presence); ``resource_kind``,
    ``unit``, ``unit_type`` and ``group`` may be null, and ``package`` is
    left out for a product without one, but each is read strictly when
    present."""
    return AdminProduct(
        id=f.integer("id"),
        label=f.text("label"),
        resource_kind=f.opt_text("resource_kind"),
        unit=f.opt_integer("unit"),
        unit_type=f.opt_text("unit_type"),
        group=f.opt_text("group"),
        is_package=f.opt_obj("package") is not None,
    )


def parse_location(f: Fields) -> Location:
    """A location with its regions."""
    regions = tuple(Region(id=r.integer("id"), name=r.text("name")) for r in f.items("regions"))
    return Location(id=f.integer("id"), name=f.text("name"), regions=regions)


def parse_image(f: Fields) -> ContainerImage:
    """An image from either endpoint.

    Variants come from the admin endpoint's ``container_image_image_variants``
    list, or from the user API's ``image_variants`` when it is a list (older
    servers). At HEAD the user API renders ``image_variants`` as a single object
    describing the image itself; that object holds no variant ids, so it reads
    as "no variants listed".
    """
    if f.is_list("container_image_image_variants"):
        listed = f.items("container_image_image_variants")
    elif f.is_list("image_variants"):
        listed = f.items("image_variants")
    else:
        listed = []
    params = (
        f.items("container_image_setting_params") if f.has("container_image_setting_params") else []
    )
    return ContainerImage(
        id=f.integer("id"),
        label=f.text("label"),
        min_cpu=f.decimal("min_cpu") if f.has("min_cpu") else Decimal(0),
        min_memory=f.opt_integer("min_memory") or 0,
        required_containers=f.integers("required_containers"),
        setting_params=tuple(_parse_setting(p) for p in params),
        variants=tuple(_parse_variant(v) for v in listed),
    )


def _parse_variant(f: Fields) -> ImageVariant:
    return ImageVariant(
        id=f.integer("id"),
        label=f.text("label"),
        is_default=f.flag("is_default", default=False),
        registry_image_tag=f.opt_text("registry_image_tag"),
    )


def _parse_setting(f: Fields) -> SettingParam:
    return SettingParam(
        name=f.text("name"),
        label=f.opt_text("label") or "",
        param_type=f.opt_text("param_type") or "static",
        value=f.opt_text("value"),
    )


def parse_placed_order(f: Fields) -> PlacedOrder:
    """The ``order`` object of the 201 answer to ``POST /api/orders``."""
    return PlacedOrder(id=f.text("id"), load_balancer_ip=f.opt_text("load_balancer_ip"))


_STATUSES = frozenset(s.value for s in OrderStatus)


def parse_order(f: Fields) -> Order:
    """An order from the user API (``project``) or the admin API (``deployment``)."""
    status = f.text("status")
    if status not in _STATUSES:
        raise f.fail(f"status {status!r} is not one of {', '.join(sorted(_STATUSES))}")
    project = f.opt_obj("project") or f.opt_obj("deployment")
    location = f.opt_obj("location")
    user = f.opt_obj("user")
    # Until the project exists, the name asked for is only in the order's echo
    # of itself (``order_data.project``, see the controller's
    # app/views/api/orders/show.rabl); the list view has neither.
    data = f.opt_obj("order_data")
    asked = data.opt_obj("project") if data else None
    name = project.opt_text("name") if project else None
    return Order(
        id=f.text("id"),
        status=OrderStatus(status),
        created_at=f.timestamp("created_at"),
        project_id=project.integer("id") if project else None,
        project_name=name or (asked.opt_text("name") if asked else None),
        location_id=location.integer("id") if location else None,
        user_id=user.integer("id") if user else None,
    )


def parse_project(f: Fields) -> Project:
    """A project from the user or admin projects endpoints
    (``app/views/api/projects/show.rabl``, ``app/views/api/admin/projects/show.rabl``).
    ``id`` and ``name`` are required; ``current_state``, ``created_at`` and
    the admin API's ``user`` may be absent or null, but are read strictly
    when present (``created_at`` with its UTC offset)."""
    user = f.opt_obj("user")
    return Project(
        id=f.integer("id"),
        name=f.text("name"),
        current_state=f.opt_text("current_state"),
        created_at=f.opt_instant("created_at"),
        user_id=user.integer("id") if user else None,
        user_external_id=user.opt_text("external_id") if user else None,
    )


def parse_service(f: Fields) -> Service:
    """A service from ``{"container_services": [...]}`` or
    ``{"container_service": {...}}``. ``id``, ``name`` and ``label`` are
    required; ``project``, ``image``, ``image.variant``, ``product_id``,
    ``current_state`` and the admin API's ``user`` may be absent or null, but
    when present their ids must be integers. An empty ``current_state``
    reads as None."""
    project = f.opt_obj("project")
    image = f.opt_obj("image")
    variant = image.opt_obj("variant") if image else None
    user = f.opt_obj("user")
    return Service(
        id=f.integer("id"),
        name=f.text("name"),
        label=f.text("label"),
        project_id=project.integer("id") if project else None,
        image_id=image.integer("id") if image else None,
        variant_id=variant.integer("id") if variant else None,
        product_id=f.opt_integer("product_id"),
        current_state=f.opt_text("current_state") or None,
        user_id=user.integer("id") if user else None,
        user_external_id=user.opt_text("external_id") if user else None,
    )


def parse_container(f: Fields, service_id: int) -> Container:
    """A container of ``{"containers": [...]}`` (the controller's
    ``app/views/api/containers/_container.rabl``) of service ``service_id``.
    Required: ``id``, ``name`` and ``req_state``; ``current_state`` may be
    absent, null or empty (the controller answers ``''`` when it cannot
    tell), all read as None."""
    return Container(
        id=f.integer("id"),
        name=f.text("name"),
        service_id=service_id,
        req_state=f.text("req_state"),
        current_state=f.opt_text("current_state") or None,
    )


def parse_billing_usage(f: Fields) -> BillingUsage:
    """A row of ``{"billing_usages": [...]}`` (the controller's
    ``app/views/api/admin/subscriptions/billing_usages/show.rabl``). Required:
    ``id``, the period, quantities, rate, total, ``processed``, ``created_at``
    and ``subscription_product.id`` (the per-user list joins through it);
    ``subscription_product.product`` and ``user`` may be left out (the server
    omits a missing record's key), but when present are read strictly."""
    sub = f.obj("subscription_product")
    product = sub.opt_obj("product")
    user = f.opt_obj("user")
    return BillingUsage(
        id=f.integer("id"),
        period_start=f.instant("period_start"),
        period_end=f.instant("period_end"),
        qty=f.decimal("qty"),
        qty_total=f.decimal("qty_total"),
        rate=f.decimal("rate"),
        rate_period=f.integer("rate_period"),
        total=f.decimal("total"),
        processed=f.flag("processed"),
        processed_on=f.opt_instant("processed_on"),
        created_at=f.instant("created_at"),
        external_id=f.opt_text("external_id"),
        subscription_product_id=sub.integer("id"),
        product_id=product.integer("id") if product else None,
        product_label=product.text("label") if product else None,
        resource_kind=product.opt_text("resource_kind") if product else None,
        unit_type=product.opt_text("unit_type") if product else None,
        user_id=user.integer("id") if user else None,
        user_external_id=user.opt_text("external_id") if user else None,
    )
