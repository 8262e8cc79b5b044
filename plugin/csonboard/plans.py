"""The plan catalog: what a Stripe price buys in ComputeStacks.

A TOML file (``plans`` setting, ``config/plans.example.toml``)::

    [plans.wordpress]
    match = { lookup_keys = ["wordpress-monthly"] }   # and/or price_ids, product_ids
    location_id = 1
    project_name = "{customer_name}'s WordPress"
    [[plans.wordpress.containers]]
    name = "wordpress"
    image_variant_id = 1000        # or image_id = 100: that image's default variant
    product_id = 11
    params = { title = "My WordPress" }

A line item matches a plan by its price id first, then its price's lookup key,
then its product id. Each unit of a line item becomes one project unless the
plan says ``projects = "per_line_item"``.

Usage (``[[usage]]`` for every customer, ``[[plans.NAME.usage]]`` for a plan's
customers, which wins for the same resource) names which ComputeStacks usage is
billed through which Stripe meter::

    [[usage]]
    resource_kind = "bandwidth"          # or product_id = 7
    meter = "computestacks_bandwidth_gb" # the meter's event_name
    multiply = 1                         # optional: value = quantity x multiply

Failure policy: :func:`load_catalog` raises ConfigError naming the plan and the
key (``plans.wordpress.containers[1].product_id: Field required``). A price that
matches no plan is not an error here; the onboarding dead-letters it with a
message that names the price, fixable by editing the catalog and replaying.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from csonboard.errors import ConfigError

# The fields a project-name template may use, with an example of each.
NAME_FIELDS = {
    "plan": "wordpress",
    "customer_name": "Ada Lovelace",
    "customer_email": "ada@example.com",
    "session_id": "cs_test_a1b2c3",
    "session_tag": "a1b2c3",
    "unit": "1",
    "units": "2",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which Stripe line items a plan sells; at least one list must be non-empty."""

    price_ids: tuple[str, ...] = ()
    lookup_keys: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not (self.price_ids or self.lookup_keys or self.product_ids):
            raise ValueError("give at least one of price_ids, lookup_keys, product_ids")
        return self


class Container(_Strict):
    """One service of the project. Exactly one of image_variant_id and image_id."""

    name: str = Field(min_length=1, max_length=100)
    image_variant_id: int | None = Field(default=None, gt=0)
    image_id: int | None = Field(default=None, gt=0)
    product_id: int = Field(gt=0)
    params: Mapping[str, str] = {}
    domains: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_image(self) -> Container:
        if (self.image_variant_id is None) == (self.image_id is None):
            raise ValueError("give exactly one of image_variant_id and image_id")
        return self


RESOURCE_KINDS = ("backup", "bandwidth", "cpu", "ipaddr", "local_disk", "memory", "storage")
"""The ``resource_kind`` values of ComputeStacks' resource products (``app/models/product.rb``)."""


