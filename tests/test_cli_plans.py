"""``csonboard plans check``: the plan catalog against the live ComputeStacks
simulator and Stripe stand-in. The example catalog passes; a catalog with one
mistake per plan gets one line per mistake, naming the plan and the key; a
usage entry naming a meter, product or resource kind that is not there gets
its line too."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from csonboard.plans import load_catalog as load_plans
from csonboard.sandbox.catalog import example_plans, load_catalog
from csonboard.sandbox.computestacks import create_app as create_cs_app
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stripe import create_app as create_stripe_app
from csonboard.sandbox.stripe import sandbox_account
from operator_support import run

STRIPE_KEY = "sk_test_plans"
ADMIN = ("plans-admin", "plans-admin-password")


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    """Both sandboxes, seeded with the bundled catalog plus one change: the Tiny
    product (too small for MariaDB) is in the default billing plan."""
    catalog = copy.deepcopy(load_catalog())
    default_group = next(g for g in catalog["computestacks"]["user_groups"] if g["is_default"])
    default_group["billing_plan_products"].append(13)
    stripe_app = create_stripe_app(api_key=STRIPE_KEY)
    cs = start_in_thread(create_cs_app(catalog, admin_username=ADMIN[0], admin_password=ADMIN[1]))
    stripe = start_in_thread(stripe_app)
    try:
        yield {
            "CSONBOARD_STRIPE_API_KEY": STRIPE_KEY,
            "CSONBOARD_STRIPE_API_BASE": stripe.url,
            "CSONBOARD_CS_URL": cs.url,
            "CSONBOARD_CS_ADMIN_USERNAME": ADMIN[0],
            "CSONBOARD_CS_ADMIN_PASSWORD": ADMIN[1],
            "CSONBOARD_PLANS": str(example_plans()),
        }
    finally:
        sandbox_account(stripe_app).stop()
        stripe.stop()
        cs.stop()


def archived_price(env: dict[str, str]) -> str:
    """A price archived in Stripe that still holds the lookup key ``archived-key``."""
    response = requests.post(
        f"{env['CSONBOARD_STRIPE_API_BASE']}/v1/prices",
        data={
            "currency": "usd",
            "unit_amount": "700",
            "product": "prod_sandbox_static",
            "lookup_key": "archived-key",
            "active": "false",
        },
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["id"])


def plan(name: str, match: str, containers: list[dict[str, Any]], **fields: Any) -> str:
    lines = [f"[plans.{name}]", f"match = {match}", f"location_id = {fields.pop('location', 1)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    for container in containers:
        lines.append(f"[[plans.{name}.containers]]")
        for key, value in container.items():
            shown = (
                "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"
                if isinstance(value, dict)
                else json.dumps(value)
            )
            lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


NGINX = {"name": "nginx", "image_variant_id": 1020, "product_id": 10}
MARIADB = {"name": "db", "image_id": 101, "product_id": 11}


def faulty_catalog(tmp_path: Path, archived: str) -> Path:
    """One mistake per plan (and one plan that can only be warned about)."""
    plans = [
        plan("nowhere", '{ price_ids = ["price_sandbox_static_monthly"] }', [NGINX], location=9),
        plan(
            "unsold",
            '{ price_ids = ["price_sandbox_static_yearly"] }',
            [{**NGINX, "product_id": 99}],
        ),
        plan(
            "wrong-region",
            '{ price_ids = ["price_sandbox_static_once"] }',
            [{**NGINX, "product_id": 12}],  # Large: Amsterdam only
            location=2,
        ),
        plan(
            "ghost-variant",
            '{ product_ids = ["prod_sandbox_static"] }',
            [{**NGINX, "image_variant_id": 4242}],
        ),
        plan(
            "ghost-image",
            '{ lookup_keys = ["static-site-monthly"] }',
            [{"name": "x", "image_id": 999, "product_id": 10}],
        ),
        plan(
            "typo-param",
            '{ lookup_keys = ["static-site-yearly"] }',
            [
                {
                    "name": "wp",
                    "image_variant_id": 1000,
                    "product_id": 11,
                    "params": {"titel": "x"},
                },
                MARIADB,
            ],
        ),
        plan(
            "lonely-wordpress",
            '{ lookup_keys = ["static-site-once"] }',
            [{"name": "wp", "image_variant_id": 1000, "product_id": 11}],
        ),
        plan(
            "too-small",
            '{ price_ids = ["price_sandbox_unmapped"] }',
            [{**MARIADB, "product_id": 13}],  # Tiny: 256 MB; MariaDB needs 1024
        ),
        plan(
            "stripe-ghosts",
            f'{{ price_ids = ["price_gone", "{archived}"], lookup_keys = ["no-such-key", '
            '"archived-key"], product_ids = ["prod_gone"] }',
            [NGINX],
        ),
        plan(
            "reseller",
            '{ lookup_keys = ["wordpress-monthly"] }',
            [{**NGINX, "product_id": 77}],
            user_group_id=2,
        ),
    ]
    path = tmp_path / "plans.toml"
    path.write_text("\n".join(plans))
    return path


def test_the_example_catalog_passes_against_computestacks_and_stripe(
    env: dict[str, str],
) -> None:
    result = run(env, "plans", "check")

    assert result.exit_code == 0, result.output
    plans = len(load_plans(example_plans()).plans)
    assert result.stdout.strip() == (
        f"{plans} plan(s) in {example_plans()}: no problems (ComputeStacks at "
        f"{env['CSONBOARD_CS_URL']} and Stripe (test mode))"
    )


def test_each_kind_of_problem_is_one_line_naming_plan_and_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    archived = archived_price(env)
    catalog = faulty_catalog(tmp_path, archived)

    result = run(env, "plans", "check", "--catalog", str(catalog))

    assert result.exit_code == 1, result.output
    expected = [
        ("plans.nowhere.location_id", "location 9 does not exist in ComputeStacks"),
        ("plans.unsold.containers[0].product_id", "product 99 is not in the billing plan"),
        (
            "plans.wrong-region.containers[0].product_id",
            "product 12 Large is not sold in any region of location 2 Toronto",
        ),
        (
            "plans.ghost-variant.containers[0].image_variant_id",
            "image variant 4242 does not exist in ComputeStacks",
        ),
        ("plans.ghost-image.containers[0].image_id", "image 999 does not exist in ComputeStacks"),
        (
            "plans.typo-param.containers[0].params.titel",
            "image 100 WordPress has no setting param 'titel'",
        ),
        ("plans.lonely-wordpress.containers[0]", "image 100 WordPress requires image 101 MariaDB"),
        (
            "plans.too-small.containers[0].product_id",
            "is too small for image 101 MariaDB (it needs 1.0 CPU, 1024 MB)",
        ),
        ("plans.stripe-ghosts.match.price_ids", "price price_gone does not exist in Stripe"),
        ("plans.stripe-ghosts.match.price_ids", f"price {archived} is archived"),
        (
            "plans.stripe-ghosts.match.lookup_keys",
            "lookup key 'no-such-key' belongs to no Stripe price",
        ),
        (
            "plans.stripe-ghosts.match.lookup_keys",
            f"lookup key 'archived-key' belongs only to archived price(s) {archived}",
        ),
        ("plans.stripe-ghosts.match.product_ids", "product prod_gone does not exist in Stripe"),
    ]
    lines = result.stdout.splitlines()
    problems = [line for line in lines if line.startswith("plans.")]
    assert len(problems) == len(expected), "\n".join(problems)
    for (key, message), line in zip(expected, problems, strict=True):
        assert line.startswith(f"{key}: ") and message in line, line
    [warning] = [line for line in lines if line.startswith("warning: ")]
    assert warning.startswith("warning: plans.reseller.containers[0].product_id: product 77")
    assert f"13 problem(s) in {catalog}" in result.stderr


def test_without_a_stripe_key_only_computestacks_is_checked(
    env: dict[str, str], tmp_path: Path
) -> None:
    catalog = faulty_catalog(tmp_path, "price_whatever")
    without_stripe = {k: v for k, v in env.items() if not k.startswith("CSONBOARD_STRIPE")}

    result = run(
        {**without_stripe, "CSONBOARD_STRIPE_MODE": "test"},
        "plans",
        "check",
        "--catalog",
        str(catalog),
    )

    assert result.exit_code == 1
    assert "Stripe not checked: no CSONBOARD_STRIPE_API_KEY" in result.stderr
    assert "match." not in result.stdout
    assert "8 problem(s)" in result.stderr


def test_json_lists_problems_for_scripts(env: dict[str, str], tmp_path: Path) -> None:
    catalog = faulty_catalog(tmp_path, "price_other")

    result = run(env, "plans", "check", "--catalog", str(catalog), "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["catalog"] == str(catalog) and report["stripe_checked"] is True
    assert {"key": "plans.nowhere.location_id", "problem": report["problems"][0]["problem"]} in (
        report["problems"]
    )
    assert [w["key"] for w in report["warnings"]] == ["plans.reseller.containers[0].product_id"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"CSONBOARD_CS_ADMIN_PASSWORD": "pw-Zq81-not-it"},
            "cs.admin_username: ComputeStacks refused the admin credential",
        ),
        (
            {"CSONBOARD_STRIPE_API_KEY": "sk_test_Zq81notthekey"},
            "stripe.api_key: Stripe refused the key",
        ),
        ({"CSONBOARD_CS_URL": ""}, "cs.url: required: set CSONBOARD_CS_URL"),
        ({"CSONBOARD_PLANS": "/nonexistent/plans.toml"}, "plans: catalog not found"),
    ],
)
def test_wrong_settings_or_credentials_exit_2_with_the_key(
    env: dict[str, str], change: dict[str, str], problem: str
) -> None:
    result = run({**env, **change}, "plans", "check")

    assert result.exit_code == 2, result.output
    assert f"csonboard: configuration error: {problem}" in result.stderr
    for name, value in change.items():
        if name.endswith(("PASSWORD", "API_KEY")):
            assert value not in result.output  # no secret echoed back
    assert "Traceback" not in result.output


# -- usage billing ---------------------------------------------------------------------------

SEEDED_METER = "computestacks_bandwidth_gb"
"""The event name of the Stripe stand-in's seeded meter ``mtr_sandbox_bandwidth``."""
EVERY_PRODUCT = (
    "10 Small (package), 11 Medium (package), 12 Large (package), "
    "13 Tiny (resellers only) (package), 20 Bandwidth (bandwidth), 21 Storage (storage)"
)
RECORDING = "20 Bandwidth (bandwidth), 21 Storage (storage)"


