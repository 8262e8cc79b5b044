"""``StripeGateway`` against localstripe: a second Stripe oracle that nobody on
this team wrote.

The Stripe stand-in (``csonboard.sandbox.stripe``) and the gateway were written
from the same reading of Stripe's documentation, so a misunderstanding shared by
both passes every test that runs one against the other. localstripe (PyPI,
GPL-3.0, started here as a separate process and never imported) is an
independent fake of part of the Stripe API, and the gateway is run against it
for the calls it has:

- customers: ``create_customer`` (localstripe ignores the Idempotency-Key
  header), ``update_customer_metadata`` and ``customer_metadata``;
- subscriptions: ``subscription`` (localstripe speaks API 2017-08-15: items have
  plans, not prices, and the period is on the subscription, not on its items);
- events: ``event_body`` and ``event_body_if_kept`` read back an event localstripe
  generated and delivered, byte for byte as its API returns it; an unknown id is
  None for a replay;
- products: ``product``.

Calls it does not have (Checkout Sessions, prices) answer a plain-text 404: the
gateway must report that as a ConfigError naming ``stripe.api_base`` (whatever
answered is not the Stripe API), never as an outage to retry.

docs/stripe-oracles.md lists what differs from Stripe. Without localstripe
installed the module skips, saying so, unless REQUIRE_TEST_SERVICES=1 (CI).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests
import stripe
from flask import Flask, request

from conftest import REQUIRED
from csonboard.errors import ConfigError, StripeRefused
from csonboard.sandbox.server import start_in_thread
from csonboard.stripe_api import Address, Buyer, StripeGateway
from csonboard.webhook import parse_event, verify_signature
from processes import free_port

KEY = "sk_test_localstripe"  # localstripe takes any "sk_" key longer than 5 characters
WEBHOOK_SECRET = "whsec_localstripe"
# localstripe pickles its whole state to this literal path after every write,
# whatever the working directory or TMPDIR; --from-scratch only skips loading it.
PICKLE = Path("/tmp/localstripe.pickle")

ADA = Buyer(
    email="ada@example.com",
    name="Ada Lovelace",
    phone="+44 20 7946 0000",
    address=Address(
        line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"
    ),
)


@dataclass(frozen=True)
class Delivery:
    body: bytes
    signature: str | None


@dataclass
class LocalStripe:
    url: str
    http: requests.Session  # the shop and the Dashboard: sets up what the gateway reads
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gateway(self, api_key: str = KEY) -> StripeGateway:
        return StripeGateway(api_key, api_base=self.url, max_network_retries=0, timeout=10)

    def post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"{self.url}{path}", data=data)
        assert response.ok, response.text
        return response.json()

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.url}{path}")

    def reset(self) -> None:
        self.http.delete(f"{self.url}/_config/data").raise_for_status()
        with self.lock:
            self.deliveries.clear()

    def delivered(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10) -> Delivery:
        """The first webhook delivery whose event matches (localstripe waits 1 s
        before it sends one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [d for d in self.deliveries if match(json.loads(d.body))]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no matching webhook delivery in {timeout} s")

    def event_ids(self, event_type: str) -> list[str]:
        response = self.get(f"/v1/events?type={event_type}")
        assert response.ok, response.text
        return [event["id"] for event in response.json()["data"]]

    def subscribed_customer(self, quantity: int = 1) -> tuple[str, str, str]:
        """A customer paying by card for a monthly plan: (customer, plan, subscription)."""
        product = self.post("/v1/products", {"name": "WordPress Small"})["id"]
        plan = self.post(
            "/v1/plans",
            {
                "id": "plan_wordpress_monthly",
                "product": product,
                "amount": 1200,
                "currency": "usd",
                "interval": "month",
            },
        )["id"]
        customer = self.post(
            "/v1/customers",
            {
                "email": "grace@example.com",
                "payment_method": "pm_card_visa",
                "invoice_settings[default_payment_method]": "pm_card_visa",
            },
        )["id"]
        subscription = self.post(
            "/v1/subscriptions",
            {
                "customer": customer,
                "items[0][plan]": plan,
                "items[0][quantity]": str(quantity),
                "metadata[shop_order]": "1001",
            },
        )["id"]
        return customer, plan, subscription


def _missing(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"{reason}; REQUIRE_TEST_SERVICES=1 says it must be there", pytrace=False)
    pytest.skip(f"{reason}; pip install -e '.[test]' installs it")


def _localstripe_command() -> list[str]:
    if importlib.util.find_spec("localstripe") is None:
        _missing("localstripe is not installed (no module named 'localstripe')")
    beside_python = str(Path(sys.executable).parent)
    script = shutil.which("localstripe", path=os.pathsep.join([beside_python, os.defpath]))
    script = script or shutil.which("localstripe")
    if script is None:
        _missing("localstripe is installed but its console script 'localstripe' is not found")
    return [script]


def _receiver(deliveries: list[Delivery], lock: threading.Lock) -> Flask:
    """Where localstripe sends its webhooks: keeps each body and signature."""
    app = Flask("localstripe-webhooks")

    @app.post("/webhook")
    def webhook() -> tuple[str, int]:
        with lock:
            deliveries.append(Delivery(request.get_data(), request.headers.get("Stripe-Signature")))
        return "", 200

    return app


def _wait_until_answering(
    process: subprocess.Popen[bytes], http: requests.Session, url: str, log: Path
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"localstripe exited with {process.returncode} on start:\n{log.read_text()}",
                pytrace=False,
            )
        try:
            if http.get(f"{url}/v1/customers?limit=1", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail(f"localstripe did not answer in 30 s:\n{log.read_text()}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    command = _localstripe_command()
    workdir = tmp_path_factory.mktemp("localstripe")
    pickle_was_there = PICKLE.exists()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    oracle = LocalStripe(url, requests.Session())
    oracle.http.headers["Authorization"] = f"Bearer {KEY}"
    receiver = start_in_thread(_receiver(oracle.deliveries, oracle.lock))
    log = workdir / "localstripe.log"
    try:
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*command, "--port", str(port), "--from-scratch"],
                cwd=workdir,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_answering(process, oracle.http, url, log)
            oracle.http.post(
                f"{url}/_config/webhooks/csonboard",
                data={"url": f"{receiver.url}/webhook", "secret": WEBHOOK_SECRET},
            ).raise_for_status()
            yield oracle
        finally:
            _stop(process)
    finally:
        oracle.http.close()
        receiver.stop()
        if not pickle_was_there:
            PICKLE.unlink(missing_ok=True)


@pytest.fixture
def oracle(localstripe: LocalStripe) -> LocalStripe:
    """localstripe with no objects (the webhook endpoint stays registered)."""
    localstripe.reset()
    return localstripe


# -- customers ------------------------------------------------------------------------


def test_guest_customer_is_created_with_the_buyers_details_and_metadata(
    oracle: LocalStripe,
) -> None:
    gateway = oracle.gateway()
    customer = gateway.create_customer(
        ADA,
        metadata={"csonboard_session": "cs_test_a1"},
        idempotency_key="csonboard-customer-cs_test_a1",
    )

    assert customer.startswith("cus_")
    stored = oracle.get(f"/v1/customers/{customer}").json()
    assert (stored["email"], stored["name"], stored["phone"]) == (
        "ada@example.com",
        "Ada Lovelace",
        "+44 20 7946 0000",
    )
    # Only the address fields the buyer gave are sent.
    assert stored["address"] == {
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    }
    assert gateway.customer_metadata(customer) == {"csonboard_session": "cs_test_a1"}


def test_localstripe_ignores_idempotency_keys_so_a_repeat_makes_a_second_customer(
    oracle: LocalStripe,
) -> None:
    """Stripe answers a repeated key with the first customer (the stand-in's tests
    check that the gateway relies on it); localstripe ignores the header. Kept as
    a test so docs/stripe-oracles.md is corrected if either side changes."""
    gateway = oracle.gateway()
    key = "csonboard-customer-cs_test_twice"
    first = gateway.create_customer(ADA, metadata={}, idempotency_key=key)
    second = gateway.create_customer(ADA, metadata={}, idempotency_key=key)

    assert first != second
    assert oracle.get("/v1/customers").json()["total_count"] == 2


def test_link_back_metadata_merges_into_the_customer_and_reads_back(oracle: LocalStripe) -> None:
    gateway = oracle.gateway()
    customer = gateway.create_customer(
        ADA, metadata={"csonboard_session": "cs_test_b2"}, idempotency_key="k-create"
    )

    gateway.update_customer_metadata(
        customer,
        {"computestacks_user_id": "42", "computestacks_project_ids": "7"},
        idempotency_key="k-link-1",
    )
    gateway.update_customer_metadata(
        customer, {"computestacks_project_ids": "7,9"}, idempotency_key="k-link-2"
    )

    merged = {
        "csonboard_session": "cs_test_b2",
        "computestacks_user_id": "42",
        "computestacks_project_ids": "7,9",
    }
    assert gateway.customer_metadata(customer) == merged
    # Each write is a customer.updated event holding the customer as it became.
    updates = [json.loads(gateway.event_body(e)) for e in oracle.event_ids("customer.updated")]
    seen = sorted((u["data"]["object"]["metadata"] for u in updates), key=str)
    assert seen == sorted([{**merged, "computestacks_project_ids": "7"}, merged], key=str)


def test_an_unknown_customer_is_refused_not_a_configuration_problem(oracle: LocalStripe) -> None:
    """localstripe has the customers path, so its 404 is JSON: Stripe refusing
    (a person must look), not a wrong API base."""
    gateway = oracle.gateway()
    with pytest.raises(StripeRefused, match="HTTP 404"):
        gateway.customer_metadata("cus_nobody")
    with pytest.raises(StripeRefused, match="update customer cus_nobody: HTTP 404"):
        gateway.update_customer_metadata("cus_nobody", {"a": "b"}, idempotency_key="k")


# -- subscriptions --------------------------------------------------------------------


def test_subscription_is_read_with_status_customer_quantity_and_metadata(
    oracle: LocalStripe,
) -> None:
    customer, plan, sub_id = oracle.subscribed_customer(quantity=2)

    subscription = oracle.gateway().subscription(sub_id)

    assert subscription.id == sub_id
    assert subscription.status == "active"  # the first invoice was paid by card
    assert subscription.customer == customer
    assert subscription.metadata == {"shop_order": "1001"}
    assert (subscription.cancel_at_period_end, subscription.cancel_at) == (False, None)
    assert subscription.ended_at is None
    assert [item.quantity for item in subscription.items] == [2]

    # API 2017-08-15: the item has a plan and no price, and the period is on the
    # subscription. The gateway reads prices and item periods (API 2025-03-31+),
    # so on localstripe it sees neither.
    raw = oracle.get(f"/v1/subscriptions/{sub_id}").json()
    assert raw["items"]["data"][0]["plan"]["id"] == plan
    assert "price" not in raw["items"]["data"][0]
    assert raw["current_period_end"] > raw["current_period_start"]
    (item,) = subscription.items
    assert (item.price_id, item.lookup_key, item.product_id) == (None, None, None)
    assert item.current_period_end is None


def test_cancellation_and_end_of_a_subscription_are_read(oracle: LocalStripe) -> None:
    _, _, sub_id = oracle.subscribed_customer()
    gateway = oracle.gateway()

    oracle.post(f"/v1/subscriptions/{sub_id}", {"cancel_at_period_end": "true"})
    at_period_end = gateway.subscription(sub_id)
    assert (at_period_end.status, at_period_end.cancel_at_period_end) == ("active", True)
    assert at_period_end.canceled_at is None  # Stripe would set it now; localstripe never does

    cancel_at = int(time.time()) + 7 * 86400
    oracle.post(f"/v1/subscriptions/{sub_id}", {"cancel_at": str(cancel_at)})
    assert gateway.subscription(sub_id).cancel_at == cancel_at

    before = int(time.time())
    assert oracle.http.delete(f"{oracle.url}/v1/subscriptions/{sub_id}").ok
    ended = gateway.subscription(sub_id)
    assert ended.status == "canceled"
    assert ended.ended_at is not None
    assert before <= ended.ended_at <= int(time.time())


def test_an_unknown_subscription_is_refused(oracle: LocalStripe) -> None:
    with pytest.raises(StripeRefused, match="retrieve subscription sub_nothing: HTTP 404"):
        oracle.gateway().subscription("sub_nothing")


# -- events ---------------------------------------------------------------------------


def test_event_body_is_the_event_localstripe_delivered_as_its_api_sends_it(
    oracle: LocalStripe,
) -> None:
    gateway = oracle.gateway()
    customer = gateway.create_customer(
        ADA, metadata={"csonboard_session": "cs_test_c3"}, idempotency_key="k-c3"
    )
    delivery = oracle.delivered(
        lambda e: e["type"] == "customer.created" and e["data"]["object"]["id"] == customer
    )
    # The delivery is signed the way csonboard's receiver checks.
    verify_signature(
        delivery.body,
        delivery.signature,
        [WEBHOOK_SECRET],
        tolerance=300,
        now=datetime.now(UTC),
    )
    delivered = json.loads(delivery.body)

    body = gateway.event_body(delivered["id"])

    # Byte for byte what the API answered (not re-serialised by stripe-python)...
    assert body == oracle.get(f"/v1/events/{delivered['id']}").content
    # ... and the same event that was delivered.
    assert json.loads(body) == delivered
    assert gateway.event_body_if_kept(delivered["id"]) == body
    # A replay (`csonboard replay --from-stripe`) can use it.
    incoming = parse_event(body, livemode=False, signature=None, source="stripe_api")
    assert (incoming.id, incoming.type) == (delivered["id"], "customer.created")
    assert (incoming.object_id, incoming.customer_id) == (customer, customer)
    assert incoming.api_version == "2017-08-15"
    assert incoming.body == body
    # Stripe's events also carry these; localstripe's do not.
    assert "pending_webhooks" not in delivered
    assert "request" not in delivered


def test_an_unknown_event_is_none_for_a_replay_and_refused_otherwise(oracle: LocalStripe) -> None:
    gateway = oracle.gateway()
    assert gateway.event_body_if_kept("evt_never_sent") is None
    with pytest.raises(StripeRefused, match="retrieve event evt_never_sent: HTTP 404"):
        gateway.event_body("evt_never_sent")


# -- products and keys ----------------------------------------------------------------


def test_product_is_read_and_an_unknown_one_is_none(oracle: LocalStripe) -> None:
    product = oracle.post("/v1/products", {"name": "Nginx Medium", "active": "false"})["id"]
    gateway = oracle.gateway()

    found = gateway.product(product)
    assert found is not None
    assert (found.id, found.name, found.active) == (product, "Nginx Medium", False)
    assert gateway.product("prod_nothing") is None


def test_a_key_the_api_refuses_is_a_config_error_naming_the_api_key(oracle: LocalStripe) -> None:
    """A publishable key pasted as the secret key: the operator's reads say so."""
    with pytest.raises(ConfigError) as refused:
        oracle.gateway("pk_test_publishable").product("prod_anything")
    assert refused.value.key == "stripe.api_key"
    assert "HTTP 401" in str(refused.value)


# -- calls localstripe does not have --------------------------------------------------

MISSING_CALLS: dict[str, Callable[[StripeGateway], object]] = {
    "checkout_session": lambda g: g.checkout_session("cs_test_x"),
    "price": lambda g: g.price("price_x"),
    "sessions_of_subscription": lambda g: g.sessions_of_subscription("sub_x"),
    "paid_sessions": lambda g: g.paid_sessions(datetime(2026, 1, 1, tzinfo=UTC)),
    "prices_by_lookup_key": lambda g: g.prices_by_lookup_key(["wordpress-monthly"]),
}


@pytest.mark.parametrize("call", list(MISSING_CALLS))
def test_a_call_localstripe_lacks_is_a_config_error_naming_the_api_base(
    oracle: LocalStripe, call: str
) -> None:
    """localstripe answers a path it lacks with aiohttp's plain-text 404: not the
    Stripe API, so a ConfigError naming stripe.api_base, not an outage to retry."""
    raw = oracle.get("/v1/checkout/sessions/cs_test_x")
    assert raw.status_code == 404
    assert raw.headers["Content-Type"].startswith("text/plain")

    with pytest.raises(ConfigError) as wrong_base:
        MISSING_CALLS[call](oracle.gateway())

    error = wrong_base.value
    assert error.key == "stripe.api_base"
    assert not error.transient
    assert oracle.url in str(error)
    assert "HTTP 404 with a body that is not JSON" in str(error)
    assert isinstance(error.__cause__, stripe.StripeError)
