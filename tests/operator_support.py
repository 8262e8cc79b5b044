"""Helpers for the operator-command tests (replay, retry, reconcile, plans check):
the CLI pointed at a running sandbox stack, a worker driven by hand, and
snapshots that prove a dry run changed nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select

from csonboard.cli import main
from csonboard.ledger import Ledger, Onboarding
from csonboard.ledger.schema import metadata
from csonboard.sandbox.stack import FINISHED, SandboxStack
from csonboard.settings import Settings


def cli_env(settings: Settings) -> dict[str, str]:
    """The CSONBOARD_* environment that gives these settings to a CLI run."""
    env = {
        "CSONBOARD_DATA_DIR": str(settings.data_dir),
        "CSONBOARD_CS_URL": settings.cs.url,
        "CSONBOARD_STRIPE_API_BASE": settings.stripe.api_base,
    }
    if settings.plans is not None:
        env["CSONBOARD_PLANS"] = str(settings.plans)
    if settings.database_url:
        env["CSONBOARD_DATABASE_URL"] = settings.database_url
    for name, secret in (
        ("CSONBOARD_STRIPE_API_KEY", settings.stripe.api_key),
        ("CSONBOARD_CS_ADMIN_USERNAME", settings.cs.admin_username),
        ("CSONBOARD_CS_ADMIN_PASSWORD", settings.cs.admin_password),
    ):
        if secret is not None:
            env[name] = secret.get_secret_value()
    return env


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    """``csonboard ARGS`` in this process, as an operator would type it."""
    return CliRunner().invoke(main, list(args), env=env, input=input)


def ledger_rows(ledger: Ledger) -> dict[str, list[dict[str, Any]]]:
    """Every row of every ledger table, in a stable order."""
    with ledger.read() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in metadata.sorted_tables
        }


def world(stack: SandboxStack) -> dict[str, Any]:
    """The ledger, the queue and both sandboxes' state, for before/after comparisons."""
    stripe_state = stack.http.get(f"{stack.stripe_url}/_sandbox/state", timeout=30).json()
    return {
        "ledger": ledger_rows(stack.ledger),
        "queue": stack.worker.doorbell.depth(),
        "computestacks": stack.cs_state(),
        "stripe": stripe_state,
    }


def buy(stack: SandboxStack, prices: dict[str, int], *, wait: bool = True, **checkout: Any) -> str:
    """Check out and pay as a new buyer (a fresh email each time, so no two
    purchases collide on an account); returns the session id, after Stripe has
    delivered its webhooks unless ``wait`` is False (deliveries paused)."""
    email = checkout.pop("email", f"buyer-{uuid.uuid4().hex[:8]}@example.com")
    session_id = stack.checkout(prices, email=email, **checkout)
    stack.pay(session_id, name="Ada Lovelace", email=email)
    if wait:
        delivered(stack)
    return session_id


def delivered(stack: SandboxStack) -> None:
    """Wait until the Stripe stand-in has no delivery in flight."""
    assert stack.sandbox("stripe", "deliveries/wait", {"timeout": 10})["idle"]


def settle(
    stack: SandboxStack,
    session_id: str,
    timeout: float = 20.0,
    statuses: tuple[str, ...] = FINISHED,
) -> Onboarding:
    """Drive the stack's worker by hand until the onboarding reaches ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        stack.worker.run_burst()
        onboarding = stack.ledger.onboardings.get(session_id)
        if onboarding is not None and onboarding.status in statuses:
            return onboarding
        if time.monotonic() > deadline:
            state = onboarding.status if onboarding else "absent"
            raise TimeoutError(f"onboarding {session_id} is {state} after {timeout} s")
        time.sleep(0.05)


def stripe_get(stack: SandboxStack, path: str, **params: Any) -> Any:
    """``GET /v1/PATH`` on the Stripe stand-in with the stack's key; the JSON answer."""
    key = stack.settings.stripe.api_key
    assert key is not None
    response = stack.http.get(
        f"{stack.stripe_url}/v1/{path}",
        params=params,
        headers={"Authorization": f"Bearer {key.get_secret_value()}"},
        timeout=30,
    )
    response.raise_for_status()
    return response


def checkout_event_id(stack: SandboxStack, session_id: str) -> str:
    """The id of the checkout.session.completed event Stripe made for the session."""
    events = stripe_get(stack, "events", type="checkout.session.completed", limit=100).json()
    [event] = [e for e in events["data"] if e["data"]["object"]["id"] == session_id]
    return str(event["id"])
