"""The simulator's fixed catalog, read from the ``computestacks`` section of
the sandbox catalog: user groups, locations with regions, products (packages),
resource products (metered: bandwidth, storage, ...), images.

A malformed seed raises :class:`~csonboard.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from csonboard.errors import ConfigError


@dataclass(frozen=True)
class RegionSeed:
    """A region (availability zone) of a location, with its load balancer."""

    id: int
    name: str
    load_balancer_ip: str | None
    location_id: int


@dataclass(frozen=True)
class LocationSeed:
    """A location and its regions."""

    id: int
    name: str
    regions: tuple[RegionSeed, ...]


@dataclass(frozen=True)
class GroupSeed:
    """A user group: the regions its users may order in and its billing plan
    (``billing_plan_id``, ``billing_plan_name``: a record of its own, which a
    user's JSON shows as ``billing_plan``; the group's id and name when the
    catalog gives none, as an install's seeded ``default`` pair) with the
    plan's products."""

    id: int
    name: str
    is_default: bool
    region_ids: frozenset[int]
    product_ids: frozenset[int]
    billing_plan_id: int
    billing_plan_name: str


@dataclass(frozen=True)
class ProductSeed:
    """A package product; ``price`` and ``cpu`` are decimal strings as on the wire.
    ``group`` is the product's order-page group (``products.group``)."""

    id: int
    name: str
    price: str
    term: str
    cpu: str
    memory: int
    storage: int
    bandwidth: int
    region_ids: tuple[int, ...]
    group: str | None = None


RESOURCE_KINDS = frozenset(
    {"backup", "bandwidth", "cpu", "ipaddr", "memory", "storage", "local_disk"}
)
"""``products.resource_kind`` values (the controller's ``app/models/product.rb``)."""


@dataclass(frozen=True)
class ResourceProductSeed:
    """A product of kind ``resource``: metered usage such as bandwidth or
    storage, billed per ``unit`` of ``unit_type`` (``app/models/product.rb``).

    It has no package, so ``GET /api/products`` (packages only) never lists it
    and an order or resize naming it is refused. ``price`` is the per-unit
    rate of the billing plans that hold it, a decimal string; its term follows
    the controller's ``BillingResourcePrice#default_term``: ``month`` for an
    aggregated (bandwidth) product, billed per unit consumed without
    proration, else ``hour``, prorated by the hour.
    """

    id: int
    label: str
    resource_kind: str
    unit: int
    unit_type: str
    price: str
    group: str | None = None
    external_id: str | None = None

    @property
    def is_aggregated(self) -> bool:
        """``Product#set_aggregation``: true for bandwidth only."""
        return self.resource_kind == "bandwidth"

    @property
    def term(self) -> str:
        """The price's term (``BillingResourcePrice#default_term``)."""
        return "month" if self.is_aggregated else "hour"


@dataclass(frozen=True)
class ParamSeed:
    """A setting param of an image."""

    name: str
    label: str
    param_type: str
    value: str


@dataclass(frozen=True)
class VariantSeed:
    """An image variant; orders name images by variant id."""

    id: int
    label: str
    is_default: bool
    registry_image_tag: str


@dataclass(frozen=True)
class ImageSeed:
    """A container image with its minimums, dependencies, params and variants."""

    id: int
    label: str
    min_cpu: Decimal
    min_memory: int
    required_containers: tuple[int, ...]
    setting_params: tuple[ParamSeed, ...]
    variants: tuple[VariantSeed, ...]


@dataclass(frozen=True)
class Catalog:
    """Everything the simulator sells, indexed by id."""

    default_currency: str
    currencies: frozenset[str]
    locales: frozenset[str]
    groups: Mapping[int, GroupSeed]
    locations: Mapping[int, LocationSeed]
    regions: Mapping[int, RegionSeed]
    products: Mapping[int, ProductSeed]
    resources: Mapping[int, ResourceProductSeed]
    images: Mapping[int, ImageSeed]
    variants: Mapping[int, tuple[ImageSeed, VariantSeed]]
    max_containers: int | None

    def default_group(self) -> GroupSeed:
        """The group users land in when none is given."""
        return next(g for g in self.groups.values() if g.is_default)


class _Table:
    """Typed reads from one TOML table; failures name the key path."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(where, "must be a table")
        self.data: dict[str, Any] = data
        self.where = where

    def _get(self, key: str, kind: type | tuple[type, ...], default: object = None) -> Any:
        value = self.data.get(key, default)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ConfigError(f"{self.where}.{key}", f"must be {_kind_name(kind)}")
        return value

    def integer(self, key: str) -> int:
        value: int = self._get(key, int)
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value: str = self._get(key, str, default)
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value: bool = self._get(key, bool, default)
        return value

    def decimal(self, key: str) -> Decimal:
        value = self._get(key, (int, float, str))
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"{self.where}.{key}", "must be a number") from None

    def integers(self, key: str) -> tuple[int, ...]:
        values: list[object] = self._get(key, list, [])
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConfigError(f"{self.where}.{key}", "must be a list of integers")
        return tuple(v for v in values if isinstance(v, int))

    def tables(self, key: str) -> list[_Table]:
        values: list[object] = self._get(key, list, [])
        return [_Table(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(values)]


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", bool: "true or false", list: "a list"}
    if isinstance(kind, tuple):
        return "a number"
    return names.get(kind, kind.__name__)


def parse_catalog(section: object) -> Catalog:
    """Read the ``computestacks`` catalog section; ConfigError when malformed."""
    top = _Table(section, "computestacks")
    locations = {t.integer("id"): _location(t) for t in top.tables("locations")}
    regions = {r.id: r for loc in locations.values() for r in loc.regions}
    images = {t.integer("id"): _image(t) for t in top.tables("images")}
    catalog = Catalog(
        default_currency=top.text("default_currency", "USD"),
        currencies=frozenset(_strings(top, "currencies", ["USD"])),
        locales=frozenset(_strings(top, "locales", ["en"])),
        groups={t.integer("id"): _group(t) for t in top.tables("user_groups")},
        locations=locations,
        regions=regions,
        products={t.integer("id"): _product(t) for t in top.tables("products")},
        resources={t.integer("id"): _resource(t) for t in top.tables("resource_products")},
        images=images,
        variants={v.id: (image, v) for image in images.values() for v in image.variants},
        max_containers=top.integer("max_containers") if "max_containers" in top.data else None,
    )
    if sum(g.is_default for g in catalog.groups.values()) != 1:
        raise ConfigError("computestacks.user_groups", "exactly one group must be is_default")
    if set(catalog.products) & set(catalog.resources):
        # Packages and resources are rows of the same products table.
        raise ConfigError("computestacks.resource_products", "ids must differ from products ids")
    return catalog


def _strings(table: _Table, key: str, default: list[str]) -> list[str]:
    values: list[object] = table._get(key, list, default)
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{table.where}.{key}", "must be a list of strings")
    return [str(v) for v in values]


def _location(t: _Table) -> LocationSeed:
    location_id = t.integer("id")
    regions = tuple(
        RegionSeed(
            id=r.integer("id"),
            name=r.text("name"),
            load_balancer_ip=r.data.get("load_balancer_ip"),
            location_id=location_id,
        )
        for r in t.tables("regions")
    )
    return LocationSeed(id=location_id, name=t.text("name"), regions=regions)


def _group(t: _Table) -> GroupSeed:
    group_id, name = t.integer("id"), t.text("name")
    plan_id = t.integer("billing_plan_id") if "billing_plan_id" in t.data else group_id
    return GroupSeed(
        id=group_id,
        name=name,
        is_default=t.flag("is_default"),
        region_ids=frozenset(t.integers("regions")),
        product_ids=frozenset(t.integers("billing_plan_products")),
        billing_plan_id=plan_id,
        billing_plan_name=t.text("billing_plan_name", name),
    )


def _product(t: _Table) -> ProductSeed:
    return ProductSeed(
        id=t.integer("id"),
        name=t.text("name"),
        price=str(t.decimal("price")),
        term=t.text("term", "month"),
        cpu=str(t.decimal("cpu")),
        memory=t.integer("memory"),
        storage=t.integer("storage"),
        bandwidth=t.integer("bandwidth"),
        region_ids=t.integers("regions"),
        group=_optional_text(t, "group"),
    )


def _resource(t: _Table) -> ResourceProductSeed:
    kind = t.text("resource_kind")
    if kind not in RESOURCE_KINDS:
        raise ConfigError(f"{t.where}.resource_kind", f"must be one of {sorted(RESOURCE_KINDS)}")
    unit = t.integer("unit")
    if unit <= 0:
        raise ConfigError(f"{t.where}.unit", "must be greater than 0")
    unit_type = t.text("unit_type")
    if not unit_type.strip():
        raise ConfigError(f"{t.where}.unit_type", "must not be blank")
    return ResourceProductSeed(
        id=t.integer("id"),
        label=t.text("label"),
        resource_kind=kind,
        unit=unit,
        unit_type=unit_type,
        price=str(t.decimal("price")),
        group=_optional_text(t, "group"),
        external_id=_optional_text(t, "external_id"),
    )


def _optional_text(t: _Table, key: str) -> str | None:
    return t.text(key) if key in t.data else None


def _image(t: _Table) -> ImageSeed:
    params = tuple(
        ParamSeed(
            name=p.text("name"),
            label=p.text("label", ""),
            param_type=p.text("param_type", "static"),
            value=p.text("value", ""),
        )
        for p in t.tables("setting_params")
    )
    variants = tuple(
        VariantSeed(
            id=v.integer("id"),
            label=v.text("label"),
            is_default=v.flag("is_default"),
            registry_image_tag=v.text("registry_image_tag", v.text("label")),
        )
        for v in t.tables("variants")
    )
    return ImageSeed(
        id=t.integer("id"),
        label=t.text("label"),
        min_cpu=t.decimal("min_cpu"),
        min_memory=t.integer("min_memory"),
        required_containers=t.integers("required_containers"),
        setting_params=params,
        variants=variants,
    )
