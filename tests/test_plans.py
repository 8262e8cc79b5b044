"""The plan catalog (``csonboard.plans``): loading, matching, project names, the
one-line ConfigError an operator gets for each kind of mistake, and the promise
that ``config/plans.example.toml`` sells exactly what the sandbox seed offers."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from csonboard.errors import ConfigError
from csonboard.plans import Catalog, Plan, load_catalog
from csonboard.sandbox.catalog import load_catalog as load_sandbox_seed

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "plans.example.toml"
UNMAPPED_PRODUCT = "prod_sandbox_unmapped"

CONTAINER = """
[[plans.web.containers]]
name = "nginx"
image_variant_id = 1020
product_id = 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plans.toml"
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def web_plan(*, plan_lines: str = "", container: str = CONTAINER) -> str:
    """A valid one-plan catalog, with extra lines in the plan table."""
    return (
        '[plans.web]\nmatch = { price_ids = ["price_web"] }\nlocation_id = 1\n'
        f"{textwrap.dedent(plan_lines)}{textwrap.dedent(container)}"
    )


def load(tmp_path: Path, text: str) -> Catalog:
    return load_catalog(write(tmp_path, text))


def plan_named(tmp_path: Path, plan_lines: str) -> Plan:
    return load(tmp_path, web_plan(plan_lines=plan_lines)).plans["web"]


# -- the example catalog --------------------------------------------------------------


def test_example_catalog_loads_with_its_plans() -> None:
    catalog = load_catalog(EXAMPLE)

    assert sorted(catalog.plans) == ["static-site", "wordpress", "wordpress-plus"]
    assert catalog.source == str(EXAMPLE)
    wordpress = catalog.plans["wordpress"]
    assert wordpress.name == "wordpress"
    assert [c.name for c in wordpress.containers] == ["wordpress", "mariadb"]
    assert (wordpress.containers[0].image_variant_id, wordpress.containers[0].image_id) == (
        1000,
        None,
    )
    assert (wordpress.containers[1].image_variant_id, wordpress.containers[1].image_id) == (
        None,
        101,
    )
    assert dict(wordpress.containers[0].params) == {"title": "My WordPress"}
    assert wordpress.projects == "per_unit"


# -- matching ---------------------------------------------------------------------------

PRECEDENCE = """
# Listed product first, so that file order cannot be what decides.
[plans.by-product]
match = { product_ids = ["prod_1"] }
location_id = 1
[[plans.by-product.containers]]
name = "a"
image_variant_id = 1
product_id = 1

[plans.by-key]
match = { lookup_keys = ["monthly"] }
location_id = 1
[[plans.by-key.containers]]
name = "a"
image_variant_id = 1
product_id = 1

[plans.by-price]
match = { price_ids = ["price_1"] }
location_id = 1
[[plans.by-price.containers]]
name = "a"
image_variant_id = 1
product_id = 1
"""


@pytest.mark.parametrize(
    ("price_id", "lookup_key", "product_id", "expected"),
    [
        ("price_1", "monthly", "prod_1", "by-price"),
        ("price_2", "monthly", "prod_1", "by-key"),
        ("price_2", "yearly", "prod_1", "by-product"),
        (None, None, "prod_1", "by-product"),
        ("", "", "prod_1", "by-product"),
        (None, "monthly", None, "by-key"),
        ("price_2", "yearly", "prod_2", None),
        (None, None, None, None),
    ],
)
def test_price_id_beats_lookup_key_beats_product(
    tmp_path: Path,
    price_id: str | None,
    lookup_key: str | None,
    product_id: str | None,
    expected: str | None,
) -> None:
    catalog = load(tmp_path, PRECEDENCE)

    plan = catalog.match(price_id, lookup_key, product_id)

    assert (plan.name if plan else None) == expected


def test_projects_default_per_unit_and_per_line_item_is_kept(tmp_path: Path) -> None:
    assert plan_named(tmp_path, "").projects == "per_unit"
    assert plan_named(tmp_path, 'projects = "per_line_item"').projects == "per_line_item"


# -- project names -------------------------------------------------------------------------


