"""A shop on the sandboxes, quick enough for end-to-end tests of what follows
a purchase (drift, money going back), and waiting for it to come to rest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from csonboard.sandbox.stack import SandboxStack, sandbox_stack


@contextmanager
def open_shop(tmp_path: Path, **env: str) -> Iterator[SandboxStack]:
    with sandbox_stack(
        tmp_path / "data",
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
        CSONBOARD_WORKER_BACKOFF_SECONDS="0.2",
        **env,
    ) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        stack.sandbox("computestacks", "services", {"power_seconds": 0.1})
        yield stack


def settle(shop: SandboxStack, customer: str, timeout: float = 20) -> None:
    """Wait until Stripe delivered everything and the customer's account is at rest."""
    shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        account = shop.ledger.lifecycle.account(customer)
        quiet = account is None or account.status not in ("pending", "running", "failed")
        if quiet and not shop.ledger.events.due() and not shop.ledger.onboardings.due():
            time.sleep(0.3)  # one more look: a just-finished event may ring the account
            account = shop.ledger.lifecycle.account(customer)
            if account is None or account.status not in ("pending", "running", "failed"):
                return
        time.sleep(0.05)
    raise AssertionError(
        f"customer {customer} did not settle: {shop.ledger.lifecycle.account(customer)}"
    )


@contextmanager
def failing_orders(shop: SandboxStack, **plan: Any) -> Iterator[None]:
    """ComputeStacks fails every order placed in the block (``plan``: more of
    the order plan, such as ``built_before_failure``), leaving its project as
    the real controller does; orders complete again after it."""
    shop.sandbox("computestacks", "orders", {"outcome": "fail", **plan})
    try:
        yield
    finally:
        shop.sandbox("computestacks", "orders", {"outcome": "complete", **dict.fromkeys(plan)})
