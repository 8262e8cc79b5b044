"""Fixtures for the Stripe stand-in: the app over real HTTP, the real stripe library
pointed at it, and a real HTTP webhook receiver that verifies every signature.

One stand-in and one receiver serve the whole session (starting and stopping
servers costs about a second each); every test starts from ``/_sandbox/reset``
state. ``make_sandbox`` starts a private stand-in for tests that need other
factory arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from csonboard.sandbox.server import RunningServer, start_in_thread
from csonboard.sandbox.stripe import create_app
from sandbox_stripe.stripe_harness import (
    API_KEY,
    RETRY_SCHEDULE,
    WEBHOOK_SECRET,
    FakeClock,
    Receiver,
    Sandbox,
    SandboxFactory,
)


def _start(receiver: Receiver, **overrides: Any) -> tuple[RunningServer, Sandbox]:
    clock = FakeClock()
    options: dict[str, Any] = {
        "api_key": API_KEY,
        "webhook_url": receiver.url,
        "webhook_secret": WEBHOOK_SECRET,
        "clock": clock,
        "rng": random.Random(20261028),
        "retry_schedule": RETRY_SCHEDULE,
    }
    options.update(overrides)
    if options["webhook_url"] is None:
        options["webhook_secret"] = None
    app = create_app(**options)
    server = start_in_thread(app)
    sandbox = Sandbox(
        url=server.url,
        app=app,
        clock=clock,
        client=stripe.StripeClient(API_KEY, base_addresses={"api": server.url}),
        http=requests.Session(),
    )
    return server, sandbox


def _stop(server: RunningServer, sandbox: Sandbox) -> None:
    sandbox.account.stop()
    sandbox.http.close()
    server.stop()


@pytest.fixture(scope="session")
def shared_receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    server = start_in_thread(endpoint.app())
    endpoint.url = f"{server.url}/webhooks/stripe"
    yield endpoint
    server.stop()


@pytest.fixture
def receiver(shared_receiver: Receiver) -> Iterator[Receiver]:
    """The webhook endpoint; the test fails if any delivery had a bad signature."""
    shared_receiver.reset()
    yield shared_receiver
    assert not shared_receiver.rejected, f"bad webhook signatures: {shared_receiver.rejected}"


@pytest.fixture(scope="session")
def shared_sandbox(shared_receiver: Receiver) -> Iterator[Sandbox]:
    server, sandbox = _start(shared_receiver)
    yield sandbox
    _stop(server, sandbox)


@pytest.fixture
def sandbox(shared_sandbox: Sandbox, receiver: Receiver) -> Sandbox:
    """The shared stand-in, reset, webhooks going to ``receiver``, clock at real now."""
    shared_sandbox.account.reset()
    receiver.reset()  # again: a delivery in flight during the reset may have landed
    shared_sandbox.clock.sync()
    return shared_sandbox


@pytest.fixture
def make_sandbox(receiver: Receiver) -> Iterator[SandboxFactory]:
    """Start private stand-ins (webhooks to ``receiver`` unless ``webhook_url=None``)."""
    running: list[tuple[RunningServer, Sandbox]] = []

    def start(**overrides: Any) -> Sandbox:
        running.append(_start(receiver, **overrides))
        return running[-1][1]

    yield start
    for server, sandbox in running:
        _stop(server, sandbox)
