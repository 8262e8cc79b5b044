"""The subscription lifecycle through the real stripe library and ``/_sandbox`` billing
helpers: renewals and their basil+ invoices, dunning, cancellation, pausing, price
changes, and the events (with ``previous_attributes``) Stripe sends for each."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox_stripe.stripe_harness import Receiver, Sandbox

WORDPRESS_MONTHLY = "price_sandbox_wordpress_monthly"
STATIC_MONTHLY = "price_sandbox_static_monthly"
STATIC_YEARLY = "price_sandbox_static_yearly"
STATIC_ONCE = "price_sandbox_static_once"

CARD_PAYMENT = [
    "payment_intent.created",
    "charge.succeeded",
    "payment_intent.succeeded",
    "charge.updated",
    "invoice_payment.paid",
]
"""A paid subscription invoice's own PaymentIntent, its charge and their link."""

RENEWAL_PAID = [
    "customer.subscription.updated",
    "invoice.created",
    "invoice.finalized",
    *CARD_PAYMENT,
    "invoice.paid",
    "invoice.payment_succeeded",
]


def subscribe(sandbox: Sandbox, *, paid: bool = True) -> str:
    """A Checkout subscription to Managed WordPress, completed; its id."""
    session = sandbox.client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": WORDPRESS_MONTHLY, "quantity": 1}],
            "subscription_data": {"metadata": {"plan": "wp"}},
        }
    )
    status = "paid" if paid else "unpaid"
    sandbox.control(f"/checkout/sessions/{session.id}/complete", {"payment_status": status})
    subscription = sandbox.client.v1.checkout.sessions.retrieve(session.id).subscription
    assert isinstance(subscription, str)
    return subscription


def all_events(sandbox: Sandbox) -> list[stripe.Event]:
    """Every event, oldest first."""
    listed = sandbox.client.v1.events.list({"limit": 100})
    return list(reversed(list(listed.auto_paging_iter())))


