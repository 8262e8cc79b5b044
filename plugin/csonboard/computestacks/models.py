"""What the ComputeStacks client accepts and returns: plain frozen dataclasses.

Numbers: ComputeStacks sends decimals (prices, CPU) sometimes as JSON strings
(``"2.0"``) and sometimes as numbers (``2``). The client reads both into
:class:`decimal.Decimal`, always, so ``"0.1"`` stays exactly 0.1 and amounts can
be compared without float noise. Ids and sizes (MB, GB) are ``int``; order ids
are UUID strings. Timestamps are timezone-aware :class:`datetime.datetime`.

Results keep only the fields csonboard uses; extra fields in a response are
ignored, missing or mistyped required fields raise
:class:`~csonboard.errors.ComputeStacksProtocolError`.

Secrets (passwords, SSO tokens, order params, which may hold passwords) are
excluded from ``repr`` so they never reach a log line by accident.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

T = TypeVar("T")


class OrderStatus(enum.StrEnum):
    """Order states of the real controller (its ``app/models/order.rb``)."""

    OPEN = "open"
    PENDING = "pending"
    AWAITING_PAYMENT = "awaiting_payment"
    PROCESSING = "processing"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"

    @property
    def is_final(self) -> bool:
        """True once the order can no longer change by itself."""
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED})


# -- users and credentials ----------------------------------------------------------


@dataclass(frozen=True)
class User:
    """A ComputeStacks user as the admin API shows it.

    ``user_group_id`` comes from ``user_group_id`` (create response) or
    ``user_group.id`` (show response); None when the response has neither.
    Treat ``labels`` as read-only.
    """

    id: int
    email: str
    fname: str
    lname: str
    active: bool
    is_admin: bool
    external_id: str | None
    currency: str | None
    user_group_id: int | None
    labels: Mapping[str, object]


@dataclass(frozen=True)
class ApiCredential:
    """An API credential pair. The password is only ever readable from the
    create response; it is kept out of ``repr``/``str``."""

    id: int
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SsoToken:
    """A one-minute login token: ``https://<cs-host>/?username=<username>&token=<token>``."""

    username: str
    token: str = field(repr=False)
    expires: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class UserUpdate:
    """Fields to change on a user; None means "leave as is" and is not sent.

    ``merge_labels`` is sent as a JSON object: each top-level key replaces the
    stored value for that key wholesale (no deep merge), a None value is stored
    as null, other keys are kept (as the controller's ``app/models/user.rb``
    merges them).
    """

    fname: str | None = None
    lname: str | None = None
    email: str | None = None
    password: str | None = field(default=None, repr=False)
    external_id: str | None = None
    bypass_billing: bool | None = None
    currency: str | None = None
    locale: str | None = None
    user_group_id: int | None = None
    company_name: str | None = None
    phone: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    merge_labels: Mapping[str, object] | None = None

    def to_body(self) -> dict[str, object]:
        """The ``{"user": {...}}`` request body, without unset fields."""
        user: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            user[f.name] = dict(value) if isinstance(value, Mapping) else value
        return {"user": user}


@dataclass(frozen=True, kw_only=True)
class NewUser(UserUpdate):
    """A user to create. ``fname``, ``lname`` and ``email`` are required by the
    server; ``password`` may be omitted (the server generates one it never
    returns). Send ``currency`` upper-case: an unknown code is silently
    replaced by the server default."""

    fname: str
    lname: str
    email: str
    skip_email_confirm: bool = True


