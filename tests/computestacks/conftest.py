"""Fixtures for the ComputeStacks client and simulator conformance tests.

One simulator serves the whole session over real HTTP (stopping a server
costs up to half a second); every test starts from ``/_sandbox/reset`` with
the shared fake clock set back to the same instant.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from computestacks.cs_support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    SCRIPTED_URL,
    T0,
    Customer,
    FakeClock,
    Reply,
    Scripted,
    ScriptedAdapter,
    Sim,
    make_customer,
)
from csonboard.computestacks import ComputeStacksClient
from csonboard.sandbox.catalog import load_catalog
from csonboard.sandbox.computestacks import create_app
from csonboard.sandbox.server import RunningServer, start_in_thread


@pytest.fixture(scope="session")
def shared_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def simulator_server(shared_clock: FakeClock) -> Iterator[RunningServer]:
    app = create_app(
        load_catalog(),
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        clock=shared_clock,
    )
    server = start_in_thread(app)
    yield server
    server.stop()


@pytest.fixture
def clock(shared_clock: FakeClock) -> FakeClock:
    shared_clock.now = T0
    return shared_clock


@pytest.fixture
def sim(simulator_server: RunningServer, clock: FakeClock) -> Iterator[Sim]:
    with requests.Session() as session:
        handle = Sim(simulator_server.url, session)
        handle.control("POST", "reset")
        yield handle
        # Nothing may stay held into the next test.
        handle.control("POST", "reset")


@pytest.fixture
def sleeps() -> list[float]:
    """Every pause a client asked for, in order (clients never really sleep)."""
    return []


@pytest.fixture
def admin(sim: Sim, sleeps: list[float], clock: FakeClock) -> ComputeStacksClient:
    return ComputeStacksClient(
        sim.url,
        sim.session,
        username=ADMIN_USERNAME,
        password=ADMIN_PASSWORD,
        timeout=5.0,
        sleep=sleeps.append,
        jitter=lambda: 0.0,
        clock=clock,
    )


@pytest.fixture
def customer(admin: ComputeStacksClient) -> Customer:
    return make_customer(admin)


@pytest.fixture
def scripted(sleeps: list[float], clock: FakeClock) -> Iterator[Scripted]:
    """A client whose network is a script of replies (see ``ScriptedAdapter``)."""
    sessions: list[requests.Session] = []

    def make(
        *script: Reply | Exception, **options: object
    ) -> tuple[ComputeStacksClient, ScriptedAdapter]:
        adapter = ScriptedAdapter(*script)
        session = requests.Session()
        session.mount(SCRIPTED_URL, adapter)
        sessions.append(session)
        settings: dict[str, object] = {
            "sleep": sleeps.append,
            "jitter": lambda: 0.0,
            "clock": clock,
        }
        settings.update(options)
        client = ComputeStacksClient(
            SCRIPTED_URL,
            session,
            username="api-user",
            password="api-Pa55word",
            **settings,  # type: ignore[arg-type]
        )
        return client, adapter

    yield make
    for session in sessions:
        session.close()
