"""The ``/v1/subscriptions/{id}`` writes: update, cancel (``DELETE``), pause and resume.

Parameters are read and validated before anything changes, so a refused call
leaves the subscription as it was. Events carry the request as ``origin``
(``request.id`` and the idempotency key), as on Stripe.

Modelled update parameters: ``cancel_at_period_end``, ``cancel_at`` (a timestamp,
``min_period_end``/``max_period_end``, or ``""`` to clear), ``cancellation_details``,
``description``, ``items`` (change an item's price or quantity, add an item,
delete one), ``metadata`` (Stripe's merge rules) and ``pause_collection``. The
sandbox makes no prorations: ``proration_behavior``, ``proration_date`` (and the
pause endpoint's ``bill_for``/``invoicing_behavior``, the cancel endpoint's
``prorate``/``invoice_now``) are accepted and have no effect. Other real
parameters are refused as unsupported rather than silently ignored.
"""

from __future__ import annotations

import copy
from typing import Any

from csonboard.sandbox.stripe import lifecycle
from csonboard.sandbox.stripe.billing import plan, subscription_item
from csonboard.sandbox.stripe.errors import invalid, missing, no_such, unsupported
from csonboard.sandbox.stripe.events import EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_bool,
    as_dict,
    as_enum,
    as_int,
    as_list,
    as_opt_str,
    as_str,
    check_known,
    merge_metadata,
    sub,
)
from csonboard.sandbox.stripe.state import Json, Store

_UPDATE_PARAMS = (
    "cancel_at",
    "cancel_at_period_end",
    "cancellation_details",
    "description",
    "expand",
    "items",
    "metadata",
    "pause_collection",
    "proration_behavior",
    "proration_date",
)
_UPDATE_UNSUPPORTED = (
    "add_invoice_items",
    "application_fee_percent",
    "automatic_tax",
    "billing_cycle_anchor",
    "billing_schedules",
    "billing_thresholds",
    "collection_method",
    "days_until_due",
    "default_payment_method",
    "default_source",
    "default_tax_rates",
    "discounts",
    "invoice_settings",
    "off_session",
    "on_behalf_of",
    "payment_behavior",
    "payment_settings",
    "pending_invoice_item_interval",
    "transfer_data",
    "trial_end",
    "trial_from_plan",
    "trial_settings",
)
_ENDED_UPDATABLE = ("cancellation_details", "expand", "metadata")
_ITEM_PARAMS = ("deleted", "id", "price", "quantity")
_ITEM_UNSUPPORTED = (
    "billing_thresholds",
    "clear_usage",
    "current_trial",
    "discounts",
    "metadata",
    "plan",
    "price_data",
    "tax_rates",
)
_PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
_PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
_FEEDBACK = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)


