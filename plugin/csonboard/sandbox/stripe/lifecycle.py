"""What happens to a subscription once it exists: billing periods and their invoices,
payments that fail or clear, status changes, pausing, resuming and cancellation.

The ``/_sandbox`` helpers call these for what Stripe does on its own (events with
``request.id`` null); the ``/v1`` routes of :mod:`subscriptions` call the same
transitions with their request as ``origin``. Every function expects the caller
to hold ``store.lock`` for the whole operation, so one operation's events are
contiguous, and refuses (400, ``resource_invalid_state``) a transition the
subscription's status does not allow, before changing anything.

``*.updated`` events carry ``previous_attributes`` computed by
:func:`changed_fields`: exactly the fields that changed, with Stripe's partial
rules for hashes (``metadata`` and ``cancellation_details`` list only the changed
keys) and whole old values otherwise (``items`` is the whole previous list).

Time: the sandbox never moves the injected clock. Billing periods follow each
other back to back, whatever the clock says; ``created`` and status timestamps
(``canceled_at``, ``paid_at``...) are the clock's now. A test that cares about
timestamps advances its clock to the period end before renewing.
"""

from __future__ import annotations

import copy
from typing import Any

from csonboard.sandbox.stripe import invoices
from csonboard.sandbox.stripe.billing import add_interval
from csonboard.sandbox.stripe.errors import wrong_state
from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.invoices import Charge
from csonboard.sandbox.stripe.state import Json, Store

RETRY_DELAY = 3 * 86400
"""Seconds from a failed renewal attempt to ``next_payment_attempt`` (Stripe's Smart
Retries choose their own times; the sandbox never retries on its own)."""

ENDED = ("canceled", "incomplete_expired")
DELINQUENT = ("past_due", "unpaid")
RENEWABLE = ("active", "trialing", "past_due", "unpaid")
FORCIBLE = ("active", "canceled", "incomplete_expired", "past_due", "paused", "trialing", "unpaid")
"""Statuses ``force_status`` moves to (``incomplete`` only ever starts a subscription)."""

CANCELLATION_REASONS = (
    "canceled_by_retention_policy",
    "cancellation_requested",
    "payment_disputed",
    "payment_failed",
)
_PARTIAL_HASHES = ("cancellation_details", "metadata")


def changed_fields(before: Json, after: Json) -> Json:
    """Stripe's ``previous_attributes``: the old values of the fields that differ.

    ``metadata`` and ``cancellation_details`` keep only their changed keys (a key
    that did not exist before is null); every other field keeps its whole old value.
    """
    previous: Json = {}
    for key, old in before.items():
        new = after.get(key)
        if new == old:
            continue
        if key in _PARTIAL_HASHES and isinstance(old, dict) and isinstance(new, dict):
            keys = sorted(set(old) | set(new))
            previous[key] = {k: copy.deepcopy(old.get(k)) for k in keys if old.get(k) != new.get(k)}
        else:
            previous[key] = copy.deepcopy(old)
    return previous


