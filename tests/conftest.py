"""Shared fixtures: settings, ledgers and queues on real backends.

PostgreSQL and Redis are real servers. Where one is missing the tests that need
it skip with the reason -- unless REQUIRE_TEST_SERVICES=1 (CI sets it), which
turns "missing" into a failure so a broken CI machine cannot pass by skipping.
Addresses: TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
and TEST_REDIS_URL (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from csonboard.ledger import Ledger
from csonboard.queue import Doorbell, open_doorbell
from csonboard.settings import Settings, load_settings

# The tests share this machine's cores with the servers and processes they
# start; a slow moment must not fail a property test (it checks behaviour, not speed).
hypothesis_settings.register_profile(
    "csonboard", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("csonboard")

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("REQUIRE_TEST_SERVICES") == "1"

WEBHOOK_SECRET = "whsec_test_primary"
OLD_WEBHOOK_SECRET = "whsec_test_rotated_out"


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def stripe_contract_kept() -> Iterator[None]:
    """Every test fails if a Stripe stand-in it started served an object (an
    answer or an event) that stripe-python's own types do not allow."""
    collected = _Collected()
    contract = logging.getLogger("csonboard.sandbox.stripe.contract")
    contract.addHandler(collected)
    try:
        yield
    finally:
        contract.removeHandler(collected)
    assert not collected.messages, "\n".join(sorted(set(collected.messages)))


def _missing(service: str, reason: object) -> None:
    message = f"{service} is not reachable ({reason})"
    if REQUIRED:
        pytest.fail(f"{message}; REQUIRE_TEST_SERVICES=1 says it must be", pytrace=False)
    pytest.skip(f"{message}; start it or set TEST_{service.upper()}_URL")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 -- any failure means "not reachable"
        _missing("postgres", exc)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"csonboard_test_{uuid.uuid4().hex[:12]}"
    # No pool: a test may restart the server, which kills pooled connections.
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_server() -> str:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        _missing("redis", exc)
    return REDIS_URL


def base_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a test-mode installation in ``tmp_path``."""
    return {
        "CSONBOARD_DATA_DIR": str(tmp_path / "data"),
        "CSONBOARD_STRIPE_MODE": "test",
        "CSONBOARD_STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "CSONBOARD_QUEUE_NAME": f"t{uuid.uuid4().hex[:10]}",
        "CSONBOARD_WORKER_BACKOFF_SECONDS": "1",
    }


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings as an operator would give them, through the real loader."""
    return load_settings(None, {**base_env(tmp_path), **env})


@dataclass
class Stack:
    """One backend combination: the settings, the environment that gives them,
    and everything opened on it (closed when the test ends)."""

    name: str
    settings: Settings
    env: dict[str, str]
    opened: list[Ledger | Doorbell] = field(default_factory=list)

    def ledger(self, clock: Callable[[], Any] | None = None) -> Ledger:
        """A migrated ledger on this stack's database."""
        ledger = Ledger.open(self.settings.ledger_url, *([clock] if clock else []))
        ledger.upgrade()
        self.opened.append(ledger)
        return ledger

    def doorbell(self, handler: Any = None) -> Doorbell:
        doorbell = open_doorbell(self.settings, handler)
        self.opened.append(doorbell)
        return doorbell

    def close(self) -> None:
        for resource in self.opened:
            resource.close()


@pytest.fixture(params=["sqlite", "postgres+redis"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """The embedded default (SQLite ledger and queue) and the scale-out pair
    (PostgreSQL ledger, Redis queue): every test using it runs on both."""
    env = base_env(tmp_path)
    if request.param == "postgres+redis":
        env["CSONBOARD_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        env["CSONBOARD_QUEUE_URL"] = request.getfixturevalue("redis_server")
    stack = Stack(request.param, load_settings(None, env), env)
    yield stack
    if request.param == "postgres+redis":
        stack.doorbell().huey.flush()
    stack.close()


@dataclass
class Sandboxes:
    """The ComputeStacks simulator and the Stripe stand-in, served over HTTP."""

    cs_url: str
    stripe_url: str
    admin: tuple[str, str]
    stripe_key: str

    def env(self, **extra: str) -> dict[str, str]:
        """CSONBOARD_* variables pointing csonboard at these sandboxes."""
        from csonboard.sandbox.catalog import example_plans

        return {
            "CSONBOARD_STRIPE_API_KEY": self.stripe_key,
            "CSONBOARD_STRIPE_API_BASE": self.stripe_url,
            "CSONBOARD_CS_URL": self.cs_url,
            "CSONBOARD_CS_ADMIN_USERNAME": self.admin[0],
            "CSONBOARD_CS_ADMIN_PASSWORD": self.admin[1],
            "CSONBOARD_PLANS": str(example_plans()),
            "CSONBOARD_ONBOARDING_POLL_SECONDS": "0.3",
            "CSONBOARD_ONBOARDING_POLL_MAX_SECONDS": "1",
            **extra,
        }

    def deliver_to(self, url: str, secret: str) -> None:
        """Point the stand-in's webhooks at a receiver."""
        requests.post(
            f"{self.stripe_url}/_sandbox/webhooks", json={"url": url, "secret": secret}, timeout=10
        ).raise_for_status()


@pytest.fixture
def sandboxes() -> Iterator[Sandboxes]:
    from csonboard.sandbox.computestacks import create_app as create_cs_app
    from csonboard.sandbox.server import start_in_thread
    from csonboard.sandbox.stripe import create_app as create_stripe_app
    from csonboard.sandbox.stripe import sandbox_account

    admin = ("sandbox-admin", "sandbox-admin-password")
    stripe_app = create_stripe_app(api_key="sk_test_sandbox")
    cs = start_in_thread(create_cs_app(admin_username=admin[0], admin_password=admin[1]))
    stripe_server = start_in_thread(stripe_app)
    try:
        yield Sandboxes(cs.url, stripe_server.url, admin, "sk_test_sandbox")
    finally:
        sandbox_account(stripe_app).stop()
        stripe_server.stop()
        cs.stop()
