"""Playing the buyer through ``/_sandbox``: guest and customer checkouts, subscriptions,
delayed payments and expiry, with the objects and events Stripe would produce."""

from __future__ import annotations

import stripe

from sandbox_stripe.stripe_harness import Receiver, Sandbox

WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"
STATIC_ONCE = "price_sandbox_static_once"
UNMAPPED = "price_sandbox_unmapped"


def event_types(sandbox: Sandbox, limit: int = 100) -> list[str]:
    """Event types oldest first."""
    listed = sandbox.client.v1.events.list({"limit": limit})
    return [e.type for e in reversed(listed.data)]


def checkout(sandbox: Sandbox, mode: str, price: str, **extra: object) -> stripe.checkout.Session:
    params: dict[str, object] = {"mode": mode, "line_items": [{"price": price, "quantity": 1}]}
    params.update(extra)
    return sandbox.client.v1.checkout.sessions.create(params)


def test_guest_payment_leaves_customer_null_but_fills_customer_details(sandbox: Sandbox) -> None:
    session = checkout(sandbox, "payment", STATIC_ONCE, customer_email="guest@example.com")

    completed = sandbox.control(
        f"/checkout/sessions/{session.id}/complete",
        {
            "name": "Zoë Gast",
            "phone": "+49 30 1234",
            "address": {"country": "DE", "city": "Berlin"},
        },
    )
    fetched = sandbox.client.v1.checkout.sessions.retrieve(session.id)

    assert completed["id"] == session.id
    assert (fetched.status, fetched.payment_status) == ("complete", "paid")
    assert fetched.customer is None
    assert fetched.customer_details is not None
    assert fetched.customer_details.email == "guest@example.com"
    assert fetched.customer_details.name == "Zoë Gast"
    assert fetched.customer_details.phone == "+49 30 1234"
    assert fetched.customer_details.address is not None
    assert fetched.customer_details.address.country == "DE"
    assert fetched.customer_details.address.line1 is None
    assert fetched.payment_intent is not None
    assert fetched.url is None
    intent = sandbox.client.v1.payment_intents.retrieve(str(fetched.payment_intent))
    assert (intent.status, intent.amount_received, intent.customer) == ("succeeded", 4900, None)
    assert intent.latest_charge is not None
    assert event_types(sandbox) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.updated",
        "checkout.session.completed",
    ]


def test_customer_creation_always_makes_a_customer_from_the_details(sandbox: Sandbox) -> None:
    session = checkout(sandbox, "payment", STATIC_ONCE, customer_creation="always")

    sandbox.control(
        f"/checkout/sessions/{session.id}/complete", {"email": "new@example.com", "name": "New"}
    )
    fetched = sandbox.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["customer"]})

    assert isinstance(fetched.customer, stripe.Customer)
    assert (fetched.customer.email, fetched.customer.name) == ("new@example.com", "New")
    assert event_types(sandbox)[0] == "customer.created"


def test_an_existing_customer_is_kept_and_supplies_the_details(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"email": "known@example.com", "name": "Known"})
    session = checkout(sandbox, "payment", STATIC_ONCE, customer=customer.id)

    sandbox.control(f"/checkout/sessions/{session.id}/complete")
    fetched = sandbox.client.v1.checkout.sessions.retrieve(session.id)

    assert fetched.customer == customer.id
    assert fetched.customer_details is not None
    assert fetched.customer_details.email == "known@example.com"
    assert len(sandbox.client.v1.customers.list().data) == 1


def test_subscription_mode_creates_customer_subscription_and_paid_invoice(
    sandbox: Sandbox,
) -> None:
    session = checkout(
        sandbox,
        "subscription",
        WORDPRESS_MONTHLY,
        metadata={"ref": "session-only"},
        subscription_data={"metadata": {"plan": "wp"}},
    )

    sandbox.control(f"/checkout/sessions/{session.id}/complete", {"email": "sub@example.com"})
    fetched = sandbox.client.v1.checkout.sessions.retrieve(session.id)
    assert isinstance(fetched.customer, str)
    assert isinstance(fetched.subscription, str)
    subscription = sandbox.client.v1.subscriptions.retrieve(fetched.subscription)
    invoice = sandbox.client.v1.invoices.retrieve(str(subscription.latest_invoice))

    assert (fetched.status, fetched.payment_status, fetched.payment_intent) == (
        "complete",
        "paid",
        None,
    )
    assert fetched.invoice == invoice.id
    assert subscription.status == "active"
    assert subscription.customer == fetched.customer
    assert subscription.metadata.to_dict() == {"plan": "wp"}  # not the session's metadata
    assert (subscription.cancel_at_period_end, subscription.cancel_at) == (False, None)
    assert (subscription.canceled_at, subscription.pause_collection) == (None, None)
    [item] = subscription["items"].data
    assert item.price.id == WORDPRESS_MONTHLY
    assert 28 * 86400 <= item.current_period_end - item.current_period_start <= 31 * 86400
    assert "current_period_end" not in subscription  # basil: periods live on items
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        1500,
        "subscription_create",
    )
    assert invoice.parent is not None
    assert invoice.parent.type == "subscription_details"
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert "subscription" not in invoice  # basil removed the top-level field
    assert event_types(sandbox) == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.updated",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "checkout.session.completed",
    ]
    updated = sandbox.client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert updated.data.previous_attributes is not None
    assert updated.data.previous_attributes.to_dict() == {"status": "incomplete"}