def current_period(subscription: Json) -> tuple[int, int]:
    """The current billing period (start, end); every item shares it."""
    item = subscription["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


# -- Stripe's own doings (the /_sandbox helpers) -------------------------------------


def renew(store: Store, events: EventLog, subscription: Json, *, paid: bool) -> Json:
    """Start the next billing period and collect its invoice; returns the invoice.

    For an ``active``, ``trialing``, ``past_due`` or ``unpaid`` subscription whose
    cancellation is not due (see :func:`end_period`). Events, in order:
    ``customer.subscription.updated`` (previous ``items``, ``latest_invoice``, and
    ``pause_collection`` when its ``resumes_at`` has come), ``invoice.created``
    (``billing_reason`` ``subscription_cycle``), then what :func:`collect` emits.
    """
    status = subscription["status"]
    if status not in RENEWABLE:
        raise wrong_state(
            f"Subscription {subscription['id']} is {status}; only an active, trialing, "
            "past_due or unpaid subscription starts new billing periods."
        )
    _, end = current_period(subscription)
    if subscription["cancel_at"] is not None and subscription["cancel_at"] <= end:
        raise wrong_state(
            f"Subscription {subscription['id']} cancels at {subscription['cancel_at']}, before "
            "it would renew; end its period (`/period_end`) to cancel it."
        )
    before = copy.deepcopy(subscription)
    pause = subscription["pause_collection"]
    if pause is not None and pause["resumes_at"] is not None and pause["resumes_at"] <= end:
        subscription["pause_collection"] = None
    invoice = start_period(store, subscription, end, billing_reason="subscription_cycle")
    events.emit(
        "customer.subscription.updated", subscription, previous=changed_fields(before, subscription)
    )
    events.emit("invoice.created", invoice)
    collect(store, events, subscription, invoice, paid=paid)
    return invoice


def end_period(store: Store, events: EventLog, subscription: Json, *, paid: bool = True) -> None:
    """The current period ends: a cancellation due by then (``cancel_at_period_end``, or a
    ``cancel_at`` no later than the period end) cancels the subscription (see
    :func:`cancel`; ``ended_at`` is the ``cancel_at`` time), otherwise it renews
    (:func:`renew`, paid unless ``paid`` is false)."""
    _, end = current_period(subscription)
    due = subscription["cancel_at"]
    if due is not None and due <= end and subscription["status"] not in ENDED:
        reason = subscription["cancellation_details"]["reason"] or "cancellation_requested"
        cancel(store, events, subscription, reason=reason, scheduled_for=due)
        return
    renew(store, events, subscription, paid=paid)


def collect(
    store: Store,
    events: EventLog,
    subscription: Json,
    invoice: Json,
    *,
    paid: bool,
    origin: Origin = AUTOMATIC,
) -> None:
    """Finalize a new draft subscription invoice and attempt its payment, as Stripe does.

    With ``pause_collection`` set, its ``behavior`` decides instead and no payment is
    attempted: ``keep_as_draft`` (no event; the invoice stays a draft),
    ``mark_uncollectible`` (``invoice.finalized``, ``invoice.marked_uncollectible``)
    or ``void`` (``invoice.finalized``, ``invoice.voided``). Otherwise
    ``invoice.finalized``, then: an ``unpaid`` subscription's invoice is left open
    and not attempted, unless ``paid``; paid: ``invoice.paid``,
    ``invoice.payment_succeeded`` and, for a ``past_due``/``unpaid`` subscription,
    ``customer.subscription.updated`` back to ``active``; failed:
    ``invoice.payment_failed`` (``next_payment_attempt`` :data:`RETRY_DELAY` later)
    and, for an ``active``/``trialing`` one, ``customer.subscription.updated`` to
    ``past_due``.
    """
    pause = subscription["pause_collection"]
    if pause is not None:
        if pause["behavior"] == "keep_as_draft":
            return
        invoices.finalize(store, events, invoice, origin)
        if pause["behavior"] == "void":
            invoices.void(store, events, invoice, origin)
        else:
            invoices.mark_uncollectible(store, events, invoice, origin)
        return
    invoices.finalize(store, events, invoice, origin)
    status = subscription["status"]
    if paid:
        invoices.pay(store, events, invoice, origin)
        if status in DELINQUENT:
            change_status(store, events, subscription, "active", origin=origin)
    elif status != "unpaid":
        invoices.fail_attempt(events, invoice, store.now() + RETRY_DELAY, origin)
        if status in ("active", "trialing"):
            change_status(store, events, subscription, "past_due", origin=origin)


def pay_open_invoice(store: Store, events: EventLog, subscription: Json) -> Json:
    """The customer pays the subscription's newest open invoice; returns the invoice.

    Emits ``invoice.paid``, ``invoice.payment_succeeded`` and, when that invoice
    is the latest and the subscription is ``past_due``, ``unpaid`` or
    ``incomplete``, ``customer.subscription.updated`` to ``active``. (Paying a
    Checkout subscription's first invoice this way leaves the Checkout Session's
    ``payment_status`` alone; ``/checkout/sessions/{id}/async_payment`` settles both.)
    """
    open_invoices = [
        i
        for i in store.newest_first("invoice")
        if invoices.subscription_of(i) == subscription["id"] and i["status"] == "open"
    ]
    if not open_invoices:
        raise wrong_state(f"Subscription {subscription['id']} has no open invoice to pay.")
    invoice = open_invoices[0]
    invoices.pay(store, events, invoice)
    latest = invoice["id"] == subscription["latest_invoice"]
    if latest and subscription["status"] in (*DELINQUENT, "incomplete"):
        change_status(store, events, subscription, "active")
    return invoice


def force_status(
    store: Store, events: EventLog, subscription: Json, status: str, *, reason: str | None = None
) -> None:
    """Move the subscription to ``status`` (one of :data:`FORCIBLE`) as Stripe's billing
    machinery would, emitting what Stripe emits for that change:

    - ``canceled``: :func:`cancel` (``customer.subscription.deleted`` only);
      ``reason`` defaults to ``payment_failed`` from ``past_due``/``unpaid``
      (dunning gave up), else ``cancellation_requested``;
    - ``paused``: ``customer.subscription.paused`` then ``.updated``;
    - out of ``paused``: ``customer.subscription.resumed`` then ``.updated``;
    - ``incomplete_expired`` (only from ``incomplete``): ``.updated`` (with
      ``canceled_at``/``ended_at`` set), then ``invoice.voided`` for the open first
      invoice;
    - anything else: ``customer.subscription.updated``.

    The same status again changes nothing and emits nothing; an ended subscription
    (``canceled``, ``incomplete_expired``) cannot move.
    """
    current = subscription["status"]
    if status == current:
        return
    if current in ENDED:
        raise wrong_state(f"Subscription {subscription['id']} is {current}, which is final.")
    if status == "canceled":
        default = "payment_failed" if current in DELINQUENT else "cancellation_requested"
        cancel(store, events, subscription, reason=reason or default)
    elif status == "incomplete_expired":
        _expire(store, events, subscription)
    else:
        if status == "paused" and current not in (*RENEWABLE, "incomplete"):
            raise wrong_state(f"Subscription {subscription['id']} is {current}; cannot pause.")
        change_status(store, events, subscription, status, pause_type=_pause_type(current))


# -- transitions shared with the /v1 routes --------------------------------------------


def change_status(
    store: Store,
    events: EventLog,
    subscription: Json,
    status: str,
    *,
    origin: Origin = AUTOMATIC,
    pause_type: str = "pause_requested",
) -> None:
    """Set a live status (not ``canceled``) and emit the events Stripe does.

    Into ``paused``: ``status_details.paused`` records ``pause_type`` and the time;
    emits ``customer.subscription.paused`` then ``.updated``. Out of ``paused``:
    ``customer.subscription.resumed`` then ``.updated``. Otherwise ``.updated``
    alone. No change, no event.
    """
    current = subscription["status"]
    if status == current:
        return
    before = copy.deepcopy(subscription)
    subscription["status"] = status
    if status == "paused":
        subscription["status_details"] = {
            "paused": {
                "subscription": {"type": pause_type},
                "transitioned_at": store.now(),
                "type": "subscription",
            }
        }
        events.emit("customer.subscription.paused", subscription, origin=origin)
    elif current == "paused":
        subscription["status_details"] = None
        events.emit("customer.subscription.resumed", subscription, origin=origin)
    previous = changed_fields(before, subscription)
    events.emit("customer.subscription.updated", subscription, previous=previous, origin=origin)


def pause(
    store: Store, events: EventLog, subscription: Json, *, origin: Origin = AUTOMATIC
) -> None:
    """Pause an ``active``, ``trialing``, ``past_due`` or ``unpaid`` subscription: status
    ``paused`` (no new periods or invoices until resumed); emits
    ``customer.subscription.paused`` then ``customer.subscription.updated``."""
    if subscription["status"] not in RENEWABLE:
        raise wrong_state(
            f"Subscription {subscription['id']} is {subscription['status']}; only an active, "
            "trialing, past_due or unpaid subscription can be paused."
        )
    change_status(store, events, subscription, "paused", origin=origin)


def resume(
    store: Store,
    events: EventLog,
    subscription: Json,
    *,
    reset_anchor: bool = True,
    origin: Origin = AUTOMATIC,
) -> Json | None:
    """Resume a ``paused`` subscription to ``active``; returns the invoice it issued, if any.

    ``reset_anchor`` (Stripe's default ``billing_cycle_anchor=now``) starts a new
    period now and bills it at once (``billing_reason`` ``subscription_update``,
    paid); otherwise the period is left as it was. Events, in order:
    ``customer.subscription.resumed``, ``customer.subscription.updated`` (previous
    ``status``, ``status_details``, and with a reset ``billing_cycle_anchor``,
    ``items``, ``latest_invoice``), then with a reset ``invoice.created``,
    ``invoice.finalized``, ``invoice.paid``, ``invoice.payment_succeeded``.
    """
    if subscription["status"] != "paused":
        raise wrong_state(
            f"Subscription {subscription['id']} is {subscription['status']}; only a paused "
            "subscription can be resumed."
        )
    before = copy.deepcopy(subscription)
    subscription.update(status="active", status_details=None)
    invoice = None
    if reset_anchor:
        now = store.now()
        subscription["billing_cycle_anchor"] = now
        invoice = start_period(store, subscription, now, billing_reason="subscription_update")
    events.emit("customer.subscription.resumed", subscription, origin=origin)
    previous = changed_fields(before, subscription)
    events.emit("customer.subscription.updated", subscription, previous=previous, origin=origin)
    if invoice is not None:
        events.emit("invoice.created", invoice, origin=origin)
        collect(store, events, subscription, invoice, paid=True, origin=origin)
    return invoice


def cancel(
    store: Store,
    events: EventLog,
    subscription: Json,
    *,
    reason: str,
    scheduled_for: int | None = None,
    details: dict[str, Any] | None = None,
    origin: Origin = AUTOMATIC,
) -> None:
    """End the subscription: status ``canceled``; emits ``customer.subscription.deleted``.

    Now (``canceled_at`` and ``ended_at`` both now), or as scheduled: ``ended_at``
    is ``scheduled_for`` and ``canceled_at`` keeps the time the cancellation was
    requested, as on Stripe. ``reason`` and ``details`` (``comment``,
    ``feedback``) go to ``cancellation_details``.
    """
    if subscription["status"] in ENDED:
        raise wrong_state(f"Subscription {subscription['id']} is already {subscription['status']}.")
    now = store.now()
    if scheduled_for is None:
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
    else:
        requested = subscription["canceled_at"] or now
        subscription.update(status="canceled", canceled_at=requested, ended_at=scheduled_for)
    subscription["cancellation_details"].update(details or {}, reason=reason)
    events.emit("customer.subscription.deleted", subscription, origin=origin)


def start_period(store: Store, subscription: Json, start: int, *, billing_reason: str) -> Json:
    """Move every item to the period beginning at ``start`` and store its draft invoice.

    Returns the invoice (no event yet: the caller emits the subscription's
    ``updated`` event first, then ``invoice.created``). The invoice's own period
    is the one ending; its lines bill the new one; ``latest_invoice`` points to it.
    """
    items = subscription["items"]["data"]
    old_start, _ = current_period(subscription)
    recurring = items[0]["price"]["recurring"]
    end = add_interval(start, recurring["interval"], recurring["interval_count"])
    for item in items:
        item.update(current_period_start=start, current_period_end=end)
    customer = store.get("customer", subscription["customer"])
    products = store.objects["product"]
    charges = [
        Charge(
            item["price"],
            item["quantity"],
            products.get(item["price"]["product"], {}).get("name", ""),
            item,
        )
        for item in items
    ]
    invoice = store.put(
        invoices.subscription_invoice(
            store,
            subscription,
            customer,
            charges,
            billing_reason=billing_reason,
            period=(old_start, start),
            service=(start, end),
        )
    )
    subscription["latest_invoice"] = invoice["id"]
    return invoice


def _expire(store: Store, events: EventLog, subscription: Json) -> None:
    """An ``incomplete`` subscription's first invoice went unpaid for 23 hours."""
    if subscription["status"] != "incomplete":
        raise wrong_state(
            f"Subscription {subscription['id']} is {subscription['status']}; only an "
            "incomplete subscription expires."
        )
    before = copy.deepcopy(subscription)
    now = store.now()
    subscription.update(status="incomplete_expired", canceled_at=now, ended_at=now)
    previous = changed_fields(before, subscription)
    events.emit("customer.subscription.updated", subscription, previous=previous)
    latest = store.find("invoice", subscription["latest_invoice"] or "")
    if latest is not None and latest["status"] == "open":
        invoices.void(store, events, latest)


def _pause_type(current: str) -> str:
    """Why Stripe's machinery would pause a subscription in status ``current``."""
    if current in DELINQUENT:
        return "final_payment_failure"
    if current == "incomplete":
        return "first_payment_failure"
    if current == "trialing":
        return "trial_end_without_payment_method"
    return "system"
