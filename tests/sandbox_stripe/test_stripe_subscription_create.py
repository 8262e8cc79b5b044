"""``POST /v1/subscriptions`` for an existing customer (no Checkout), and the lists of a
subscription's items and of an invoice's lines, through the real stripe library."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox_stripe.stripe_harness import Receiver, Sandbox

WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"
WORDPRESS_PLUS_MONTHLY = "price_sandbox_wordpress_plus_monthly"
STATIC_MONTHLY = "price_sandbox_static_monthly"
STATIC_YEARLY = "price_sandbox_static_yearly"
STATIC_ONCE = "price_sandbox_static_once"


def all_events(sandbox: Sandbox) -> list[stripe.Event]:
    """Every event, oldest first."""
    listed = sandbox.client.v1.events.list({"limit": 100})
    return list(reversed(list(listed.auto_paging_iter())))


def new_customer(sandbox: Sandbox) -> str:
    return sandbox.client.v1.customers.create({"email": "api@example.com", "name": "Api"}).id


def incomplete(sandbox: Sandbox, customer: str, *prices: str) -> stripe.Subscription:
    """A ``default_incomplete`` subscription to ``prices`` (one of each)."""
    return sandbox.client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": price} for price in prices],
            "payment_behavior": "default_incomplete",
        }
    )


def test_default_incomplete_starts_incomplete_with_an_open_first_invoice(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    customer = new_customer(sandbox)
    skip = len(all_events(sandbox))

    created = sandbox.client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": WORDPRESS_MONTHLY, "quantity": 2}],
            "metadata": {"cs_plan": "wordpress"},
            "description": "Managed WordPress for Api",
            "payment_behavior": "default_incomplete",
        }
    )
    invoice = sandbox.client.v1.invoices.retrieve(str(created.latest_invoice))

    events = all_events(sandbox)[skip:]
    assert [e.type for e in events] == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
    ]
    assert created.last_response is not None
    assert {e.request.id for e in events if e.request} == {created.last_response.request_id}
    assert created.id.startswith("sub_")
    assert (created.status, created.customer) == ("incomplete", customer)
    assert created.metadata.to_dict() == {"cs_plan": "wordpress"}
    assert created.description == "Managed WordPress for Api"
    [item] = created["items"].data
    assert (item.price.id, item.quantity) == (WORDPRESS_MONTHLY, 2)
    assert (invoice.status, invoice.billing_reason) == ("open", "subscription_create")
    assert (invoice.amount_due, invoice.amount_paid) == (3000, 0)
    assert invoice.number is not None
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == created.id
    assert invoice.parent.subscription_details.metadata.to_dict() == {"cs_plan": "wordpress"}
    assert sandbox.client.v1.checkout.sessions.list({"subscription": created.id}).data == []
    sandbox.drain()
    assert {"customer.subscription.created", "invoice.finalized"} <= {
        d.event.type for d in receiver.deliveries
    }


def test_paying_the_open_invoice_makes_it_active(sandbox: Sandbox) -> None:
    created = incomplete(sandbox, new_customer(sandbox), WORDPRESS_MONTHLY)
    skip = len(all_events(sandbox))

    sandbox.control(f"/subscriptions/{created.id}/pay", {})

    events = all_events(sandbox)[skip:]
    active = sandbox.client.v1.subscriptions.retrieve(created.id)
    invoice = sandbox.client.v1.invoices.retrieve(str(created.latest_invoice))
    assert [e.type for e in events] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.updated",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    attributes = events[-1].data.previous_attributes
    assert attributes is not None
    assert attributes.to_dict() == {"status": "incomplete"}
    assert active.status == "active"
    assert (invoice.status, invoice.amount_paid) == ("paid", 1500)


@pytest.mark.parametrize("behavior", [None, "allow_incomplete", "error_if_incomplete"])
def test_stripe_refuses_what_it_cannot_attempt_to_charge(
    sandbox: Sandbox, behavior: str | None
) -> None:
    customer = new_customer(sandbox)
    params: dict[str, Any] = {"customer": customer, "items": [{"price": WORDPRESS_MONTHLY}]}
    if behavior is not None:
        params["payment_behavior"] = behavior

    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.subscriptions.create(params)

    assert refused.value.http_status == 400
    assert refused.value.code == "resource_missing"
    assert "no attached payment source or default payment method" in str(refused.value.user_message)
    assert sandbox.client.v1.subscriptions.list({"status": "all"}).data == []
    assert sandbox.client.v1.invoices.list().data == []
    assert [e.type for e in all_events(sandbox)] == ["customer.created"]


def test_a_first_invoice_owing_nothing_starts_active_and_paid(sandbox: Sandbox) -> None:
    free = sandbox.client.v1.prices.create(
        {
            "product": "prod_sandbox_static",
            "currency": "usd",
            "unit_amount": 0,
            "recurring": {"interval": "month"},
        }
    )
    customer = new_customer(sandbox)
    skip = len(all_events(sandbox))

    created = sandbox.client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": free.id}]}
    )

    events = all_events(sandbox)[skip:]
    invoice = sandbox.client.v1.invoices.retrieve(str(created.latest_invoice))
    assert [e.type for e in events] == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    assert events[0].data.object.status == "active"
    assert created.status == "active"
    assert (invoice.status, invoice.total) == ("paid", 0)


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"items": [{"price": WORDPRESS_MONTHLY}]}, "customer", "parameter_missing"),
        (
            {"customer": "cus_nope", "items": [{"price": WORDPRESS_MONTHLY}]},
            "customer",
            "resource_missing",
        ),
        ({"customer": "CUSTOMER"}, "items", "parameter_missing"),
        (
            {"customer": "CUSTOMER", "items": [{"quantity": 1}]},
            "items[0][price]",
            "parameter_missing",
        ),
        (
            {"customer": "CUSTOMER", "items": [{"price": "price_nope"}]},
            "items[0][price]",
            "resource_missing",
        ),
        ({"customer": "CUSTOMER", "items": [{"price": STATIC_ONCE}]}, "items[0][price]", None),
        (
            {
                "customer": "CUSTOMER",
                "items": [{"price": STATIC_MONTHLY}, {"price": STATIC_YEARLY}],
            },
            "items[1][price]",
            None,
        ),
        (
            {
                "customer": "CUSTOMER",
                "items": [{"price": STATIC_MONTHLY}, {"price": STATIC_MONTHLY}],
            },
            "items[1][price]",
            None,
        ),
        (
            {"customer": "CUSTOMER", "items": [{"price": STATIC_MONTHLY, "quantity": -1}]},
            "items[0][quantity]",
            None,
        ),
        (
            {"customer": "CUSTOMER", "items": [{"price": STATIC_MONTHLY, "metadata": {"a": "b"}}]},
            "items[0][metadata]",
            "parameter_unsupported",
        ),
        (
            {"customer": "CUSTOMER", "items": [{"price": STATIC_MONTHLY}], "trial_period_days": 7},
            "trial_period_days",
            "parameter_unsupported",
        ),
        (
            {
                "customer": "CUSTOMER",
                "items": [{"price": STATIC_MONTHLY}],
                "collection_method": "send_invoice",
            },
            "collection_method",
            "parameter_unsupported",
        ),
        (
            {
                "customer": "CUSTOMER",
                "items": [{"price": STATIC_MONTHLY}],
                "payment_behavior": "pending_if_incomplete",
            },
            "payment_behavior",
            None,
        ),
        (
            {"customer": "CUSTOMER", "items": [{"price": STATIC_MONTHLY}], "colour": "red"},
            "colour",
            "parameter_unknown",
        ),
    ],
)
def test_bad_subscription_parameters_are_refused(
    sandbox: Sandbox, params: dict[str, Any], param: str, code: str | None
) -> None:
    customer = new_customer(sandbox)
    if params.get("customer") == "CUSTOMER":
        params = {"payment_behavior": "default_incomplete", **params, "customer": customer}

    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.subscriptions.create(params)

    assert refused.value.http_status == 400
    assert refused.value.param == param
    if code is not None:
        assert refused.value.code == code
    assert sandbox.client.v1.subscriptions.list({"status": "all"}).data == []
    assert [e.type for e in all_events(sandbox)] == ["customer.created"]


# -- the lists the objects point to ------------------------------------------------------


def test_subscription_items_list_pages_through_the_subscriptions_items(sandbox: Sandbox) -> None:
    created = incomplete(sandbox, new_customer(sandbox), WORDPRESS_MONTHLY, STATIC_MONTHLY)
    expected = [item.id for item in created["items"].data]

    first = sandbox.client.v1.subscription_items.list({"subscription": created.id, "limit": 1})
    second = sandbox.client.v1.subscription_items.list(
        {"subscription": created.id, "limit": 1, "starting_after": first.data[0].id}
    )
    every = sandbox.client.v1.subscription_items.list({"subscription": created.id, "limit": 1})

    assert created["items"].url == f"/v1/subscription_items?subscription={created.id}"
    assert first.url == "/v1/subscription_items"
    assert [i.id for i in first.data] == expected[:1]
    assert first.has_more is True
    assert [i.id for i in second.data] == expected[1:]
    assert second.has_more is False
    assert [i.id for i in every.auto_paging_iter()] == expected
    assert second.data[0].price.id == STATIC_MONTHLY
    assert second.data[0].subscription == created.id


def test_subscription_items_list_needs_a_known_subscription(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sandbox.client.v1.subscription_items.list({})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sandbox.client.v1.subscription_items.list({"subscription": "sub_nope"})

    assert (missing.value.param, missing.value.code) == ("subscription", "parameter_missing")
    assert (unknown.value.http_status, unknown.value.param) == (400, "subscription")
    assert unknown.value.code == "resource_missing"


def test_invoice_lines_list_pages_through_the_lines(sandbox: Sandbox) -> None:
    created = incomplete(sandbox, new_customer(sandbox), WORDPRESS_MONTHLY, STATIC_MONTHLY)
    invoice = sandbox.client.v1.invoices.retrieve(str(created.latest_invoice))

    first = sandbox.client.v1.invoices.line_items.list(invoice.id, {"limit": 1})
    second = sandbox.client.v1.invoices.line_items.list(
        invoice.id, {"limit": 1, "starting_after": first.data[0].id}
    )
    before = sandbox.client.v1.invoices.line_items.list(
        invoice.id, {"ending_before": second.data[0].id}
    )

    assert first.url == invoice.lines.url == f"/v1/invoices/{invoice.id}/lines"
    assert [line.id for line in first.data + second.data] == [
        line.id for line in invoice.lines.data
    ]
    assert (first.has_more, second.has_more) == (True, False)
    assert [line.id for line in before.data] == [first.data[0].id]
    assert [line.pricing.price_details.price for line in first.data + second.data] == [
        WORDPRESS_MONTHLY,
        STATIC_MONTHLY,
    ]
    assert sum(line.amount for line in first.data + second.data) == invoice.total == 2000
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sandbox.client.v1.invoices.line_items.list("in_nope")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
