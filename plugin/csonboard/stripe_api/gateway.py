"""The Stripe API calls csonboard makes, with ``stripe.StripeClient``.

Results are the plain records of :mod:`csonboard.stripe_api.records`: stripe-python
16 objects are not dicts, and nothing outside this package should care. Network
retries are turned on (``StripeClient`` has none by default); writes carry
deterministic idempotency keys chosen by the caller, so a replay repeats
Stripe's first answer instead of creating a second customer.

Failure policy: see :mod:`csonboard.stripe_api.calls` (outage -> StripeUnavailable,
refusal -> StripeRefused, something that is not the Stripe API -> ConfigError).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import stripe

from csonboard.errors import ConfigError, PermanentError, StripeRefused
from csonboard.settings import Settings
from csonboard.stripe_api import money, records
from csonboard.stripe_api.calls import STRIPE_API, calling, reading, unless_missing
from csonboard.stripe_api.records import (
    Buyer,
    CheckoutSession,
    MeterSummary,
    PriceSummary,
    ProductSummary,
    SessionSummary,
    Subscription,
    field,
    id_of,
    plain,
)

_T = TypeVar("_T")

_DUPLICATE_IDENTIFIER = "An event already exists with identifier"
"""How Stripe refuses a meter event whose identifier it has already taken (it
gives no error code for it): the only message csonboard reads."""


class StripeGateway:
    """Stripe as csonboard sees it. One instance per process is plenty."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout: float = 30.0,
        page_size: int = 100,
    ) -> None:
        self._page_size = page_size
        self.api_base = api_base or STRIPE_API
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        """Raises ConfigError when no API key is set."""
        if settings.stripe.api_key is None:
            raise ConfigError("stripe.api_key", "required: set CSONBOARD_STRIPE_API_KEY")
        return cls(
            settings.stripe.api_key.get_secret_value(),
            api_base=settings.stripe.api_base or None,
            max_network_retries=settings.stripe.max_network_retries,
            timeout=settings.stripe.timeout_seconds,
        )

    def checkout_session(self, session_id: str) -> CheckoutSession:
        """The session as Stripe has it now, with every line item (all pages)."""
        with self._calling(f"retrieve checkout session {session_id}"):
            session = self._client.v1.checkout.sessions.retrieve(session_id)
            items = self._client.v1.checkout.sessions.line_items.list(
                session_id, {"limit": self._page_size}
            )
            line_items = tuple(records.line_item(item) for item in items.auto_paging_iter())
        return records.checkout_session(session, line_items)

    def create_customer(
        self, buyer: Buyer, *, metadata: Mapping[str, str], idempotency_key: str
    ) -> str:
        """Create a customer for a guest checkout; returns its id. The same key
        returns the same customer for at least 24 hours."""
        params: dict[str, Any] = {"metadata": dict(metadata)}
        for name in ("email", "name", "phone"):
            if getattr(buyer, name):
                params[name] = getattr(buyer, name)
        if buyer.address:
            params["address"] = {k: v for k, v in vars(buyer.address).items() if v}
        with self._calling("create customer"):
            customer = self._client.v1.customers.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        return str(customer.id)

    def update_customer_metadata(
        self, customer_id: str, metadata: Mapping[str, str], *, idempotency_key: str
    ) -> None:
        """Merge ``metadata`` into the customer's metadata."""
        with self._calling(f"update customer {customer_id}"):
            self._client.v1.customers.update(
                customer_id, {"metadata": dict(metadata)}, {"idempotency_key": idempotency_key}
            )

    def event_body(self, event_id: str) -> bytes:
        """An event's JSON exactly as the API returned it (the last 30 days only;
        older ones are StripeRefused with HTTP 404)."""
        with self._calling(f"retrieve event {event_id}"):
            return self._event_json(event_id)

    def subscription(self, subscription_id: str) -> Subscription:
        """The subscription's current state (status, cancellation, items)."""
        with self._calling(f"retrieve subscription {subscription_id}"):
            return records.subscription(self._client.v1.subscriptions.retrieve(subscription_id))

    def sessions_of_subscription(self, subscription_id: str) -> list[str]:
        """Ids of the Checkout Sessions that created this subscription (none for
        one made in the Dashboard or by the API)."""
        with self._calling(f"list checkout sessions of {subscription_id}"):
            found = self._client.v1.checkout.sessions.list(
                {"subscription": subscription_id, "limit": 10}
            )
            return [session.id for session in found.data]

    def customer_metadata(self, customer_id: str) -> dict[str, str]:
        with self._calling(f"retrieve customer {customer_id}"):
            return plain(field(self._client.v1.customers.retrieve(customer_id), "metadata"))

    # -- operator reads (replay, reconcile, plans check) ------------------------------
    #
    # Failure policy as above, plus: a key Stripe refuses (401) or that lacks the
    # permission (403) is a ConfigError naming stripe.api_key, and "no such
    # object" (404) is None where the method says so, for the caller to report.

    def event_body_if_kept(self, event_id: str) -> bytes | None:
        """An event's JSON as the API returns it, or None when Stripe has no such
        event: a wrong id, or an event older than the 30 days Stripe keeps them."""
        return self._unless_missing(
            f"retrieve event {event_id}", lambda: self._event_json(event_id)
        )

    def paid_sessions(self, since: datetime) -> list[SessionSummary]:
        """Complete Checkout Sessions created at or after ``since`` that are paid
        or need no payment, newest first (all pages). A complete session without
        ``payment_status`` (API versions before 2020-08-27) counts as paid, as in
        the onboarding. Setup-mode sessions buy nothing and are left out."""
        params: dict[str, Any] = {
            "created": {"gte": int(since.timestamp())},
            "status": "complete",
            "limit": self._page_size,
        }
        with self._reading("list checkout sessions"):
            page = self._client.v1.checkout.sessions.list(params)  # type: ignore[arg-type]
            found = [records.session_summary(session) for session in page.auto_paging_iter()]
        return [
            s
            for s in found
            if s.payment_status in (None, "paid", "no_payment_required") and s.mode != "setup"
        ]

    def price(self, price_id: str) -> PriceSummary | None:
        """The price, or None when Stripe has no such price."""
        return self._unless_missing(
            f"retrieve price {price_id}",
            lambda: records.price_summary(self._client.v1.prices.retrieve(price_id)),
        )

    def prices_by_lookup_key(self, lookup_keys: Sequence[str]) -> dict[str, list[PriceSummary]]:
        """Every price (active or archived) holding each lookup key; a key no
        price holds maps to an empty list. Asks 10 keys at a time (Stripe's limit)."""
        found: dict[str, list[PriceSummary]] = {key: [] for key in lookup_keys}
        keys = list(found)
        for start in range(0, len(keys), 10):
            batch = keys[start : start + 10]
            params: dict[str, Any] = {"lookup_keys": batch, "limit": self._page_size}
            with self._reading("list prices by lookup key"):
                page = self._client.v1.prices.list(params)  # type: ignore[arg-type]
                for price in page.auto_paging_iter():
                    summary = records.price_summary(price)
                    if summary.lookup_key in found:
                        found[summary.lookup_key].append(summary)
        return found

    def product(self, product_id: str) -> ProductSummary | None:
        """The product, or None when Stripe has no such product."""
        return self._unless_missing(
            f"retrieve product {product_id}",
            lambda: records.product_summary(self._client.v1.products.retrieve(product_id)),
        )

    # -- thin events -------------------------------------------------------------------

    def v2_event(self, event_id: str) -> dict[str, Any]:
        """The whole v2 event behind a thin notification (``GET /v2/core/events/{id}``),
        as plain JSON: its ``snapshot_event``, ``related_object`` and ``data``."""
        with self._calling(f"retrieve v2 event {event_id}"):
            event = self._client.v2.core.events.retrieve(event_id)
        found: dict[str, Any] = event.to_dict()
        return found

    def session_summary(self, session_id: str) -> SessionSummary | None:
        """The session's state (no line items), or None when Stripe has no such session."""
        return self._unless_missing(
            f"retrieve checkout session {session_id}",
            lambda: records.session_summary(self._client.v1.checkout.sessions.retrieve(session_id)),
        )

    def invoice_subject(self, invoice_id: str) -> tuple[str | None, str | None] | None:
        """(subscription, customer) an invoice bills, either invoice shape; None
        when Stripe has no such invoice."""

        def fetch() -> tuple[str | None, str | None]:
            invoice = self._client.v1.invoices.retrieve(invoice_id)
            return (
                records.subscription_of_invoice(invoice.to_dict()),
                id_of(field(invoice, "customer")),
            )

        return self._unless_missing(f"retrieve invoice {invoice_id}", fetch)

    # -- webhook endpoints (csonboard stripe setup, doctor) ---------------------------
    #
    # Failure policy as for the operator reads. The signing secret is returned by
    # create_webhook_endpoint, once, and is never logged, kept or put in an error.

    def list_webhook_endpoints(self) -> list[records.WebhookEndpoint]:
        """Every webhook endpoint of the account (all pages), newest first."""
        with self._reading("list webhook endpoints"):
            page = self._client.v1.webhook_endpoints.list({"limit": self._page_size})
            return [records.webhook_endpoint(e) for e in page.auto_paging_iter()]

    def webhook_endpoint(self, endpoint_id: str) -> records.WebhookEndpoint | None:
        """The endpoint as it is now, or None when Stripe has no such endpoint."""
        return self._unless_missing(
            f"retrieve webhook endpoint {endpoint_id}",
            lambda: records.webhook_endpoint(
                self._client.v1.webhook_endpoints.retrieve(endpoint_id)
            ),
        )

    def create_webhook_endpoint(
        self,
        url: str,
        events: Sequence[str],
        api_version: str,
        *,
        description: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> tuple[records.WebhookEndpoint, str]:
        """Create an endpoint sending ``events`` to ``url``, rendered in
        ``api_version``; returns it and its signing secret, which Stripe shows
        in this answer only. The same key (with the same parameters) returns the
        same endpoint and secret for at least 24 hours, even if it was deleted
        meanwhile: check that it still exists."""
        params: dict[str, Any] = {
            "url": url,
            "enabled_events": list(events),
            "api_version": api_version,
            "description": description,
            "metadata": dict(metadata),
        }
        with self._reading("create webhook endpoint"):
            created = self._client.v1.webhook_endpoints.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        endpoint = records.webhook_endpoint(created)
        secret = field(created, "secret")
        if not isinstance(secret, str) or not secret:
            raise PermanentError(
                f"Stripe created webhook endpoint {endpoint.id} but sent no signing secret: "
                "reveal or roll it in the Dashboard (Webhooks, the endpoint, Signing secret)"
            )
        return endpoint, secret

    def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> records.WebhookEndpoint:
        """Set the endpoint's event types and/or enable (or disable) it; None
        leaves a setting as it is. Stripe cannot change an endpoint's
        ``api_version``: that takes a new endpoint."""
        params: dict[str, Any] = {}
        if events is not None:
            params["enabled_events"] = list(events)
        if enabled is not None:
            params["disabled"] = not enabled
        options: dict[str, Any] = {"idempotency_key": idempotency_key} if idempotency_key else {}
        with self._reading(f"update webhook endpoint {endpoint_id}"):
            updated = self._client.v1.webhook_endpoints.update(
                endpoint_id,
                params,  # type: ignore[arg-type]
                options,  # type: ignore[arg-type]
            )
        return records.webhook_endpoint(updated)

    def undelivered_events(
        self, since: datetime, types: Sequence[str], *, until: datetime | None = None
    ) -> list[records.EventSummary]:
        """Events of ``types`` created in [since, until) that some webhook endpoint
        has not acknowledged (``delivery_success=false``: still being retried, or
        given up), newest first, all pages. Asks 20 types at a time (Stripe's limit)."""
        created: dict[str, int] = {"gte": int(since.timestamp())}
        if until is not None:
            created["lt"] = int(until.timestamp())
        found: dict[str, records.EventSummary] = {}
        wanted = list(dict.fromkeys(types))
        for start in range(0, len(wanted), 20):
            params: dict[str, Any] = {
                "delivery_success": False,
                "created": created,
                "types": wanted[start : start + 20],
                "limit": self._page_size,
            }
            with self._reading("list undelivered events"):
                page = self._client.v1.events.list(params)  # type: ignore[arg-type]
                for event in page.auto_paging_iter():
                    found[str(event.id)] = records.event_summary(event)
        return sorted(found.values(), key=lambda e: (e.created, e.id), reverse=True)

    # -- usage: Billing Meters -------------------------------------------------------

    def send_meter_event(
        self,
        event_name: str,
        *,
        customer_id: str,
        value: str,
        identifier: str,
        timestamp: datetime,
    ) -> bool:
        """Report ``value`` (a whole number, as text) of ``customer_id``'s usage at
        ``timestamp`` to the meter taking ``event_name``. True when Stripe took
        it now; False when it refused the ``identifier`` as one it already has
        (an earlier attempt arrived: nothing to do). Stripe remembers an
        identifier for at least 24 hours; a repeat after that counts again."""
        params: dict[str, Any] = {
            "event_name": event_name,
            "identifier": identifier,
            "payload": {"stripe_customer_id": customer_id, "value": value},
            "timestamp": int(timestamp.timestamp()),
        }
        try:
            with self._calling(f"send meter event {identifier}"):
                self._client.v1.billing.meter_events.create(params)  # type: ignore[arg-type]
        except StripeRefused as exc:
            cause = exc.__cause__
            message = cause.user_message if isinstance(cause, stripe.StripeError) else None
            if (message or "").startswith(_DUPLICATE_IDENTIFIER):
                return False
            raise
        return True

    def meters(self) -> list[MeterSummary]:
        """Every Billing Meter of the account, active or not (all pages)."""
        with self._reading("list billing meters"):
            page = self._client.v1.billing.meters.list({"limit": self._page_size})
            return [records.meter_summary(meter) for meter in page.auto_paging_iter()]

    # -- the buyer's status page: where to pay ------------------------------------------
    #
    # Read by the receiver while it renders the page of a purchase that is out of
    # service for non-payment. One try, no network retries: the page does without
    # the link rather than keep the buyer waiting. Failure policy as for the worker
    # calls (StripeUnavailable, StripeRefused, ConfigError); the caller tolerates all.

    def open_invoice_url(self, subscription_id: str) -> str | None:
        """The address of Stripe's hosted invoice page (``hosted_invoice_url``)
        for the subscription's newest open invoice, where the customer pays it;
        None when it has no open invoice or Stripe gives no page for it. The
        address is Stripe's to hand to the customer; only http(s) ones are
        returned."""
        params: dict[str, Any] = {"subscription": subscription_id, "status": "open", "limit": 1}
        with self._calling(f"list open invoices of subscription {subscription_id}"):
            page = self._client.v1.invoices.list(
                params,  # type: ignore[arg-type]
                {"max_network_retries": 0},
            )
        for invoice in page.data:
            url = field(invoice, "hosted_invoice_url")
            if isinstance(url, str) and url.startswith(("https://", "http://")):
                return url
        return None

    # -- guest customers: looking before creating (ensure_stripe_customer) -------------
    #
    # Worker calls, failure policy as for the calls above, plus: "no such
    # customer" (404) is None. A deleted customer is not an error: Stripe still
    # answers its stub, read here as ``deleted``.

    def customer(self, customer_id: str) -> CustomerSummary | None:
        """The customer as Stripe has it now (``deleted`` for the stub Stripe
        keeps of a deleted one), or None when Stripe has no such customer
        (a wrong id, or one of the other mode)."""
        try:
            with self._calling(f"retrieve customer {customer_id}"):
                found = self._client.v1.customers.retrieve(customer_id)
        except StripeRefused as exc:
            cause = exc.__cause__
            if isinstance(cause, stripe.InvalidRequestError) and cause.http_status == 404:
                return None
            raise
        return _customer_summary(found)

    def customers_with_email(self, email: str) -> list[CustomerSummary]:
        """The customers whose email is exactly ``email`` (Stripe compares it
        case-sensitively), newest first, all pages; deleted ones are not listed."""
        params: dict[str, Any] = {"email": email, "limit": self._page_size}
        with self._calling("list customers by email"):
            page = self._client.v1.customers.list(params)  # type: ignore[arg-type]
            return [_customer_summary(customer) for customer in page.auto_paging_iter()]

    # -- drift: the whole account in pages -------------------------------------------------

    def all_subscriptions(self, customer_id: str | None = None) -> list[Subscription]:
        """Every subscription of the account (or of one customer), whatever its
        status (``status=all``: without it Stripe leaves out the canceled ones,
        exactly those whose ``customer.subscription.deleted`` may have been
        lost), newest first, all pages."""
        params: dict[str, Any] = {"status": "all", "limit": self._page_size}
        if customer_id is not None:
            params["customer"] = customer_id
        with self._reading("list subscriptions"):
            page = self._client.v1.subscriptions.list(params)  # type: ignore[arg-type]
            return [records.subscription(sub) for sub in page.auto_paging_iter()]

    def subscription_if_exists(self, subscription_id: str) -> Subscription | None:
        """:meth:`subscription`, or None when Stripe has no such subscription."""
        return self._unless_missing(
            f"retrieve subscription {subscription_id}",
            lambda: records.subscription(self._client.v1.subscriptions.retrieve(subscription_id)),
        )

    def live_customer_ids(self) -> set[str]:
        """The ids of every customer the account has (deleted ones are not
        listed), all pages."""
        with self._reading("list customers"):
            page = self._client.v1.customers.list({"limit": self._page_size})
            return {customer.id for customer in page.auto_paging_iter()}

    # -- money going back: refunds, disputes, fraud warnings -----------------------------
    #
    # Worker calls, failure policy as for the calls above; "no such object" (404)
    # is None. What an event says is never trusted: each is re-read here.

    def payment(self, charge_id: str) -> money.Payment | None:
        """The charge with its newest dispute and newest early fraud warning."""

        def fetch() -> money.Payment:
            charge = self._client.v1.charges.retrieve(charge_id)
            disputes = self._client.v1.disputes.list({"charge": charge_id, "limit": 1})
            warnings = self._client.v1.radar.early_fraud_warnings.list(
                {"charge": charge_id, "limit": 1}
            )
            return money.payment(
                charge,
                disputes.data[0] if disputes.data else None,
                warnings.data[0] if warnings.data else None,
            )

        return self._unless_missing(f"retrieve charge {charge_id}", fetch)

    def charge_of(self, object_id: str) -> str | None:
        """The charge a refund (``re_``/``pyr_``), dispute (``du_``/``dp_``) or early
        fraud warning (``issfr_``) is about; None when Stripe has no such object."""

        def fetch() -> str | None:
            if object_id.startswith(("du_", "dp_")):
                found: Any = self._client.v1.disputes.retrieve(object_id)
            elif object_id.startswith("issfr_"):
                found = self._client.v1.radar.early_fraud_warnings.retrieve(object_id)
            else:
                found = self._client.v1.refunds.retrieve(object_id)
            return id_of(field(found, "charge"))

        return self._unless_missing(f"retrieve {object_id}", fetch)

    def purchase_of_payment(self, payment_intent: str) -> tuple[str | None, str | None]:
        """What a PaymentIntent paid for: (the Checkout Session in payment mode,
        None) or (None, the subscription whose invoice it paid); (None, None) for
        anything else."""
        with self._calling(f"trace payment {payment_intent}"):
            sessions = self._client.v1.checkout.sessions.list(
                {"payment_intent": payment_intent, "limit": 1}
            )
            if sessions.data:
                return str(sessions.data[0].id), None
            payments = self._client.v1.invoice_payments.list(
                {"payment": {"type": "payment_intent", "payment_intent": payment_intent}}
            )
            invoices = [id_of(field(p, "invoice")) for p in payments.data]
        for invoice_id in filter(None, invoices):
            subject = self.invoice_subject(invoice_id)
            if subject is not None and subject[0] is not None:
                return None, subject[0]
        return None, None

    def refund(self, charge_id: str, *, reason: str, idempotency_key: str) -> str:
        """Refund what is left of the charge; returns the refund's id. The same
        key returns the same refund for at least 24 hours."""
        with self._calling(f"refund charge {charge_id}"):
            refund = self._client.v1.refunds.create(
                {
                    "charge": charge_id,
                    "reason": reason,
                    "metadata": {"csonboard": "refund"},
                },
                {"idempotency_key": idempotency_key},
            )
        return str(refund.id)

    def payment_of_session(self, session_id: str) -> str | None:
        """The PaymentIntent that paid a Checkout Session: its own in payment
        mode, its first invoice's in subscription mode; None if nothing was paid."""
        with self._calling(f"trace the payment of {session_id}"):
            session = self._client.v1.checkout.sessions.retrieve(session_id)
            intent = id_of(field(session, "payment_intent"))
            invoice = id_of(field(session, "invoice"))
            if intent is not None or invoice is None:
                return intent
            payments = self._client.v1.invoice_payments.list({"invoice": invoice})
            for invoice_payment in payments.data:
                paid_with = field(invoice_payment, "payment")
                found = id_of(field(paid_with, "payment_intent")) if paid_with else None
                if found is not None and field(invoice_payment, "status") == "paid":
                    return found
        return None

    def refund_payment(
        self, payment_intent: str, *, reason: str, idempotency_key: str
    ) -> tuple[str | None, money.Payment | None]:
        """Refund what is left of a PaymentIntent's charge: (the refund's id,
        or None when nothing was left to refund, also when Stripe refused
        because another refund had just taken what was left; the charge as
        read). The same key returns the same refund for at least 24 hours;
        after that, a charge refunded in full is the proof it was done."""
        with self._calling(f"retrieve payment {payment_intent}"):
            intent = self._client.v1.payment_intents.retrieve(payment_intent)
        charge_id = id_of(field(intent, "latest_charge"))
        charge = self.payment(charge_id) if charge_id else None
        if charge is None or charge.refunded_in_full:
            return None, charge
        try:
            with self._calling(f"refund payment {payment_intent}"):
                refund = self._client.v1.refunds.create(
                    {
                        "payment_intent": payment_intent,
                        "reason": reason,
                        "metadata": {"csonboard": "provision-or-refund"},
                    },
                    {"idempotency_key": idempotency_key},
                )
        except StripeRefused:
            again = self.payment(charge.charge_id)
            if again is not None and again.refunded_in_full:
                return None, again  # refunded meanwhile (another attempt, the Dashboard)
            raise
        return str(refund.id), charge

    def submit_dispute_evidence(
        self, dispute_id: str, evidence: Mapping[str, str], *, idempotency_key: str
    ) -> None:
        """Stage ``evidence`` (text fields) on the dispute and submit it."""
        with self._calling(f"submit evidence for {dispute_id}"):
            self._client.v1.disputes.update(
                dispute_id,
                {"evidence": dict(evidence), "submit": True},  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        """Cancel now (no proration, no final invoice); a canceled one is left."""
        current = self.subscription(subscription_id)
        if current.status in ("canceled", "incomplete_expired"):
            return
        with self._calling(f"cancel subscription {subscription_id}"):
            self._client.v1.subscriptions.cancel(
                subscription_id, {}, {"idempotency_key": idempotency_key}
            )

    # -- plumbing --------------------------------------------------------------------

    def _event_json(self, event_id: str) -> bytes:
        event = self._client.v1.events.retrieve(event_id)
        response = event.last_response
        return response.body.encode("utf-8") if response else str(event).encode("utf-8")

    def _calling(self, what: str) -> AbstractContextManager[None]:
        return calling(what, self.api_base)

    def _reading(self, what: str) -> AbstractContextManager[None]:
        return reading(what, self.api_base)

    def _unless_missing(self, what: str, fetch: Callable[[], _T]) -> _T | None:
        return unless_missing(what, fetch, self.api_base)


@dataclass(frozen=True)
class CustomerSummary:
    """What ``ensure_stripe_customer`` checks of a customer before reusing it."""

    id: str
    email: str | None
    deleted: bool
    metadata: Mapping[str, str]


def _customer_summary(customer: Any) -> CustomerSummary:
    deleted = field(customer, "deleted") is True
    return CustomerSummary(
        id=str(customer.id),
        email=None if deleted else field(customer, "email"),
        deleted=deleted,
        metadata={} if deleted else plain(field(customer, "metadata")),
    )