# -- catalog ------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    """One row of ``GET /api/products``: a product in one region (the same
    product id repeats once per region it is sold in)."""

    id: int
    name: str
    price: Decimal
    term: str
    cpu: Decimal
    memory: int
    storage: int
    bandwidth: int
    region_id: int


@dataclass(frozen=True)
class AdminProduct:
    """A product as the admin API lists it (``GET /api/admin/products``): any
    kind, whatever billing plan holds it.

    ``resource_kind`` (``bandwidth``, ``storage``...) says which usage a
    resource product records, with ``unit`` and ``unit_type`` (``1`` ``GB``);
    all three are None for a product that sets none (packages have
    ``resource_kind`` None and ``unit`` 1). ``group`` is its order-page group.
    ``is_package`` is true for a product with a package (CPU, memory...), whose
    usage rows bill the package itself. The server does not send ``kind``, so
    an image or add-on product reads as a product without package.
    """

    id: int
    label: str
    resource_kind: str | None
    unit: int | None
    unit_type: str | None
    group: str | None
    is_package: bool


@dataclass(frozen=True)
class Region:
    """A region (availability zone) inside a location."""

    id: int
    name: str


@dataclass(frozen=True)
class Location:
    """A location and its regions. Listed for everyone; orderable only by users
    whose group is linked to one of its regions."""

    id: int
    name: str
    regions: tuple[Region, ...]


@dataclass(frozen=True)
class SettingParam:
    """A setting an order may set through ``params[{key: name, value}]``."""

    name: str
    label: str
    param_type: str
    value: str | None


@dataclass(frozen=True)
class ImageVariant:
    """A variant (tag) of a container image; orders name images by variant id."""

    id: int
    label: str
    is_default: bool
    registry_image_tag: str | None


@dataclass(frozen=True)
class ContainerImage:
    """A container image. ``variants`` is empty when the response did not list
    them (the user API at HEAD renders the image itself where the variant list
    should be); read the image through the admin API to get them."""

    id: int
    label: str
    min_cpu: Decimal
    min_memory: int
    required_containers: tuple[int, ...]
    setting_params: tuple[SettingParam, ...]
    variants: tuple[ImageVariant, ...]

    def default_variant(self) -> ImageVariant | None:
        """The variant marked default, else the first listed, else None."""
        for variant in self.variants:
            if variant.is_default:
                return variant
        return self.variants[0] if self.variants else None


# -- billing ------------------------------------------------------------------------


@dataclass(frozen=True)
class BillingUsage:
    """One billing usage row of a user, as the admin API lists it
    (``GET /api/admin/users/{id}/billing_usages``).

    ``qty`` is the billable quantity (beyond what the package includes),
    ``qty_total`` the full recorded one (it can be negative for bandwidth when
    a counter was reset). ``rate`` is the price per unit in a term of
    ``rate_period`` hours (1 hour, 730 month, 8760 year); ``total`` the amount
    for ``period_start`` .. ``period_end``, already computed by ComputeStacks.
    Times are UTC. ``processed`` turns true at month end without
    ``updated_at`` changing; rows whose total is 0 are processed at once.

    The product is the row's only record of what was used: ``product_id``,
    ``product_label``, ``resource_kind`` (``bandwidth``, ``storage``... ;
    None for packages and images) and ``unit_type`` (``GB``). They are None
    when the server leaves the product out (a subscription product without
    one). ``user_id`` and ``user_external_id`` come from the row's ``user``,
    None when the server leaves it out.
    """

    id: int
    period_start: datetime
    period_end: datetime
    qty: Decimal
    qty_total: Decimal
    rate: Decimal
    rate_period: int
    total: Decimal
    processed: bool
    processed_on: datetime | None
    created_at: datetime
    external_id: str | None
    subscription_product_id: int
    product_id: int | None
    product_label: str | None
    resource_kind: str | None
    unit_type: str | None
    user_id: int | None
    user_external_id: str | None


# -- orders and projects ---------------------------------------------------------------


@dataclass(frozen=True)
class OrderContainer:
    """One container of an order. ``params`` maps setting-param names to
    values; it may hold passwords, so it is kept out of ``repr``."""

    image_variant_id: int
    product_id: int
    name: str
    params: Mapping[str, str] = field(default_factory=dict, repr=False)
    domains: tuple[str, ...] = ()

    def to_body(self) -> dict[str, object]:
        """This container as the ``order.containers[]`` element."""
        return {
            "image_variant_id": self.image_variant_id,
            "name": self.name,
            "resources": {"product_id": self.product_id},
            "params": [{"key": k, "value": v} for k, v in self.params.items()],
            "domains": list(self.domains),
        }


@dataclass(frozen=True)
class NewOrder:
    """An order to place as the user. Include one container per
    ``required_containers`` image: the server does not add dependencies.
    ``location_id`` None lets the server pick the first allowed location."""

    project_name: str
    containers: tuple[OrderContainer, ...]
    location_id: int | None = None

    def to_body(self) -> dict[str, object]:
        """The ``{"order": {...}}`` request body."""
        order: dict[str, object] = {
            "project_name": self.project_name,
            "containers": [c.to_body() for c in self.containers],
        }
        if self.location_id is not None:
            order["location_id"] = self.location_id
        return {"order": order}


@dataclass(frozen=True)
class PlacedOrder:
    """What ``POST /api/orders`` answers: keep ``id`` before doing anything else."""

    id: str
    load_balancer_ip: str | None


@dataclass(frozen=True)
class Order:
    """An order as read back. ``project_id`` is set as soon as the order is
    ``processing`` (ComputeStacks makes and links the project first) and stays
    when the order fails: a failed order leaves its project behind, with the
    services made before the failure, for someone to delete. It is None again
    once that project is deleted. It comes from ``project`` in the user API,
    ``deployment`` in the admin API.
    ``project_name`` is the project's name, or before the project exists the
    name the order asked for (``order_data``; the list views carry neither).
    ``location_id`` and ``user_id`` are None where the endpoint omits them."""

    id: str
    status: OrderStatus
    created_at: datetime
    project_id: int | None
    project_name: str | None
    location_id: int | None
    user_id: int | None


@dataclass(frozen=True)
class Project:
    """A project (deployment). ``current_state`` is ``working`` while an order
    is processing into it, ``alert`` when its latest order failed (a failed
    order leaves its project), ``deleting`` after a delete, else typically
    ``ok``. ``created_at`` is in UTC. ``user_id`` and ``user_external_id``
    come from the owner (``user``) the admin API adds; None in the user API
    and when the owner is left out."""

    id: int
    name: str
    current_state: str | None
    created_at: datetime | None = None
    user_id: int | None = None
    user_external_id: str | None = None


@dataclass(frozen=True)
class Service:
    """A container service, as ``GET /api/projects/{id}/services`` or the admin
    ``GET /api/admin/container_services?all=true`` lists it. ``project_id``
    comes from ``project`` (the deployment), ``image_id`` from ``image``,
    ``variant_id`` from ``image.variant``, ``product_id`` from ``product_id``
    (the package's product); each is None when the response leaves it out or
    null.

    ``current_state`` is ``working`` while an event runs on it (its order, a
    resize, a power action), ``alert`` when its latest event or the order
    that made it failed, ``active_alert``, ``unhealthy`` or
    ``resource_usage`` when monitoring says so, else ``online`` when a
    container is asked to run and ``inactive`` when none is; None when not
    sent. It says what the containers are asked to do, not what they do
    (read
    :meth:`~csonboard.computestacks.ComputeStacksClient.list_service_containers`
    for that).
    ``user_id`` and ``user_external_id`` come from the owner (``user``) the
    admin API adds; None in the user API."""

    id: int
    name: str
    label: str
    project_id: int | None
    image_id: int | None
    variant_id: int | None
    product_id: int | None
    current_state: str | None = None
    user_id: int | None = None
    user_external_id: str | None = None


@dataclass(frozen=True)
class Listing(Generic[T]):
    """Every row a paged list gave, each once (by id), and how many it said
    there are.

    ``total`` is the ``Total`` header of the last page read (None when the
    server sent none). ComputeStacks pages with ``LIMIT``/``OFFSET`` while
    rows come and go, and sorts some lists by keys that are not unique (a
    user's name, a service's label), whose ties PostgreSQL may order
    differently on each page: a row can then come on two pages (kept once)
    or on none. Then the list is read again as one page (see
    ``Transport.fetch_listing``); ``missed`` counts rows the server counted
    but neither read returned (0 when ``total`` is unknown): rows added while
    reading, or a server that ignores the page size."""

    rows: tuple[T, ...]
    total: int | None

    @property
    def missed(self) -> int:
        """``total`` minus the rows read, never below 0; 0 without ``total``."""
        if self.total is None:
            return 0
        return max(0, self.total - len(self.rows))


POWER_ACTIONS = ("start", "stop", "restart", "rebuild")
"""What ``PUT /api/container_services/{id}/power/{action}`` accepts."""


@dataclass(frozen=True)
class Container:
    """A container of a service, as ``GET /api/container_services/{id}/containers``
    lists it. ``service_id`` is the service asked about (the controller's
    container JSON carries neither its service's nor its project's id).

    ``req_state`` is the state asked for: ``running`` or ``stopped`` (a
    rebuild shows ``stopped`` until it is built and started again).
    ``current_state`` is what it is doing: ``online``, ``offline``,
    ``starting``/``stopping`` while a power action runs, or ``working``,
    ``unhealthy``, ``alert``, ``resource_usage``, ``migrating``; None when
    the controller could not tell (it sends an empty string)."""

    id: int
    name: str
    service_id: int
    req_state: str
    current_state: str | None
