"""The ``/v1`` routes: Stripe's own paths, parameters, answers and errors.

Every call passes the same gate, in this order (each step's answer is final):
injected fault (``/_sandbox/faults``), API key, lazy expiry of overdue
sessions, parameter decoding, then for a POST with ``Idempotency-Key`` the
replay check. Answers carry ``Request-Id`` and ``Stripe-Version`` like Stripe's.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, g, request

from csonboard.sandbox.stripe import (
    charges,
    checkout,
    customers,
    disputes,
    fraud_warnings,
    invoice_payments,
    meter_events,
    meter_summaries,
    meters,
    payment_links,
    prices,
    queries,
    refunds,
    subscribe,
    subscriptions,
    webhook_endpoints,
)
from csonboard.sandbox.stripe.account import SandboxAccount
from csonboard.sandbox.stripe.errors import ApiError
from csonboard.sandbox.stripe.events import Origin, list_events
from csonboard.sandbox.stripe.expand import expand
from csonboard.sandbox.stripe.faults import Fault
from csonboard.sandbox.stripe.forms import Params, as_str_list, check_known, decode
from csonboard.sandbox.stripe.idempotency import StoredResponse
from csonboard.sandbox.stripe.purchase import expire_session
from csonboard.sandbox.stripe.state import API_VERSION, Json
from csonboard.sandbox.stripe.web import JSON_MIMETYPE, error_response, json_response

_RETRIEVE_PARAMS = ("expand",)


@dataclass
class _Call:
    """What the gate learned about the current request."""

    request_id: str
    params: Params
    idempotency_key: str | None = None
    claimed: bool = False  # this request holds its idempotency key until it answers
    after: Fault | None = None  # a fault to apply once the request has taken effect


class _Api:
    """The view functions, bound to one account."""

    def __init__(self, account: SandboxAccount) -> None:
        self.account = account
        self.store = account.store

    # -- the gate ------------------------------------------------------------------

    def gate(self) -> Response | None:
        """Run before every ``/v1`` view; an answer here short-circuits the view."""
        call = _Call(request_id=self.store.new_id("req", 14), params={})
        g.stripe_call = call
        fault = self.account.faults.take(request.method, request.path)
        if fault is not None and fault.after:
            call.after = fault
        elif fault is not None:
            time.sleep(fault.delay)
            error = fault.error()
            if error is not None:
                return error_response(error)
        self._authenticate()
        self.account.expire_due_sessions()
        source = request.form if request.method == "POST" else request.args
        pairs = list(source.items(multi=True))
        call.params = decode(pairs)
        key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and key:
            call.idempotency_key = key
            stored = self.account.idempotency.begin(
                key, (request.method, request.path, tuple(sorted(pairs)))
            )
            if stored is not None:
                return Response(
                    stored.body,
                    status=stored.status,
                    mimetype=JSON_MIMETYPE,
                    headers={"Idempotent-Replayed": "true", "Original-Request": stored.request_id},
                )
            call.claimed = True
        return None

    def finish(self, response: Response) -> Response:
        """Stamp Stripe's headers and keep the answer under the idempotency key."""
        call: _Call | None = g.get("stripe_call")
        if call is None:
            return response
        response.headers["Request-Id"] = call.request_id
        response.headers["Stripe-Version"] = request.headers.get("Stripe-Version", API_VERSION)
        if self.account.contract is not None and response.mimetype == JSON_MIMETYPE:
            self.account.contract.check_body(
                response.get_data(),
                status=response.status_code,
                api_mode="V2" if request.path.startswith("/v2/") else "V1",
            )
        if call.claimed and call.idempotency_key is not None:
            stored = StoredResponse(response.status_code, response.get_data(), call.request_id)
            self.account.idempotency.finish(call.idempotency_key, stored)
            call.claimed = False
        if call.after is not None:  # done, and now the answer is slow or lost
            time.sleep(call.after.delay)
            error = call.after.error()
            if error is not None:
                return error_response(error)
        return response

    def release(self, _exc: BaseException | None) -> None:
        """A request that crashed must not hold its idempotency key forever."""
        call: _Call | None = g.get("stripe_call")
        if call is not None and call.claimed and call.idempotency_key is not None:
            self.account.idempotency.abandon(call.idempotency_key)

    def _authenticate(self) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if not key:
            raise ApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(key.encode(), self.account.api_key.encode()):
            shown = f"{key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}" if len(key) > 12 else "****"
            raise ApiError(401, f"Invalid API Key provided: {shown}")

    # -- helpers ---------------------------------------------------------------------

    @property
    def params(self) -> Params:
        call: _Call = g.stripe_call
        return call.params

    @property
    def origin(self) -> Origin:
        call: _Call = g.stripe_call
        return Origin(call.request_id, call.idempotency_key)

    def render(self, obj: Json, status: int = 200) -> Response:
        """``obj`` with the request's ``expand[]`` applied."""
        paths = as_str_list(self.params.get("expand", []), "expand")
        with self.store.lock:
            return json_response(expand(self.store, obj, paths), status)

    def retrieve(self, kind: str, object_id: str) -> Response:
        check_known(self.params, _RETRIEVE_PARAMS)
        with self.store.lock:
            return self.render(self.store.get(kind, object_id))

    # -- products and prices ---------------------------------------------------------

    def list_products(self) -> Response:
        return self.render(prices.list_products(self.store, self.params))

    def get_product(self, product_id: str) -> Response:
        return self.retrieve("product", product_id)

    def create_product(self) -> Response:
        return self.render(
            prices.create_product(self.store, self.account.events, self.params, self.origin)
        )

    def list_prices(self) -> Response:
        return self.render(prices.list_prices(self.store, self.params))

    def get_price(self, price_id: str) -> Response:
        return self.retrieve("price", price_id)

    def create_price(self) -> Response:
        return self.render(
            prices.create_price(self.store, self.account.events, self.params, self.origin)
        )

    # -- customers -------------------------------------------------------------------

    def list_customers(self) -> Response:
        return self.render(customers.list_customers(self.store, self.params))

    def get_customer(self, customer_id: str) -> Response:
        return self.render(customers.retrieve_customer(self.store, customer_id, self.params))

    def create_customer(self) -> Response:
        events = self.account.events
        return self.render(customers.create_customer(self.store, events, self.params, self.origin))

    def update_customer(self, customer_id: str) -> Response:
        events = self.account.events
        updated = customers.update_customer(
            self.store, events, customer_id, self.params, self.origin
        )
        return self.render(updated)

    def delete_customer(self, customer_id: str) -> Response:
        events = self.account.events
        deleted = customers.delete_customer(
            self.store, events, customer_id, self.params, self.origin
        )
        return self.render(deleted)

    # -- checkout ----------------------------------------------------------------------

    def create_session(self) -> Response:
        pay_url = request.host_url.rstrip("/") + "/_sandbox/pay"
        return self.render(checkout.create_session(self.store, self.params, pay_url_base=pay_url))

    def list_sessions(self) -> Response:
        return self.render(queries.list_sessions(self.store, self.params))

    def get_session(self, session_id: str) -> Response:
        return self.retrieve("checkout.session", session_id)

    def list_line_items(self, session_id: str) -> Response:
        return self.render(queries.list_line_items(self.store, session_id, self.params))

    def expire_session(self, session_id: str) -> Response:
        check_known(self.params, _RETRIEVE_PARAMS)
        events = self.account.events
        return self.render(expire_session(self.store, events, session_id, self.origin))

    # -- payment links -------------------------------------------------------------------

    def create_payment_link(self) -> Response:
        base = request.host_url.rstrip("/") + "/_sandbox/payment_links"
        created = payment_links.create_link(
            self.store, self.account.events, self.params, self.origin, open_url_base=base
        )
        return self.render(created)

    def list_payment_links(self) -> Response:
        return self.render(payment_links.list_links(self.store, self.params))

    def get_payment_link(self, link_id: str) -> Response:
        return self.retrieve("payment_link", link_id)

    def list_payment_link_line_items(self, link_id: str) -> Response:
        return self.render(payment_links.list_line_items(self.store, link_id, self.params))

    # -- billing and events --------------------------------------------------------------

    def list_subscriptions(self) -> Response:
        return self.render(queries.list_subscriptions(self.store, self.params))

    def get_subscription(self, subscription_id: str) -> Response:
        return self.retrieve("subscription", subscription_id)

    def create_subscription(self) -> Response:
        return self.render(
            subscribe.create_subscription(self.store, self.account.events, self.params, self.origin)
        )

    def list_subscription_items(self) -> Response:
        return self.render(queries.list_subscription_items(self.store, self.params))

    def update_subscription(self, subscription_id: str) -> Response:
        updated = subscriptions.update_subscription(
            self.store, self.account.events, subscription_id, self.params, self.origin
        )
        return self.render(updated)

    def cancel_subscription(self, subscription_id: str) -> Response:
        canceled = subscriptions.cancel_subscription(
            self.store, self.account.events, subscription_id, self.params, self.origin
        )
        return self.render(canceled)

    def pause_subscription(self, subscription_id: str) -> Response:
        paused = subscriptions.pause_subscription(
            self.store, self.account.events, subscription_id, self.params, self.origin
        )
        return self.render(paused)

    def resume_subscription(self, subscription_id: str) -> Response:
        resumed = subscriptions.resume_subscription(
            self.store, self.account.events, subscription_id, self.params, self.origin
        )
        return self.render(resumed)

    def list_invoices(self) -> Response:
        return self.render(queries.list_invoices(self.store, self.params))

    def get_invoice(self, invoice_id: str) -> Response:
        return self.retrieve("invoice", invoice_id)

    def list_invoice_lines(self, invoice_id: str) -> Response:
        return self.render(queries.list_invoice_lines(self.store, invoice_id, self.params))

    def list_invoice_payments(self) -> Response:
        return self.render(invoice_payments.list_invoice_payments(self.store, self.params))

    def get_invoice_payment(self, payment_id: str) -> Response:
        return self.retrieve("invoice_payment", payment_id)

    def list_events(self) -> Response:
        return self.render(list_events(self.store, self.params))

    def get_event(self, event_id: str) -> Response:
        return self.retrieve("event", event_id)

    # -- payments and money going back -----------------------------------------------

    def get_payment_intent(self, intent_id: str) -> Response:
        return self.retrieve("payment_intent", intent_id)

    def list_charges(self) -> Response:
        return self.render(charges.list_charges(self.store, self.params))

    def get_charge(self, charge_id: str) -> Response:
        return self.retrieve("charge", charge_id)

    def list_charge_refunds(self, charge_id: str) -> Response:
        return self.render(refunds.list_charge_refunds(self.store, charge_id, self.params))

    def get_charge_refund(self, charge_id: str, refund_id: str) -> Response:
        found = refunds.retrieve_charge_refund(self.store, charge_id, refund_id, self.params)
        return self.render(found)

    def get_balance_transaction(self, transaction_id: str) -> Response:
        return self.retrieve("balance_transaction", transaction_id)

    def create_refund(self) -> Response:
        events = self.account.events
        return self.render(refunds.create_refund(self.store, events, self.params, self.origin))

    def list_refunds(self) -> Response:
        return self.render(refunds.list_refunds(self.store, self.params))

    def get_refund(self, refund_id: str) -> Response:
        return self.retrieve("refund", refund_id)

    def list_disputes(self) -> Response:
        return self.render(disputes.list_disputes(self.store, self.params))

    def get_dispute(self, dispute_id: str) -> Response:
        return self.retrieve("dispute", dispute_id)

    def update_dispute(self, dispute_id: str) -> Response:
        events = self.account.events
        updated = disputes.update_dispute(self.store, events, dispute_id, self.params, self.origin)
        return self.render(updated)

    def close_dispute(self, dispute_id: str) -> Response:
        events = self.account.events
        closed = disputes.accept_dispute(self.store, events, dispute_id, self.params, self.origin)
        return self.render(closed)

    def list_early_fraud_warnings(self) -> Response:
        return self.render(fraud_warnings.list_warnings(self.store, self.params))

    def get_early_fraud_warning(self, warning_id: str) -> Response:
        return self.retrieve(fraud_warnings.KIND, warning_id)

    # -- webhook endpoints -------------------------------------------------------------

    def list_webhook_endpoints(self) -> Response:
        return self.render(webhook_endpoints.list_endpoints(self.store, self.params))

    def create_webhook_endpoint(self) -> Response:
        created = webhook_endpoints.create_endpoint(
            self.store, self.account.destinations, self.params
        )
        return self.render(created)

    def get_webhook_endpoint(self, endpoint_id: str) -> Response:
        return self.retrieve("webhook_endpoint", endpoint_id)

    def update_webhook_endpoint(self, endpoint_id: str) -> Response:
        updated = webhook_endpoints.update_endpoint(
            self.store, self.account.destinations, endpoint_id, self.params
        )
        return self.render(updated)

    def delete_webhook_endpoint(self, endpoint_id: str) -> Response:
        check_known(self.params, ())
        deleted = webhook_endpoints.delete_endpoint(
            self.store, self.account.destinations, endpoint_id
        )
        return json_response(deleted)

    # -- billing meters and usage ---------------------------------------------------------

    def list_meters(self) -> Response:
        return self.render(meters.list_meters(self.store, self.params))

    def create_meter(self) -> Response:
        events = self.account.events
        return self.render(meters.create_meter(self.store, events, self.params, self.origin))

    def get_meter(self, meter_id: str) -> Response:
        return self.retrieve(meters.KIND, meter_id)

    def update_meter(self, meter_id: str) -> Response:
        events = self.account.events
        updated = meters.update_meter(self.store, events, meter_id, self.params, self.origin)
        return self.render(updated)

    def deactivate_meter(self, meter_id: str) -> Response:
        events = self.account.events
        changed = meters.deactivate_meter(self.store, events, meter_id, self.params, self.origin)
        return self.render(changed)

    def reactivate_meter(self, meter_id: str) -> Response:
        events = self.account.events
        changed = meters.reactivate_meter(self.store, events, meter_id, self.params, self.origin)
        return self.render(changed)

    def list_meter_event_summaries(self, meter_id: str) -> Response:
        return self.render(meter_summaries.list_summaries(self.store, meter_id, self.params))

    def create_meter_event(self) -> Response:
        return self.render(meter_events.create_meter_event(self.store, self.params))

    # -- v2 ------------------------------------------------------------------------------

    def get_v2_event(self, event_id: str) -> Response:
        """``GET /v2/core/events/{id}``: the whole v2 event (v2 takes no ``expand``)."""
        check_known(self.params, ())
        with self.store.lock:
            return json_response(self.store.get("v2.core.event", event_id))


