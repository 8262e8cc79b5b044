"""Payment Links through the real stripe library: created, listed, and opened by buyers
(``/_sandbox/payment_links/{id}/open``) into Checkout Sessions that pay like any other."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox_stripe.stripe_harness import Sandbox

WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"
STATIC_MONTHLY = "price_sandbox_static_monthly"
STATIC_YEARLY = "price_sandbox_static_yearly"
STATIC_ONCE = "price_sandbox_static_once"
THANKS = "https://example.com/thanks?session={CHECKOUT_SESSION_ID}"


def subscription_link(sandbox: Sandbox) -> stripe.PaymentLink:
    return sandbox.client.v1.payment_links.create(
        {
            "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}],
            "metadata": {"campaign": "spring"},
            "after_completion": {"type": "redirect", "redirect": {"url": THANKS}},
            "subscription_data": {"metadata": {"cs_plan": "wordpress"}},
        }
    )


def test_create_answers_stripes_shape_and_emits_payment_link_created(sandbox: Sandbox) -> None:
    link = subscription_link(sandbox)

    fetched = sandbox.client.v1.payment_links.retrieve(link.id)
    [event] = sandbox.client.v1.events.list({"type": "payment_link.created"}).data

    assert link.id.startswith("plink_")
    assert (fetched.active, fetched.currency, fetched.livemode) == (True, "usd", False)
    assert fetched.after_completion.type == "redirect"
    assert fetched.after_completion.redirect is not None
    assert fetched.after_completion.redirect.url == THANKS
    assert fetched.after_completion.hosted_confirmation is None
    assert fetched.metadata.to_dict() == {"campaign": "spring"}
    assert fetched.subscription_data is not None
    assert fetched.subscription_data.metadata.to_dict() == {"cs_plan": "wordpress"}
    assert fetched.payment_intent_data is None
    assert fetched.url == f"{sandbox.url}/_sandbox/payment_links/{link.id}/open"
    assert "line_items" not in fetched  # includable only
    assert event.data.object.id == link.id
    assert link.last_response is not None
    assert event.request is not None
    assert event.request.id == link.last_response.request_id


def test_line_items_are_listed_and_includable(sandbox: Sandbox) -> None:
    link = sandbox.client.v1.payment_links.create(
        {
            "line_items": [
                {"price": STATIC_MONTHLY, "quantity": 2},
                {"price": WORDPRESS_MONTHLY, "quantity": 1},
            ]
        }
    )

    first = sandbox.client.v1.payment_links.line_items.list(link.id, {"limit": 1})
    rest = sandbox.client.v1.payment_links.line_items.list(
        link.id, {"starting_after": first.data[0].id}
    )
    expanded = sandbox.client.v1.payment_links.retrieve(link.id, {"expand": ["line_items"]})

    assert first.url == f"/v1/payment_links/{link.id}/line_items"
    assert first.has_more is True
    items = first.data + rest.data
    assert [(i.price.id if i.price else None, i.quantity) for i in items] == [
        (STATIC_MONTHLY, 2),
        (WORDPRESS_MONTHLY, 1),
    ]
    assert (items[0].description, items[0].amount_total) == ("Static Site", 1000)
    assert expanded.line_items is not None
    assert [i.id for i in expanded.line_items.data] == [i.id for i in items]


def test_links_are_listed_newest_first_and_paginate(sandbox: Sandbox) -> None:
    older = subscription_link(sandbox)
    newer = subscription_link(sandbox)

    page = sandbox.client.v1.payment_links.list({"limit": 1})
    every = sandbox.client.v1.payment_links.list({"limit": 1, "active": True})
    inactive = sandbox.client.v1.payment_links.list({"active": False})

    assert page.url == "/v1/payment_links"
    assert ([link.id for link in page.data], page.has_more) == ([newer.id], True)
    assert [link.id for link in every.auto_paging_iter()] == [newer.id, older.id]
    assert inactive.data == []


def test_each_opening_is_a_new_session_that_pays_into_a_subscription(sandbox: Sandbox) -> None:
    link = subscription_link(sandbox)
    direct = sandbox.client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}]}
    )

    opened = sandbox.control(f"/payment_links/{link.id}/open", {})
    other = sandbox.control(f"/payment_links/{link.id}/open", {})
    sandbox.control(f"/checkout/sessions/{opened['id']}/complete", {})

    session = sandbox.client.v1.checkout.sessions.retrieve(opened["id"])
    from_link = sandbox.client.v1.checkout.sessions.list({"payment_link": link.id})
    assert other["id"] != opened["id"]
    assert (opened["payment_link"], opened["mode"], opened["ui_mode"]) == (
        link.id,
        "subscription",
        "hosted_page",
    )
    assert opened["success_url"] == THANKS
    assert opened["metadata"] == {"campaign": "spring"}
    assert opened["url"].startswith(f"{sandbox.url}/_sandbox/pay/")
    assert {s.id for s in from_link.data} == {opened["id"], other["id"]}
    assert direct.id not in {s.id for s in from_link.data}
    assert (session.status, session.payment_status, session.payment_link) == (
        "complete",
        "paid",
        link.id,
    )
    assert isinstance(session.subscription, str)
    subscription = sandbox.client.v1.subscriptions.retrieve(session.subscription)
    assert subscription.status == "active"
    assert subscription.metadata.to_dict() == {"cs_plan": "wordpress"}
    [completed] = sandbox.client.v1.events.list({"type": "checkout.session.completed"}).data
    assert completed.data.object.payment_link == link.id


def test_a_one_time_link_opens_payment_sessions_and_a_browser_is_sent_to_pay(
    sandbox: Sandbox,
) -> None:
    link = sandbox.client.v1.payment_links.create(
        {
            "line_items": [{"price": STATIC_ONCE, "quantity": 2}],
            "payment_intent_data": {"metadata": {"order": "7"}},
            "after_completion": {
                "type": "hosted_confirmation",
                "hosted_confirmation": {"custom_message": "Thanks!"},
            },
        }
    )

    opened = sandbox.control(f"/payment_links/{link.id}/open", {})
    sandbox.control(f"/checkout/sessions/{opened['id']}/complete", {})
    session = sandbox.client.v1.checkout.sessions.retrieve(opened["id"])
    browser = sandbox.http.get(link.url, allow_redirects=False)

    assert link.after_completion.type == "hosted_confirmation"
    assert link.after_completion.hosted_confirmation is not None
    assert link.after_completion.hosted_confirmation.custom_message == "Thanks!"
    assert (link.subscription_data, link.currency) == (None, "eur")
    assert link.payment_intent_data is not None
    assert link.payment_intent_data.metadata.to_dict() == {"order": "7"}
    assert (opened["mode"], opened["customer_creation"]) == ("payment", "if_required")
    assert (opened["amount_total"], opened["success_url"]) == (9800, None)
    assert (session.payment_status, session.customer) == ("paid", None)
    assert isinstance(session.payment_intent, str)
    intent = sandbox.client.v1.payment_intents.retrieve(session.payment_intent)
    assert intent.metadata.to_dict() == {"order": "7"}
    assert browser.status_code == 303
    assert browser.headers["Location"].startswith(f"{sandbox.url}/_sandbox/pay/cs_test_")
    opened_by_browser = browser.headers["Location"].rsplit("/", 1)[1]
    assert sandbox.client.v1.checkout.sessions.retrieve(opened_by_browser).payment_link == link.id


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({}, "line_items", "parameter_missing"),
        ({"line_items": []}, "line_items", "parameter_missing"),
        ({"line_items": [{"price": STATIC_ONCE}]}, "line_items[0][quantity]", "parameter_missing"),
        (
            {"line_items": [{"price": STATIC_ONCE, "quantity": 0}]},
            "line_items[0][quantity]",
            None,
        ),
        (
            {"line_items": [{"price": "price_nope", "quantity": 1}]},
            "line_items[0][price]",
            "resource_missing",
        ),
        (
            {
                "line_items": [
                    {"price": STATIC_MONTHLY, "quantity": 1},
                    {"price": STATIC_ONCE, "quantity": 1},
                ]
            },
            "line_items[1][price]",
            None,
        ),
        (
            {
                "line_items": [
                    {"price": STATIC_MONTHLY, "quantity": 1},
                    {"price": STATIC_YEARLY, "quantity": 1},
                ]
            },
            "line_items[1][price]",
            None,
        ),
        (
            {
                "line_items": [{"price": STATIC_ONCE, "quantity": 1}],
                "after_completion": {"type": "redirect"},
            },
            "after_completion[redirect]",
            "parameter_missing",
        ),
        (
            {
                "line_items": [{"price": STATIC_ONCE, "quantity": 1}],
                "after_completion": {"type": "redirect", "redirect": {"url": "example.com"}},
            },
            "after_completion[redirect][url]",
            "url_invalid",
        ),
        (
            {
                "line_items": [{"price": STATIC_ONCE, "quantity": 1}],
                "subscription_data": {"metadata": {"a": "b"}},
            },
            "subscription_data",
            None,
        ),
        (
            {
                "line_items": [{"price": STATIC_MONTHLY, "quantity": 1}],
                "payment_intent_data": {"metadata": {"a": "b"}},
            },
            "payment_intent_data",
            None,
        ),
        (
            {
                "line_items": [{"price": STATIC_MONTHLY, "quantity": 1}],
                "subscription_data": {"trial_period_days": 7},
            },
            "subscription_data[trial_period_days]",
            "parameter_unsupported",
        ),
        (
            {
                "line_items": [
                    {"price_data": {"currency": "usd", "product": "prod_x"}, "quantity": 1}
                ]
            },
            "line_items[0][price_data]",
            "parameter_unsupported",
        ),
        (
            {"line_items": [{"price": STATIC_ONCE, "quantity": 1}], "allow_promotion_codes": True},
            "allow_promotion_codes",
            "parameter_unsupported",
        ),
        (
            {"line_items": [{"price": STATIC_ONCE, "quantity": 1}], "colour": "red"},
            "colour",
            "parameter_unknown",
        ),
    ],
)
def test_bad_payment_links_are_refused_like_stripe(
    sandbox: Sandbox, params: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.payment_links.create(params)

    assert refused.value.http_status == 400
    assert refused.value.param == param
    if code is not None:
        assert refused.value.code == code
    assert sandbox.client.v1.payment_links.list().data == []
    assert sandbox.client.v1.events.list().data == []


def test_unknown_links_are_404_for_the_api_and_the_buyer(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sandbox.client.v1.payment_links.retrieve("plink_nope")

    opened = sandbox.control_error("/payment_links/plink_nope/open", {})

    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    assert "No such payment_link: 'plink_nope'" in str(unknown.value.user_message)
    assert opened.status_code == 404
    assert opened.json()["error"]["code"] == "resource_missing"
