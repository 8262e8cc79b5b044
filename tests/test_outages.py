"""Outages: ComputeStacks or Stripe failing for a while. Work backs off, shows its
attempts and next attempt to the operator, and completes once the service is
back; nothing is lost and nothing is done twice."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from conftest import base_env
from csonboard.cli import main
from csonboard.errors import StripeUnavailable
from csonboard.sandbox.catalog import example_plans
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from csonboard.stripe_api import StripeGateway

WORDPRESS = "price_sandbox_wordpress_monthly"
FAST = {
    "CSONBOARD_WORKER_BACKOFF_SECONDS": "0.2",
    "CSONBOARD_WORKER_BACKOFF_MAX_SECONDS": "0.5",
    "CSONBOARD_ONBOARDING_POLL_SECONDS": "0.1",
}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(tmp_path, **FAST) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        yield stack


def buy(shop: SandboxStack) -> str:
    session_id = shop.checkout({WORDPRESS: 1})
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
    return session_id


def shown(shop: SandboxStack, session_id: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        main,
        ["onboardings", "show", session_id, "--json"],
        env={"CSONBOARD_DATA_DIR": str(shop.settings.data_dir)},
    )
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.stdout)
    return record


def assert_done_once(shop: SandboxStack, session_id: str) -> dict[str, Any]:
    onboarding = shop.wait_for(session_id, timeout=60)
    assert onboarding.status == "done", onboarding.last_error
    state = shop.cs_state()
    assert len([u for u in state["users"] if not u["is_admin"]]) == 1
    assert len(state["orders"]) == 1
    return shown(shop, session_id)


def test_computestacks_answering_500_for_a_while_is_retried_visibly_then_completes(
    shop: SandboxStack,
) -> None:
    # Three failures per try (the client's own retries), for several tries.
    shop.sandbox(
        "computestacks",
        "faults",
        {"method": "GET", "path": "/api/admin/users/", "status": 500, "count": 9},
    )
    session_id = buy(shop)

    failing = shop.wait_for(session_id, statuses=("failed",))
    during = shown(shop, session_id)
    assert failing.next_attempt_at is not None
    assert "HTTP 500" in (failing.last_error or "")
    assert during["next_attempt_at"] is not None
    [step] = [s for s in during["steps"] if s["step"] == "ensure_cs_user"]
    assert (step["status"], step["attempts"]) == ("failed", 1)
    assert "HTTP 500" in step["last_error"]

    after = assert_done_once(shop, session_id)
    [step] = [s for s in after["steps"] if s["step"] == "ensure_cs_user"]
    assert step["attempts"] >= 3  # three tries of three calls each hit the nine faults


def test_computestacks_throttling_is_waited_out(shop: SandboxStack) -> None:
    shop.sandbox(
        "computestacks",
        "faults",
        {
            "method": "POST",
            "path": "/api/admin/users",
            "status": 429,
            "count": 2,
            "reset_after": 0.3,
        },
    )
    session_id = buy(shop)

    after = assert_done_once(shop, session_id)
    [step] = [s for s in after["steps"] if s["step"] == "ensure_cs_user"]
    assert step["attempts"] == 3  # a create is never retried blindly: one 429 per try


def test_computestacks_timing_out_for_a_while_is_retried_then_completes(tmp_path: Path) -> None:
    with sandbox_stack(tmp_path, CSONBOARD_CS_TIMEOUT_SECONDS="0.3", **FAST) as shop:
        shop.sandbox("computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1})
        shop.sandbox(
            "computestacks",
            "faults",
            {
                "method": "GET",
                "path": "/api/admin/orders/",
                "status": None,
                "delay": 0.6,
                "count": 4,
            },
        )
        session_id = buy(shop)

        after = assert_done_once(shop, session_id)
        [step] = [s for s in after["steps"] if s["step"] == "await_project"]
        assert step["attempts"] >= 2


def test_the_stripe_api_failing_for_a_while_is_retried_then_completes(shop: SandboxStack) -> None:
    # The library retries twice itself; six 500s make two of our tries fail.
    shop.sandbox(
        "stripe",
        "faults",
        {"method": "GET", "path": "/v1/checkout/sessions/", "status": 500, "count": 6},
    )
    session_id = buy(shop)

    after = assert_done_once(shop, session_id)
    [step] = [s for s in after["steps"] if s["step"] == "fetch_session"]
    assert step["attempts"] == 3


def test_poison_work_is_dead_at_once_and_holds_up_nothing(shop: SandboxStack) -> None:
    poison = shop.checkout({"price_sandbox_unmapped": 1}, mode="payment")
    shop.pay(poison, name="Eve", email="eve@example.com")
    good = [shop.checkout({WORDPRESS: 1}, email=f"buyer{n}@example.com") for n in range(3)]
    for n, session_id in enumerate(good):
        shop.pay(session_id, name=f"Buyer {n}", email=f"buyer{n}@example.com")

    dead = shop.wait_for(poison)
    assert (dead.status, dead.step) == ("dead", "resolve_plan")
    assert [
        s.attempts for s in shop.ledger.onboardings.steps(poison) if s.step == "resolve_plan"
    ] == [1]
    assert [shop.wait_for(s).status for s in good] == ["done"] * 3


def test_a_stripe_answering_a_5xx_page_is_a_clear_transient_error() -> None:
    garbage = Flask("not-stripe")
    garbage.add_url_rule(
        "/<path:anything>", view_func=lambda anything: ("<html>Bad gateway</html>", 502)
    )
    server = start_in_thread(garbage)
    try:
        gateway = StripeGateway("sk_test_x", api_base=server.url, max_network_retries=0)
        with pytest.raises(StripeUnavailable, match="retrieve checkout session cs_test_1"):
            gateway.checkout_session("cs_test_1")
    finally:
        server.stop()


def test_an_api_base_that_is_not_stripe_dead_letters_at_once_naming_the_setting(
    tmp_path: Path,
) -> None:
    garbage = Flask("not-stripe")
    garbage.add_url_rule(
        "/<path:anything>",
        view_func=lambda anything: "<html>Bad gateway</html>",
        methods=["GET", "POST"],
    )
    server = start_in_thread(garbage)
    try:
        # Buyers check out at the stand-in; the worker's Stripe is the broken one.
        with sandbox_stack(
            tmp_path,
            CSONBOARD_STRIPE_API_BASE=server.url,
            CSONBOARD_WORKER_MAX_ATTEMPTS="3",
            **FAST,
        ) as shop:
            session_id = buy(shop)

            dead = shop.wait_for(session_id, timeout=30)

            # Retrying cannot fix a wrong address: no three tries, one clear line.
            assert (dead.status, dead.step) == ("dead", "fetch_session")
            assert "Stripe retrieve checkout session" in (dead.last_error or "")
            assert "stripe.api_base" in (dead.last_error or "")
            [step] = [
                s for s in shop.ledger.onboardings.steps(session_id) if s.step == "fetch_session"
            ]
            assert step.attempts == 1
    finally:
        server.stop()


# -- infrastructure that is not there: one line, not a flood ------------------------------------

WORKER_SETTINGS = {
    "CSONBOARD_STRIPE_API_KEY": "sk_test_unused",
    "CSONBOARD_CS_URL": "http://127.0.0.1:9",
    "CSONBOARD_CS_ADMIN_USERNAME": "admin",
    "CSONBOARD_CS_ADMIN_PASSWORD": "unused",
    "CSONBOARD_PLANS": str(example_plans()),
}


def _csonboard(tmp_path: Path, *args: str, timeout: float, **env: str) -> tuple[int, str]:
    """Run csonboard for at most ``timeout`` s; (exit status, or -1 when it was
    still running; stderr)."""
    settings = {**os.environ, **base_env(tmp_path), **WORKER_SETTINGS, **env}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "csonboard", *args],
            env=settings,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as cut:
        stderr = cut.stderr.decode() if isinstance(cut.stderr, bytes) else (cut.stderr or "")
        return -1, stderr
    return done.returncode, done.stderr


def test_a_worker_whose_redis_is_down_says_so_in_a_line_not_a_traceback_a_poll(
    tmp_path: Path,
) -> None:
    upgraded = CliRunner().invoke(main, ["db", "upgrade"], env=base_env(tmp_path))
    assert upgraded.exit_code == 0, upgraded.output

    code, stderr = _csonboard(
        tmp_path, "worker", timeout=4, CSONBOARD_QUEUE_URL="redis://127.0.0.1:9/0"
    )

    assert code == -1  # it keeps running: Redis may come back, and the sweep works meanwhile
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) <= 5, lines  # was hundreds of traceback lines a second
    assert any("Connection refused" in line and "not repeated" in line for line in lines)


def test_a_burst_with_the_database_down_exits_1_at_once_in_one_line(tmp_path: Path) -> None:
    code, stderr = _csonboard(
        tmp_path,
        "worker",
        "--burst",
        timeout=30,
        CSONBOARD_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
    )

    assert code == 1
    [line] = stderr.strip().splitlines()
    assert line.startswith("csonboard: cannot migrate the ledger: ") and "127.0.0.1" in line


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, stderr = _csonboard(tmp_path, "serve", "--port", str(port), timeout=60)

    assert code == 2
    [line] = stderr.strip().splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line