def test_subscription_listing_by_customer(sandbox: Sandbox) -> None:
    session = checkout(sandbox, "subscription", WORDPRESS_MONTHLY)
    sandbox.control(f"/checkout/sessions/{session.id}/complete")
    customer = sandbox.client.v1.checkout.sessions.retrieve(session.id).customer

    listed = sandbox.client.v1.subscriptions.list({"customer": str(customer)})
    none = sandbox.client.v1.subscriptions.list({"status": "canceled"})

    assert len(listed.data) == 1
    assert none.data == []


def test_delayed_payment_that_succeeds(sandbox: Sandbox) -> None:
    session = checkout(sandbox, "payment", STATIC_ONCE)

    completed = sandbox.control(
        f"/checkout/sessions/{session.id}/complete", {"payment_status": "unpaid"}
    )
    settled = sandbox.control(f"/checkout/sessions/{session.id}/async_payment", {"succeeded": True})

    assert (completed["status"], completed["payment_status"]) == ("complete", "unpaid")
    assert settled["payment_status"] == "paid"
    assert event_types(sandbox) == [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.updated",
        "checkout.session.async_payment_succeeded",
    ]
    again = sandbox.control_error(f"/checkout/sessions/{session.id}/async_payment")
    assert again.status_code == 400


def test_delayed_subscription_payment_that_fails(sandbox: Sandbox) -> None:
    session = checkout(sandbox, "subscription", WORDPRESS_MONTHLY)

    sandbox.control(f"/checkout/sessions/{session.id}/complete", {"payment_status": "unpaid"})
    incomplete = sandbox.client.v1.subscriptions.list({"status": "incomplete"}).data
    sandbox.control(f"/checkout/sessions/{session.id}/async_payment", {"succeeded": False})
    fetched = sandbox.client.v1.checkout.sessions.retrieve(session.id)

    assert len(incomplete) == 1
    assert fetched.payment_status == "unpaid"
    types = event_types(sandbox)
    assert types[-3:] == [
        "checkout.session.completed",
        "invoice.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    assert "invoice.paid" not in types


def test_expire_by_helper_by_api_and_by_time(sandbox: Sandbox) -> None:
    by_helper = checkout(sandbox, "payment", STATIC_ONCE)
    by_api = checkout(sandbox, "payment", STATIC_ONCE)
    by_time = checkout(sandbox, "payment", STATIC_ONCE, expires_at=int(sandbox.clock()) + 1800)

    sandbox.control(f"/checkout/sessions/{by_helper.id}/expire")
    expired = sandbox.client.v1.checkout.sessions.expire(by_api.id)
    sandbox.clock.advance(1800)
    late = sandbox.client.v1.checkout.sessions.retrieve(by_time.id)

    assert (expired.status, expired.url) == ("expired", None)
    assert late.status == "expired"
    events = sandbox.client.v1.events.list({"type": "checkout.session.expired"}).data
    assert sorted(e.data.object.id for e in events) == sorted([by_helper.id, by_api.id, by_time.id])
    from_api = next(e for e in events if e.data.object.id == by_api.id)
    assert from_api.request is not None
    assert from_api.request.id is not None  # caused by an API call, unlike the other two
    refused = sandbox.control_error(f"/checkout/sessions/{by_helper.id}/complete")
    assert refused.json()["error"]["type"] == "invalid_request_error"


def test_completed_session_snapshot_never_has_line_items(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    session = checkout(sandbox, "payment", STATIC_ONCE)

    sandbox.control(f"/checkout/sessions/{session.id}/complete")
    sandbox.drain()

    [completed] = [
        d.event for d in receiver.deliveries if d.event.type == "checkout.session.completed"
    ]
    assert completed.data.object.id == session.id
    assert "line_items" not in completed.data.object
    assert completed.request is not None
    assert completed.request.id is None  # the buyer did it, not an API call


def test_pay_page_completes_and_redirects_to_success_url(sandbox: Sandbox) -> None:
    session = checkout(
        sandbox,
        "payment",
        STATIC_ONCE,
        success_url="https://shop.example/ok?s={CHECKOUT_SESSION_ID}",
    )
    assert session.url is not None

    page = sandbox.http.get(session.url)
    paid = sandbox.http.post(session.url, data={"action": "pay"}, allow_redirects=False)

    assert "Static Site" in page.text
    assert paid.status_code == 303
    assert paid.headers["Location"] == f"https://shop.example/ok?s={session.id}"
    assert sandbox.client.v1.checkout.sessions.retrieve(session.id).status == "complete"
