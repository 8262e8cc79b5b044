"""``DELETE /v1/customers/{id}`` through the real stripe library: the customer's live
subscriptions end at once, a stub is left, and Stripe refuses to use it again."""

from __future__ import annotations

import pytest
import stripe

from sandbox_stripe.stripe_harness import Receiver, Sandbox

WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"
STATIC_MONTHLY = "price_sandbox_static_monthly"


def all_events(sandbox: Sandbox) -> list[stripe.Event]:
    """Every event, oldest first."""
    listed = sandbox.client.v1.events.list({"limit": 100})
    return list(reversed(list(listed.auto_paging_iter())))


def checkout_subscription(sandbox: Sandbox, customer: str) -> str:
    """An active subscription of ``customer``, bought through Checkout."""
    session = sandbox.client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}],
        }
    )
    sandbox.control(f"/checkout/sessions/{session.id}/complete", {})
    subscription = sandbox.client.v1.checkout.sessions.retrieve(session.id).subscription
    assert isinstance(subscription, str)
    return subscription


def api_subscription(sandbox: Sandbox, customer: str) -> str:
    """An incomplete subscription of ``customer``, made by API."""
    return sandbox.client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": STATIC_MONTHLY}],
            "payment_behavior": "default_incomplete",
        }
    ).id


def test_deleting_a_customer_ends_its_live_subscriptions_then_the_customer(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    customer = sandbox.client.v1.customers.create({"email": "gone@example.com"})
    bystander = sandbox.client.v1.customers.create({"email": "stays@example.com"})
    active = checkout_subscription(sandbox, customer.id)
    pending = api_subscription(sandbox, customer.id)
    ended = api_subscription(sandbox, customer.id)
    sandbox.client.v1.subscriptions.cancel(ended)
    unrelated = checkout_subscription(sandbox, bystander.id)
    skip = len(all_events(sandbox))

    deleted = sandbox.client.v1.customers.delete(customer.id)

    events = all_events(sandbox)[skip:]
    assert deleted.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    assert [e.type for e in events] == [
        "customer.subscription.deleted",
        "customer.subscription.deleted",
        "customer.deleted",
    ]
    assert [e.data.object.id for e in events] == [active, pending, customer.id]
    assert deleted.last_response is not None
    assert {e.request.id for e in events if e.request} == {deleted.last_response.request_id}
    assert events[-1].data.object.email == "gone@example.com"  # the customer as it was
    for subscription_id in (active, pending):
        subscription = sandbox.client.v1.subscriptions.retrieve(subscription_id)
        assert subscription.status == "canceled"
        assert subscription.canceled_at is not None
        assert subscription.cancellation_details is not None
        assert subscription.cancellation_details.reason == "cancellation_requested"
    assert sandbox.client.v1.subscriptions.retrieve(unrelated).status == "active"
    sandbox.drain()
    assert "customer.deleted" in {d.event.type for d in receiver.deliveries}


def test_a_deleted_customer_reads_as_a_stub_and_cannot_be_used(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"email": "gone@example.com"})
    bystander = sandbox.client.v1.customers.create({"email": "stays@example.com"})
    subscription = api_subscription(sandbox, customer.id)
    sandbox.client.v1.customers.delete(customer.id)

    fetched = sandbox.client.v1.customers.retrieve(customer.id)
    listed = sandbox.client.v1.customers.list()
    expanded = sandbox.client.v1.subscriptions.retrieve(subscription, {"expand": ["customer"]})
    with pytest.raises(stripe.InvalidRequestError) as update:
        sandbox.client.v1.customers.update(customer.id, {"name": "Back"})
    with pytest.raises(stripe.InvalidRequestError) as again:
        sandbox.client.v1.customers.delete(customer.id)
    with pytest.raises(stripe.InvalidRequestError) as checkout:
        sandbox.client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": customer.id,
                "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}],
            }
        )
    with pytest.raises(stripe.InvalidRequestError) as subscribe:
        api_subscription(sandbox, customer.id)

    assert fetched.last_response is not None
    assert fetched.last_response.code == 200
    assert fetched.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    assert [c.id for c in listed.data] == [bystander.id]
    assert isinstance(expanded.customer, stripe.Customer)
    assert expanded.customer.to_dict() == fetched.to_dict()
    for refused in (update, again):
        assert (refused.value.http_status, refused.value.code) == (404, "resource_missing")
        assert f"No such customer: '{customer.id}'" in str(refused.value.user_message)
    for refused in (checkout, subscribe):
        assert (refused.value.http_status, refused.value.param) == (400, "customer")
        assert refused.value.code == "resource_missing"
    assert sandbox.client.v1.events.list({"type": "customer.updated"}).data == []


def test_delete_takes_no_parameters_and_unknown_customers_are_404(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"email": "kept@example.com"})

    with pytest.raises(stripe.InvalidRequestError) as extra:
        sandbox.client.v1.customers.delete(customer.id, {"expand": ["subscriptions"]})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sandbox.client.v1.customers.delete("cus_nope")

    assert (extra.value.param, extra.value.code) == ("expand", "parameter_unknown")
    assert sandbox.client.v1.customers.retrieve(customer.id).email == "kept@example.com"
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    assert sandbox.client.v1.events.list({"type": "customer.deleted"}).data == []
