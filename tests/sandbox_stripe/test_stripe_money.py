"""Money through the stand-in: the charge behind every payment, invoice payments, refunds,
disputes (the card network played by ``/_sandbox``) and early fraud warnings, with the
objects and events Stripe would produce, over real HTTP with the official library."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox_stripe.stripe_harness import Receiver, Sandbox

STATIC_ONCE = "price_sandbox_static_once"  # 49.00 EUR, one time
WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"  # 15.00 USD a month


def event_types(sandbox: Sandbox) -> list[str]:
    """Every event type so far, oldest first."""
    return [e.type for e in reversed(sandbox.client.v1.events.list({"limit": 100}).data)]


def events_after(sandbox: Sandbox, skip: int) -> list[stripe.Event]:
    """The events made after the first ``skip``, oldest first."""
    listed = sandbox.client.v1.events.list({"limit": 100}).data
    return list(reversed(listed))[skip:]


def previous(event: stripe.Event) -> dict[str, Any]:
    attributes = event.data.previous_attributes
    assert attributes is not None
    found: dict[str, Any] = attributes.to_dict()
    return found


def buy_once(sandbox: Sandbox) -> tuple[str, stripe.Charge]:
    """A guest pays a one-time Checkout Session by card: the session id and its charge."""
    session = sandbox.client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": STATIC_ONCE, "quantity": 1}],
            "payment_intent_data": {"metadata": {"order": "o-1"}},
        }
    )
    sandbox.control(
        f"/checkout/sessions/{session.id}/complete", {"email": "ada@example.com", "name": "Ada"}
    )
    intent = str(sandbox.client.v1.checkout.sessions.retrieve(session.id).payment_intent)
    charge = sandbox.client.v1.charges.retrieve(
        str(sandbox.client.v1.payment_intents.retrieve(intent).latest_charge)
    )
    return session.id, charge


def subscribe(sandbox: Sandbox) -> stripe.checkout.Session:
    """A subscription bought through Checkout by card, completed."""
    session = sandbox.client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}]}
    )
    sandbox.control(f"/checkout/sessions/{session.id}/complete", {"email": "sub@example.com"})
    return sandbox.client.v1.checkout.sessions.retrieve(session.id)


def refund_error(sandbox: Sandbox, params: dict[str, Any]) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.refunds.create(params)  # type: ignore[arg-type]
    return refused.value


# -- a charge behind every payment ----------------------------------------------------------


def test_a_card_checkout_payment_has_a_charge_its_intent_and_session_lead_to(
    sandbox: Sandbox,
) -> None:
    session_id, charge = buy_once(sandbox)
    intent_id = str(charge.payment_intent)

    intent = sandbox.client.v1.payment_intents.retrieve(intent_id)
    txn = sandbox.client.v1.balance_transactions.retrieve(str(charge.balance_transaction))
    by_intent = sandbox.client.v1.charges.list({"payment_intent": intent_id})
    sessions = sandbox.client.v1.checkout.sessions.list({"payment_intent": intent_id})

    assert (intent.status, intent.latest_charge) == ("succeeded", charge.id)
    assert charge.id.startswith("ch_")
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, True)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (4900, 4900, 0)
    assert (charge.refunded, charge.disputed, charge.customer) == (False, False, None)
    assert charge.billing_details.email == "ada@example.com"
    assert charge.metadata.to_dict() == {"order": "o-1"}  # the PaymentIntent's, as on Stripe
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.type == "card"
    assert "refunds" not in charge  # includable since 2022-11-15: only when expanded
    assert (txn.type, txn.source, txn.amount) == ("charge", charge.id, 4900)
    assert (txn.fee, txn.net) == (172, 4728)  # 2.9% + 30
    assert [c.id for c in by_intent.data] == [charge.id]
    assert [s.id for s in sessions.data] == [session_id]
    assert event_types(sandbox) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.updated",
        "checkout.session.completed",
    ]
    succeeded, updated = (
        sandbox.client.v1.events.list({"type": t}).data[0]
        for t in ("charge.succeeded", "charge.updated")
    )
    assert succeeded.data.object.balance_transaction is None  # automatic_async capture
    assert previous(updated) == {"balance_transaction": None}
    assert updated.data.object.balance_transaction == txn.id


def test_a_bank_debit_charge_is_pending_until_it_fails(sandbox: Sandbox) -> None:
    session = sandbox.client.v1.checkout.sessions.create(
        {"mode": "payment", "line_items": [{"price": STATIC_ONCE, "quantity": 1}]}
    )
    sandbox.control(f"/checkout/sessions/{session.id}/complete", {"payment_status": "unpaid"})
    intent = str(sandbox.client.v1.checkout.sessions.retrieve(session.id).payment_intent)
    [pending] = sandbox.client.v1.charges.list({"payment_intent": intent}).data

    sandbox.control(f"/checkout/sessions/{session.id}/async_payment", {"succeeded": False})
    failed = sandbox.client.v1.charges.retrieve(pending.id)

    assert (pending.status, pending.paid, pending.balance_transaction) == ("pending", False, None)
    assert pending.payment_method_details is not None
    assert pending.payment_method_details.type == "us_bank_account"
    assert (failed.status, failed.failure_code) == ("failed", "payment_method_not_available")
    assert event_types(sandbox)[-3:] == [
        "charge.failed",
        "payment_intent.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    refused = refund_error(sandbox, {"charge": pending.id})
    assert refused.code == "resource_invalid_state"


def test_every_paid_subscription_invoice_has_its_own_charge_and_invoice_payment(
    sandbox: Sandbox,
) -> None:
    session = subscribe(sandbox)
    subscription_id = str(session.subscription)
    customer = str(session.customer)
    sandbox.control(f"/subscriptions/{subscription_id}/renew", {"paid": True})

    invoices = sandbox.client.v1.invoices.list({"subscription": subscription_id}).data
    charges = sandbox.client.v1.charges.list({"customer": customer}).data
    by_subscription = sandbox.client.v1.checkout.sessions.list({"subscription": subscription_id})

    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_create"]
    assert [c.description for c in charges] == ["Subscription cycle", "Subscription creation"]
    assert [s.id for s in by_subscription.data] == [session.id]
    for invoice, charge in zip(invoices, charges, strict=True):
        assert invoice.id is not None
        [payment] = sandbox.client.v1.invoice_payments.list({"invoice": invoice.id}).data
        by_intent = sandbox.client.v1.invoice_payments.list(
            {"payment": {"type": "payment_intent", "payment_intent": str(charge.payment_intent)}}
        )
        assert payment.id is not None
        fetched = sandbox.client.v1.invoice_payments.retrieve(payment.id)
        assert (payment.status, payment.is_default, payment.amount_paid) == ("paid", True, 1500)
        assert payment.payment.type == "payment_intent"
        assert payment.payment.payment_intent == charge.payment_intent
        assert payment.status_transitions.paid_at is not None
        assert [p.id for p in by_intent.data] == [payment.id]
        assert fetched.invoice == invoice.id
        assert (charge.customer, charge.amount, charge.status) == (customer, 1500, "succeeded")
        expanded = sandbox.client.v1.invoices.retrieve(invoice.id, {"expand": ["payments"]})
        assert [p.id for p in expanded["payments"].data] == [payment.id]
    assert "payments" not in invoices[0]  # includable, like a charge's refunds
    assert event_types(sandbox).count("invoice_payment.paid") == 2


# -- refunds ---------------------------------------------------------------------------------


def test_a_full_refund_by_payment_intent(sandbox: Sandbox, receiver: Receiver) -> None:
    _, charge = buy_once(sandbox)
    skip = len(event_types(sandbox))

    refund = sandbox.client.v1.refunds.create(
        {"payment_intent": str(charge.payment_intent), "reason": "requested_by_customer"}
    )

    events = events_after(sandbox, skip)
    refunded = sandbox.client.v1.charges.retrieve(charge.id, {"expand": ["refunds"]})
    txn = sandbox.client.v1.balance_transactions.retrieve(str(refund.balance_transaction))
    assert [e.type for e in events] == [
        "charge.refunded",
        "refund.created",
        "charge.refund.updated",
        "refund.updated",
    ]
    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount, refund.charge) == ("succeeded", 4900, charge.id)
    assert (refund.reason, refund.payment_intent) == (
        "requested_by_customer",
        charge.payment_intent,
    )
    assert (refunded.refunded, refunded.amount_refunded) == (True, 4900)
    assert refunded.refunds is not None
    assert [r.id for r in refunded.refunds.data] == [refund.id]
    assert (txn.type, txn.amount, txn.source) == ("refund", -4900, refund.id)
    assert events[0].data.object.refunded is True
    assert previous(events[0]) == {"amount_refunded": 0, "refunded": False}
    assert events[1].data.object.destination_details.card.reference_status == "pending"
    reference = events[-1].data.object.destination_details.card
    assert reference.reference_status == "available" and len(reference.reference) == 23
    assert previous(events[-1]) == {
        "destination_details": {"card": {"reference": None, "reference_status": "pending"}}
    }
    assert events[1].request is not None and events[1].request.id is not None  # the API call
    assert events[-1].request is not None and events[-1].request.id is None  # the network
    assert sandbox.client.v1.refunds.retrieve(refund.id).status == "succeeded"
    for found in (
        sandbox.client.v1.refunds.list({"charge": charge.id}),
        sandbox.client.v1.refunds.list({"payment_intent": str(charge.payment_intent)}),
    ):
        assert [r.id for r in found.data] == [refund.id]
    of_charge = sandbox.client.raw_request("get", f"/v1/charges/{charge.id}/refunds")
    one = sandbox.client.raw_request("get", f"/v1/charges/{charge.id}/refunds/{refund.id}")
    listed = sandbox.client.deserialize(of_charge, api_mode="V1")
    assert [r["id"] for r in listed["data"]] == [refund.id]
    assert listed["url"] == f"/v1/charges/{charge.id}/refunds"
    assert sandbox.client.deserialize(one, api_mode="V1")["id"] == refund.id
    again = refund_error(sandbox, {"charge": charge.id})
    assert again.code == "charge_already_refunded"
    assert again.user_message == f"Charge {charge.id} has already been refunded."
    sandbox.drain()
    delivered = [d.event.type for d in receiver.deliveries if d.event.id in {e.id for e in events}]
    assert delivered == [e.type for e in events]  # signed (the receiver verified), in order


def test_a_refund_that_fails_gives_the_money_back_to_the_balance_and_says_why(
    sandbox: Sandbox,
) -> None:
    _, charge = buy_once(sandbox)
    refund = sandbox.client.v1.refunds.create({"charge": charge.id})
    skip = len(event_types(sandbox))

    failed = sandbox.control(f"/refunds/{refund.id}/fail", {"reason": "lost_or_stolen_card"})

    events = events_after(sandbox, skip)
    assert [e.type for e in events] == ["charge.refund.updated", "refund.updated", "refund.failed"]
    assert previous(events[1]) == {"status": "succeeded", "failure_reason": None}
    after = sandbox.client.v1.refunds.retrieve(refund.id)
    assert (after.status, after.failure_reason) == ("failed", "lost_or_stolen_card")
    assert failed["id"] == refund.id
    txn = sandbox.client.v1.balance_transactions.retrieve(str(after.failure_balance_transaction))
    assert (txn.type, txn.amount, txn.source) == ("refund_failure", 4900, refund.id)
    charge_now = sandbox.client.v1.charges.retrieve(charge.id)
    assert (charge_now.refunded, charge_now.amount_refunded) == (False, 0)
    again = sandbox.client.v1.refunds.create({"charge": charge.id})  # refundable again
    assert again.amount == 4900
    refused = sandbox.control_error(f"/refunds/{refund.id}/fail", {})
    assert refused.status_code == 400  # a failed refund cannot fail again
    assert "is failed" in refused.json()["error"]["message"]


def test_partial_refunds_add_up_and_an_over_refund_is_refused(sandbox: Sandbox) -> None:
    _, charge = buy_once(sandbox)

    first = sandbox.client.v1.refunds.create(
        {"charge": charge.id, "amount": 1000, "metadata": {"ticket": "T-7"}}
    )
    partly = sandbox.client.v1.charges.retrieve(charge.id)
    skip = len(event_types(sandbox))
    over = refund_error(sandbox, {"charge": charge.id, "amount": 4000})
    nothing_new = events_after(sandbox, skip)
    rest = sandbox.client.v1.refunds.create({"charge": charge.id})
    whole = sandbox.client.v1.charges.retrieve(charge.id)

    assert first.metadata is not None
    assert (first.amount, first.metadata.to_dict()) == (1000, {"ticket": "T-7"})
    assert (partly.refunded, partly.amount_refunded) == (False, 1000)
    assert over.http_status == 400
    assert (over.param, over.code) == ("amount", None)
    assert over.user_message == (
        "Refund amount (€40.00) is greater than unrefunded amount on charge (€39.00)"
    )
    assert nothing_new == []
    assert rest.amount == 3900  # no amount: what is left
    assert (whole.refunded, whole.amount_refunded) == (True, 4900)
    listed = sandbox.client.v1.refunds.list({"charge": charge.id}).data
    assert [r.id for r in listed] == [rest.id, first.id]  # newest first
    charged = sandbox.client.v1.events.list({"type": "charge.refunded"}).data
    assert [e.data.object.amount_refunded for e in charged] == [4900, 1000]
    assert [e.data.object.refunded for e in charged] == [True, False]
    assert [previous(e) for e in charged] == [
        {"amount_refunded": 1000, "refunded": False},
        {"amount_refunded": 0},
    ]


def test_a_retried_refund_with_its_idempotency_key_is_the_same_refund(sandbox: Sandbox) -> None:
    _, charge = buy_once(sandbox)
    params: dict[str, Any] = {"charge": charge.id, "amount": 500}
    options: dict[str, str] = {"idempotency_key": f"refund-{charge.id}"}

    first = sandbox.client.v1.refunds.create(params, options)  # type: ignore[arg-type]
    skip = len(event_types(sandbox))
    retried = sandbox.client.v1.refunds.create(params, options)  # type: ignore[arg-type]

    assert retried.id == first.id
    assert events_after(sandbox, skip) == []
    assert sandbox.client.v1.charges.retrieve(charge.id).amount_refunded == 500
    assert len(sandbox.client.v1.refunds.list({"charge": charge.id}).data) == 1
    created = sandbox.client.v1.events.list({"type": "refund.created"}).data[0]
    assert created.request is not None
    assert created.request.idempotency_key == options["idempotency_key"]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({}, "parameter_missing", None),
        ({"charge": "ch_missing"}, "resource_missing", "charge"),
        ({"payment_intent": "pi_missing"}, "resource_missing", "payment_intent"),
        ({"charge": "{charge}", "payment_intent": "{intent}"}, "parameter_invalid", "charge"),
        ({"charge": "{charge}", "amount": 0}, "parameter_invalid", "amount"),
        ({"charge": "{charge}", "reason": "changed_mind"}, "parameter_invalid", "reason"),
    ],
    ids=["neither", "unknown-charge", "unknown-intent", "both", "zero", "bad-reason"],
)
def test_refunds_stripe_refuses(
    sandbox: Sandbox, params: dict[str, Any], code: str, param: str | None
) -> None:
    _, charge = buy_once(sandbox)
    ids = {"charge": charge.id, "intent": str(charge.payment_intent)}
    filled = {k: v.format(**ids) if isinstance(v, str) else v for k, v in params.items()}

    refused = refund_error(sandbox, filled)

    assert (refused.http_status, refused.code, refused.param) == (400, code, param)
    assert sandbox.client.v1.refunds.list().data == []


# -- disputes ---------------------------------------------------------------------------------


def test_a_chargeback_withdraws_the_funds_and_winning_it_reinstates_them(
    sandbox: Sandbox,
) -> None:
    _, charge = buy_once(sandbox)
    skip = len(event_types(sandbox))

    opened = sandbox.control(f"/charges/{charge.id}/dispute", {})
    withdrawn = events_after(sandbox, skip)
    refused = refund_error(sandbox, {"charge": charge.id})
    submitted = sandbox.client.v1.disputes.update(
        opened["id"],
        {"evidence": {"uncategorized_text": "Delivered and used."}, "metadata": {"case": "1"}},
    )
    skip = len(event_types(sandbox))
    won = sandbox.control(f"/disputes/{opened['id']}/close", {"outcome": "won"})
    decided = events_after(sandbox, skip)

    assert opened["id"].startswith("dp_")
    assert (opened["status"], opened["reason"], opened["amount"]) == (
        "needs_response",
        "fraudulent",
        4900,
    )
    assert (opened["charge"], opened["payment_intent"]) == (charge.id, charge.payment_intent)
    assert opened["is_charge_refundable"] is False
    [withdrawal] = opened["balance_transactions"]
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"]) == (-4900, 1500, -6400)
    assert withdrawal["reporting_category"] == "dispute"
    assert [e.type for e in withdrawn] == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    assert all(e.request is not None and e.request.id is None for e in withdrawn)
    assert sandbox.client.v1.charges.retrieve(charge.id).disputed is True
    assert refused.code == "charge_disputed"
    assert (
        refused.user_message == f"Charge {charge.id} has been charged back; cannot issue a refund."
    )
    assert submitted.status == "under_review"  # evidence without submit=false is submitted
    assert submitted.evidence_details.submission_count == 1
    updated = sandbox.client.v1.events.list({"type": "charge.dispute.updated"}).data[0]
    assert previous(updated)["status"] == "needs_response"
    assert previous(updated)["metadata"] == {"case": None}
    assert won["status"] == "won"
    assert [e.type for e in decided] == ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
    reinstated = decided[-1].data.object.balance_transactions
    assert [t.amount for t in reinstated] == [-4900, 4900]
    assert reinstated[-1].reporting_category == "dispute_reversal"
    fetched = sandbox.client.v1.disputes.retrieve(opened["id"])
    assert (fetched.status, len(fetched.balance_transactions)) == ("won", 2)
    for found in (
        sandbox.client.v1.disputes.list({"charge": charge.id}),
        sandbox.client.v1.disputes.list({"payment_intent": str(charge.payment_intent)}),
    ):
        assert [d.id for d in found.data] == [opened["id"]]
    again = sandbox.control_error(f"/disputes/{opened['id']}/close", {"outcome": "lost"})
    assert again.json()["error"]["code"] == "resource_invalid_state"


def test_a_lost_chargeback_keeps_the_money_withdrawn(sandbox: Sandbox) -> None:
    _, charge = buy_once(sandbox)
    opened = sandbox.control(f"/charges/{charge.id}/dispute", {"reason": "product_not_received"})
    undecided = sandbox.control_error(f"/disputes/{opened['id']}/close", {})
    skip = len(event_types(sandbox))

    lost = sandbox.control(f"/disputes/{opened['id']}/close", {"outcome": "lost"})

    assert undecided.json()["error"]["param"] == "outcome"
    assert (lost["status"], lost["reason"]) == ("lost", "product_not_received")
    assert len(lost["balance_transactions"]) == 1
    assert [e.type for e in events_after(sandbox, skip)] == ["charge.dispute.closed"]


def test_accepting_a_dispute_through_the_api_closes_it_lost(sandbox: Sandbox) -> None:
    _, charge = buy_once(sandbox)
    opened = sandbox.control(f"/charges/{charge.id}/dispute", {})

    accepted = sandbox.client.v1.disputes.close(opened["id"])

    assert accepted.status == "lost"
    closed = sandbox.client.v1.events.list({"type": "charge.dispute.closed"}).data[0]
    assert closed.request is not None and closed.request.id is not None
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.disputes.update(opened["id"], {"evidence": {"uncategorized_text": "x"}})


def test_an_inquiry_moves_no_money_and_closes_warning_closed(sandbox: Sandbox) -> None:
    _, charge = buy_once(sandbox)
    skip = len(event_types(sandbox))

    opened = sandbox.control(f"/charges/{charge.id}/dispute", {"inquiry": True})
    created = events_after(sandbox, skip)
    partial = sandbox.client.v1.refunds.create({"charge": charge.id, "amount": 900})
    skip = len(event_types(sandbox))
    closed = sandbox.control(f"/disputes/{opened['id']}/close", {"outcome": "won"})

    assert opened["status"] == "warning_needs_response"
    assert (opened["balance_transactions"], opened["is_charge_refundable"]) == ([], True)
    assert [e.type for e in created] == ["charge.dispute.created"]
    assert partial.status == "succeeded"  # an inquiry leaves the charge refundable
    assert closed["status"] == "warning_closed"
    assert [e.type for e in events_after(sandbox, skip)] == ["charge.dispute.closed"]


def test_the_network_refuses_what_cannot_be_disputed(sandbox: Sandbox) -> None:
    _, charge = buy_once(sandbox)

    unknown = sandbox.control_error("/charges/ch_missing/dispute", {})
    bad_reason = sandbox.control_error(f"/charges/{charge.id}/dispute", {"reason": "boredom"})
    sandbox.control(f"/charges/{charge.id}/dispute", {})
    twice = sandbox.control_error(f"/charges/{charge.id}/dispute", {})

    assert unknown.status_code == 404
    assert bad_reason.json()["error"]["param"] == "reason"
    assert twice.json()["error"]["code"] == "resource_invalid_state"


# -- early fraud warnings -------------------------------------------------------------------------


def test_an_early_fraud_warning_stays_actionable_until_the_charge_is_refunded_in_full(
    sandbox: Sandbox,
) -> None:
    _, charge = buy_once(sandbox)

    warned = sandbox.control(f"/charges/{charge.id}/early_fraud_warning", {})
    sandbox.client.v1.refunds.create({"charge": charge.id, "amount": 100})
    after_partial = sandbox.client.v1.radar.early_fraud_warnings.retrieve(warned["id"])
    skip = len(event_types(sandbox))
    sandbox.client.v1.refunds.create({"charge": charge.id, "reason": "fraudulent"})
    events = events_after(sandbox, skip)
    after_full = sandbox.client.v1.radar.early_fraud_warnings.retrieve(warned["id"])

    assert warned["id"].startswith("issfr_")
    assert (warned["fraud_type"], warned["actionable"]) == ("made_with_stolen_card", True)
    assert (warned["charge"], warned["payment_intent"]) == (charge.id, charge.payment_intent)
    assert after_partial.actionable is True
    assert after_full.actionable is False
    assert [e.type for e in events][:3] == [
        "charge.refunded",
        "refund.created",
        "radar.early_fraud_warning.updated",
    ]
    assert previous(events[2]) == {"actionable": True}
    fraud_details = sandbox.client.v1.charges.retrieve(charge.id).fraud_details
    assert fraud_details is not None
    assert fraud_details.to_dict() == {"user_report": "fraudulent"}
    assert event_types(sandbox).count("radar.early_fraud_warning.created") == 1
    for found in (
        sandbox.client.v1.radar.early_fraud_warnings.list({"charge": charge.id}),
        sandbox.client.v1.radar.early_fraud_warnings.list(
            {"payment_intent": str(charge.payment_intent)}
        ),
    ):
        assert [w.id for w in found.data] == [warned["id"]]


def test_a_dispute_makes_the_early_fraud_warning_unactionable(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    _, charge = buy_once(sandbox)
    warned = sandbox.control(
        f"/charges/{charge.id}/early_fraud_warning", {"fraud_type": "unauthorized_use_of_card"}
    )
    sandbox.drain()
    receiver.fail_next(1)  # the first delivery of the dispute's first event fails

    sandbox.control(f"/charges/{charge.id}/dispute", {})
    sandbox.drain()

    fetched = sandbox.client.v1.radar.early_fraud_warnings.retrieve(warned["id"])
    assert (fetched.fraud_type, fetched.actionable) == ("unauthorized_use_of_card", False)
    assert event_types(sandbox)[-3:] == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "radar.early_fraud_warning.updated",
    ]
    created = [d for d in receiver.deliveries if d.event.type == "charge.dispute.created"]
    assert [d.answered for d in created] == [500, 200]  # retried, like every event
    assert len({d.event.id for d in created}) == 1
    again = sandbox.control_error(f"/charges/{charge.id}/early_fraud_warning", {})
    assert again.json()["error"]["code"] == "resource_invalid_state"


def test_thin_twins_of_money_events_name_the_objects_they_are_about(sandbox: Sandbox) -> None:
    _, charge = buy_once(sandbox)
    sandbox.control("/webhooks", {"payload": "thin", "enabled_events": ["*"]})

    refund = sandbox.client.v1.refunds.create({"charge": charge.id, "amount": 100})
    warning = sandbox.control(f"/charges/{charge.id}/early_fraud_warning", {})
    dispute = sandbox.control(f"/charges/{charge.id}/dispute", {})
    sandbox.drain()

    twins = sandbox.control("/state", method="GET")["objects"]["v2.core.event"]
    related = {t["type"]: t["related_object"] for t in reversed(twins)}
    assert related["v1.refund.created"]["url"] == f"/v1/refunds/{refund.id}"
    assert related["v1.charge.refunded"]["url"] == f"/v1/charges/{charge.id}"
    assert related["v1.charge.dispute.funds_withdrawn"]["url"] == f"/v1/disputes/{dispute['id']}"
    assert related["v1.radar.early_fraud_warning.updated"] == {
        "id": warning["id"],
        "type": "radar.early_fraud_warning",
        "url": f"/v1/radar/early_fraud_warnings/{warning['id']}",
    }
    whole = sandbox.client.v2.core.events.retrieve(
        next(t["id"] for t in twins if t["type"] == "v1.refund.updated")
    )
    assert whole.snapshot_event is not None
