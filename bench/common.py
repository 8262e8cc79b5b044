"""Helpers shared by the bench scripts (they are scripts, not tests)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_database(server_url: str, name: str) -> str:
    """Create an empty database on the server of ``server_url``; returns its URL."""
    name = name.replace("-", "_")
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(
        make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start within {timeout} s")


def sandbox_env(
    data_dir: Path, stripe_url: str, stripe_key: str, cs_url: str, admin: tuple[str, str]
) -> dict[str, str]:
    """csonboard's settings for the sandboxes a benchmark runs in its process."""
    from csonboard.sandbox.catalog import example_plans

    return {
        "CSONBOARD_DATA_DIR": str(data_dir),
        "CSONBOARD_STRIPE_API_KEY": stripe_key,
        "CSONBOARD_STRIPE_API_BASE": stripe_url,
        "CSONBOARD_STRIPE_WEBHOOK_SECRETS": "whsec_unused",
        "CSONBOARD_CS_URL": cs_url,
        "CSONBOARD_CS_ADMIN_USERNAME": admin[0],
        "CSONBOARD_CS_ADMIN_PASSWORD": admin[1],
        "CSONBOARD_PLANS": str(example_plans()),
    }
