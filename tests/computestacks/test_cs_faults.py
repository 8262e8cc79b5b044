"""The simulator's ``/_sandbox/`` controls, and the client's behaviour under
the failures they inject: lost answers, timeouts, held calls, retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from computestacks.cs_support import Customer, Sim, place_wordpress
from csonboard.computestacks import ComputeStacksClient, NewUser, PlacedOrder
from csonboard.errors import ComputeStacksNotFound, ComputeStacksUnavailable


def _eventually(probe: Callable[[], Any], seconds: float = 5.0) -> Any:
    """Poll a real-time condition (a held request arriving on another thread)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_a_status_fault_fails_the_next_n_matching_calls_without_effect(
    sim: Sim, admin: ComputeStacksClient
) -> None:
    sim.fault(method="POST", path="/api/admin/users", status=500, count=2)
    for _ in range(2):
        with pytest.raises(ComputeStacksUnavailable):
            admin.create_user(NewUser(fname="A", lname="B", email="a@example.com"))
    assert len(sim.state()["users"]) == 1
    assert admin.create_user(NewUser(fname="A", lname="B", email="a@example.com")).id
    assert sim.control("GET", "faults") == {"faults": []}


def test_an_effect_fault_loses_only_the_answer_so_callers_must_look_first(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    sim.fault(method="POST", path="/api/orders", status=502, effect=True)
    with pytest.raises(ComputeStacksUnavailable) as caught:
        place_wordpress(customer.client)
    assert caught.value.status == 502
    (order,) = customer.client.list_orders()
    assert order.status.value == "pending"


def test_faults_match_method_and_path_patterns(sim: Sim, customer: Customer) -> None:
    sim.fault(method="GET", path="/api/orders/*", status=404, count=5)
    placed = place_wordpress(customer.client)
    assert customer.client.list_orders()
    with pytest.raises(ComputeStacksNotFound):
        customer.client.get_order(placed.id)


def test_transient_faults_on_reads_are_retried_with_backoff(
    sim: Sim, customer: Customer, sleeps: list[float]
) -> None:
    place_wordpress(customer.client)
    sim.fault(method="GET", path="/api/orders", status=502, count=2)
    assert len(customer.client.list_orders()) == 1
    assert sleeps == [0.5, 1.0]


def test_a_delay_longer_than_the_timeout_is_unavailable(sim: Sim, customer: Customer) -> None:
    impatient = ComputeStacksClient(
        sim.url,
        sim.session,
        username=customer.username,
        password=customer.password,
        timeout=0.1,
        attempts=1,
    )
    sim.fault(method="GET", path="/api/products", delay=0.4)
    with pytest.raises(ComputeStacksUnavailable, match=r"no answer within 0\.1s"):
        impatient.list_products()


def test_hold_before_keeps_the_call_open_until_released(sim: Sim, customer: Customer) -> None:
    sim.fault(method="POST", path="/api/orders", hold="before")
    placed: list[PlacedOrder] = []
    caller = threading.Thread(target=lambda: placed.append(place_wordpress(customer.client)))
    caller.start()
    (held,) = _eventually(lambda: sim.control("GET", "held")["held"])
    assert (held["method"], held["path"], held["stage"]) == ("POST", "/api/orders", "before")
    assert sim.state()["orders"] == []
    assert sim.control("POST", "release", {"id": held["id"]}) == {"released": 1}
    caller.join(5)
    assert [o["id"] for o in sim.state()["orders"]] == [placed[0].id]


def test_hold_after_applies_the_effect_before_answering(sim: Sim, customer: Customer) -> None:
    sim.fault(method="POST", path="/api/orders", hold="after")
    impatient = ComputeStacksClient(
        sim.url, sim.session, username=customer.username, password=customer.password, timeout=0.3
    )
    # The caller gives up (as a killed worker would) while the order exists.
    with pytest.raises(ComputeStacksUnavailable):
        place_wordpress(impatient)
    (held,) = sim.control("GET", "held")["held"]
    assert held["stage"] == "after"
    assert len(sim.state()["orders"]) == 1
    assert sim.control("POST", "release") == {"released": 1}
    _eventually(lambda: not sim.control("GET", "held")["held"])


def test_latency_is_added_to_every_api_call(sim: Sim, customer: Customer) -> None:
    sim.control("POST", "latency", {"seconds": 0.05})
    started = time.monotonic()
    customer.client.list_products()
    assert time.monotonic() - started >= 0.05
    assert sim.state()["settings"]["latency"] == 0.05


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("faults", {"status": 200}),
        ("faults", {"hold": "sometimes"}),
        ("faults", {"path": "/_sandbox/state"}),
        ("faults", {"count": 0}),
        ("orders", {"outcome": "explode"}),
        ("orders", {"pending_seconds": -1}),
        ("latency", {"seconds": "fast"}),
    ],
)
def test_sandbox_controls_refuse_bad_input_with_400(
    sim: Sim, route: str, body: dict[str, object]
) -> None:
    response = sim.session.post(f"{sim.url}/_sandbox/{route}", json=body)
    assert response.status_code == 400
    assert "error" in response.json()


def test_sandbox_state_counts_credentials_and_never_shows_passwords(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    admin.create_api_credential(customer.user.id, "second")
    text = sim.session.get(f"{sim.url}/_sandbox/state").text
    assert customer.password not in text
    assert "password" not in text
    assert sim.user_state(customer.user.id)["credentials"] == 2


def test_sandbox_reset_returns_to_the_seed(sim: Sim, customer: Customer) -> None:
    place_wordpress(customer.client)
    sim.fault(status=500, count=10)
    sim.control("POST", "orders", {"outcome": "fail"})
    sim.control("POST", "reset")
    state = sim.state()
    assert ([u["id"] for u in state["users"]], state["orders"]) == ([1], [])
    assert state["settings"]["outcome"] == "complete"
    assert sim.control("GET", "faults") == {"faults": []}
