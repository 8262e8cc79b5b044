"""``StripeGateway`` against the Stripe stand-in over real HTTP: what it reads from a
Checkout Session, its idempotent writes, and how failures become StripeUnavailable
(retry later), StripeRefused (a person must act) or, when whatever answered is
not the Stripe API at all, a ConfigError naming ``stripe.api_base``."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from csonboard.errors import ConfigError, StripeRefused, StripeUnavailable
from csonboard.sandbox.catalog import load_catalog
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stripe import create_app, sandbox_account
from csonboard.stripe_api import Address, Buyer, CheckoutSession, LineItem, StripeGateway

API_KEY = "sk_test_sandbox"
WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"
STATIC_MONTHLY = "price_sandbox_static_monthly"
STATIC_ONCE = "price_sandbox_static_once"  # EUR, one-time
BULK_PRODUCT = "prod_gateway_bulk"
BULK_PRICES = [f"price_gateway_bulk_{n:03d}" for n in range(100)]  # USD, one-time

ADA = Buyer(
    email="ada@example.com",
    name="Ada Lovelace",
    phone="+44 20 7946 0000",
    address=Address(
        line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"
    ),
)


@dataclass
class StandIn:
    url: str
    app: Flask
    http: requests.Session
    client: stripe.StripeClient  # plays the shop that creates sessions

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"{self.url}/_sandbox{path}", json=body)
        assert response.ok, response.text
        return response.json()

    def fault(self, **fault: Any) -> None:
        self.control("/faults", fault)

    def state(self) -> Any:
        response = self.http.get(f"{self.url}/_sandbox/state")
        assert response.ok, response.text
        return response.json()

    def gateway(self, **options: Any) -> StripeGateway:
        return StripeGateway(API_KEY, api_base=self.url, **options)

    def session(self, mode: str, items: list[tuple[str, int]], **extra: Any) -> str:
        """Create a Checkout Session as the shop would; returns its id."""
        params: dict[str, Any] = {
            "mode": mode,
            "line_items": [{"price": price, "quantity": qty} for price, qty in items],
            "success_url": "https://shop.example/done?session={CHECKOUT_SESSION_ID}",
            **extra,
        }
        return str(self.client.v1.checkout.sessions.create(params).id)  # type: ignore[arg-type]

    def pay(self, session_id: str, **buyer: Any) -> None:
        """The buyer completes the hosted page."""
        self.control(f"/checkout/sessions/{session_id}/complete", buyer)


def _seed_with_bulk_prices() -> dict[str, Any]:
    """The bundled seed plus one product with 100 one-time prices (a big cart)."""
    seed = load_catalog()
    seed["stripe"]["products"].append({"id": BULK_PRODUCT, "name": "Add-on"})
    seed["stripe"]["prices"].extend(
        {
            "id": price,
            "product": BULK_PRODUCT,
            "lookup_key": f"addon-{n:03d}",
            "currency": "usd",
            "unit_amount": 100 + n,
        }
        for n, price in enumerate(BULK_PRICES)
    )
    return seed


@pytest.fixture(scope="module")
def running_standin() -> Iterator[StandIn]:
    app = create_app(_seed_with_bulk_prices(), api_key=API_KEY)
    server = start_in_thread(app)
    http = requests.Session()
    try:
        yield StandIn(
            server.url, app, http, stripe.StripeClient(API_KEY, base_addresses={"api": server.url})
        )
    finally:
        sandbox_account(app).stop()
        http.close()
        server.stop()


@pytest.fixture
def standin(running_standin: StandIn) -> StandIn:
    """The module's stand-in, back to its seed: no customers, sessions, keys or faults."""
    running_standin.control("/reset")
    return running_standin


# -- reading a Checkout Session ---------------------------------------------------------


