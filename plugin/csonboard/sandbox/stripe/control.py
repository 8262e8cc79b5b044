"""The ``/_sandbox`` routes: play the buyer, run billing, inject faults, steer webhooks.

No API key; JSON bodies in and out; errors use Stripe's envelope. These routes
do what Stripe does on its own (the buyer paying on the hosted page, a bank
debit settling, a session timing out, a subscription renewing or falling into
dunning, the card network's disputes and early fraud warnings, the Dashboard's
"Resend") and let tests look inside. Events they cause have ``request.id`` null,
as Stripe-initiated events do.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from csonboard.sandbox.stripe import (
    disputes,
    fraud_warnings,
    lifecycle,
    meter_events,
    payment_links,
    purchase,
    refunds,
    thin,
)
from csonboard.sandbox.stripe.account import SandboxAccount
from csonboard.sandbox.stripe.errors import invalid
from csonboard.sandbox.stripe.faults import parse_fault
from csonboard.sandbox.stripe.forms import check_known
from csonboard.sandbox.stripe.state import Json
from csonboard.sandbox.stripe.web import json_response

_BUYER_FIELDS = ("payment_status", "name", "email", "phone", "address")
_WEBHOOK_FIELDS = (
    "url",
    "secret",
    "enabled_events",
    "payload",
    "paused",
    "duplicate_rate",
    "retry_schedule",
    "timeout",
)


def _body() -> dict[str, Any]:
    """The JSON object sent, ``{}`` for an empty body; 400 for anything else."""
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    return body


class _Control:
    """The view functions, bound to one account."""

    def __init__(self, account: SandboxAccount) -> None:
        self.account = account
        self.store = account.store
        self.events = account.events

    def before(self) -> None:
        self.account.expire_due_sessions()

    # -- the buyer -------------------------------------------------------------------

    def complete(self, session_id: str) -> Response:
        session = purchase.complete_session(self.store, self.events, session_id, _buyer(_body()))
        return json_response(session)

    def async_payment(self, session_id: str) -> Response:
        body = _body()
        check_known(body, ("succeeded",))
        succeeded = body.get("succeeded", True)
        if not isinstance(succeeded, bool):
            raise invalid("succeeded must be true or false", "succeeded")
        return json_response(
            purchase.settle_async_payment(self.store, self.events, session_id, succeeded=succeeded)
        )

    def expire(self, session_id: str) -> Response:
        return json_response(purchase.expire_session(self.store, self.events, session_id))

    def pay_page(self, session_id: str) -> Response:
        """A bare stand-in for the hosted Checkout page (the session's ``url``)."""
        with self.store.lock:
            session = self.store.get("checkout.session", session_id)
            items = self.store.line_items.get(session_id, [])
            rows = "".join(
                f"<li>{item['quantity']} x {html.escape(item['description'])}</li>"
                for item in items
            )
            total = session["amount_total"]
        amount = "" if total is None else f"<p>Total: {total / 100:.2f} {session['currency']}</p>"
        page = (
            "<!doctype html><title>Sandbox Checkout</title>"
            f"<h1>Sandbox Checkout</h1><ul>{rows}</ul>{amount}"
            f"<p>Status: {html.escape(session['status'])}</p>"
            '<form method="post"><label>Email <input name="email"></label> '
            '<button name="action" value="pay">Pay</button> '
            '<button name="action" value="cancel">Cancel</button></form>'
        )
        return Response(page, mimetype="text/html")

    def pay_submit(self, session_id: str) -> Response:
        """The page's form: pay (then go to ``success_url``) or go back to ``cancel_url``."""
        if request.form.get("action") == "pay":
            buyer = purchase.Buyer(email=request.form.get("email") or None)
            session = purchase.complete_session(self.store, self.events, session_id, buyer)
            target = session["success_url"] or session["return_url"]
        else:
            session = self.store.get("checkout.session", session_id)
            target = session["cancel_url"]
        if not target:
            return json_response(session)
        location = target.replace("{CHECKOUT_SESSION_ID}", session_id)
        return Response(status=303, headers={"Location": location})

    def open_payment_link(self, link_id: str) -> Response:
        """A buyer opens a Payment Link (its ``url``): a new Checkout Session for it, see
        :func:`payment_links.open_link`. POST (body ``{}``) answers the session; GET, a
        browser following the link, is sent on (303) to the session's payment page."""
        if request.method == "POST":
            check_known(_body(), ())
        pay_url = request.host_url.rstrip("/") + "/_sandbox/pay"
        session = payment_links.open_link(self.store, link_id, pay_url_base=pay_url)
        if request.method == "GET":
            return Response(status=303, headers={"Location": session["url"]})
        return json_response(session)

    # -- billing: what Stripe does to subscriptions on its own ---------------------------

    def renew(self, subscription_id: str) -> Response:
        """Body ``{"paid": true|false}`` (default true): a new billing period and its
        ``subscription_cycle`` invoice; events as :func:`lifecycle.renew`."""
        paid = _flag(_body(), "paid")
        with self.store.lock:
            subscription = self.store.get("subscription", subscription_id)
            lifecycle.renew(self.store, self.events, subscription, paid=paid)
            return json_response(subscription)

    def end_period(self, subscription_id: str) -> Response:
        """Body ``{}`` (or ``{"paid": false}``): the period ends; a due cancellation
        cancels (``customer.subscription.deleted``), anything else renews."""
        paid = _flag(_body(), "paid")
        with self.store.lock:
            subscription = self.store.get("subscription", subscription_id)
            lifecycle.end_period(self.store, self.events, subscription, paid=paid)
            return json_response(subscription)

    def pay_invoice(self, subscription_id: str) -> Response:
        """Body ``{}``: the customer pays the newest open invoice (see
        :func:`lifecycle.pay_open_invoice`); answers the subscription."""
        check_known(_body(), ())
        with self.store.lock:
            subscription = self.store.get("subscription", subscription_id)
            lifecycle.pay_open_invoice(self.store, self.events, subscription)
            return json_response(subscription)

    def force_status(self, subscription_id: str) -> Response:
        """Body ``{"status": ..., "reason": ...}``: see :func:`lifecycle.force_status`;
        ``reason`` (a ``cancellation_details.reason``) only with ``canceled``."""
        body = _body()
        check_known(body, ("status", "reason"))
        status = body.get("status")
        if status not in lifecycle.FORCIBLE:
            raise invalid(f"status must be one of {', '.join(lifecycle.FORCIBLE)}", "status")
        reason = body.get("reason")
        if reason is not None and (
            status != "canceled" or reason not in lifecycle.CANCELLATION_REASONS
        ):
            raise invalid(
                "reason goes with status canceled and is one of "
                + ", ".join(lifecycle.CANCELLATION_REASONS),
                "reason",
            )
        with self.store.lock:
            subscription = self.store.get("subscription", subscription_id)
            lifecycle.force_status(self.store, self.events, subscription, status, reason=reason)
            return json_response(subscription)

    def pause(self, subscription_id: str) -> Response:
        """Body ``{}``: status ``paused``; ``customer.subscription.paused`` + ``.updated``."""
        check_known(_body(), ())
        with self.store.lock:
            subscription = self.store.get("subscription", subscription_id)
            lifecycle.pause(self.store, self.events, subscription)
            return json_response(subscription)

    def resume(self, subscription_id: str) -> Response:
        """Body ``{"billing_cycle_anchor": "now"|"unchanged"}`` (default ``now``): as
        ``POST /v1/subscriptions/{id}/resume`` (see :func:`lifecycle.resume`)."""
        body = _body()
        check_known(body, ("billing_cycle_anchor",))
        anchor = body.get("billing_cycle_anchor", "now")
        if anchor not in ("now", "unchanged"):
            raise invalid("billing_cycle_anchor must be now or unchanged", "billing_cycle_anchor")
        with self.store.lock:
            subscription = self.store.get("subscription", subscription_id)
            lifecycle.resume(self.store, self.events, subscription, reset_anchor=anchor == "now")
            return json_response(subscription)

    # -- the card network: disputes and early fraud warnings ------------------------------

    def dispute_charge(self, charge_id: str) -> Response:
        """Body ``{"reason", "inquiry", "amount"}`` (defaults ``fraudulent``, false, and
        what is left unrefunded): the cardholder disputes a succeeded card charge. A
        chargeback (``needs_response``) withdraws the funds, an inquiry
        (``warning_needs_response``) does not; see :func:`disputes.open_dispute`.
        Answers the dispute."""
        body = _body()
        check_known(body, ("reason", "inquiry", "amount"))
        reason = body.get("reason", "fraudulent")
        if not isinstance(reason, str):
            raise invalid("reason must be a string", "reason")
        inquiry = body.get("inquiry", False)
        if not isinstance(inquiry, bool):
            raise invalid("inquiry must be true or false", "inquiry")
        amount = body.get("amount")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise invalid("amount must be an integer (minor units)", "amount")
        dispute = disputes.open_dispute(
            self.store, self.events, charge_id, reason=reason, inquiry=inquiry, amount=amount
        )
        return json_response(dispute)

    def decide_dispute(self, dispute_id: str) -> Response:
        """Body ``{"outcome": "won"|"lost"}``: the network decides an open dispute
        (``charge.dispute.closed``, and ``charge.dispute.funds_reinstated`` for a won
        chargeback). An inquiry closes ``warning_closed`` whatever the outcome, which
        it may leave out. Answers the dispute."""
        body = _body()
        check_known(body, ("outcome",))
        outcome = body.get("outcome")
        if outcome is not None and outcome not in ("won", "lost"):
            raise invalid("outcome must be won or lost", "outcome")
        won = None if outcome is None else outcome == "won"
        return json_response(disputes.decide(self.store, self.events, dispute_id, won=won))

    def fail_refund(self, refund_id: str) -> Response:
        """Body ``{"reason": ...}`` (default ``expired_or_canceled_card``): the
        refund fails at the card network or bank; see :func:`refunds.fail_refund`.
        Answers the refund."""
        body = _body()
        check_known(body, ("reason",))
        reason = body.get("reason", "expired_or_canceled_card")
        if not isinstance(reason, str):
            raise invalid("reason must be a string", "reason")
        return json_response(refunds.fail_refund(self.store, self.events, refund_id, reason))

    def warn_of_fraud(self, charge_id: str) -> Response:
        """Body ``{"fraud_type": ...}`` (default ``made_with_stolen_card``): the card
        issuer sends an early fraud warning for a succeeded charge
        (``radar.early_fraud_warning.created``). Answers the warning."""
        body = _body()
        check_known(body, ("fraud_type",))
        fraud_type = body.get("fraud_type", "made_with_stolen_card")
        if not isinstance(fraud_type, str):
            raise invalid("fraud_type must be a string", "fraud_type")
        warning = fraud_warnings.create_warning(self.store, self.events, charge_id, fraud_type)
        return json_response(warning)

    # -- faults and webhooks -------------------------------------------------------------

    def add_fault(self) -> Response:
        fault = parse_fault(_body())
        self.account.faults.add(fault)
        return json_response({"faults": self.account.faults.pending()}, 201)

    def list_faults(self) -> Response:
        return json_response({"faults": self.account.faults.pending()})

    def clear_faults(self) -> Response:
        self.account.faults.clear()
        return json_response({"faults": []})

    def webhooks(self) -> Response:
        if request.method == "GET":
            return json_response(self.account.deliverer.config.public())
        body = _body()
        check_known(body, _WEBHOOK_FIELDS)
        changes = _webhook_changes(body)
        return json_response(self.account.deliverer.configure(**changes).public())

    def deliveries(self) -> Response:
        event_id = request.args.get("event")
        return json_response({"deliveries": self.account.destinations.deliveries(event_id)})

    def wait(self) -> Response:
        body = _body()
        timeout = body.get("timeout", 10)
        if not isinstance(timeout, int | float) or not 0 <= timeout <= 60:
            raise invalid("timeout must be 0..60 seconds", "timeout")
        return json_response({"idle": self.account.wait_for_deliveries(float(timeout))})

    def redeliver(self, event_id: str) -> Response:
        with self.store.lock:
            event = self.store.get("event", event_id)
        return json_response(self.account.deliverer.resend(event))

    def fail_event_generation(self) -> Response:
        """Body ``{"event_type", "object"}``: Stripe failed to make that event about
        that object. Any such event already made is taken back (it never existed),
        and the health event saying so goes to the thin destinations that take it."""
        body = _body()
        check_known(body, ("event_type", "object"))
        event_type, object_id = body.get("event_type"), body.get("object")
        if not isinstance(event_type, str) or not isinstance(object_id, str):
            raise invalid("event_type and object (an id) are required strings", "event_type")
        with self.store.lock:
            kind = self.store.kind_of_id(object_id)
            if kind is None:
                raise invalid(f"No such object: '{object_id}'", "object")
            obj = self.store.objects[kind][object_id]
            made = self.store.objects["event"]
            for event_id in [
                e["id"]
                for e in made.values()
                if e["type"] == event_type and e["data"]["object"].get("id") == object_id
            ]:
                del made[event_id]
            alert = thin.event_generation_failure(self.store, event_type=event_type, obj=obj)
            return json_response(self.account.destinations.publish_v2(alert), 201)

    def create_event(self) -> Response:
        body = _body()
        if not isinstance(body.get("type"), str) or not isinstance(body.get("data"), dict):
            raise invalid("An event needs a string `type` and a `data` object.", "type")
        return json_response(self.events.record(body), 201)

    # -- inspection ----------------------------------------------------------------------

    def state(self) -> Response:
        """Everything the account holds. ``billing`` has what ``/v1`` cannot show: the
        accepted meter events (oldest first, each with its ``meter``) and their count
        per meter."""
        with self.store.lock:
            objects = {kind: self.store.newest_first(kind) for kind in self.store.objects}
            body: Json = {
                "counts": self.store.counts(),
                "objects": objects,
                "line_items": self.store.line_items,
                "webhook": self.account.deliverer.config.public(),
                "outbox": self.account.destinations.outbox_size(),
                "deliveries": len(self.account.destinations.deliveries()),
                "faults": self.account.faults.pending(),
                "billing": {
                    "accepted_meter_events": meter_events.accepted_counts(self.store),
                    "meter_events": meter_events.recorded(self.store),
                },
            }
            return json_response(body)

    def forget_idempotency_keys(self) -> Response:
        """Stripe may prune idempotency keys 24 hours after their first use; this
        forgets every key now, as a day later (the stand-in otherwise never does)."""
        check_known(_body(), ())
        self.account.idempotency.clear()
        return json_response({"forgotten": True})

    def contract(self) -> Response:
        """What was checked against stripe-python's types since the last reset."""
        log = self.account.contract
        if log is None:
            raise invalid("This stand-in was started without contract checking.")
        return json_response(log.summary())

    def reset(self) -> Response:
        self.account.reset()
        return json_response({"reset": True})


def _buyer(body: dict[str, Any]) -> purchase.Buyer:
    """A :class:`purchase.Buyer` from a ``complete`` body; 400 on bad fields."""
    check_known(body, _BUYER_FIELDS)
    for name in ("payment_status", "name", "email", "phone"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise invalid(f"{name} must be a string", name)
    if body.get("address") is not None and not isinstance(body["address"], dict):
        raise invalid("address must be an object (city, country, line1, ...)", "address")
    return purchase.Buyer(**{k: v for k, v in body.items() if v is not None})


def _flag(body: dict[str, Any], name: str) -> bool:
    """The boolean ``name`` of a body that may hold only it; true when absent."""
    check_known(body, (name,))
    value = body.get(name, True)
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false", name)
    return value


def _webhook_changes(body: dict[str, Any]) -> dict[str, Any]:
    """Validated :class:`WebhookConfig` changes from a ``POST /_sandbox/webhooks`` body."""
    changes = dict(body)
    for name in ("url", "secret"):
        if name in changes and changes[name] is not None and not isinstance(changes[name], str):
            raise invalid(f"{name} must be a string or null", name)
    if "enabled_events" in changes:
        events = changes["enabled_events"]
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise invalid("enabled_events must be a list of event types", "enabled_events")
        changes["enabled_events"] = tuple(events)
    if "payload" in changes and changes["payload"] not in ("snapshot", "thin"):
        raise invalid("payload must be snapshot or thin", "payload")
    if "paused" in changes and not isinstance(changes["paused"], bool):
        raise invalid("paused must be true or false", "paused")
    rate = changes.get("duplicate_rate", 0)
    if not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise invalid("duplicate_rate must be a number from 0 to 1", "duplicate_rate")
    if "retry_schedule" in changes:
        schedule = changes["retry_schedule"]
        if not isinstance(schedule, list) or not all(
            isinstance(s, int | float) and s >= 0 for s in schedule
        ):
            raise invalid("retry_schedule must be a list of non-negative seconds", "retry_schedule")
        changes["retry_schedule"] = tuple(float(s) for s in schedule)
    if "timeout" in changes and not (
        isinstance(changes["timeout"], int | float) and changes["timeout"] > 0
    ):
        raise invalid("timeout must be a positive number of seconds", "timeout")
    return changes


def create_control(account: SandboxAccount) -> Blueprint:
    """The ``/_sandbox`` blueprint steering ``account``."""
    control = _Control(account)
    bp = Blueprint("stripe_sandbox", __name__, url_prefix="/_sandbox")
    bp.before_request(control.before)
    routes: list[tuple[str, list[str], Callable[..., Response]]] = [
        ("/checkout/sessions/<session_id>/complete", ["POST"], control.complete),
        ("/checkout/sessions/<session_id>/async_payment", ["POST"], control.async_payment),
        ("/checkout/sessions/<session_id>/expire", ["POST"], control.expire),
        ("/pay/<session_id>", ["GET"], control.pay_page),
        ("/pay/<session_id>", ["POST"], control.pay_submit),
        ("/payment_links/<link_id>/open", ["GET", "POST"], control.open_payment_link),
        ("/subscriptions/<subscription_id>/renew", ["POST"], control.renew),
        ("/subscriptions/<subscription_id>/period_end", ["POST"], control.end_period),
        ("/subscriptions/<subscription_id>/pay", ["POST"], control.pay_invoice),
        ("/subscriptions/<subscription_id>/status", ["POST"], control.force_status),
        ("/subscriptions/<subscription_id>/pause", ["POST"], control.pause),
        ("/subscriptions/<subscription_id>/resume", ["POST"], control.resume),
        ("/charges/<charge_id>/dispute", ["POST"], control.dispute_charge),
        ("/charges/<charge_id>/early_fraud_warning", ["POST"], control.warn_of_fraud),
        ("/refunds/<refund_id>/fail", ["POST"], control.fail_refund),
        ("/disputes/<dispute_id>/close", ["POST"], control.decide_dispute),
        ("/faults", ["POST"], control.add_fault),
        ("/faults", ["GET"], control.list_faults),
        ("/faults", ["DELETE"], control.clear_faults),
        ("/webhooks", ["GET", "POST"], control.webhooks),
        ("/deliveries", ["GET"], control.deliveries),
        ("/deliveries/wait", ["POST"], control.wait),
        ("/events", ["POST"], control.create_event),
        ("/event_generation_failures", ["POST"], control.fail_event_generation),
        ("/events/<event_id>/deliver", ["POST"], control.redeliver),
        ("/state", ["GET"], control.state),
        ("/contract", ["GET"], control.contract),
        ("/idempotency/forget", ["POST"], control.forget_idempotency_keys),
        ("/reset", ["POST"], control.reset),
    ]
    for path, methods, view in routes:
        endpoint = f"{'_'.join(methods).lower()}_{view.__name__}"
        bp.add_url_rule(path, endpoint=endpoint, view_func=view, methods=methods)
    return bp