@pytest.fixture(scope="module")
def inactive_meter(env: dict[str, str]) -> stripe.billing.Meter:
    """A meter made and then deactivated through the stand-in's API (the seeded
    one stays active for the other tests)."""
    client = stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": env["CSONBOARD_STRIPE_API_BASE"]}
    )
    made = client.v1.billing.meters.create(
        {
            "display_name": "Storage (retired)",
            "event_name": "retired_storage_gb",
            "default_aggregation": {"formula": "sum"},
        }
    )
    meter = client.v1.billing.meters.deactivate(made.id)
    assert meter.status == "inactive"
    return meter


@pytest.fixture(scope="module")
def custom_keys_meter(env: dict[str, str]) -> stripe.billing.Meter:
    """An active meter reading other payload keys than the ones csonboard sends."""
    client = stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": env["CSONBOARD_STRIPE_API_BASE"]}
    )
    return client.v1.billing.meters.create(
        {
            "display_name": "Storage (own keys)",
            "event_name": "storage_own_keys",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "customer", "type": "by_id"},
            "value_settings": {"event_payload_key": "gigabytes"},
        }
    )


def usage(table: str, **fields: Any) -> str:
    """One ``[[usage]]`` (or ``[[plans.NAME.usage]]``) table."""
    return f"[[{table}]]\n" + "".join(f"{key} = {json.dumps(v)}\n" for key, v in fields.items())


