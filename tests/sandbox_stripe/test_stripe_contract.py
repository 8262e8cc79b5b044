"""The Stripe stand-in against stripe-python's own types.

Two halves. First, the checker (``csonboard.sandbox.stripe.contract``) must catch
what Stripe would never send: each kind of difference is shown to be found.
Second, a tour drives every endpoint and every object the stand-in serves
through the official library and asks the stand-in what it checked: nothing
may break the library's types, and every object name anywhere in the
stand-in's state must have been checked at least once. (Every other test is
checked too: the autouse fixture in tests/conftest.py fails a test during which
a stand-in served anything the types do not allow.)
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
import stripe

from csonboard.sandbox.stripe.contract import check_error, check_object
from sandbox_stripe.stripe_harness import Sandbox

WORDPRESS = "price_sandbox_wordpress_monthly"
STATIC_ONCE = "price_sandbox_static_once"


def _session(sandbox: Sandbox) -> dict[str, Any]:
    session = sandbox.client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": WORDPRESS, "quantity": 1}],
            "success_url": "https://shop.example/done",
        }
    )
    found: dict[str, Any] = session.to_dict()
    return found


def _problems(obj: object) -> list[str]:
    return [str(v) for v in check_object(obj)]


# -- the checker finds what Stripe would never send -----------------------------------


def test_a_session_as_the_stand_in_serves_it_breaks_nothing(sandbox: Sandbox) -> None:
    assert _problems(_session(sandbox)) == []


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (
            lambda s: s.update(ui_mode="hosted"),  # the name before API 2026
            "ui_mode: 'hosted' is not one of 'elements', 'embedded_page', 'form', 'hosted_page'",
        ),
        (
            lambda s: s.pop("expires_at"),
            "expires_at: missing, but the library types it as required",
        ),
        (lambda s: s.update(livemode=None), "livemode: null, but the library types it as required"),
        (lambda s: s.update(created="yesterday"), "created: expected int, got str"),
        (lambda s: s.update(livemode=1), "livemode: expected bool, got int"),
        (
            lambda s: s.update(object="checkout_session"),
            "object 'checkout_session' is not one the library knows",
        ),
        (lambda s: s.update(display_items=[]), "display_items: not a field of Session"),
        (
            lambda s: s["automatic_tax"].pop("enabled"),
            "automatic_tax.enabled: missing, but the library types it as required",
        ),
        (lambda s: s.update(custom_fields=None), "custom_fields: null, but the library"),
        (lambda s: s.update(payment_method_types="card"), "payment_method_types: expected a list"),
    ],
    ids=[
        "stale-enum",
        "missing",
        "null",
        "int-as-string",
        "bool-as-int",
        "object-name",
        "unknown-field",
        "nested-missing",
        "null-list",
        "string-for-list",
    ],
)
def test_the_checker_names_each_difference(sandbox: Sandbox, change: Any, found: str) -> None:
    session = _session(sandbox)
    change(session)

    [problem] = _problems(session)

    assert problem.split(": ")[0].endswith(session["id"])  # names the object
    assert found in problem


def test_expanded_objects_list_items_and_event_snapshots_are_checked_as_themselves(
    sandbox: Sandbox,
) -> None:
    session = _session(sandbox)
    customer = sandbox.client.v1.customers.create({"email": "ada@example.com"}).to_dict()
    broken = {**copy.deepcopy(customer), "balance": "0"}  # an expanded field, checked as a Customer
    listing = {
        "object": "list",
        "url": "/v1/checkout/sessions",
        "has_more": False,
        "data": [{**session, "mode": "rent"}],
    }
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": stripe.api_version,
        "created": 1,
        "data": {"object": {**customer, "email": 5}},
        "livemode": False,
        "pending_webhooks": 0,
        "request": None,
        "type": "customer.created",
    }

    assert any(
        p.endswith("customer.balance: expected int, got str")
        for p in _problems({**session, "customer": broken})
    )
    assert any("data[0].mode: 'rent' is not one of" in p for p in _problems(listing))
    assert any("data.object.email: expected str, got int" in p for p in _problems(event))
    assert _problems({**event, "type": "checkout.session.paid"})  # no such event type


def test_an_old_api_version_event_has_its_envelope_checked_not_its_snapshot() -> None:
    old = {
        "id": "evt_old",
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1,
        "data": {"object": {"object": "invoice", "subscription": "sub_1"}},  # pre-basil shape
        "livemode": False,
        "pending_webhooks": 0,
        "request": None,
        "type": "invoice.paid",
    }

    assert _problems(old) == []
    assert _problems({**old, "pending_webhooks": None})


def test_a_deleted_object_carries_only_its_id() -> None:
    assert _problems({"id": "cus_1", "object": "customer", "deleted": True}) == []
    assert _problems({"id": "cus_1", "object": "customer", "deleted": True, "email": "x"})


def test_errors_are_checked_against_the_library_error_object() -> None:
    assert [str(v) for v in check_error({"error": {"type": "invalid_request_error"}})] == []
    assert check_error({"error": {"message": "no type"}})
    assert check_error({"error": {"type": "api_error", "doc_url": 7}})
    assert check_error({"message": "not an envelope"})


# -- the tour: every endpoint, every object ---------------------------------------------


def _object_names(data: object) -> set[str]:
    if isinstance(data, dict):
        own = {data["object"]} if isinstance(data.get("object"), str) else set()
        return own.union(*(_object_names(v) for v in data.values()))
    if isinstance(data, list):
        return set().union(*(_object_names(v) for v in data))
    return set()


def test_every_object_the_stand_in_serves_keeps_the_library_types(sandbox: Sandbox) -> None:
    client = sandbox.client
    control = f"{sandbox.url}/_sandbox"
    http = sandbox.http

    # Products, prices, customers.
    client.v1.products.list({"limit": 3})
    client.v1.products.retrieve("prod_sandbox_wordpress")
    client.v1.prices.list({"limit": 3, "expand": ["data.product"]})
    client.v1.prices.retrieve(WORDPRESS)
    customer = client.v1.customers.create({"email": "ada@example.com", "metadata": {"a": "1"}})
    client.v1.customers.update(customer.id, {"metadata": {"b": "2"}})
    client.v1.customers.list({"limit": 3})

    # Checkout: hosted and embedded, subscription and payment, paid and expired.
    hosted = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": WORDPRESS, "quantity": 2}],
            "success_url": "https://shop.example/done",
        }
    )
    embedded = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "ui_mode": "embedded_page",
            "line_items": [{"price": STATIC_ONCE, "quantity": 1}],
            "return_url": "https://shop.example/back?session_id={CHECKOUT_SESSION_ID}",
            "customer": customer.id,
        }
    )
    doomed = client.v1.checkout.sessions.create(
        {"mode": "payment", "line_items": [{"price": STATIC_ONCE, "quantity": 1}]}
    )
    for session in (hosted, embedded):
        http.post(f"{control}/checkout/sessions/{session.id}/complete", json={}).raise_for_status()
    client.v1.checkout.sessions.expire(doomed.id)
    client.v1.checkout.sessions.retrieve(hosted.id, {"expand": ["line_items", "customer"]})
    client.v1.checkout.sessions.line_items.list(hosted.id)
    client.v1.checkout.sessions.list({"limit": 5})
    paid = client.v1.checkout.sessions.retrieve(embedded.id, {"expand": ["payment_intent"]})
    assert paid.payment_intent is not None

    # Money: a payment's charge and balance transaction, refunds, a dispute through its
    # life, an inquiry, an early fraud warning.
    intent_id = str(client.v1.checkout.sessions.retrieve(embedded.id).payment_intent)
    client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
    [charge] = client.v1.charges.list({"payment_intent": intent_id}).data
    client.v1.charges.retrieve(charge.id, {"expand": ["balance_transaction", "refunds"]})
    client.v1.balance_transactions.retrieve(str(charge.balance_transaction))
    http.post(f"{control}/charges/{charge.id}/early_fraud_warning", json={}).raise_for_status()
    client.v1.radar.early_fraud_warnings.list({"charge": charge.id})
    client.v1.refunds.create({"charge": charge.id, "amount": 100, "reason": "duplicate"})
    client.v1.refunds.list({"charge": charge.id, "expand": ["data.balance_transaction"]})
    dispute = http.post(f"{control}/charges/{charge.id}/dispute", json={}).json()
    client.v1.disputes.update(
        dispute["id"], {"evidence": {"product_description": "Hosting"}, "submit": False}
    )
    client.v1.disputes.update(dispute["id"], {"submit": True, "metadata": {"case": "1"}})
    http.post(f"{control}/disputes/{dispute['id']}/close", json={"outcome": "won"})
    client.v1.disputes.list({"charge": charge.id})
    client.v1.radar.early_fraud_warnings.retrieve(
        client.v1.radar.early_fraud_warnings.list().data[0].id
    )

    # Subscriptions and invoices through their life.
    subscription_id = client.v1.checkout.sessions.retrieve(hosted.id).subscription
    assert isinstance(subscription_id, str)
    client.v1.subscriptions.retrieve(subscription_id, {"expand": ["latest_invoice"]})
    client.v1.subscriptions.update(subscription_id, {"metadata": {"k": "v"}})
    http.post(f"{control}/subscriptions/{subscription_id}/renew", json={"paid": False})
    http.post(f"{control}/subscriptions/{subscription_id}/pay", json={})
    client.v1.subscriptions.pause(subscription_id)
    client.v1.subscriptions.resume(subscription_id)
    client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
    client.v1.subscriptions.cancel(subscription_id)
    client.v1.subscriptions.list({"status": "all"})
    client.v1.invoices.list({"subscription": subscription_id})

    # Usage-based billing: a meter through its life, a metered price, usage, summaries.
    meter = client.v1.billing.meters.create(
        {
            "display_name": "Backups",
            "event_name": "backup_gb",
            "default_aggregation": {"formula": "last"},
            "customer_mapping": {"event_payload_key": "customer", "type": "by_id"},
            "value_settings": {"event_payload_key": "gb"},
            "event_time_window": "day",
        }
    )
    client.v1.billing.meters.update(meter.id, {"display_name": "Nightly backups"})
    client.v1.billing.meters.deactivate(meter.id)
    client.v1.billing.meters.reactivate(meter.id)
    client.v1.billing.meters.list({"status": "active"})
    client.v1.billing.meters.retrieve("mtr_sandbox_bandwidth")
    client.v1.prices.create(
        {
            "product": "prod_sandbox_bandwidth",
            "currency": "usd",
            "unit_amount": 2,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    client.v1.billing.meter_events.create(
        {
            "event_name": "computestacks_bandwidth_gb",
            "payload": {"stripe_customer_id": customer.id, "value": "3"},
        }
    )
    hour = int(sandbox.clock()) // 3600 * 3600
    client.v1.billing.meters.event_summaries.list(
        "mtr_sandbox_bandwidth",
        {
            "customer": customer.id,
            "start_time": hour - 3600,
            "end_time": hour + 3600,
            "value_grouping_window": "hour",
        },
    )

    # What shops make by API: products, subscriptions, Payment Links; a deletion.
    product = client.v1.products.create({"name": "Backups"})
    client.v1.prices.create(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 300,
            "recurring": {"interval": "month"},
        }
    )
    made = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": WORDPRESS, "quantity": 1}],
            "payment_behavior": "default_incomplete",
        }
    )
    http.post(f"{control}/subscriptions/{made.id}/pay", json={}).raise_for_status()
    client.v1.subscription_items.list({"subscription": made.id})
    invoice = client.v1.invoices.list({"subscription": made.id}).data[0]
    assert invoice.id is not None
    client.v1.invoices.line_items.list(invoice.id)
    client.v1.invoices.retrieve(invoice.id, {"expand": ["payments"]})
    [payment] = client.v1.invoice_payments.list({"invoice": invoice.id}).data
    assert payment.id is not None
    client.v1.invoice_payments.retrieve(payment.id, {"expand": ["invoice"]})
    link = client.v1.payment_links.create({"line_items": [{"price": STATIC_ONCE, "quantity": 1}]})
    opened = http.post(f"{control}/payment_links/{link.id}/open", json={}).json()
    http.post(f"{control}/checkout/sessions/{opened['id']}/complete", json={}).raise_for_status()
    inquired = client.v1.charges.list({"limit": 1}).data[0]
    inquiry = http.post(f"{control}/charges/{inquired.id}/dispute", json={"inquiry": True}).json()
    client.v1.disputes.close(inquiry["id"])
    client.v1.payment_links.retrieve(link.id, {"expand": ["line_items"]})
    client.v1.payment_links.list()
    client.v1.customers.delete(customer.id)
    client.v1.customers.retrieve(customer.id)

    # Webhook endpoints, events of every kind made above, and errors.
    endpoint = client.v1.webhook_endpoints.create(
        {"url": "https://shop.example/webhooks/stripe", "enabled_events": ["invoice.paid"]}
    )
    client.v1.webhook_endpoints.update(endpoint.id, {"disabled": True})
    client.v1.webhook_endpoints.list()
    client.v1.webhook_endpoints.delete(endpoint.id)
    client.v1.events.list({"limit": 100})
    for failing in (
        lambda: client.v1.customers.retrieve("cus_missing"),
        lambda: client.v1.checkout.sessions.create({"mode": "rent"}),  # type: ignore[typeddict-item]
    ):
        with pytest.raises(stripe.InvalidRequestError):
            failing()

    served = http.get(f"{control}/contract").json()
    state = http.get(f"{control}/state").json()

    assert served["violations"] == []
    stored = _object_names(state["objects"]) | _object_names(state["line_items"])
    assert stored - set(served["checked"]) == set(), "served but never checked"
    assert {"list", "error", "webhook_endpoint", "payment_link", "line_item"} <= set(
        served["checked"]
    )
    assert {"billing.meter", "billing.meter_event", "billing.meter_event_summary"} <= set(
        served["checked"]
    )
    money = {"charge", "balance_transaction", "refund", "dispute", "radar.early_fraud_warning"}
    assert money | {"invoice_payment", "payment_intent"} <= set(served["checked"])


def test_v2_events_are_checked_too(sandbox: Sandbox) -> None:
    control = f"{sandbox.url}/_sandbox"
    requests.post(
        f"{control}/webhooks", json={"payload": "thin", "enabled_events": ["*"]}, timeout=10
    ).raise_for_status()
    customer = sandbox.client.v1.customers.create({"email": "ada@example.com"})
    sandbox.account.wait_for_deliveries()
    [twin] = [
        e
        for e in sandbox.http.get(f"{control}/state").json()["objects"]["v2.core.event"]
        if e["related_object"]["id"] == customer.id
    ]

    whole = sandbox.client.v2.core.events.retrieve(twin["id"])
    sandbox.http.post(
        f"{control}/event_generation_failures",
        json={"event_type": "customer.updated", "object": customer.id},
    ).raise_for_status()

    assert whole.snapshot_event is not None
    served = sandbox.http.get(f"{control}/contract").json()
    assert served["violations"] == []
    assert served["checked"]["v2.core.event"] >= 3  # the twin, the alert, the answer
