"""Injected faults and how the real library reacts: errors, its retries, slowness."""

from __future__ import annotations

import time

import pytest
import stripe

from csonboard.sandbox.catalog import load_catalog
from sandbox_stripe.stripe_harness import Sandbox


def test_a_500_surfaces_as_api_error_without_retries(sandbox: Sandbox) -> None:
    sandbox.control("/faults", {"path": "/v1/customers", "status": 500})

    with pytest.raises(stripe.APIError) as failed:
        sandbox.client.v1.customers.list()
    after = sandbox.client.v1.customers.list()

    assert failed.value.http_status == 500
    assert after.data == []
    assert sandbox.control("/faults", method="GET") == {"faults": []}


def test_library_retries_ride_out_transient_500s(sandbox: Sandbox) -> None:
    sandbox.control("/faults", {"method": "POST", "path": "/v1/customers", "count": 2})
    client = sandbox.client_with(max_network_retries=2)

    created = client.v1.customers.create({"email": "retry@example.com"})

    # The faults came before execution, so the retries (same idempotency key) ran
    # for real and exactly one customer exists.
    assert [c.id for c in sandbox.client.v1.customers.list().data] == [created.id]


def test_a_429_is_a_rate_limit_error(sandbox: Sandbox) -> None:
    sandbox.control("/faults", {"path": "/v1/checkout/sessions", "status": 429})

    with pytest.raises(stripe.RateLimitError) as limited:
        sandbox.client.v1.checkout.sessions.list()

    assert limited.value.http_status == 429
    assert limited.value.json_body is not None
    assert limited.value.json_body["error"]["code"] == "rate_limit"


def test_faults_match_method_and_path_prefix_only(sandbox: Sandbox) -> None:
    sandbox.control("/faults", {"method": "POST", "path": "/v1/customers", "status": 503})

    sandbox.client.v1.customers.list()
    sandbox.client.v1.prices.list()
    with pytest.raises(stripe.APIError):
        sandbox.client.v1.customers.create({})


def test_lock_timeout_asks_the_library_to_retry(sandbox: Sandbox) -> None:
    sandbox.control("/faults", {"path": "/v1/events", "status": 429, "code": "lock_timeout"})
    response = sandbox.http.get(
        f"{sandbox.url}/v1/events", headers={"Authorization": "Bearer sk_test_sandbox_tests"}
    )
    sandbox.control("/faults", {"path": "/v1/events", "status": 429, "code": "lock_timeout"})

    listed = sandbox.client_with(max_network_retries=1).v1.events.list()

    assert response.headers["Stripe-Should-Retry"] == "true"
    assert listed.object == "list"


def test_a_delay_fault_slows_the_call_down(sandbox: Sandbox) -> None:
    sandbox.control("/faults", {"path": "/v1/prices", "status": None, "delay": 0.3})

    started = time.monotonic()
    prices = sandbox.client.v1.prices.list()

    assert time.monotonic() - started >= 0.3
    assert len(prices.data) == len(load_catalog()["stripe"]["prices"])


def test_bad_fault_bodies_are_refused(sandbox: Sandbox) -> None:
    assert sandbox.control_error("/faults", {"status": 200}).status_code == 400
    assert sandbox.control_error("/faults", {"colour": "red"}).status_code == 400
    assert sandbox.control_error("/faults", {"status": None}).status_code == 400