class Usage(_Strict):
    """Which ComputeStacks usage goes to which Stripe meter. Exactly one of
    ``product_id`` (a ComputeStacks product) and ``resource_kind``.

    ``quantity`` is the usage row's field to bill: ``qty`` (default), what was
    used beyond the package, or ``qty_total``, everything used. The value sent
    is that quantity times ``multiply`` (a unit conversion, e.g. 1024 for GB to
    MB), as a decimal string.
    """

    meter: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    product_id: int | None = Field(default=None, gt=0)
    resource_kind: Literal[RESOURCE_KINDS] | None = None  # type: ignore[valid-type]
    quantity: Literal["qty", "qty_total"] = "qty"
    multiply: Decimal = Field(default=Decimal(1), gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_resource(self) -> Usage:
        if (self.product_id is None) == (self.resource_kind is None):
            raise ValueError("give exactly one of product_id and resource_kind")
        return self

    def takes(self, product_id: int | None, resource_kind: str | None) -> bool:
        """Whether a usage row of this product is billed through this entry."""
        if self.product_id is not None:
            return product_id is not None and product_id == self.product_id
        return resource_kind is not None and resource_kind == self.resource_kind


def _usage_key(entry: Usage) -> tuple[str, object]:
    return ("product_id", entry.product_id) if entry.product_id else ("kind", entry.resource_kind)


def _no_repeats(entries: Sequence[Usage]) -> Sequence[Usage]:
    seen: set[tuple[str, object]] = set()
    for entry in entries:
        key = _usage_key(entry)
        if key in seen:
            raise ValueError(f"{key[0]} {key[1]!r} is billed twice; name each resource once")
        seen.add(key)
    return entries


def _plain_fields(template: str) -> None:
    """Refuse ``{customer_name[5]}`` and ``{plan.attr}``: they render for the
    sample name and fail for a buyer whose name is shorter."""
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is not None and not field.isidentifier():
            raise ValueError(f"field {{{field}}}: use a plain field name, no [index] or .attribute")
        if spec:
            _plain_fields(spec)


class Plan(_Strict):
    name: str
    description: str = ""
    match: Match
    location_id: int = Field(gt=0)
    user_group_id: int | None = Field(default=None, gt=0)
    project_name: str = "{plan} {session_tag}-{unit}"
    projects: Literal["per_unit", "per_line_item"] = "per_unit"
    containers: tuple[Container, ...] = Field(min_length=1)
    usage: tuple[Usage, ...] = ()

    @field_validator("usage")
    @classmethod
    def _usage_once(cls, entries: tuple[Usage, ...]) -> tuple[Usage, ...]:
        return tuple(_no_repeats(entries))

    @field_validator("project_name")
    @classmethod
    def _known_fields(cls, template: str) -> str:
        # Rendering with sample values is the check: it also reaches fields
        # nested inside a format spec ("{plan:{width}}"), which parsing alone misses.
        try:
            _plain_fields(template)
            rendered = template.format_map(NAME_FIELDS)
        except KeyError as exc:
            raise ValueError(
                f"unknown field {{{exc.args[0]}}}; use {', '.join(sorted(NAME_FIELDS))}"
            ) from None
        except (ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        if not rendered.strip():
            raise ValueError("renders as an empty name")
        return template

    def project_name_for(self, **values: str) -> str:
        """Render the project-name template: whitespace collapsed, at most 100
        characters, the plan's name if nothing is left (ComputeStacks needs one).
        Fields not given render empty."""
        fields = {**dict.fromkeys(NAME_FIELDS, ""), "plan": self.name}
        fields.update({k: v.strip() for k, v in values.items()})
        rendered = " ".join(self.project_name.format_map(fields).split())
        return rendered[:100].rstrip() or self.name


class Catalog(_Strict):
    """All plans, by name. No Stripe id may be claimed by two plans."""

    plans: Mapping[str, Plan]
    usage: tuple[Usage, ...] = ()
    """Usage billed for every customer (a plan's own entries win)."""
    source: str = ""

    @field_validator("usage")
    @classmethod
    def _usage_once(cls, entries: tuple[Usage, ...]) -> tuple[Usage, ...]:
        return tuple(_no_repeats(entries))

    @property
    def bills_usage(self) -> bool:
        """Whether any usage is billed at all (else the usage sync has nothing to do)."""
        return bool(self.usage) or any(plan.usage for plan in self.plans.values())

    def usage_for(self, plan_names: Sequence[str]) -> list[Usage]:
        """The entries that bill a customer holding ``plan_names``, in the order a
        usage row is matched against them (the first that takes it wins): the
        plans' own entries before the catalog's, and by product before by
        resource kind. Two plans billing the same resource differently is
        ambiguous: raises ValueError naming it."""
        own: dict[tuple[str, object], Usage] = {}
        for name in dict.fromkeys(plan_names):
            plan = self.plans.get(name)
            for entry in plan.usage if plan else ():
                key = _usage_key(entry)
                if own.setdefault(key, entry) != entry:
                    raise ValueError(
                        f"{key[0]} {key[1]!r} is billed differently by the plans "
                        f"{', '.join(sorted(set(plan_names)))}"
                    )
        shared = [e for e in self.usage if _usage_key(e) not in own]

        def by_product_first(entries: Sequence[Usage]) -> list[Usage]:
            return sorted(entries, key=lambda e: e.product_id is None)

        return [*by_product_first(list(own.values())), *by_product_first(shared)]

    @model_validator(mode="before")
    @classmethod
    def _name_plans(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("plans"), dict):
            named = {
                name: {**plan, "name": name} if isinstance(plan, dict) else plan
                for name, plan in data["plans"].items()
            }
            return {**data, "plans": named}
        return data

    @model_validator(mode="after")
    def _no_shared_ids(self) -> Catalog:
        owners: dict[tuple[str, str], str] = {}
        for plan in self.plans.values():
            for kind in ("price_ids", "lookup_keys", "product_ids"):
                for ident in getattr(plan.match, kind):
                    other = owners.setdefault((kind, ident), plan.name)
                    if other != plan.name:
                        raise ValueError(
                            f"{kind} {ident!r} is claimed by both {other!r} and {plan.name!r}"
                        )
        return self

    def match(
        self, price_id: str | None, lookup_key: str | None, product_id: str | None
    ) -> Plan | None:
        """The plan selling this line item: by price id, then lookup key, then product."""
        for kind, ident in (
            ("price_ids", price_id),
            ("lookup_keys", lookup_key),
            ("product_ids", product_id),
        ):
            if ident:
                for plan in self.plans.values():
                    if ident in getattr(plan.match, kind):
                        return plan
        return None


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog at ``path``; raises ConfigError naming the
    plan and key at fault."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError("plans", f"catalog not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("plans", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("plans", f"{path} is not valid TOML: {exc}") from None
    if not isinstance(data.get("plans"), dict) or not data["plans"]:
        raise ConfigError("plans", f"{path} defines no [plans.NAME] table")
    unknown = set(data) - {"plans", "usage"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], f"unknown top-level key in {path}")
    try:
        return Catalog.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        first = exc.errors()[0]
        return _raise(first["loc"], first["msg"], path)


def _raise(loc: tuple[int | str, ...], message: str, path: Path) -> Catalog:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    raise ConfigError(key or "plans", f"{message.removeprefix('Value error, ')} (in {path})")
