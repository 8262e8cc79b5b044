"""``csonboard plans check`` for usage billing: the catalog's ``[[usage]]`` and
``[[plans.NAME.usage]]`` entries against live ComputeStacks and Stripe.

Made only when the catalog bills usage at all; every call is a read.

ComputeStacks (admin credential, ``GET /api/admin/products``: every product,
whatever billing plan holds it):
- each ``product_id`` is an existing product. A package product is a warning:
  ComputeStacks records a package's usage as the package itself (one row a
  month for a monthly price), not as what was used beyond it;
- each ``resource_kind`` is recorded by at least one product (ComputeStacks
  writes usage rows only for the products it has).

Stripe (when a key is set): each ``meter`` is the ``event_name`` of a meter
that exists and is active (Stripe refuses events for an inactive one), and
reads the payload keys csonboard sends (``stripe_customer_id``, ``value``).

Coverage: when the catalog bills any usage, a plan whose customers get no
entry (none of its own and no catalog-wide ones) is a warning: their usage is
never billed.

Findings come in this order: ComputeStacks, Stripe, coverage; within each,
the catalog-wide entries (``usage[0].meter``), then each plan's
(``plans.wordpress.usage[1].resource_kind``). Failure policy as in
:mod:`.catalog_check`: a refused credential is a ConfigError, outages raise
their transient errors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from csonboard.computestacks import AdminProduct, ComputeStacksClient
from csonboard.operations.findings import Problem, admin_credential, some
from csonboard.plans import Catalog, Usage
from csonboard.stripe_api import StripeGateway
from csonboard.stripe_api.records import MeterSummary

PAYLOAD_KEYS = ("stripe_customer_id", "value")
"""The meter event payload keys csonboard sends: Stripe's defaults."""


def check_usage(
    catalog: Catalog,
    cs: ComputeStacksClient,
    stripe: StripeGateway | None = None,
    *,
    mode: str = "test",
) -> list[Problem]:
    """Every finding about the catalog's usage entries; none, and no call made,
    when it bills no usage."""
    if not catalog.bills_usage:
        return []
    entries = list(_entries(catalog))
    with admin_credential():
        products = cs.list_admin_products()
    problems = [p for key, entry in entries for p in _check_product(key, entry, products)]
    if stripe is not None:
        meters = stripe.meters()
        problems += [p for key, entry in entries for p in _check_meter(key, entry, meters, mode)]
    return problems + _check_coverage(catalog)


def _entries(catalog: Catalog) -> Iterator[tuple[str, Usage]]:
    """Each entry with its key: catalog-wide first, then each plan's."""
    for index, entry in enumerate(catalog.usage):
        yield f"usage[{index}]", entry
    for plan in catalog.plans.values():
        for index, entry in enumerate(plan.usage):
            yield f"plans.{plan.name}.usage[{index}]", entry


# -- ComputeStacks --------------------------------------------------------------------------


def _check_product(key: str, entry: Usage, products: Sequence[AdminProduct]) -> list[Problem]:
    recording = some(
        f"{p.id} {p.label} ({p.resource_kind})" for p in products if p.resource_kind is not None
    )
    if entry.resource_kind is not None:
        if any(p.resource_kind == entry.resource_kind for p in products):
            return []
        message = (
            f"no ComputeStacks product records {entry.resource_kind} usage "
            f"(products recording usage: {recording})"
        )
        return [Problem(f"{key}.resource_kind", message)]
    product = next((p for p in products if p.id == entry.product_id), None)
    if product is None:
        known = some(_named(p) for p in products)
        message = (
            f"product {entry.product_id} does not exist in ComputeStacks (products there: {known})"
        )
        return [Problem(f"{key}.product_id", message)]
    if product.is_package:
        message = (
            f"product {product.id} {product.label} is a package: its usage rows bill the "
            "package itself, one a month, not what was used beyond it (products recording "
            f"usage: {recording})"
        )
        return [Problem(f"{key}.product_id", message, warning=True)]
    return []


def _named(product: AdminProduct) -> str:
    kind = "package" if product.is_package else product.resource_kind
    return f"{product.id} {product.label}" + (f" ({kind})" if kind else "")


# -- Stripe ---------------------------------------------------------------------------------


def _check_meter(
    key: str, entry: Usage, meters: Sequence[MeterSummary], mode: str
) -> list[Problem]:
    named = [m for m in meters if m.event_name == entry.meter]
    active = [m for m in named if m.status == "active"]
    if active:
        meter = active[0]
        if (meter.customer_key, meter.value_key) == PAYLOAD_KEYS:
            return []
        message = (
            f"meter {meter.id} {meter.display_name!r} reads the customer from "
            f"{meter.customer_key!r} and the value from {meter.value_key!r}; csonboard sends "
            f"{PAYLOAD_KEYS[0]!r} and {PAYLOAD_KEYS[1]!r} (Stripe's defaults): Stripe would "
            "refuse every event"
        )
        return [Problem(f"{key}.meter", message)]
    if not named:
        known = some(
            f"{m.event_name} ({m.display_name}{'' if m.status == 'active' else ', inactive'})"
            for m in meters
        )
        message = (
            f"no Stripe meter has the event_name {entry.meter!r} ({mode} mode; its meters: {known})"
        )
        return [Problem(f"{key}.meter", message)]
    meter = named[0]
    message = (
        f"meter {meter.id} {meter.display_name!r} (event_name {entry.meter!r}) is "
        f"{meter.status}: Stripe refuses its events; reactivate it or name an active meter"
    )
    return [Problem(f"{key}.meter", message)]


# -- coverage -------------------------------------------------------------------------------


def _check_coverage(catalog: Catalog) -> list[Problem]:
    if catalog.usage:
        return []  # every customer gets the catalog-wide entries
    return [
        Problem(
            f"plans.{plan.name}.usage",
            "the plan bills no usage and the catalog has no [[usage]] for every customer: "
            "its customers' usage is never billed",
            warning=True,
        )
        for plan in catalog.plans.values()
        if not plan.usage
    ]