class Watch:
    """The events made after it was started."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.skip = len(all_events(sandbox))

    def events(self) -> list[stripe.Event]:
        return all_events(self.sandbox)[self.skip :]

    def types(self) -> list[str]:
        return [e.type for e in self.events()]


def previous(event: stripe.Event) -> dict[str, Any]:
    attributes = event.data.previous_attributes
    assert attributes is not None, f"{event.type} has no previous_attributes"
    result: dict[str, Any] = attributes.to_dict()
    return result


def retrieve(sandbox: Sandbox, subscription_id: str) -> stripe.Subscription:
    return sandbox.client.v1.subscriptions.retrieve(subscription_id)


def period(subscription: stripe.Subscription) -> tuple[int, int]:
    [item] = subscription["items"].data
    return item.current_period_start, item.current_period_end


def automatic(events: list[stripe.Event]) -> bool:
    return all(e.request is not None and e.request.id is None for e in events)


def from_api(events: list[stripe.Event]) -> bool:
    return all(e.request is not None and e.request.id is not None for e in events)


# -- renewals and dunning ---------------------------------------------------------------


def test_paid_renewal_starts_the_next_period_with_a_basil_invoice(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    subscription_id = subscribe(sandbox)
    old = retrieve(sandbox, subscription_id)
    old_start, old_end = period(old)
    sandbox.clock.advance(old_end - sandbox.clock())
    watch = Watch(sandbox)

    answered = sandbox.control(f"/subscriptions/{subscription_id}/renew", {"paid": True})
    renewed = retrieve(sandbox, subscription_id)
    invoice = sandbox.client.v1.invoices.retrieve(str(renewed.latest_invoice))

    events = watch.events()
    assert [e.type for e in events] == RENEWAL_PAID
    assert automatic(events)
    assert answered["id"] == subscription_id
    assert renewed.status == "active"
    new_start, new_end = period(renewed)
    assert new_start == old_end
    assert 28 * 86400 <= new_end - new_start <= 31 * 86400
    assert "current_period_end" not in renewed  # basil: periods live on items
    changed = previous(events[0])
    assert set(changed) == {"items", "latest_invoice"}
    assert changed["latest_invoice"] == old.latest_invoice
    assert changed["items"]["object"] == "list"  # the whole previous items list
    assert changed["items"]["data"][0]["current_period_start"] == old_start
    assert changed["items"]["data"][0]["current_period_end"] == old_end
    assert invoice.billing_reason == "subscription_cycle"
    assert (invoice.status, invoice.amount_paid, invoice.attempt_count) == ("paid", 1500, 1)
    assert invoice.parent is not None
    assert invoice.parent.type == "subscription_details"
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == subscription_id
    assert invoice.parent.subscription_details.metadata.to_dict() == {"plan": "wp"}
    assert "subscription" not in invoice  # basil removed the top-level field
    assert (invoice.period_start, invoice.period_end) == (old_start, old_end)
    [line] = invoice.lines.data
    assert (line.period.start, line.period.end) == (new_start, new_end)
    assert line.parent is not None
    assert line.parent.type == "subscription_item_details"
    assert events[1].data.object.status == "draft"
    assert events[-1].data.object.id == invoice.id
    sandbox.drain()
    delivered = [d.event for d in receiver.deliveries if d.event.id in {e.id for e in events}]
    assert [e.type for e in delivered] == RENEWAL_PAID  # signed (the receiver verified), in order
    assert delivered[-1].data.object.parent.subscription_details.subscription == subscription_id


def test_failed_renewal_goes_past_due_and_paying_recovers(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    watch = Watch(sandbox)

    sandbox.control(f"/subscriptions/{subscription_id}/renew", {"paid": False})
    failed = watch.events()
    past_due = retrieve(sandbox, subscription_id)
    invoice = sandbox.client.v1.invoices.retrieve(str(past_due.latest_invoice))

    assert [e.type for e in failed] == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    assert automatic(failed)
    assert past_due.status == "past_due"
    assert previous(failed[-1]) == {"status": "active"}
    assert failed[-1].data.object.status == "past_due"
    assert (invoice.status, invoice.attempted, invoice.attempt_count) == ("open", True, 1)
    assert invoice.next_payment_attempt is not None
    assert invoice.next_payment_attempt > sandbox.clock()

    watch = Watch(sandbox)
    sandbox.control(f"/subscriptions/{subscription_id}/pay", {})
    recovered = watch.events()
    paid = sandbox.client.v1.invoices.retrieve(invoice.id)

    assert [e.type for e in recovered] == [
        *CARD_PAYMENT,
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    assert previous(recovered[-1]) == {"status": "past_due"}
    assert retrieve(sandbox, subscription_id).status == "active"
    assert (paid.status, paid.attempt_count, paid.next_payment_attempt) == ("paid", 2, None)
    again = sandbox.control_error(f"/subscriptions/{subscription_id}/pay", {})
    assert again.status_code == 400
    assert "no open invoice" in again.json()["error"]["message"]


def test_paid_renewal_of_a_delinquent_subscription_returns_it_to_active(
    sandbox: Sandbox,
) -> None:
    subscription_id = subscribe(sandbox)
    sandbox.control(f"/subscriptions/{subscription_id}/status", {"status": "unpaid"})
    watch = Watch(sandbox)

    sandbox.control(f"/subscriptions/{subscription_id}/renew", {})

    events = watch.events()
    assert [e.type for e in events] == [*RENEWAL_PAID, "customer.subscription.updated"]
    assert previous(events[-1]) == {"status": "unpaid"}
    assert retrieve(sandbox, subscription_id).status == "active"


def test_an_unpaid_subscriptions_renewal_is_left_open_without_an_attempt(
    sandbox: Sandbox,
) -> None:
    subscription_id = subscribe(sandbox)
    sandbox.control(f"/subscriptions/{subscription_id}/status", {"status": "unpaid"})
    watch = Watch(sandbox)

    sandbox.control(f"/subscriptions/{subscription_id}/renew", {"paid": False})

    assert watch.types() == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
    ]
    subscription = retrieve(sandbox, subscription_id)
    invoice = sandbox.client.v1.invoices.retrieve(str(subscription.latest_invoice))
    assert (subscription.status, invoice.status, invoice.attempted) == ("unpaid", "open", False)


def test_forced_statuses_emit_what_stripe_emits(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    path = f"/subscriptions/{subscription_id}/status"
    steps = [
        ("past_due", ["customer.subscription.updated"]),
        ("past_due", []),  # no change, no event
        ("unpaid", ["customer.subscription.updated"]),
        ("paused", ["customer.subscription.paused", "customer.subscription.updated"]),
        ("active", ["customer.subscription.resumed", "customer.subscription.updated"]),
        ("canceled", ["customer.subscription.deleted"]),
    ]
    seen: list[list[stripe.Event]] = []
    for status, expected in steps:
        watch = Watch(sandbox)
        answered = sandbox.control(path, {"status": status})
        assert answered["status"] == status
        assert watch.types() == expected, status
        seen.append(watch.events())

    assert previous(seen[0][0]) == {"status": "active"}
    assert previous(seen[2][0]) == {"status": "past_due"}
    paused = seen[3][1]
    assert previous(paused) == {"status": "unpaid", "status_details": None}
    assert paused.data.object.status_details.paused.subscription.type == "final_payment_failure"
    assert previous(seen[4][1])["status"] == "paused"
    assert seen[4][1].data.object.status_details is None
    deleted = seen[5][0].data.object
    assert deleted.cancellation_details.reason == "cancellation_requested"  # from active
    assert deleted.ended_at == deleted.canceled_at == int(sandbox.clock())
    assert all(automatic(events) for events in seen)
    refused = sandbox.control_error(path, {"status": "active"})
    assert refused.status_code == 400
    assert sandbox.control_error(path, {"status": "bogus"}).json()["error"]["param"] == "status"


def test_dunning_cancellation_says_payment_failed(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    path = f"/subscriptions/{subscription_id}/status"
    sandbox.control(f"/subscriptions/{subscription_id}/renew", {"paid": False})

    canceled = sandbox.control(path, {"status": "canceled"})

    assert canceled["cancellation_details"]["reason"] == "payment_failed"
    other = subscribe(sandbox)
    disputed = sandbox.control(
        f"/subscriptions/{other}/status", {"status": "canceled", "reason": "payment_disputed"}
    )
    assert disputed["cancellation_details"]["reason"] == "payment_disputed"


def test_an_unpaid_first_invoice_expires_the_subscription(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox, paid=False)
    watch = Watch(sandbox)

    sandbox.control(f"/subscriptions/{subscription_id}/status", {"status": "incomplete_expired"})

    events = watch.events()
    assert [e.type for e in events] == ["customer.subscription.updated", "invoice.voided"]
    assert previous(events[0]) == {"status": "incomplete", "canceled_at": None, "ended_at": None}
    assert events[1].data.object.status == "void"


# -- cancellation -------------------------------------------------------------------------


def test_cancel_at_period_end_then_the_period_ends(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    _, period_end = period(retrieve(sandbox, subscription_id))
    requested_at = int(sandbox.clock())
    watch = Watch(sandbox)

    scheduled = sandbox.client.v1.subscriptions.update(
        subscription_id, {"cancel_at_period_end": True}
    )
    [updated] = watch.events()

    assert (scheduled.status, scheduled.cancel_at_period_end) == ("active", True)
    assert (scheduled.cancel_at, scheduled.canceled_at) == (period_end, requested_at)
    assert scheduled.cancellation_details is not None
    assert scheduled.cancellation_details.reason == "cancellation_requested"
    assert updated.type == "customer.subscription.updated"
    assert previous(updated) == {
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"reason": None},
    }
    assert from_api([updated])
    refused = sandbox.control_error(f"/subscriptions/{subscription_id}/renew", {})
    assert "period_end" in refused.json()["error"]["message"]

    sandbox.clock.advance(period_end - sandbox.clock())
    watch = Watch(sandbox)
    sandbox.control(f"/subscriptions/{subscription_id}/period_end", {})
    [deleted] = watch.events()
    ended = retrieve(sandbox, subscription_id)

    assert deleted.type == "customer.subscription.deleted"
    assert automatic([deleted])
    assert deleted.data.object.status == "canceled"
    assert (ended.status, ended.ended_at, ended.canceled_at) == (
        "canceled",
        period_end,
        requested_at,
    )
    assert sandbox.client.v1.subscriptions.list().data == []  # canceled ones are left out
    assert len(sandbox.client.v1.subscriptions.list({"status": "canceled"}).data) == 1


def test_undoing_a_scheduled_cancellation_then_the_period_renews(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    sandbox.client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
    watch = Watch(sandbox)

    kept = sandbox.client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": False})
    [undone] = watch.events()
    sandbox.control(f"/subscriptions/{subscription_id}/period_end", {})

    assert (kept.cancel_at, kept.canceled_at, kept.cancel_at_period_end) == (None, None, False)
    assert set(previous(undone)) == {
        "cancel_at",
        "cancel_at_period_end",
        "canceled_at",
        "cancellation_details",
    }
    assert previous(undone)["cancel_at_period_end"] is True
    assert previous(undone)["cancellation_details"] == {"reason": "cancellation_requested"}
    assert watch.types()[1:] == RENEWAL_PAID
    assert retrieve(sandbox, subscription_id).status == "active"


def test_cancel_at_a_timestamp_cancels_when_its_period_ends(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    start, end = period(retrieve(sandbox, subscription_id))
    cancel_at = start + 10 * 86400

    scheduled = sandbox.client.v1.subscriptions.update(subscription_id, {"cancel_at": cancel_at})
    cleared = sandbox.client.v1.subscriptions.update(subscription_id, {"cancel_at": ""})
    later = sandbox.client.v1.subscriptions.update(subscription_id, {"cancel_at": end + 86400})
    sandbox.control(f"/subscriptions/{subscription_id}/period_end", {})
    renewed = retrieve(sandbox, subscription_id)
    sandbox.control(f"/subscriptions/{subscription_id}/period_end", {})
    ended = retrieve(sandbox, subscription_id)

    assert (scheduled.cancel_at, scheduled.cancel_at_period_end) == (cancel_at, False)
    assert (cleared.cancel_at, cleared.canceled_at) == (None, None)
    assert later.cancel_at == end + 86400
    assert renewed.status == "active"  # the cancellation falls in the next period
    assert (ended.status, ended.ended_at) == ("canceled", end + 86400)
    with pytest.raises(stripe.InvalidRequestError) as both:
        sandbox.client.v1.subscriptions.update(
            subscribe(sandbox), {"cancel_at": end, "cancel_at_period_end": True}
        )
    assert both.value.param == "cancel_at"


def test_delete_cancels_now(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    watch = Watch(sandbox)

    canceled = sandbox.client.v1.subscriptions.cancel(
        subscription_id,
        {"cancellation_details": {"feedback": "too_expensive", "comment": "Moving on"}},
    )

    [deleted] = watch.events()
    now = int(sandbox.clock())
    assert deleted.type == "customer.subscription.deleted"
    assert from_api([deleted])
    assert "previous_attributes" not in deleted.data
    assert (canceled.status, canceled.canceled_at, canceled.ended_at) == ("canceled", now, now)
    assert canceled.cancellation_details is not None
    assert canceled.cancellation_details.to_dict() == {
        "comment": "Moving on",
        "feedback": "too_expensive",
        "reason": "cancellation_requested",
    }
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.subscriptions.cancel(subscription_id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
    assert refused.value.param == "cancel_at_period_end"
    tagged = sandbox.client.v1.subscriptions.update(subscription_id, {"metadata": {"k": "v"}})
    assert tagged.metadata.to_dict() == {"plan": "wp", "k": "v"}


# -- pausing ------------------------------------------------------------------------------


def test_pause_and_resume_helpers(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    old_end = period(retrieve(sandbox, subscription_id))[1]
    watch = Watch(sandbox)

    sandbox.control(f"/subscriptions/{subscription_id}/pause", {})
    paused_events = watch.events()
    paused = retrieve(sandbox, subscription_id)

    assert [e.type for e in paused_events] == [
        "customer.subscription.paused",
        "customer.subscription.updated",
    ]
    assert automatic(paused_events)
    assert previous(paused_events[1]) == {"status": "active", "status_details": None}
    assert paused.status == "paused"
    assert paused.status_details is not None
    assert paused.status_details.paused.subscription.type == "pause_requested"
    assert sandbox.control_error(f"/subscriptions/{subscription_id}/renew", {}).status_code == 400
    assert sandbox.control_error(f"/subscriptions/{subscription_id}/pause", {}).status_code == 400

    sandbox.clock.advance(3600)
    watch = Watch(sandbox)
    sandbox.control(f"/subscriptions/{subscription_id}/resume", {})
    resumed_events = watch.events()
    resumed = retrieve(sandbox, subscription_id)
    invoice = sandbox.client.v1.invoices.retrieve(str(resumed.latest_invoice))

    assert [e.type for e in resumed_events] == [
        "customer.subscription.resumed",
        *RENEWAL_PAID,
    ]
    assert set(previous(resumed_events[1])) == {
        "status",
        "status_details",
        "billing_cycle_anchor",
        "items",
        "latest_invoice",
    }
    assert (resumed.status, resumed.status_details) == ("active", None)
    now = int(sandbox.clock())
    assert period(resumed)[0] == resumed.billing_cycle_anchor == now
    assert period(resumed)[1] != old_end
    assert (invoice.billing_reason, invoice.status) == ("subscription_update", "paid")


def test_pause_and_resume_through_the_api(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    before = period(retrieve(sandbox, subscription_id))
    watch = Watch(sandbox)

    paused = sandbox.client.v1.subscriptions.pause(subscription_id, {"type": "subscription"})
    resumed = sandbox.client.v1.subscriptions.resume(
        subscription_id, {"billing_cycle_anchor": {"type": "unchanged"}}
    )

    events = watch.events()
    assert [e.type for e in events] == [
        "customer.subscription.paused",
        "customer.subscription.updated",
        "customer.subscription.resumed",
        "customer.subscription.updated",
    ]
    assert from_api(events)
    assert previous(events[3]) == {
        "status": "paused",
        "status_details": events[1].data.object.status_details.to_dict(),
    }
    assert (paused.status, resumed.status) == ("paused", "active")
    assert period(resumed) == before
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.subscriptions.resume(subscription_id)
    assert refused.value.code == "resource_invalid_state"


def test_pause_collection_keeps_status_and_voids_renewal_invoices(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    watch = Watch(sandbox)

    updated = sandbox.client.v1.subscriptions.update(
        subscription_id, {"pause_collection": {"behavior": "void"}}
    )
    [event] = watch.events()
    sandbox.control(f"/subscriptions/{subscription_id}/renew", {})
    renewal = watch.events()[1:]
    cleared = sandbox.client.v1.subscriptions.update(subscription_id, {"pause_collection": ""})

    assert updated.status == "active"  # pause_collection never changes the status
    assert updated.pause_collection is not None
    assert (updated.pause_collection.behavior, updated.pause_collection.resumes_at) == (
        "void",
        None,
    )
    assert previous(event) == {"pause_collection": None}
    assert [e.type for e in renewal] == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.voided",
    ]
    assert renewal[-1].data.object.status == "void"
    assert cleared.pause_collection is None
    assert previous(watch.events()[-1]) == {
        "pause_collection": {"behavior": "void", "resumes_at": None}
    }


def test_pause_collection_drafts_until_resumes_at_comes(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    _, end = period(retrieve(sandbox, subscription_id))
    resumes_at = end + 86400  # after the first renewal, before the second
    sandbox.client.v1.subscriptions.update(
        subscription_id,
        {"pause_collection": {"behavior": "keep_as_draft", "resumes_at": resumes_at}},
    )
    watch = Watch(sandbox)

    sandbox.control(f"/subscriptions/{subscription_id}/renew", {})
    drafted = watch.events()
    held = sandbox.client.v1.invoices.retrieve(
        str(retrieve(sandbox, subscription_id).latest_invoice)
    )
    watch = Watch(sandbox)
    sandbox.control(f"/subscriptions/{subscription_id}/renew", {})
    collected = watch.events()

    assert [e.type for e in drafted] == ["customer.subscription.updated", "invoice.created"]
    assert (held.status, held.auto_advance) == ("draft", False)
    assert [e.type for e in collected] == RENEWAL_PAID
    assert previous(collected[0])["pause_collection"] == {
        "behavior": "keep_as_draft",
        "resumes_at": resumes_at,
    }
    assert retrieve(sandbox, subscription_id).pause_collection is None


# -- price changes and other updates --------------------------------------------------------


def test_price_change_through_items_replaces_the_price(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    before = retrieve(sandbox, subscription_id)
    [item] = before["items"].data
    watch = Watch(sandbox)

    changed = sandbox.client.v1.subscriptions.update(
        subscription_id,
        {"items": [{"id": item.id, "price": STATIC_MONTHLY}], "proration_behavior": "none"},
    )
    [event] = watch.events()
    sandbox.control(f"/subscriptions/{subscription_id}/renew", {})
    renewal = sandbox.client.v1.invoices.retrieve(
        str(retrieve(sandbox, subscription_id).latest_invoice)
    )

    [new_item] = changed["items"].data
    assert (new_item.id, new_item.price.id, new_item.plan.id) == (
        item.id,
        STATIC_MONTHLY,
        STATIC_MONTHLY,
    )
    assert period(changed) == period(before)  # same interval: the period runs on
    assert event.type == "customer.subscription.updated"
    assert from_api([event])
    assert previous(event) == {"items": before["items"].to_dict()}
    assert previous(event)["items"]["data"][0]["price"]["id"] == WORDPRESS_MONTHLY
    assert renewal.amount_due == 500  # the next period bills the new price
    assert renewal.lines.data[0].pricing.price_details.price == STATIC_MONTHLY


def test_changing_the_interval_restarts_the_period_and_bills_now(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    [item] = retrieve(sandbox, subscription_id)["items"].data
    sandbox.clock.advance(86400)
    watch = Watch(sandbox)

    changed = sandbox.client.v1.subscriptions.update(
        subscription_id, {"items": [{"id": item.id, "price": STATIC_YEARLY}]}
    )

    events = watch.events()
    assert [e.type for e in events] == RENEWAL_PAID
    assert from_api(events)
    assert set(previous(events[0])) == {"items", "latest_invoice", "billing_cycle_anchor"}
    start, end = period(changed)
    assert start == changed.billing_cycle_anchor == int(sandbox.clock())
    assert 365 * 86400 <= end - start <= 366 * 86400
    invoice = sandbox.client.v1.invoices.retrieve(str(changed.latest_invoice))
    assert (invoice.billing_reason, invoice.amount_paid) == ("subscription_update", 5000)


def test_items_can_be_added_and_deleted(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    [item] = retrieve(sandbox, subscription_id)["items"].data

    added = sandbox.client.v1.subscriptions.update(
        subscription_id, {"items": [{"price": STATIC_MONTHLY, "quantity": 2}]}
    )
    extra = next(i for i in added["items"].data if i.id != item.id)
    removed = sandbox.client.v1.subscriptions.update(
        subscription_id, {"items": [{"id": extra.id, "deleted": True}]}
    )

    assert [(i.price.id, i.quantity) for i in added["items"].data] == [
        (WORDPRESS_MONTHLY, 1),
        (STATIC_MONTHLY, 2),
    ]
    assert period(removed) == (extra.current_period_start, extra.current_period_end)
    assert added["items"].total_count == 2


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([{"id": "si_nope", "price": STATIC_MONTHLY}], "items[0][id]"),
        ([{"price": STATIC_ONCE}], "items[0][price]"),
        ([{"price": "price_nope"}], "items[0][price]"),
        ([{"price": WORDPRESS_MONTHLY}], "items"),
        ([{"price": STATIC_YEARLY}], "items"),
        ([{"quantity": 2}], "items[0][price]"),
        ([{"price": STATIC_MONTHLY, "tax_rates": ["txr_1"]}], "items[0][tax_rates]"),
    ],
)
def test_bad_item_changes_are_refused_and_change_nothing(
    sandbox: Sandbox, items: list[dict[str, Any]], param: str
) -> None:
    subscription_id = subscribe(sandbox)
    before = retrieve(sandbox, subscription_id)
    watch = Watch(sandbox)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.subscriptions.update(subscription_id, {"items": items})

    assert refused.value.param == param
    assert retrieve(sandbox, subscription_id).to_dict() == before.to_dict()
    assert watch.types() == []


def test_deleting_the_only_item_is_refused(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    [item] = retrieve(sandbox, subscription_id)["items"].data

    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.subscriptions.update(
            subscription_id, {"items": [{"id": item.id, "deleted": True}]}
        )

    assert refused.value.param == "items"


def test_metadata_updates_merge_and_unchanged_updates_are_silent(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    watch = Watch(sandbox)

    updated = sandbox.client.v1.subscriptions.update(
        subscription_id, {"metadata": {"plan": "", "cs_project_id": "7"}}
    )
    sandbox.client.v1.subscriptions.update(subscription_id, {"metadata": {"cs_project_id": "7"}})
    sandbox.client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": False})

    [event] = watch.events()
    assert updated.metadata.to_dict() == {"cs_project_id": "7"}
    assert previous(event) == {"metadata": {"plan": "wp", "cs_project_id": None}}


def test_unmodelled_update_parameters_are_refused(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.subscriptions.update(subscription_id, {"trial_end": "now"})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sandbox.client.v1.subscriptions.update("sub_nope", {"metadata": {"a": "b"}})

    assert (refused.value.param, refused.value.code) == ("trial_end", "parameter_unsupported")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


# -- idempotency and listing ---------------------------------------------------------------


def test_idempotency_keys_replay_the_new_posts(sandbox: Sandbox) -> None:
    subscription_id = subscribe(sandbox)
    subscriptions = sandbox.client.v1.subscriptions
    schedule: dict[str, Any] = {"cancel_at_period_end": True}
    watch = Watch(sandbox)

    first = subscriptions.update(subscription_id, schedule, {"idempotency_key": "sched-1"})
    replay = subscriptions.update(subscription_id, schedule, {"idempotency_key": "sched-1"})
    paused = subscriptions.pause(subscription_id, {}, {"idempotency_key": "pause-1"})
    subscriptions.resume(subscription_id, {}, {"idempotency_key": "resume-1"})
    pause_replay = subscriptions.pause(subscription_id, {}, {"idempotency_key": "pause-1"})

    assert replay.last_response is not None
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert replay.to_dict() == first.to_dict()
    assert pause_replay.status == paused.status == "paused"  # the stored answer
    assert retrieve(sandbox, subscription_id).status == "active"  # not paused again
    events = watch.events()
    assert [e.type for e in events].count("customer.subscription.paused") == 1
    assert events[0].request is not None
    assert events[0].request.idempotency_key == "sched-1"
    with pytest.raises(stripe.IdempotencyError):
        subscriptions.update(
            subscription_id, {"cancel_at_period_end": False}, {"idempotency_key": "sched-1"}
        )


def test_invoices_list_by_subscription_customer_and_status(sandbox: Sandbox) -> None:
    first = subscribe(sandbox)
    second = subscribe(sandbox)
    sandbox.control(f"/subscriptions/{first}/renew", {"paid": False})
    customer = str(retrieve(sandbox, first).customer)
    invoices = sandbox.client.v1.invoices

    of_first = invoices.list({"subscription": first})
    of_customer = invoices.list({"customer": customer})
    open_ones = invoices.list({"status": "open"})
    everything = invoices.list()

    assert [i.billing_reason for i in of_first.data] == [
        "subscription_cycle",
        "subscription_create",
    ]
    assert [i.id for i in of_customer.data] == [i.id for i in of_first.data]
    assert [i.id for i in open_ones.data] == [of_first.data[0].id]
    assert len(everything.data) == 3
    assert all(
        i.parent.subscription_details.subscription in (first, second) for i in everything.data
    )
    assert invoices.retrieve(of_first.data[0].id).status == "open"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        invoices.list({"status": "bogus"})
    assert refused.value.param == "status"