def test_project_name_renders_customer_fields(tmp_path: Path) -> None:
    plan = plan_named(
        tmp_path, 'project_name = "{customer_name}\'s {plan} ({customer_email}) {unit}/{units}"'
    )

    name = plan.project_name_for(
        customer_name="Grace Hopper",
        customer_email="grace@example.com",
        session_id="cs_test_xyz",
        session_tag="st_xyz",
        unit="2",
        units="3",
    )

    assert name == "Grace Hopper's web (grace@example.com) 2/3"


def test_default_project_name_uses_plan_session_tag_and_unit(tmp_path: Path) -> None:
    plan = plan_named(tmp_path, "")

    assert plan.project_name_for(session_tag="q1w2e3", unit="4") == "web q1w2e3-4"


def test_project_name_collapses_whitespace_and_trims_to_100_characters(tmp_path: Path) -> None:
    plan = plan_named(tmp_path, 'project_name = "  {customer_name}\'s   site "')

    spaced = plan.project_name_for(customer_name="Grace \n\t Hopper")
    long = plan.project_name_for(customer_name="x" * 300)

    assert spaced == "Grace Hopper's site"
    assert long == "x" * 100


def test_braces_in_customer_values_are_not_template_fields(tmp_path: Path) -> None:
    plan = plan_named(tmp_path, 'project_name = "{customer_name} site"')

    assert plan.project_name_for(customer_name="{session_id}") == "{session_id} site"


def test_a_blank_rendered_name_falls_back_to_the_plan_name(tmp_path: Path) -> None:
    plan = plan_named(tmp_path, 'project_name = "{customer_name}"')

    assert plan.project_name_for(customer_name=" \t ") == "web"


# -- bad catalogs ---------------------------------------------------------------------------

TWO_CONTAINERS_SECOND_WITHOUT_PRODUCT = """
[plans.wordpress]
match = { lookup_keys = ["wordpress-monthly"] }
location_id = 1
[[plans.wordpress.containers]]
name = "wordpress"
image_variant_id = 1000
product_id = 11
[[plans.wordpress.containers]]
name = "mariadb"
image_id = 101
"""

SHARED_LOOKUP_KEY = """
[plans.alpha]
match = { lookup_keys = ["shared-key"] }
location_id = 1
[[plans.alpha.containers]]
name = "a"
image_variant_id = 1
product_id = 1

[plans.beta]
match = { price_ids = ["price_beta"], lookup_keys = ["shared-key"] }
location_id = 1
[[plans.beta.containers]]
name = "b"
image_variant_id = 1
product_id = 1
"""


def container(lines: str) -> str:
    return f'\n[[plans.web.containers]]\nname = "nginx"\n{textwrap.dedent(lines)}'


