"""``csonboard plans check``: the plan catalog against live ComputeStacks and Stripe.

The catalog loader (``csonboard.plans``) checks the file's shape; this checks
that what it names exists and would be accepted by an order:

ComputeStacks (admin credential; every call is a GET):
- the location exists;
- each container's product is in the billing plan and sold in a region of the
  plan's location, and is big enough for the image (min CPU and memory);
- each ``image_id`` exists and lists variants; each ``image_variant_id`` exists;
- each setting param named exists on the image (ComputeStacks silently ignores
  unknown ones, so a misspelt param is never set);
- every image an image requires has a container in the same plan
  (ComputeStacks refuses the order otherwise and does not add them itself).

Stripe (when a key is set; every call is a read):
- each price id exists and is active; each lookup key belongs to an active
  price; each product id exists and is active.

Usage billing (``[[usage]]`` and ``[[plans.NAME.usage]]``), when the catalog
bills any, by :mod:`.usage_check`: each ``product_id`` is an existing product
(a package is a warning), each ``resource_kind`` is recorded by some product,
each ``meter`` is the event name of an active Stripe meter (when a key is set),
and a plan whose customers get no usage entry at all is a warning.

Products are listed as the admin credential sees them, i.e. in the billing
plan of the admin's user group; ComputeStacks offers no way to read another
group's. For a plan with its own ``user_group_id``, a product the admin does
not see is therefore a warning, not a problem. (Usage entries are checked
against every product, of any plan, through the admin API.)

Failure policy: each finding is a :class:`Problem` naming the plan and key; a
credential refused by either side is a ConfigError (the settings are wrong,
not the catalog), and so is a ``cs.url`` that answers like something other
than the ComputeStacks API (the client raises that one itself, so an HTML 404
is never read as "image does not exist"); outages raise their transient errors.
"""

from __future__ import annotations

from csonboard.computestacks import ComputeStacksClient, ContainerImage, Location, Product
from csonboard.errors import ComputeStacksNotFound
from csonboard.operations.findings import Problem, admin_credential, some
from csonboard.operations.usage_check import check_usage
from csonboard.plans import Catalog, Container, Plan
from csonboard.stripe_api import StripeGateway

__all__ = ["Problem", "check_catalog", "check_computestacks", "check_stripe"]


def check_catalog(
    catalog: Catalog,
    cs: ComputeStacksClient,
    stripe: StripeGateway | None = None,
    *,
    mode: str = "test",
) -> list[Problem]:
    """Every problem found, in catalog order: the plans (ComputeStacks first,
    then Stripe), then the usage entries (see :func:`.usage_check.check_usage`)."""
    problems = check_computestacks(catalog, cs)
    if stripe is not None:
        problems += check_stripe(catalog, stripe, mode=mode)
    return problems + check_usage(catalog, cs, stripe, mode=mode)


# -- ComputeStacks --------------------------------------------------------------------------


def check_computestacks(catalog: Catalog, cs: ComputeStacksClient) -> list[Problem]:
    with admin_credential():
        locations = {location.id: location for location in cs.list_locations()}
        products: dict[int, list[Product]] = {}
        for row in cs.list_products():
            products.setdefault(row.id, []).append(row)
        images = _Images(cs)
        problems: list[Problem] = []
        for plan in catalog.plans.values():
            problems += _check_plan(plan, locations, products, images)
        return problems


def _check_plan(
    plan: Plan,
    locations: dict[int, Location],
    products: dict[int, list[Product]],
    images: _Images,
) -> list[Problem]:
    base = f"plans.{plan.name}"
    problems = []
    location = locations.get(plan.location_id)
    if location is None:
        known = some(f"{loc.id} {loc.name}" for loc in locations.values())
        problems.append(
            Problem(
                f"{base}.location_id",
                f"location {plan.location_id} does not exist in ComputeStacks (there: {known})",
            )
        )
    in_plan: dict[int, int] = {}  # image id -> index of the container running it
    for index, container in enumerate(plan.containers):
        key = f"{base}.containers[{index}]"
        rows = products.get(container.product_id)
        problems += _check_product(plan, key, container, rows, location, products)
        image, image_problems = _image_of(key, container, images)
        problems += image_problems
        if image is None:
            continue
        in_plan.setdefault(image.id, index)
        problems += _check_params(key, container, image)
        if rows and (rows[0].cpu < image.min_cpu or rows[0].memory < image.min_memory):
            problems.append(
                Problem(
                    f"{key}.product_id",
                    f"product {rows[0].id} {rows[0].name} ({rows[0].cpu} CPU, "
                    f"{rows[0].memory} MB) is too small for image {image.id} {image.label} "
                    f"(it needs {image.min_cpu} CPU, {image.min_memory} MB)",
                )
            )
    for image_id, index in in_plan.items():
        image = images.get(image_id)
        for needed in image.required_containers if image else ():
            if needed not in in_plan:
                other = images.get(needed)
                problems.append(
                    Problem(
                        f"{base}.containers[{index}]",
                        f"image {image_id} {image.label if image else ''} requires image "
                        f"{needed}{f' {other.label}' if other else ''}: add a container "
                        "running it to the plan (ComputeStacks does not add it)",
                    )
                )
    return problems


