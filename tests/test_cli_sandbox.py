"""``csonboard demo`` and ``csonboard sandbox ...`` as a user runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
import stripe
from click.testing import CliRunner

from csonboard.cli import main
from processes import csonboard, free_port, running


def test_the_demo_buys_a_plan_and_exits_0_once_the_project_exists() -> None:
    result = csonboard("demo", "--json", env={}, timeout=120)

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "done"
    assert [step["step"] for step in record["steps"]][-1] == "link_back"
    assert all(order["project_id"] for order in record["orders"])


def test_the_demo_tells_the_story_step_by_step() -> None:
    result = csonboard("demo", "--quantity", "2", env={}, timeout=120)

    assert result.returncode == 0, result.stderr
    for step in ("fetch_session", "ensure_cs_user", "place_order", "await_project", "link_back"):
        assert f"✓ {step}" in result.stdout
    assert "Ada Lovelace's WordPress 2" in result.stdout
    assert "computestacks_user_id" in result.stdout
    # Bandwidth beyond the package, billed through the example catalog's meter.
    assert "12.5 -> 12 whole unit(s) to Stripe meter 'computestacks_bandwidth_gb' (reported)" in (
        result.stdout
    )
    assert '"computestacks_bandwidth_gb": "0.5"' in result.stdout


def wait_for(url: str, **kwargs: object) -> requests.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return requests.get(url, timeout=2, **kwargs)  # type: ignore[arg-type]
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_computestacks_simulator_serves_its_seed_on_a_port(tmp_path: Path) -> None:
    port = free_port()
    args = ["sandbox", "computestacks", "--port", str(port), "--admin-username", "admin"]
    with running(*args, "--admin-password", "pw", env={}, log=tmp_path / "cs.log"):
        products = wait_for(
            f"http://127.0.0.1:{port}/api/products",
            auth=("admin", "pw"),
            headers={"Accept": "application/json"},
        )
        refused = requests.get(
            f"http://127.0.0.1:{port}/api/products",
            auth=("admin", "wrong"),
            headers={"Accept": "application/json"},
            timeout=5,
        )

    assert products.status_code == 200
    assert {p["name"] for p in products.json()["products"]} >= {"Small", "Medium", "Large"}
    assert refused.status_code == 401


def test_the_stripe_stand_in_serves_the_stripe_library_on_a_port(tmp_path: Path) -> None:
    port = free_port()
    with running("sandbox", "stripe", "--port", str(port), env={}, log=tmp_path / "stripe.log"):
        wait_for(f"http://127.0.0.1:{port}/_sandbox/state")
        client = stripe.StripeClient(
            "sk_test_sandbox", base_addresses={"api": f"http://127.0.0.1:{port}"}
        )
        prices = client.v1.prices.list({"lookup_keys": ["wordpress-monthly"]})

    assert [p.id for p in prices.data] == ["price_sandbox_wordpress_monthly"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--price", "price_nope"], "choose one of: price_sandbox_static_monthly"),
        (["--price", "price_sandbox_bandwidth_gb"], "not a sandbox price a plan sells"),
        (["--timeout", "-5"], "--timeout"),
        (["--timeout", "nan"], "must be a number of seconds"),
    ],
)
def test_the_demo_refuses_what_it_cannot_buy_or_wait_for_with_status_2(
    args: list[str], says: str
) -> None:
    result = CliRunner().invoke(main, ["demo", *args])

    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