STATIC = plan("static", '{ price_ids = ["price_sandbox_static_monthly"] }', [NGINX])
BARE = plan("bare", '{ price_ids = ["price_sandbox_static_yearly"] }', [NGINX])


def usage_catalog(tmp_path: Path, *parts: str) -> Path:
    path = tmp_path / "usage-plans.toml"
    path.write_text("\n".join(parts))
    return path


def test_the_example_catalog_bills_bandwidth_through_the_seeded_meter(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The example catalog's usage is checked (and passes, see the first test):
    the same catalog with the meter's name changed no longer does."""
    catalog = load_plans(example_plans())
    assert [(e.resource_kind, e.meter) for e in catalog.usage] == [("bandwidth", SEEDED_METER)]
    renamed = tmp_path / "plans.toml"
    renamed.write_text(example_plans().read_text().replace(SEEDED_METER, "bandwidth_gb"))

    result = run(env, "plans", "check", "--catalog", str(renamed))

    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("usage[0].meter: no Stripe meter has the event_name")
    assert "1 problem(s)" in result.stderr


@pytest.mark.parametrize(
    ("parts", "line", "status"),
    [
        pytest.param(
            [STATIC, usage("usage", resource_kind="bandwidth", meter="computestacks_bandwith_gb")],
            "usage[0].meter: no Stripe meter has the event_name 'computestacks_bandwith_gb' "
            "(test mode; its meters: ",
            1,
            id="unknown meter",
        ),
        pytest.param(
            [STATIC, usage("usage", resource_kind="storage", meter="retired_storage_gb")],
            "usage[0].meter: meter {inactive} 'Storage (retired)' (event_name "
            "'retired_storage_gb') is inactive: Stripe refuses its events; reactivate it or "
            "name an active meter",
            1,
            id="inactive meter",
        ),
        pytest.param(
            [STATIC, usage("usage", resource_kind="storage", meter="storage_own_keys")],
            "usage[0].meter: meter {own_keys} 'Storage (own keys)' reads the customer from "
            "'customer' and the value from 'gigabytes'; csonboard sends 'stripe_customer_id' "
            "and 'value' (Stripe's defaults): Stripe would refuse every event",
            1,
            id="meter reading other payload keys",
        ),
        pytest.param(
            [
                STATIC,
                usage("usage", resource_kind="bandwidth", meter=SEEDED_METER),
                usage("usage", product_id=99, meter=SEEDED_METER),
            ],
            "usage[1].product_id: product 99 does not exist in ComputeStacks (products there: "
            f"{EVERY_PRODUCT})",
            1,
            id="unknown product",
        ),
        pytest.param(
            [STATIC, usage("plans.static.usage", resource_kind="backup", meter=SEEDED_METER)],
            "plans.static.usage[0].resource_kind: no ComputeStacks product records backup "
            f"usage (products recording usage: {RECORDING})",
            1,
            id="resource kind nothing records",
        ),
        pytest.param(
            [
                STATIC,
                BARE,
                usage("plans.static.usage", resource_kind="bandwidth", meter=SEEDED_METER),
            ],
            "warning: plans.bare.usage: the plan bills no usage and the catalog has no "
            "[[usage]] for every customer: its customers' usage is never billed",
            0,
            id="plan without usage",
        ),
        pytest.param(
            [STATIC, usage("plans.static.usage", product_id=10, meter=SEEDED_METER)],
            "warning: plans.static.usage[0].product_id: product 10 Small is a package: its "
            "usage rows bill the package itself, one a month, not what was used beyond it "
            f"(products recording usage: {RECORDING})",
            0,
            id="package product",
        ),
    ],
)
def test_each_usage_mistake_is_one_line_naming_the_entry(
    env: dict[str, str],
    tmp_path: Path,
    inactive_meter: stripe.billing.Meter,
    custom_keys_meter: stripe.billing.Meter,
    parts: list[str],
    line: str,
    status: int,
) -> None:
    """Status 1 for a problem, 0 when there are only warnings (with the
    "no problems" summary). The unknown meter's line lists the meters there,
    the inactive one marked."""
    catalog = usage_catalog(tmp_path, *parts)

    result = run(env, "plans", "check", "--catalog", str(catalog))

    assert result.exit_code == status, result.output
    summary = f"{len(load_plans(catalog).plans)} plan(s) in {catalog}: no problems"
    assert (summary in result.stdout) == (status == 0)
    assert (f"1 problem(s) in {catalog}" in result.stderr) == (status == 1)
    [finding] = [found for found in result.stdout.splitlines() if not found.startswith(summary)]
    expected = line.replace("{inactive}", inactive_meter.id)
    assert finding.startswith(expected.replace("{own_keys}", custom_keys_meter.id)), finding
    if "its meters: " in line:
        assert f"{SEEDED_METER} (Bandwidth overage)" in finding
        assert "retired_storage_gb (Storage (retired), inactive)" in finding


def test_usage_problems_come_after_the_plans_computestacks_first(
    env: dict[str, str], tmp_path: Path, inactive_meter: stripe.billing.Meter
) -> None:
    """Several usage mistakes at once: one line each, ComputeStacks before
    Stripe, catalog-wide entries before a plan's; without a Stripe key only
    the ComputeStacks ones are found."""
    catalog = usage_catalog(
        tmp_path,
        STATIC,
        usage("usage", resource_kind="bandwidth", meter="bandwidth"),
        usage("usage", product_id=42, meter="retired_storage_gb"),
        usage("plans.static.usage", resource_kind="cpu", meter=SEEDED_METER),
    )

    result = run(env, "plans", "check", "--catalog", str(catalog), "--json")

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [p["key"] for p in report["problems"]] == [
        "usage[1].product_id",
        "plans.static.usage[0].resource_kind",
        "usage[0].meter",
        "usage[1].meter",
    ]
    assert report["warnings"] == []
    without_stripe = {k: v for k, v in env.items() if not k.startswith("CSONBOARD_STRIPE")}
    stripe_unset = {**without_stripe, "CSONBOARD_STRIPE_MODE": "test"}
    result = run(stripe_unset, "plans", "check", "--catalog", str(catalog))
    assert result.exit_code == 1
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "usage[1].product_id",
        "plans.static.usage[0].resource_kind",
    ]
    assert "2 problem(s)" in result.stderr