def test_completed_session_has_buyer_line_items_and_customer(standin: StandIn) -> None:
    session_id = standin.session(
        "subscription",
        [(WORDPRESS_MONTHLY, 2), (STATIC_MONTHLY, 1)],
        metadata={"shop_order": "A-17"},
        locale="de",
    )
    standin.pay(
        session_id,
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+44 20 7946 0000",
        address={
            "line1": "12 St James's Square",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
    )

    session = standin.gateway().checkout_session(session_id)

    stored = standin.client.v1.checkout.sessions.retrieve(session_id)
    assert isinstance(session, CheckoutSession)
    assert (session.id, session.status, session.payment_status, session.mode) == (
        session_id,
        "complete",
        "paid",
        "subscription",
    )
    assert session.livemode is False
    assert session.customer is not None
    assert session.customer.startswith("cus_")
    assert session.customer == stored.customer
    assert session.subscription is not None
    assert session.subscription.startswith("sub_")
    assert (session.currency, session.locale) == ("usd", "de")
    assert session.metadata == {"shop_order": "A-17"}
    assert session.buyer == ADA
    assert [
        (i.price_id, i.lookup_key, i.product_id, i.quantity, i.description)
        for i in session.line_items
    ] == [
        (WORDPRESS_MONTHLY, "wordpress-monthly", "prod_sandbox_wordpress", 2, "Managed WordPress"),
        (STATIC_MONTHLY, "static-site-monthly", "prod_sandbox_static", 1, "Static Site"),
    ]
    assert all(isinstance(i, LineItem) and i.id.startswith("li_") for i in session.line_items)


def test_guest_payment_session_has_no_customer(standin: StandIn) -> None:
    session_id = standin.session("payment", [(STATIC_ONCE, 3)])
    standin.pay(session_id, email="guest@example.com", name="Guest Buyer")

    session = standin.gateway().checkout_session(session_id)

    assert session.mode == "payment"
    assert session.payment_status == "paid"
    assert session.customer is None
    assert session.subscription is None
    assert (session.buyer.email, session.buyer.name, session.buyer.phone) == (
        "guest@example.com",
        "Guest Buyer",
        None,
    )
    [item] = session.line_items
    assert (item.price_id, item.lookup_key, item.product_id, item.quantity) == (
        STATIC_ONCE,
        "static-site-once",
        "prod_sandbox_static",
        3,
    )


def test_open_session_is_read_as_open_and_unpaid(standin: StandIn) -> None:
    session_id = standin.session("payment", [(STATIC_ONCE, 1)])

    session = standin.gateway().checkout_session(session_id)

    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert session.buyer == Buyer(email=None, name=None, phone=None, address=None)


def test_a_session_with_100_line_items_is_read_completely_in_order(standin: StandIn) -> None:
    # Stripe's (and the stand-in's) default page is 10 items; a session may hold 100.
    cart = [(price, n % 3 + 1) for n, price in enumerate(BULK_PRICES)]
    session_id = standin.session("payment", cart)
    standin.pay(session_id)

    session = standin.gateway().checkout_session(session_id)

    assert [(i.price_id, i.quantity) for i in session.line_items] == cart
    assert [i.lookup_key for i in session.line_items] == [f"addon-{n:03d}" for n in range(100)]
    assert {i.product_id for i in session.line_items} == {BULK_PRODUCT}
    assert len({i.id for i in session.line_items}) == 100


def test_line_items_are_followed_across_pages(standin: StandIn) -> None:
    cart = [(price, 1) for price in BULK_PRICES[:23]]
    session_id = standin.session("payment", cart)
    standin.pay(session_id)
    gateway = standin.gateway(page_size=5)

    session = gateway.checkout_session(session_id)

    assert [i.price_id for i in session.line_items] == [price for price, _ in cart]


# -- idempotent writes --------------------------------------------------------------------


def test_create_customer_twice_with_one_key_makes_one_customer(standin: StandIn) -> None:
    gateway = standin.gateway()
    metadata = {"csonboard_session": "cs_test_abc"}

    first = gateway.create_customer(ADA, metadata=metadata, idempotency_key="cust-cs_test_abc")
    again = gateway.create_customer(ADA, metadata=metadata, idempotency_key="cust-cs_test_abc")

    assert first == again
    assert first.startswith("cus_")
    assert standin.state()["counts"]["customer"] == 1
    customer = standin.client.v1.customers.retrieve(first)
    assert (customer.email, customer.name, customer.phone) == (ADA.email, ADA.name, ADA.phone)
    assert customer.address is not None
    assert (customer.address.line1, customer.address.city, customer.address.country) == (
        "12 St James's Square",
        "London",
        "GB",
    )
    assert gateway.customer_metadata(first) == metadata


def test_create_customer_with_another_key_makes_another_customer(standin: StandIn) -> None:
    gateway = standin.gateway()

    one = gateway.create_customer(ADA, metadata={}, idempotency_key="cust-1")
    two = gateway.create_customer(ADA, metadata={}, idempotency_key="cust-2")

    assert one != two
    assert standin.state()["counts"]["customer"] == 2


def test_create_customer_sends_only_the_details_the_buyer_gave(standin: StandIn) -> None:
    buyer = Buyer(email="only@example.com", name=None, phone=None, address=Address(country="NL"))

    customer_id = standin.gateway().create_customer(buyer, metadata={}, idempotency_key="k-only")

    customer = standin.client.v1.customers.retrieve(customer_id)
    assert (customer.email, customer.name, customer.phone) == ("only@example.com", None, None)
    assert customer.address is not None
    assert (customer.address.country, customer.address.city) == ("NL", None)


def _customer_updates(standin: StandIn, customer_id: str) -> int:
    events = standin.client.v1.events.list({"type": "customer.updated", "limit": 100})
    return sum(1 for event in events.data if event.data.object.id == customer_id)


def test_update_customer_metadata_merges_and_a_replay_is_harmless(standin: StandIn) -> None:
    gateway = standin.gateway()
    customer = gateway.create_customer(
        ADA, metadata={"csonboard_session": "cs_1"}, idempotency_key="c"
    )

    gateway.update_customer_metadata(
        customer, {"computestacks_user_id": "42"}, idempotency_key="u1"
    )
    gateway.update_customer_metadata(
        customer, {"computestacks_project_ids": "7"}, idempotency_key="u2"
    )
    gateway.update_customer_metadata(
        customer, {"computestacks_project_ids": "7,8"}, idempotency_key="u3"
    )
    # A worker that crashed after u2 replays it: Stripe answers from its record
    # instead of writing the older project list back.
    gateway.update_customer_metadata(
        customer, {"computestacks_project_ids": "7"}, idempotency_key="u2"
    )

    assert gateway.customer_metadata(customer) == {
        "csonboard_session": "cs_1",
        "computestacks_user_id": "42",
        "computestacks_project_ids": "7,8",
    }
    assert _customer_updates(standin, customer) == 3


def test_reusing_a_key_for_other_metadata_is_refused_and_changes_nothing(
    standin: StandIn,
) -> None:
    gateway = standin.gateway()
    customer = gateway.create_customer(ADA, metadata={}, idempotency_key="c")
    gateway.update_customer_metadata(customer, {"computestacks_user_id": "42"}, idempotency_key="u")

    with pytest.raises(StripeRefused) as refused:
        gateway.update_customer_metadata(
            customer, {"computestacks_user_id": "43"}, idempotency_key="u"
        )

    assert f"update customer {customer}" in str(refused.value)
    assert gateway.customer_metadata(customer) == {"computestacks_user_id": "42"}


# -- failures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One gateway call, and the method and path a fault must hit to break it."""

    method: str
    path: str  # {session} and {customer} are filled in
    run: Callable[[StripeGateway, str, str], object]


CALLS = {
    "retrieve-session": Call(
        "GET", "/v1/checkout/sessions/{session}", lambda g, s, c: g.checkout_session(s)
    ),
    "list-line-items": Call(
        "GET", "/v1/checkout/sessions/{session}/line_items", lambda g, s, c: g.checkout_session(s)
    ),
    "create-customer": Call(
        "POST",
        "/v1/customers",
        lambda g, s, c: g.create_customer(ADA, metadata={}, idempotency_key="create-once"),
    ),
    "update-customer": Call(
        "POST",
        "/v1/customers/{customer}",
        lambda g, s, c: g.update_customer_metadata(c, {"k": "v"}, idempotency_key="update-once"),
    ),
    "retrieve-customer": Call(
        "GET", "/v1/customers/{customer}", lambda g, s, c: g.customer_metadata(c)
    ),
}


@pytest.fixture
def paid_session(standin: StandIn) -> tuple[str, str]:
    """A paid subscription session and its customer's id."""
    session_id = standin.session("subscription", [(WORDPRESS_MONTHLY, 1)])
    standin.pay(session_id, email="ada@example.com")
    customer = standin.client.v1.checkout.sessions.retrieve(session_id).customer
    assert isinstance(customer, str)
    return session_id, customer


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_5xx_is_stripe_unavailable_and_the_call_can_be_retried(
    standin: StandIn, paid_session: tuple[str, str], call: Call, status: int
) -> None:
    session_id, customer = paid_session
    gateway = standin.gateway(max_network_retries=0)
    path = call.path.format(session=session_id, customer=customer)
    standin.fault(method=call.method, path=path, status=status)
    customers_before = standin.state()["counts"]["customer"]

    with pytest.raises(StripeUnavailable) as failed:
        call.run(gateway, session_id, customer)

    assert failed.value.transient is True
    assert f"HTTP {status}" in str(failed.value)
    assert isinstance(failed.value.__cause__, stripe.StripeError)
    # The fault came before Stripe did anything, so the same call (same
    # idempotency key) now succeeds and writes at most one object.
    call.run(gateway, session_id, customer)
    created = standin.state()["counts"]["customer"] - customers_before
    assert created == (1 if call.method == "POST" and path == "/v1/customers" else 0)


def test_a_429_is_stripe_unavailable(standin: StandIn) -> None:
    standin.fault(method="POST", path="/v1/customers", status=429)

    with pytest.raises(StripeUnavailable) as limited:
        standin.gateway().create_customer(ADA, metadata={}, idempotency_key="k")

    assert "HTTP 429" in str(limited.value)
    assert isinstance(limited.value.__cause__, stripe.RateLimitError)
    assert standin.state()["counts"]["customer"] == 0


def test_library_retries_get_past_a_single_500(standin: StandIn) -> None:
    standin.fault(method="POST", path="/v1/customers", status=500, count=1)

    customer = standin.gateway(max_network_retries=2).create_customer(
        ADA, metadata={}, idempotency_key="k"
    )

    assert [c["id"] for c in standin.state()["objects"]["customer"]] == [customer]
    assert standin.state()["faults"] == []


def test_a_wrong_api_key_is_refused_without_showing_the_key(standin: StandIn) -> None:
    wrong_key = "sk_test_WrongKeyNobodyShouldSee9876"
    session_id = standin.session("payment", [(STATIC_ONCE, 1)])
    gateway = StripeGateway(wrong_key, api_base=standin.url)

    with pytest.raises(StripeRefused) as refused:
        gateway.checkout_session(session_id)

    message = str(refused.value)
    assert refused.value.transient is False
    assert "HTTP 401" in message
    assert f"retrieve checkout session {session_id}" in message
    assert wrong_key not in message
    assert API_KEY not in message
    assert "WrongKeyNobodyShouldSee" not in message


@pytest.mark.parametrize(
    ("run", "unknown"),
    [
        pytest.param(lambda g: g.checkout_session("cs_test_nope"), "cs_test_nope", id="session"),
        pytest.param(lambda g: g.customer_metadata("cus_nope"), "cus_nope", id="customer"),
        pytest.param(
            lambda g: g.update_customer_metadata("cus_nope", {"k": "v"}, idempotency_key="x"),
            "cus_nope",
            id="update",
        ),
    ],
)
def test_an_unknown_id_is_stripe_refused_naming_it(
    standin: StandIn, run: Callable[[StripeGateway], object], unknown: str
) -> None:
    with pytest.raises(StripeRefused) as refused:
        run(standin.gateway())

    assert refused.value.transient is False
    assert "HTTP 404" in str(refused.value)
    assert unknown in str(refused.value)


def test_a_refund_that_another_refund_beat_is_reported_as_already_done(
    standin: StandIn,
) -> None:
    session_id = standin.session("payment", [(STATIC_ONCE, 1)])
    standin.pay(session_id, email="ada@example.com")
    intent = str(standin.client.v1.checkout.sessions.retrieve(session_id).payment_intent)
    charge = str(standin.client.v1.payment_intents.retrieve(intent).latest_charge)
    # csonboard's look at the charge answers slowly; meanwhile someone else
    # refunds it in full, so csonboard's own refund is refused.
    standin.fault(method="GET", path=f"/v1/charges/{charge}", status=None, delay=1.0, after=True)
    outcome: list[Any] = []
    refunding = threading.Thread(
        target=lambda: outcome.append(
            standin.gateway().refund_payment(intent, reason="duplicate", idempotency_key="k-1")
        )
    )
    refunding.start()
    deadline = time.monotonic() + 10
    while standin.http.get(f"{standin.url}/_sandbox/faults").json()["faults"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    standin.client.v1.refunds.create({"charge": charge})
    refunding.join(timeout=30)

    [(refund_id, payment)] = outcome
    assert refund_id is None
    assert payment is not None and payment.refunded_in_full
    assert len(standin.client.v1.refunds.list({"charge": charge}).data) == 1


def test_an_unreachable_stripe_is_stripe_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    gateway = StripeGateway(API_KEY, api_base=f"http://127.0.0.1:{port}", max_network_retries=0)

    with pytest.raises(StripeUnavailable) as failed:
        gateway.customer_metadata("cus_any")

    assert isinstance(failed.value.__cause__, stripe.APIConnectionError)
    assert API_KEY not in str(failed.value)
    # One line naming what is unreachable, not the library's paragraph.
    assert f"cannot reach http://127.0.0.1:{port} (Connection refused)" in str(failed.value)
    assert "\n" not in str(failed.value) and "support@stripe.com" not in str(failed.value)


def _answering(status: int, body: str, content_type: str) -> Flask:
    """A web server that is not Stripe: every path gets the same answer."""
    app = Flask("not_stripe")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def anything(path: str) -> tuple[str, int, dict[str, str]]:
        return body, status, {"Content-Type": content_type}

    return app


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (404, "404 page not found\n", "text/plain"),  # a web server, not Stripe
        (200, "<html><body>Welcome to nginx!</body></html>", "text/html"),
        (
            404,  # Stripe's own answer for a path it does not have: the base has a path
            json.dumps(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Unrecognized request URL (GET: /stripe/v1/customers/cus_1).",
                    }
                }
            ),
            "application/json",
        ),
    ],
    ids=["plain-text-404", "html-200", "unrecognized-url"],
)
def test_an_answer_that_is_not_the_stripe_api_is_a_config_error_naming_api_base(
    status: int, body: str, content_type: str
) -> None:
    server = start_in_thread(_answering(status, body, content_type))
    try:
        gateway = StripeGateway(API_KEY, api_base=server.url, max_network_retries=0)
        for call in (
            lambda: gateway.customer_metadata("cus_1"),
            lambda: gateway.price("price_1"),  # an operator read: not "no such price"
        ):
            with pytest.raises(ConfigError) as wrong:
                call()
            assert wrong.value.key == "stripe.api_base"
            assert server.url in str(wrong.value)
            assert "CSONBOARD_STRIPE_API_BASE" in str(wrong.value)
            assert wrong.value.transient is False
    finally:
        server.stop()