def create_api(account: SandboxAccount) -> Blueprint:
    """The blueprint serving ``account``'s ``/v1`` and ``/v2`` paths."""
    api = _Api(account)
    bp = Blueprint("stripe_api", __name__)
    bp.before_request(api.gate)
    bp.after_request(api.finish)
    bp.teardown_request(api.release)
    v1 = Blueprint("v1", __name__, url_prefix="/v1")
    v2 = Blueprint("v2", __name__, url_prefix="/v2")
    v2.add_url_rule("/core/events/<event_id>", view_func=api.get_v2_event, methods=["GET"])
    routes: list[tuple[str, str, Callable[..., Response]]] = [
        ("/products", "GET", api.list_products),
        ("/products", "POST", api.create_product),
        ("/products/<product_id>", "GET", api.get_product),
        ("/prices", "GET", api.list_prices),
        ("/prices", "POST", api.create_price),
        ("/prices/<price_id>", "GET", api.get_price),
        ("/customers", "GET", api.list_customers),
        ("/customers", "POST", api.create_customer),
        ("/customers/<customer_id>", "GET", api.get_customer),
        ("/customers/<customer_id>", "POST", api.update_customer),
        ("/customers/<customer_id>", "DELETE", api.delete_customer),
        ("/checkout/sessions", "GET", api.list_sessions),
        ("/checkout/sessions", "POST", api.create_session),
        ("/checkout/sessions/<session_id>", "GET", api.get_session),
        ("/checkout/sessions/<session_id>/line_items", "GET", api.list_line_items),
        ("/checkout/sessions/<session_id>/expire", "POST", api.expire_session),
        ("/payment_links", "GET", api.list_payment_links),
        ("/payment_links", "POST", api.create_payment_link),
        ("/payment_links/<link_id>", "GET", api.get_payment_link),
        ("/payment_links/<link_id>/line_items", "GET", api.list_payment_link_line_items),
        ("/subscriptions", "GET", api.list_subscriptions),
        ("/subscriptions", "POST", api.create_subscription),
        ("/subscriptions/<subscription_id>", "GET", api.get_subscription),
        ("/subscriptions/<subscription_id>", "POST", api.update_subscription),
        ("/subscriptions/<subscription_id>", "DELETE", api.cancel_subscription),
        ("/subscriptions/<subscription_id>/pause", "POST", api.pause_subscription),
        ("/subscriptions/<subscription_id>/resume", "POST", api.resume_subscription),
        ("/subscription_items", "GET", api.list_subscription_items),
        ("/invoices", "GET", api.list_invoices),
        ("/invoices/<invoice_id>", "GET", api.get_invoice),
        ("/invoices/<invoice_id>/lines", "GET", api.list_invoice_lines),
        ("/invoice_payments", "GET", api.list_invoice_payments),
        ("/invoice_payments/<payment_id>", "GET", api.get_invoice_payment),
        ("/payment_intents/<intent_id>", "GET", api.get_payment_intent),
        ("/charges", "GET", api.list_charges),
        ("/charges/<charge_id>", "GET", api.get_charge),
        ("/charges/<charge_id>/refunds", "GET", api.list_charge_refunds),
        ("/charges/<charge_id>/refunds/<refund_id>", "GET", api.get_charge_refund),
        ("/balance_transactions/<transaction_id>", "GET", api.get_balance_transaction),
        ("/refunds", "GET", api.list_refunds),
        ("/refunds", "POST", api.create_refund),
        ("/refunds/<refund_id>", "GET", api.get_refund),
        ("/disputes", "GET", api.list_disputes),
        ("/disputes/<dispute_id>", "GET", api.get_dispute),
        ("/disputes/<dispute_id>", "POST", api.update_dispute),
        ("/disputes/<dispute_id>/close", "POST", api.close_dispute),
        ("/radar/early_fraud_warnings", "GET", api.list_early_fraud_warnings),
        ("/radar/early_fraud_warnings/<warning_id>", "GET", api.get_early_fraud_warning),
        ("/events", "GET", api.list_events),
        ("/events/<event_id>", "GET", api.get_event),
        ("/webhook_endpoints", "GET", api.list_webhook_endpoints),
        ("/webhook_endpoints", "POST", api.create_webhook_endpoint),
        ("/webhook_endpoints/<endpoint_id>", "GET", api.get_webhook_endpoint),
        ("/webhook_endpoints/<endpoint_id>", "POST", api.update_webhook_endpoint),
        ("/webhook_endpoints/<endpoint_id>", "DELETE", api.delete_webhook_endpoint),
        ("/billing/meters", "GET", api.list_meters),
        ("/billing/meters", "POST", api.create_meter),
        ("/billing/meters/<meter_id>", "GET", api.get_meter),
        ("/billing/meters/<meter_id>", "POST", api.update_meter),
        ("/billing/meters/<meter_id>/deactivate", "POST", api.deactivate_meter),
        ("/billing/meters/<meter_id>/reactivate", "POST", api.reactivate_meter),
        ("/billing/meters/<meter_id>/event_summaries", "GET", api.list_meter_event_summaries),
        ("/billing/meter_events", "POST", api.create_meter_event),
    ]
    for path, method, view in routes:
        v1.add_url_rule(
            path, endpoint=f"{method.lower()}_{view.__name__}", view_func=view, methods=[method]
        )
    bp.register_blueprint(v1)
    bp.register_blueprint(v2)
    return bp