BAD_CATALOGS: list[Any] = [
    pytest.param("[plans.web\nlocation_id = 1\n", "plans", "is not valid TOML", id="invalid-toml"),
    pytest.param("", "plans", "defines no [plans.NAME] table", id="empty-file"),
    pytest.param("[other]\nx = 1\n", "plans", "defines no [plans.NAME] table", id="no-plans"),
    pytest.param("plans = {}\n", "plans", "defines no [plans.NAME] table", id="empty-plans"),
    pytest.param(
        'colour = "blue"\n' + web_plan(), "colour", "unknown top-level key", id="top-level-key"
    ),
    pytest.param(
        web_plan(plan_lines='colour = "blue"\n'),
        "plans.web.colour",
        "Extra inputs are not permitted",
        id="unknown-plan-key",
    ),
    pytest.param(
        web_plan(container=container("image = 1020\nimage_id = 102\nproduct_id = 10\n")),
        "plans.web.containers[0].image",
        "Extra inputs are not permitted",
        id="unknown-container-key",
    ),
    pytest.param(
        TWO_CONTAINERS_SECOND_WITHOUT_PRODUCT,
        "plans.wordpress.containers[1].product_id",
        "Field required",
        id="missing-product-id",
    ),
    pytest.param(
        web_plan(container=container("image_variant_id = 1020\nimage_id = 102\nproduct_id = 10")),
        "plans.web.containers[0]",
        "give exactly one of image_variant_id and image_id",
        id="both-images",
    ),
    pytest.param(
        web_plan(container=container("product_id = 10\n")),
        "plans.web.containers[0]",
        "give exactly one of image_variant_id and image_id",
        id="neither-image",
    ),
    pytest.param(
        web_plan(container=""),
        "plans.web.containers",
        "Field required",
        id="no-containers",
    ),
    pytest.param(
        "[plans.web]\nmatch = {}\nlocation_id = 1\n" + CONTAINER,
        "plans.web.match",
        "give at least one of price_ids, lookup_keys, product_ids",
        id="empty-match",
    ),
    pytest.param(
        "[plans.web]\nmatch = { price_ids = [], lookup_keys = [] }\nlocation_id = 1\n" + CONTAINER,
        "plans.web.match",
        "give at least one of price_ids, lookup_keys, product_ids",
        id="match-with-empty-lists",
    ),
    pytest.param(
        SHARED_LOOKUP_KEY,
        "plans",
        "lookup_keys 'shared-key' is claimed by both 'alpha' and 'beta'",
        id="id-claimed-twice",
    ),
    pytest.param(
        web_plan(plan_lines='project_name = "{customer_phone} site"\n'),
        "plans.web.project_name",
        "unknown field {customer_phone}",
        id="template-unknown-field",
    ),
    pytest.param(
        web_plan(plan_lines='project_name = "{customer_name site"\n'),
        "plans.web.project_name",
        "not a valid template",
        id="template-unclosed-brace",
    ),
    pytest.param(
        web_plan(plan_lines='project_name = "site } {unit}"\n'),
        "plans.web.project_name",
        "not a valid template",
        id="template-stray-brace",
    ),
    pytest.param(
        web_plan(plan_lines='project_name = "{customer_name[5]} site"\n'),
        "plans.web.project_name",
        "use a plain field name",
        id="template-index-lookup",
    ),
    pytest.param(
        web_plan(plan_lines='project_name = "   "\n'),
        "plans.web.project_name",
        "renders as an empty name",
        id="template-blank",
    ),
    pytest.param(
        web_plan(plan_lines='projects = "per_customer"\n'),
        "plans.web.projects",
        "per_line_item",
        id="unknown-projects-mode",
    ),
    pytest.param(
        web_plan(plan_lines="").replace("location_id = 1", "location_id = 0"),
        "plans.web.location_id",
        "greater than 0",
        id="location-not-positive",
    ),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD_CATALOGS)
def test_bad_catalog_is_one_line_naming_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as refused:
        load_catalog(path)

    message = str(refused.value)
    assert refused.value.key == key
    assert message.startswith(f"{key}: ")
    assert problem in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_catalog_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "plans.toml"

    with pytest.raises(ConfigError) as refused:
        load_catalog(path)

    assert refused.value.key == "plans"
    assert str(refused.value) == f"plans: catalog not found: {path}"


SAME_ID_TWO_KINDS = """
[plans.alpha]
match = { product_ids = ["same"] }
location_id = 1
[[plans.alpha.containers]]
name = "a"
image_variant_id = 1
product_id = 1

[plans.beta]
match = { lookup_keys = ["same"] }
location_id = 1
[[plans.beta.containers]]
name = "b"
image_variant_id = 1
product_id = 1
"""


def test_same_id_in_different_kinds_is_not_a_conflict(tmp_path: Path) -> None:
    # Lookup keys and product ids are different namespaces on Stripe.
    catalog = load(tmp_path, SAME_ID_TWO_KINDS)

    assert catalog.match(None, "same", None) == catalog.plans["beta"]
    assert catalog.match(None, None, "same") == catalog.plans["alpha"]


def test_template_field_nested_in_a_format_spec_is_checked_too(tmp_path: Path) -> None:
    path = write(tmp_path, web_plan(plan_lines='project_name = "{customer_name:{bogus}}"\n'))

    with pytest.raises(ConfigError) as refused:
        load_catalog(path)

    assert refused.value.key == "plans.web.project_name"
    assert "unknown field {bogus}" in str(refused.value)


# -- the example catalog sells exactly the sandbox seed ------------------------------------