def test_a_5xx_that_is_not_json_is_still_an_outage() -> None:
    server = start_in_thread(_answering(502, "<html>Bad Gateway</html>", "text/html"))
    try:
        gateway = StripeGateway(API_KEY, api_base=server.url, max_network_retries=0)
        with pytest.raises(StripeUnavailable) as outage:
            gateway.customer_metadata("cus_1")
    finally:
        server.stop()

    assert "HTTP 502" in str(outage.value)
    assert "not JSON" in str(outage.value)


def test_an_event_is_read_back_exactly_as_the_api_sent_it(standin: StandIn) -> None:
    session_id = standin.session("subscription", [(WORDPRESS_MONTHLY, 1)])
    standin.pay(session_id)
    [event] = standin.client.v1.events.list({"type": "checkout.session.completed"}).data

    body = standin.gateway().event_body(event.id)

    parsed = json.loads(body)
    assert (parsed["id"], parsed["type"], parsed["object"]) == (event.id, event.type, "event")
    assert parsed["data"]["object"]["id"] == session_id


def test_an_unknown_event_is_refused_naming_it(standin: StandIn) -> None:
    with pytest.raises(StripeRefused, match="evt_nope"):
        standin.gateway().event_body("evt_nope")


def test_a_subscription_is_read_with_its_items_and_periods(standin: StandIn) -> None:
    session_id = standin.session("subscription", [(WORDPRESS_MONTHLY, 2)])
    standin.pay(session_id)
    subscription_id = standin.gateway().checkout_session(session_id).subscription
    assert subscription_id is not None

    subscription = standin.gateway().subscription(subscription_id)

    assert (subscription.id, subscription.status) == (subscription_id, "active")
    assert subscription.cancel_at_period_end is False
    [item] = subscription.items
    assert (item.price_id, item.lookup_key, item.quantity) == (
        WORDPRESS_MONTHLY,
        "wordpress-monthly",
        2,
    )
    assert item.current_period_end is not None