def _check_product(
    plan: Plan,
    key: str,
    container: Container,
    rows: list[Product] | None,
    location: Location | None,
    products: dict[int, list[Product]],
) -> list[Problem]:
    product_id = container.product_id
    if rows is None:
        known = some(f"{pid} {r[0].name}" for pid, r in sorted(products.items()))
        if plan.user_group_id is not None:
            return [
                Problem(
                    f"{key}.product_id",
                    f"product {product_id} is not in the admin's billing plan, so it cannot be "
                    f"checked for user group {plan.user_group_id}",
                    warning=True,
                )
            ]
        return [
            Problem(
                f"{key}.product_id",
                f"product {product_id} is not in the billing plan (products there: {known})",
            )
        ]
    if location is None:
        return []
    sold_in = {row.region_id for row in rows}
    regions = {region.id for region in location.regions}
    if sold_in & regions:
        return []
    return [
        Problem(
            f"{key}.product_id",
            f"product {product_id} {rows[0].name} is not sold in any region of location "
            f"{location.id} {location.name} (its regions: {_ids(regions)}; the product's: "
            f"{_ids(sold_in)})",
        )
    ]


def _image_of(
    key: str, container: Container, images: _Images
) -> tuple[ContainerImage | None, list[Problem]]:
    if container.image_id is not None:
        image = images.get(container.image_id)
        if image is None:
            message = f"image {container.image_id} does not exist in ComputeStacks"
            return None, [Problem(f"{key}.image_id", message)]
        if not image.variants:
            message = (
                f"image {image.id} {image.label} lists no variants: name one with image_variant_id"
            )
            return image, [Problem(f"{key}.image_id", message)]
        return image, []
    assert container.image_variant_id is not None
    image = images.owner_of(container.image_variant_id)
    if image is None:
        message = f"image variant {container.image_variant_id} does not exist in ComputeStacks"
        return None, [Problem(f"{key}.image_variant_id", message)]
    return image, []


def _check_params(key: str, container: Container, image: ContainerImage) -> list[Problem]:
    names = {param.name for param in image.setting_params}
    return [
        Problem(
            f"{key}.params.{name}",
            f"image {image.id} {image.label} has no setting param {name!r} (its settings: "
            f"{some(sorted(names))}); ComputeStacks would ignore it",
        )
        for name in container.params
        if name not in names
    ]


class _Images:
    """Admin reads of images, each at most once; variant ids are found by
    reading every image only when one is not among the images read so far."""

    def __init__(self, cs: ComputeStacksClient) -> None:
        self._cs = cs
        self._by_id: dict[int, ContainerImage | None] = {}
        self._read_all = False

    def get(self, image_id: int) -> ContainerImage | None:
        if image_id not in self._by_id:
            try:
                self._by_id[image_id] = self._cs.get_admin_image(image_id)
            except ComputeStacksNotFound:
                self._by_id[image_id] = None
        return self._by_id[image_id]

    def owner_of(self, variant_id: int) -> ContainerImage | None:
        found = self._owner(variant_id)
        if found is None and not self._read_all:
            self._read_all = True
            for image_id in _image_ids(self._cs):
                self.get(image_id)
            found = self._owner(variant_id)
        return found

    def _owner(self, variant_id: int) -> ContainerImage | None:
        for image in self._by_id.values():
            if image is not None and any(v.id == variant_id for v in image.variants):
                return image
        return None


def _image_ids(cs: ComputeStacksClient) -> list[int]:
    """Ids of every image the admin can see."""
    return [image.id for image in cs.list_images()]


# -- Stripe ---------------------------------------------------------------------------------


def check_stripe(catalog: Catalog, stripe: StripeGateway, *, mode: str = "test") -> list[Problem]:
    problems: list[Problem] = []
    keys = [k for plan in catalog.plans.values() for k in plan.match.lookup_keys]
    by_key = stripe.prices_by_lookup_key(keys) if keys else {}
    for plan in catalog.plans.values():
        match = f"plans.{plan.name}.match"
        for price_id in plan.match.price_ids:
            price = stripe.price(price_id)
            if price is None:
                message = f"price {price_id} does not exist in Stripe ({mode} mode)"
                problems.append(Problem(f"{match}.price_ids", message))
            elif not price.active:
                message = f"price {price_id} is archived (active: false): Checkout cannot sell it"
                problems.append(Problem(f"{match}.price_ids", message))
        for key in plan.match.lookup_keys:
            prices = by_key.get(key, [])
            if not prices:
                message = f"lookup key {key!r} belongs to no Stripe price ({mode} mode)"
                problems.append(Problem(f"{match}.lookup_keys", message))
            elif not any(price.active for price in prices):
                archived = ", ".join(price.id for price in prices)
                message = f"lookup key {key!r} belongs only to archived price(s) {archived}"
                problems.append(Problem(f"{match}.lookup_keys", message))
        for product_id in plan.match.product_ids:
            product = stripe.product(product_id)
            if product is None:
                message = f"product {product_id} does not exist in Stripe ({mode} mode)"
                problems.append(Problem(f"{match}.product_ids", message))
            elif not product.active:
                message = f"product {product_id} {product.name!r} is archived (active: false)"
                problems.append(Problem(f"{match}.product_ids", message))
    return problems


def _ids(values: set[int]) -> str:
    return ", ".join(str(v) for v in sorted(values)) or "none"
