"""What csonboard reads from Stripe, as plain frozen dataclasses, and the parsers
that make them from stripe-python 16 objects (which are not dicts).

Every parser reads fields with :func:`field`, so a field an older API version
does not send is None rather than an AttributeError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Address:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class Buyer:
    """``customer_details`` of a session: what the buyer typed in Checkout."""

    email: str | None
    name: str | None
    phone: str | None
    address: Address | None


@dataclass(frozen=True)
class LineItem:
    id: str
    price_id: str | None
    lookup_key: str | None
    product_id: str | None
    quantity: int
    description: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    status: str | None  # open | complete | expired; absent in very old API versions
    payment_status: str | None  # paid | unpaid | no_payment_required; likewise
    mode: str | None
    livemode: bool
    customer: str | None
    buyer: Buyer
    currency: str | None
    locale: str | None
    subscription: str | None
    metadata: Mapping[str, str]
    line_items: tuple[LineItem, ...]


@dataclass(frozen=True)
class SubscriptionItem:
    price_id: str | None
    lookup_key: str | None
    product_id: str | None
    quantity: int
    current_period_end: int | None


@dataclass(frozen=True)
class Subscription:
    """A subscription as Stripe has it now (basil+ shape: periods on the items)."""

    id: str
    status: str
    customer: str | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    """When the cancellation was asked for (for one at the period end, before it)."""
    ended_at: int | None
    """When the subscription ended: service stops here."""
    items: tuple[SubscriptionItem, ...]
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class SessionSummary:
    """A Checkout Session as ``reconcile`` lists it (no line items)."""

    id: str
    created: datetime
    status: str | None
    payment_status: str | None
    mode: str | None
    livemode: bool
    customer: str | None
    email: str | None
    amount_total: int | None
    currency: str | None


@dataclass(frozen=True)
class PriceSummary:
    id: str
    active: bool
    lookup_key: str | None
    product_id: str | None


@dataclass(frozen=True)
class ProductSummary:
    id: str
    name: str
    active: bool


@dataclass(frozen=True)
class MeterSummary:
    """A Billing Meter: what its events are called and whether it takes them."""

    id: str
    event_name: str
    display_name: str
    status: str  # active | inactive
    customer_key: str
    """The payload key naming the customer (``customer_mapping.event_payload_key``)."""
    value_key: str
    """The payload key holding the value (``value_settings.event_payload_key``)."""


@dataclass(frozen=True)
class WebhookEndpoint:
    """A webhook endpoint as ``csonboard stripe setup`` and ``doctor`` see it.
    Never holds the signing secret (Stripe sends it only when creating one)."""

    id: str
    url: str
    status: str
    """``enabled`` or ``disabled``."""
    enabled_events: tuple[str, ...]
    """The event types it is sent, in Stripe's order; ``("*",)`` for all."""
    api_version: str | None
    """The version its events are rendered in; None: the account's default."""
    description: str | None
    metadata: Mapping[str, str]
    livemode: bool

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"


@dataclass(frozen=True)
class EventSummary:
    """An event as ``doctor`` lists it: no body."""

    id: str
    type: str
    created: datetime


# -- parsers --------------------------------------------------------------------------


def field(obj: Any, name: str) -> Any:
    """A field of a StripeObject (or None when the object or field is absent)."""
    return getattr(obj, name, None) if obj is not None else None


def id_of(value: Any) -> str | None:
    """An id field that may come expanded into an object."""
    if value is None or isinstance(value, str):
        return value
    ident = field(value, "id")
    return str(ident) if ident else None


def plain(metadata: Any) -> dict[str, str]:
    """``metadata`` as a plain dict of strings (empty when absent)."""
    return {str(k): str(v) for k, v in metadata.to_dict().items()} if metadata else {}


def checkout_session(session: Any, line_items: tuple[LineItem, ...]) -> CheckoutSession:
    details = field(session, "customer_details")
    address = field(details, "address")
    return CheckoutSession(
        id=session.id,
        status=field(session, "status"),
        payment_status=field(session, "payment_status"),
        mode=field(session, "mode"),
        livemode=bool(field(session, "livemode")),
        customer=id_of(field(session, "customer")),
        buyer=Buyer(
            email=field(details, "email"),
            name=field(details, "name"),
            phone=field(details, "phone"),
            address=Address(**{f: field(address, f) for f in Address.__dataclass_fields__})
            if address
            else None,
        ),
        currency=field(session, "currency"),
        locale=field(session, "locale"),
        subscription=id_of(field(session, "subscription")),
        metadata=plain(field(session, "metadata")),
        line_items=line_items,
    )