def test_every_sandbox_price_except_the_unmapped_product_matches_a_plan() -> None:
    catalog = load_catalog(EXAMPLE)
    # A metered price is not bought: it bills usage reported to its meter.
    prices = [
        p
        for p in load_sandbox_seed()["stripe"]["prices"]
        if (p.get("recurring") or {}).get("usage_type") != "metered"
    ]

    sold: dict[str, str | None] = {}
    for price in prices:
        plan = catalog.match(price["id"], price.get("lookup_key"), price["product"])
        sold[price["id"]] = plan.name if plan else None

    unmapped = {p["id"] for p in prices if p["product"] == UNMAPPED_PRODUCT}
    assert unmapped, "the seed should keep a price no plan sells (the dead-letter demo)"
    assert {p for p, plan in sold.items() if plan is None} == unmapped
    assert set(sold.values()) - {None} == set(catalog.plans), "a plan sells no seeded price"


def _orderable_problems(plan: Plan, cs: dict[str, Any]) -> list[str]:
    """Why ComputeStacks (as seeded) would refuse an order for ``plan``; [] if none."""
    images = {image["id"]: image for image in cs["images"]}
    variant_image = {v["id"]: image for image in cs["images"] for v in image["variants"]}
    products = {product["id"]: product for product in cs["products"]}
    locations = {location["id"]: location for location in cs["locations"]}
    groups = {group["id"]: group for group in cs["user_groups"]}
    [default_group] = [g for g in cs["user_groups"] if g["is_default"]]
    group = groups.get(plan.user_group_id) if plan.user_group_id else default_group
    location = locations.get(plan.location_id)
    if group is None:
        return [f"{plan.name}: user group {plan.user_group_id} is not seeded"]
    if location is None:
        return [f"{plan.name}: location {plan.location_id} is not seeded"]

    problems: list[str] = []
    chosen: dict[str, dict[str, Any]] = {}
    for index, c in enumerate(plan.containers):
        where = f"{plan.name}.containers[{index}]"
        if c.image_variant_id is not None:
            image = variant_image.get(c.image_variant_id)
            if image is None:
                problems.append(f"{where}: image variant {c.image_variant_id} is not seeded")
                continue
        else:
            image = images.get(c.image_id or -1)
            if image is None:
                problems.append(f"{where}: image {c.image_id} is not seeded")
                continue
            defaults = [v for v in image["variants"] if v["is_default"]]
            if len(defaults) != 1:
                problems.append(f"{where}: image {c.image_id} has {len(defaults)} default variants")
        chosen[c.name] = image
        unknown_params = set(c.params) - {p["name"] for p in image["setting_params"]}
        if unknown_params:
            problems.append(f"{where}: {image['label']} has no params {sorted(unknown_params)}")
        product = products.get(c.product_id)
        if product is None:
            problems.append(f"{where}: product {c.product_id} is not seeded")
            continue
        if product["id"] not in group["billing_plan_products"]:
            problems.append(f"{where}: product {product['id']} is not in group {group['name']}")
        if float(product["cpu"]) < image["min_cpu"] or product["memory"] < image["min_memory"]:
            problems.append(f"{where}: product {product['name']} is too small for {image['label']}")

    # One order lands in one region: in the location, open to the user's group,
    # and offering every product of the order.
    plan_products = [products[c.product_id] for c in plan.containers if c.product_id in products]
    usable = [
        region["id"]
        for region in location["regions"]
        if region["id"] in group["regions"]
        and all(region["id"] in p["regions"] for p in plan_products)
    ]
    if not usable:
        problems.append(f"{plan.name}: no region of {location['name']} offers all its products")

    present = {image["id"] for image in chosen.values()}
    for image in chosen.values():
        missing = set(image["required_containers"]) - present
        if missing:
            problems.append(f"{plan.name}: {image['label']} requires images {sorted(missing)}")
    return problems


def test_every_example_plan_is_orderable_from_the_computestacks_seed() -> None:
    catalog = load_catalog(EXAMPLE)
    cs = load_sandbox_seed()["computestacks"]

    problems = [p for plan in catalog.plans.values() for p in _orderable_problems(plan, cs)]

    assert problems == []


def test_the_orderability_check_notices_a_missing_required_image(tmp_path: Path) -> None:
    # WordPress (variant 1000) requires MariaDB (image 101); without it the check
    # must object, or the agreement test above would prove nothing.
    text = web_plan(container=container("image_variant_id = 1000\nproduct_id = 11\n"))
    plan = load(tmp_path, text).plans["web"]

    problems = _orderable_problems(plan, load_sandbox_seed()["computestacks"])

    assert problems == ["web: WordPress requires images [101]"]
