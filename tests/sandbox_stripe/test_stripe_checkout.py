"""Checkout Sessions through the real stripe library: create, retrieve, expand, line
items, list, and the parameter checks Stripe makes."""

from __future__ import annotations

import pytest
import stripe

from sandbox_stripe.stripe_harness import Sandbox

WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"
STATIC_YEARLY = "price_sandbox_static_yearly"
STATIC_ONCE = "price_sandbox_static_once"  # EUR, one-time
UNMAPPED = "price_sandbox_unmapped"  # USD, one-time


def create_payment_session(sandbox: Sandbox, **extra: object) -> stripe.checkout.Session:
    params: dict[str, object] = {
        "mode": "payment",
        "line_items": [{"price": STATIC_ONCE, "quantity": 2}],
        "success_url": "https://shop.example/ok?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cancel",
    }
    params.update(extra)
    return sandbox.client.v1.checkout.sessions.create(params)


def test_created_session_has_stripes_fields_and_no_line_items(sandbox: Sandbox) -> None:
    session = create_payment_session(
        sandbox, metadata={"plan": "static"}, client_reference_id="order-7"
    )

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert session.livemode is False
    assert session.customer is None
    assert session.customer_creation == "if_required"
    assert session.customer_details is None
    assert (session.currency, session.amount_subtotal, session.amount_total) == ("eur", 9800, 9800)
    assert session.expires_at == session.created + 24 * 3600
    assert session.metadata.to_dict() == {"plan": "static"}
    assert session.client_reference_id == "order-7"
    assert session.payment_intent is None  # made only when the buyer pays
    assert session.url is not None
    assert session.url.startswith(sandbox.url)
    assert "line_items" not in session


def test_retrieve_with_expand_gives_line_items_as_a_list(sandbox: Sandbox) -> None:
    session = create_payment_session(sandbox)

    plain = sandbox.client.v1.checkout.sessions.retrieve(session.id)
    expanded = sandbox.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["line_items"]})

    assert "line_items" not in plain
    assert expanded.line_items is not None
    assert expanded.line_items.object == "list"
    assert expanded.line_items.has_more is False
    [item] = expanded.line_items.data
    assert item.object == "item"
    assert item.id.startswith("li_")
    assert (item.quantity, item.amount_total, item.currency) == (2, 9800, "eur")
    assert item.description == "Static Site"
    assert item.price is not None
    assert item.price.id == STATIC_ONCE
    assert item.price.product == "prod_sandbox_static"
    assert item.price.type == "one_time"


def test_expand_follows_ids_and_refuses_what_is_not_expandable(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"email": "ana@example.com"})
    session = create_payment_session(sandbox, customer=customer.id)

    expanded = sandbox.client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["customer", "line_items.data.price.product"]}
    )

    assert isinstance(expanded.customer, stripe.Customer)
    assert expanded.customer.email == "ana@example.com"
    assert expanded.line_items is not None
    product = expanded.line_items.data[0].price.product
    assert isinstance(product, stripe.Product)
    assert product.name == "Static Site"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["mode"]})
    assert refused.value.param == "expand"


def test_line_items_paginate_up_to_stripes_limit_of_100(sandbox: Sandbox) -> None:
    prices = [
        sandbox.client.v1.prices.create(
            {"currency": "usd", "unit_amount": 100 + n, "product": "prod_sandbox_static"}
        )
        for n in range(100)
    ]
    session = sandbox.client.v1.checkout.sessions.create(
        {"mode": "payment", "line_items": [{"price": p.id, "quantity": 1} for p in prices]}
    )
    line_items = sandbox.client.v1.checkout.sessions.line_items

    first = line_items.list(session.id, {"limit": 30})
    second = line_items.list(session.id, {"limit": 30, "starting_after": first.data[-1].id})
    everything = line_items.list(session.id, {"limit": 100})
    paged = list(line_items.list(session.id, {"limit": 7}).auto_paging_iter())

    assert (len(first.data), first.has_more) == (30, True)
    assert second.data[0].price.id == prices[30].id
    assert (len(everything.data), everything.has_more) == (100, False)
    assert [i.price.id for i in paged] == [p.id for p in prices]
    assert session.amount_total == sum(100 + n for n in range(100))
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        line_items.list(session.id, {"limit": 101})
    assert too_many.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as over_limit:
        sandbox.client.v1.checkout.sessions.create(
            {"mode": "payment", "line_items": [{"price": UNMAPPED, "quantity": 1}] * 101}
        )
    assert over_limit.value.param == "line_items"


def test_expanded_line_items_are_a_first_page_with_has_more(sandbox: Sandbox) -> None:
    session = sandbox.client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": UNMAPPED, "quantity": n} for n in range(1, 13)],
        }
    )

    expanded = sandbox.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["line_items"]})

    assert expanded.line_items is not None
    assert (len(expanded.line_items.data), expanded.line_items.has_more) == (10, True)