def line_item(item: Any) -> LineItem:
    price = field(item, "price")
    return LineItem(
        id=item.id,
        price_id=field(price, "id"),
        lookup_key=field(price, "lookup_key"),
        product_id=id_of(field(price, "product")),
        quantity=int(field(item, "quantity") or 1),
        description=str(field(item, "description") or ""),
    )


def subscription(sub: Any) -> Subscription:
    items = field(sub, "items")
    return Subscription(
        id=sub.id,
        status=str(field(sub, "status")),
        customer=id_of(field(sub, "customer")),
        cancel_at_period_end=bool(field(sub, "cancel_at_period_end")),
        cancel_at=field(sub, "cancel_at"),
        canceled_at=field(sub, "canceled_at"),
        ended_at=field(sub, "ended_at"),
        items=tuple(
            SubscriptionItem(
                price_id=field(field(item, "price"), "id"),
                lookup_key=field(field(item, "price"), "lookup_key"),
                product_id=id_of(field(field(item, "price"), "product")),
                quantity=int(field(item, "quantity") or 1),
                current_period_end=field(item, "current_period_end"),
            )
            for item in (field(items, "data") or [])
        ),
        metadata=plain(field(sub, "metadata")),
    )


def session_summary(session: Any) -> SessionSummary:
    details = field(session, "customer_details")
    return SessionSummary(
        id=str(session.id),
        created=datetime.fromtimestamp(int(field(session, "created") or 0), UTC),
        status=field(session, "status"),
        payment_status=field(session, "payment_status"),
        mode=field(session, "mode"),
        livemode=bool(field(session, "livemode")),
        customer=id_of(field(session, "customer")),
        email=field(details, "email") or field(session, "customer_email"),
        amount_total=field(session, "amount_total"),
        currency=field(session, "currency"),
    )


def price_summary(price: Any) -> PriceSummary:
    return PriceSummary(
        id=str(price.id),
        active=bool(field(price, "active")),
        lookup_key=field(price, "lookup_key"),
        product_id=id_of(field(price, "product")),
    )


def product_summary(product: Any) -> ProductSummary:
    return ProductSummary(
        id=str(product.id),
        name=str(field(product, "name") or ""),
        active=bool(field(product, "active")),
    )


def meter_summary(meter: Any) -> MeterSummary:
    return MeterSummary(
        id=str(meter.id),
        event_name=str(field(meter, "event_name") or ""),
        display_name=str(field(meter, "display_name") or ""),
        status=str(field(meter, "status") or ""),
        customer_key=str(field(field(meter, "customer_mapping"), "event_payload_key") or ""),
        value_key=str(field(field(meter, "value_settings"), "event_payload_key") or ""),
    )


def subscription_of_invoice(invoice: Mapping[str, object]) -> str | None:
    """The subscription an invoice (as JSON, either shape) bills, or None."""
    subscription = invoice.get("subscription")
    if not subscription:
        parent = invoice.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, dict) else None
        subscription = details.get("subscription") if isinstance(details, dict) else None
    if isinstance(subscription, dict):  # expanded
        subscription = subscription.get("id")
    return subscription if isinstance(subscription, str) else None


def webhook_endpoint(endpoint: Any) -> WebhookEndpoint:
    """The endpoint's settings; its ``secret`` (in a create answer) is not read."""
    return WebhookEndpoint(
        id=str(endpoint.id),
        url=str(field(endpoint, "url") or ""),
        status=str(field(endpoint, "status") or ""),
        enabled_events=tuple(str(e) for e in field(endpoint, "enabled_events") or ()),
        api_version=field(endpoint, "api_version"),
        description=field(endpoint, "description"),
        metadata=plain(field(endpoint, "metadata")),
        livemode=bool(field(endpoint, "livemode")),
    )


def event_summary(event: Any) -> EventSummary:
    return EventSummary(
        id=str(event.id),
        type=str(field(event, "type") or ""),
        created=datetime.fromtimestamp(int(field(event, "created") or 0), UTC),
    )