def update_subscription(
    store: Store, events: EventLog, subscription_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/subscriptions/{id}``; returns the subscription.

    Emits ``customer.subscription.updated`` when anything changed, its
    ``previous_attributes`` holding exactly the changed fields (the whole old
    ``items`` list for an item change). Setting ``cancel_at_period_end`` or
    ``cancel_at`` also sets ``canceled_at`` (the request time) and
    ``cancellation_details.reason`` (``cancellation_requested``), and
    ``cancel_at_period_end=true`` sets ``cancel_at`` to the period end, as Stripe
    does; clearing them clears those. A price change within the same billing
    interval takes effect at the next renewal; one that changes the interval
    restarts the period now (``billing_cycle_anchor``) and bills it at once:
    ``invoice.created``, ``invoice.finalized``, ``invoice.paid``,
    ``invoice.payment_succeeded`` follow the ``updated`` event (billing reason
    ``subscription_update``).
    """
    _check(params, _UPDATE_PARAMS, _UPDATE_UNSUPPORTED)
    if "proration_behavior" in params:
        as_enum(params["proration_behavior"], "proration_behavior", _PRORATION_BEHAVIORS)
    if "proration_date" in params:
        as_int(params["proration_date"], "proration_date")
    with store.lock:
        subscription = store.get("subscription", subscription_id)
        if subscription["status"] in lifecycle.ENDED:
            for name in params:
                if name not in _ENDED_UPDATABLE:
                    raise invalid(
                        "A canceled subscription can only update its cancellation_details "
                        "and metadata.",
                        name,
                    )
        updated = _updated_copy(store, subscription, params)
        old_period = _interval(subscription)
        new_period = _interval(updated)
        invoice = None
        if new_period != old_period:
            updated["billing_cycle_anchor"] = store.now()
            invoice = lifecycle.start_period(
                store, updated, store.now(), billing_reason="subscription_update"
            )
        previous = lifecycle.changed_fields(subscription, updated)
        subscription.clear()
        subscription.update(updated)
        if previous:
            events.emit(
                "customer.subscription.updated", subscription, previous=previous, origin=origin
            )
        if invoice is not None:
            events.emit("invoice.created", invoice, origin=origin)
            lifecycle.collect(store, events, subscription, invoice, paid=True, origin=origin)
        return subscription


def cancel_subscription(
    store: Store, events: EventLog, subscription_id: str, params: Params, origin: Origin
) -> Json:
    """``DELETE /v1/subscriptions/{id}``: cancel now; emits ``customer.subscription.deleted``.

    ``canceled_at`` and ``ended_at`` are now, ``cancellation_details.reason`` is
    ``cancellation_requested`` (plus the ``comment``/``feedback`` sent). An ended
    subscription is refused.
    """
    check_known(params, ("cancellation_details", "expand", "invoice_now", "prorate"))
    for name in ("invoice_now", "prorate"):
        if name in params:
            as_bool(params[name], name)
    details = _read_cancellation_details(params)
    with store.lock:
        subscription = store.get("subscription", subscription_id)
        lifecycle.cancel(
            store,
            events,
            subscription,
            reason="cancellation_requested",
            details=details,
            origin=origin,
        )
        return subscription


def pause_subscription(
    store: Store, events: EventLog, subscription_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/subscriptions/{id}/pause``: status ``paused``; emits
    ``customer.subscription.paused`` then ``customer.subscription.updated``."""
    check_known(params, ("bill_for", "expand", "invoicing_behavior", "type"))
    if "type" in params:
        as_enum(params["type"], "type", ("subscription",))
    if "invoicing_behavior" in params:
        choices = ("invoice", "pending_invoice_item")
        as_enum(params["invoicing_behavior"], "invoicing_behavior", choices)
    if "bill_for" in params:
        as_dict(params["bill_for"], "bill_for")
    with store.lock:
        subscription = store.get("subscription", subscription_id)
        lifecycle.pause(store, events, subscription, origin=origin)
        return subscription


def resume_subscription(
    store: Store, events: EventLog, subscription_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/subscriptions/{id}/resume`` for a ``paused`` subscription: ``active``.

    ``billing_cycle_anchor`` (``{type}`` as the 16.x library sends it, or the plain
    string) is ``now`` (default: a new period, billed at once) or ``unchanged``.
    Events: see :func:`lifecycle.resume`.
    """
    check_known(
        params,
        (
            "billing_cycle_anchor",
            "expand",
            "payment_behavior",
            "proration_behavior",
            "proration_date",
        ),
    )
    anchor = params.get("billing_cycle_anchor", "now")
    if isinstance(anchor, dict):
        check_known(anchor, ("type",), "billing_cycle_anchor")
        anchor = anchor.get("type", "")
        param = "billing_cycle_anchor[type]"
    else:
        param = "billing_cycle_anchor"
    reset = as_enum(anchor, param, ("now", "unchanged")) == "now"
    if "payment_behavior" in params:
        choices = ("resume_on_payment_attempt", "resume_on_payment_success")
        as_enum(params["payment_behavior"], "payment_behavior", choices)
    if "proration_behavior" in params:
        as_enum(params["proration_behavior"], "proration_behavior", _PRORATION_BEHAVIORS)
    with store.lock:
        subscription = store.get("subscription", subscription_id)
        lifecycle.resume(store, events, subscription, reset_anchor=reset, origin=origin)
        return subscription


# -- reading an update -----------------------------------------------------------------


def _check(params: Params, allowed: tuple[str, ...], unmodelled: tuple[str, ...]) -> None:
    for name in params:
        if name in unmodelled:
            raise unsupported(name)
    check_known(params, allowed)


def _updated_copy(store: Store, subscription: Json, params: Params) -> Json:
    """The subscription as the update leaves it (a copy: nothing is changed yet)."""
    now = store.now()
    updated = copy.deepcopy(subscription)
    if "description" in params:
        updated["description"] = as_opt_str(params, "description")
    if "metadata" in params:
        updated["metadata"], _ = merge_metadata(subscription["metadata"], params["metadata"])
    if "cancellation_details" in params:
        updated["cancellation_details"].update(_read_cancellation_details(params))
    if "pause_collection" in params:
        updated["pause_collection"] = _read_pause_collection(params["pause_collection"])
    if "items" in params:
        items = _read_items(store, subscription, params["items"])
        updated["items"]["data"] = items
        updated["items"]["total_count"] = len(items)
    schedule = _read_cancel_schedule(subscription, params, now)
    if schedule is not None:
        cancel_at, at_period_end = schedule
        if (cancel_at, at_period_end) != (
            subscription["cancel_at"],
            subscription["cancel_at_period_end"],
        ):
            requested = cancel_at is not None
            updated.update(
                cancel_at=cancel_at,
                cancel_at_period_end=at_period_end,
                canceled_at=now if requested else None,
            )
            reason = "cancellation_requested" if requested else None
            updated["cancellation_details"]["reason"] = reason
    return updated


def _read_cancel_schedule(
    subscription: Json, params: Params, now: int
) -> tuple[int | None, bool] | None:
    """The (``cancel_at``, ``cancel_at_period_end``) the update asks for, or None."""
    at_end = (
        as_bool(params["cancel_at_period_end"], "cancel_at_period_end")
        if "cancel_at_period_end" in params
        else None
    )
    _, period_end = lifecycle.current_period(subscription)
    if at_end:
        if params.get("cancel_at", "") != "":
            raise invalid(
                "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
                "cancel_at",
            )
        return period_end, True
    if "cancel_at" in params:
        raw = as_str(params["cancel_at"], "cancel_at")
        if raw == "":
            return None, False
        if raw in ("min_period_end", "max_period_end"):
            return period_end, False
        cancel_at = as_int(raw, "cancel_at")
        if cancel_at <= now:
            raise invalid("cancel_at must be in the future.", "cancel_at")
        return cancel_at, False
    if at_end is False:
        if subscription["cancel_at_period_end"]:
            return None, False
        return subscription["cancel_at"], False
    return None


def _read_cancellation_details(params: Params) -> dict[str, Any]:
    if "cancellation_details" not in params:
        return {}
    fields = as_dict(params["cancellation_details"], "cancellation_details")
    check_known(fields, ("comment", "feedback"), "cancellation_details")
    details: dict[str, Any] = {}
    if "comment" in fields:
        details["comment"] = as_opt_str(fields, "comment", "cancellation_details")
    if "feedback" in fields:
        feedback = as_str(fields["feedback"], "cancellation_details[feedback]")
        details["feedback"] = (
            as_enum(feedback, "cancellation_details[feedback]", _FEEDBACK) if feedback else None
        )
    return details


def _read_pause_collection(raw: Any) -> Json | None:
    if raw == "":
        return None
    fields = as_dict(raw, "pause_collection")
    check_known(fields, ("behavior", "resumes_at"), "pause_collection")
    if "behavior" not in fields:
        raise missing("pause_collection[behavior]")
    behavior = as_enum(fields["behavior"], "pause_collection[behavior]", _PAUSE_BEHAVIORS)
    resumes_at = (
        as_int(fields["resumes_at"], "pause_collection[resumes_at]")
        if "resumes_at" in fields
        else None
    )
    return {"behavior": behavior, "resumes_at": resumes_at}


def _read_items(store: Store, subscription: Json, raw: Any) -> list[Json]:
    """The subscription's items after the ``items`` changes (copies; ids kept)."""
    result: list[Json] = copy.deepcopy(subscription["items"]["data"])
    start, end = lifecycle.current_period(subscription)
    for index, entry in enumerate(as_list(raw, "items")):
        param = sub("items", index)
        fields = as_dict(entry, param)
        for name in fields:
            if name in _ITEM_UNSUPPORTED:
                raise unsupported(sub(param, name))
        check_known(fields, _ITEM_PARAMS, param)
        deleted = (
            as_bool(fields["deleted"], sub(param, "deleted")) if "deleted" in fields else False
        )
        quantity = (
            as_int(fields["quantity"], sub(param, "quantity"), minimum=0)
            if "quantity" in fields
            else None
        )
        price = _read_price(store, subscription, fields, param) if "price" in fields else None
        if "id" not in fields:
            if deleted:
                raise missing(sub(param, "id"))
            if price is None:
                raise missing(sub(param, "price"))
            item = subscription_item(
                store, subscription["id"], price, 1 if quantity is None else quantity, start, end
            )
            result.append(item)
            continue
        item_id = as_str(fields["id"], sub(param, "id"))
        target = next((item for item in result if item["id"] == item_id), None)
        if target is None:
            raise no_such("subscription_item", item_id, param=sub(param, "id"), status=400)
        if deleted:
            result.remove(target)
            continue
        if price is not None:
            target.update(price=copy.deepcopy(price), plan=plan(price))
        if quantity is not None:
            target["quantity"] = quantity
    _check_items(result)
    return result


def _read_price(store: Store, subscription: Json, fields: Params, param: str) -> Json:
    name = sub(param, "price")
    price = store.get("price", as_str(fields["price"], name), param=name, status=400)
    if price["recurring"] is None:
        raise invalid(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            name,
        )
    if not price["active"]:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.", name
        )
    if price["currency"] != subscription["currency"]:
        raise invalid(
            f"The price specified is in {price['currency']}, but this subscription is in "
            f"{subscription['currency']}; all items must share the subscription's currency.",
            name,
        )
    return price


def _check_items(items: list[Json]) -> None:
    if not items:
        raise invalid("A subscription must have at least one active item.", "items")
    prices = [item["price"]["id"] for item in items]
    if len(set(prices)) != len(prices):
        raise invalid(
            "Cannot add multiple subscription items with the same price; change the "
            "existing item's quantity instead.",
            "items",
        )
    if len({_item_interval(item) for item in items}) > 1:
        raise invalid(
            "Currency and interval fields must match across all plans on this subscription.",
            "items",
        )


def _item_interval(item: Json) -> tuple[str, int]:
    recurring = item["price"]["recurring"]
    return recurring["interval"], recurring["interval_count"]


def _interval(subscription: Json) -> tuple[str, int]:
    return _item_interval(subscription["items"]["data"][0])