@pytest.mark.parametrize(
    ("params", "param", "needle"),
    [
        (
            {"mode": "payment", "line_items": [{"price": "price_nope", "quantity": 1}]},
            "line_items[0][price]",
            "No such price: 'price_nope'",
        ),
        (
            {"mode": "payment", "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}]},
            "line_items[0][price]",
            "recurring price",
        ),
        (
            {"mode": "subscription", "line_items": [{"price": UNMAPPED, "quantity": 1}]},
            "line_items",
            "at least one recurring price",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [
                    {"price": "price_sandbox_static_monthly", "quantity": 1},
                    {"price": STATIC_YEARLY, "quantity": 1},
                ],
            },
            "line_items",
            "different billing intervals",
        ),
        (
            {
                "mode": "payment",
                "line_items": [
                    {"price": UNMAPPED, "quantity": 1},
                    {"price": STATIC_ONCE, "quantity": 1},
                ],
            },
            "line_items[1][price]",
            "currency",
        ),
        (
            {"mode": "payment", "line_items": [{"price": UNMAPPED}]},
            "line_items[0][quantity]",
            "Missing required param",
        ),
        ({"mode": "payment"}, "line_items", "Missing required param"),
        ({"line_items": [{"price": UNMAPPED, "quantity": 1}]}, "mode", "Missing required param"),
        (
            {"mode": "rent", "line_items": [{"price": UNMAPPED, "quantity": 1}]},
            "mode",
            "must be one of",
        ),
        (
            {
                "mode": "subscription",
                "customer_creation": "always",
                "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}],
            },
            "customer_creation",
            "payment` and `setup` mode",
        ),
        (
            {
                "mode": "payment",
                "customer": "cus_missing",
                "line_items": [{"price": UNMAPPED, "quantity": 1}],
            },
            "customer",
            "No such customer",
        ),
        (
            {"mode": "payment", "line_item": [{"price": UNMAPPED, "quantity": 1}]},
            "line_item",
            "Received unknown parameter",
        ),
        (
            {
                "mode": "payment",
                "discounts": [{"coupon": "x"}],
                "line_items": [{"price": UNMAPPED, "quantity": 1}],
            },
            "discounts",
            "does not model",
        ),
    ],
)
def test_bad_session_parameters_are_refused_like_stripe(
    sandbox: Sandbox, params: dict[str, object], param: str, needle: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.checkout.sessions.create(params)

    assert refused.value.http_status == 400
    assert refused.value.param == param
    assert needle in str(refused.value.user_message)


def test_one_time_prices_ride_along_in_subscription_mode(sandbox: Sandbox) -> None:
    # Stripe charges one-time prices on the first invoice of a subscription.
    session = sandbox.client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [
                {"price": WORDPRESS_MONTHLY, "quantity": 1},
                {"price": UNMAPPED, "quantity": 1},
            ],
        }
    )

    assert session.amount_total == 1600
    assert session.customer_creation is None


def test_customer_and_customer_email_are_exclusive(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"email": "a@example.com"})

    with pytest.raises(stripe.InvalidRequestError, match="only specify one"):
        create_payment_session(sandbox, customer=customer.id, customer_email="b@example.com")


def test_unknown_session_is_a_404_resource_missing(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sandbox.client.v1.checkout.sessions.retrieve("cs_test_nope")

    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_session_list_filters_by_created_status_and_customer(sandbox: Sandbox) -> None:
    early = create_payment_session(sandbox)
    sandbox.clock.advance(60)
    customer = sandbox.client.v1.customers.create({"email": "late@example.com"})
    late = create_payment_session(sandbox, customer=customer.id)
    sandbox.control(f"/checkout/sessions/{early.id}/expire")
    sessions = sandbox.client.v1.checkout.sessions

    newest_first = sessions.list()
    since = sessions.list({"created": {"gte": late.created}})
    until = sessions.list({"created": {"lte": early.created}})
    expired = sessions.list({"status": "expired"})
    by_customer = sessions.list({"customer": customer.id})
    page = sessions.list({"limit": 1})
    next_page = sessions.list({"limit": 1, "starting_after": page.data[0].id})

    assert [s.id for s in newest_first.data] == [late.id, early.id]
    assert [s.id for s in since.data] == [late.id]
    assert [s.id for s in until.data] == [early.id]
    assert [s.id for s in expired.data] == [early.id]
    assert [s.id for s in by_customer.data] == [late.id]
    assert (page.data[0].id, page.has_more) == (late.id, True)
    assert ([s.id for s in next_page.data], next_page.has_more) == ([early.id], False)


def test_prices_list_by_lookup_key_and_retrieve(sandbox: Sandbox) -> None:
    prices = sandbox.client.v1.prices.list(
        {"lookup_keys": ["wordpress-monthly", "static-site-once"], "active": True}
    )
    recurring = sandbox.client.v1.prices.list(
        {"type": "recurring", "product": "prod_sandbox_static"}
    )
    price = sandbox.client.v1.prices.retrieve(WORDPRESS_MONTHLY)
    product = sandbox.client.v1.products.retrieve("prod_sandbox_wordpress")

    assert {p.lookup_key for p in prices.data} == {"wordpress-monthly", "static-site-once"}
    assert {p.id for p in recurring.data} == {"price_sandbox_static_monthly", STATIC_YEARLY}
    assert price.recurring is not None
    assert (price.recurring.interval, price.unit_amount, price.currency) == ("month", 1500, "usd")
    assert product.name == "Managed WordPress"


def test_price_lookup_keys_are_unique_unless_transferred(sandbox: Sandbox) -> None:
    prices = sandbox.client.v1.prices
    new = {
        "currency": "usd",
        "unit_amount": 1900,
        "product": "prod_sandbox_wordpress",
        "recurring": {"interval": "month"},
        "lookup_key": "wordpress-monthly",
    }

    with pytest.raises(stripe.InvalidRequestError, match="already uses that lookup key"):
        prices.create(new)
    moved = prices.create({**new, "transfer_lookup_key": True})

    [holder] = prices.list({"lookup_keys": ["wordpress-monthly"]}).data
    assert holder.id == moved.id
    assert prices.retrieve(WORDPRESS_MONTHLY).lookup_key is None
