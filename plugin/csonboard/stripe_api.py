"""The few Stripe API calls csonboard makes, with ``stripe.StripeClient``.

Results are plain frozen dataclasses: stripe-python 16 objects are not dicts,
and nothing outside this module should care. Network retries are turned on
(``StripeClient`` has none by default); writes carry deterministic idempotency
keys chosen by the caller, so a replay repeats Stripe's first answer instead of
creating a second customer.

Failure policy: connection errors, 429 and 5xx become
:class:`~csonboard.errors.StripeUnavailable` (retried later); everything else
Stripe refuses becomes :class:`~csonboard.errors.StripeRefused`. Messages name
the call; Stripe masks keys in its own messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe

from csonboard.errors import ConfigError, StripeRefused, StripeUnavailable
from csonboard.settings import Settings


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
        with _calling(f"retrieve checkout session {session_id}"):
            session = self._client.v1.checkout.sessions.retrieve(session_id)
            items = self._client.v1.checkout.sessions.line_items.list(
                session_id, {"limit": self._page_size}
            )
            line_items = tuple(_line_item(item) for item in items.auto_paging_iter())
        details = _get(session, "customer_details")
        address = _get(details, "address")
        return CheckoutSession(
            id=session.id,
            status=_get(session, "status"),
            payment_status=_get(session, "payment_status"),
            mode=_get(session, "mode"),
            livemode=bool(_get(session, "livemode")),
            customer=_id_of(_get(session, "customer")),
            buyer=Buyer(
                email=_get(details, "email"),
                name=_get(details, "name"),
                phone=_get(details, "phone"),
                address=Address(**{f: _get(address, f) for f in Address.__dataclass_fields__})
                if address
                else None,
            ),
            currency=_get(session, "currency"),
            locale=_get(session, "locale"),
            subscription=_id_of(_get(session, "subscription")),
            metadata=_plain(_get(session, "metadata")),
            line_items=line_items,
        )

    def create_customer(
        self, buyer: Buyer, *, metadata: Mapping[str, str], idempotency_key: str
    ) -> str:
        """Create a customer for a guest checkout; returns its id. The same key
        returns the same customer for at least 24 hours."""
        params: dict[str, Any] = {"metadata": dict(metadata)}
        for field in ("email", "name", "phone"):
            if getattr(buyer, field):
                params[field] = getattr(buyer, field)
        if buyer.address:
            params["address"] = {k: v for k, v in vars(buyer.address).items() if v}
        with _calling("create customer"):
            customer = self._client.v1.customers.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        return str(customer.id)

    def update_customer_metadata(
        self, customer_id: str, metadata: Mapping[str, str], *, idempotency_key: str
    ) -> None:
        """Merge ``metadata`` into the customer's metadata."""
        with _calling(f"update customer {customer_id}"):
            self._client.v1.customers.update(
                customer_id, {"metadata": dict(metadata)}, {"idempotency_key": idempotency_key}
            )

    def event_body(self, event_id: str) -> bytes:
        """An event's JSON exactly as the API returned it (the last 30 days only;
        older ones are StripeRefused with HTTP 404)."""
        with _calling(f"retrieve event {event_id}"):
            event = self._client.v1.events.retrieve(event_id)
        response = event.last_response
        return response.body.encode("utf-8") if response else str(event).encode("utf-8")

    def subscription(self, subscription_id: str) -> Subscription:
        """The subscription's current state (status, cancellation, items)."""
        with _calling(f"retrieve subscription {subscription_id}"):
            sub = self._client.v1.subscriptions.retrieve(subscription_id)
        items = _get(sub, "items")
        return Subscription(
            id=sub.id,
            status=str(_get(sub, "status")),
            customer=_id_of(_get(sub, "customer")),
            cancel_at_period_end=bool(_get(sub, "cancel_at_period_end")),
            cancel_at=_get(sub, "cancel_at"),
            canceled_at=_get(sub, "canceled_at"),
            ended_at=_get(sub, "ended_at"),
            items=tuple(
                SubscriptionItem(
                    price_id=_get(_get(item, "price"), "id"),
                    lookup_key=_get(_get(item, "price"), "lookup_key"),
                    product_id=_id_of(_get(_get(item, "price"), "product")),
                    quantity=int(_get(item, "quantity") or 1),
                    current_period_end=_get(item, "current_period_end"),
                )
                for item in (_get(items, "data") or [])
            ),
            metadata=_plain(_get(sub, "metadata")),
        )

    def sessions_of_subscription(self, subscription_id: str) -> list[str]:
        """Ids of the Checkout Sessions that created this subscription (none for
        one made in the Dashboard or by the API)."""
        with _calling(f"list checkout sessions of {subscription_id}"):
            found = self._client.v1.checkout.sessions.list(
                {"subscription": subscription_id, "limit": 10}
            )
            return [session.id for session in found.data]

    def customer_metadata(self, customer_id: str) -> dict[str, str]:
        with _calling(f"retrieve customer {customer_id}"):
            return _plain(_get(self._client.v1.customers.retrieve(customer_id), "metadata"))

    # -- operator reads (replay, reconcile, plans check) ------------------------------
    #
    # Failure policy as above, plus: a key Stripe refuses (401) or that lacks the
    # permission (403) is a ConfigError naming stripe.api_key, and "no such
    # object" (404) is None where the method says so, for the caller to report.

    def event_body_if_kept(self, event_id: str) -> bytes | None:
        """An event's JSON as the API returns it, or None when Stripe has no such
        event: a wrong id, or an event older than the 30 days Stripe keeps them."""
        what = f"retrieve event {event_id}"

        def fetch() -> bytes:
            event = self._client.v1.events.retrieve(event_id)
            response = event.last_response
            return response.body.encode("utf-8") if response else str(event).encode("utf-8")

        return _unless_missing(what, fetch)

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
        with _reading("list checkout sessions"):
            page = self._client.v1.checkout.sessions.list(params)  # type: ignore[arg-type]
            found = [_session_summary(session) for session in page.auto_paging_iter()]
        return [
            s
            for s in found
            if s.payment_status in (None, "paid", "no_payment_required") and s.mode != "setup"
        ]

    def price(self, price_id: str) -> PriceSummary | None:
        """The price, or None when Stripe has no such price."""
        return _unless_missing(
            f"retrieve price {price_id}",
            lambda: _price_summary(self._client.v1.prices.retrieve(price_id)),
        )

    def prices_by_lookup_key(self, lookup_keys: Sequence[str]) -> dict[str, list[PriceSummary]]:
        """Every price (active or archived) holding each lookup key; a key no
        price holds maps to an empty list. Asks 10 keys at a time (Stripe's limit)."""
        found: dict[str, list[PriceSummary]] = {key: [] for key in lookup_keys}
        keys = list(found)
        for start in range(0, len(keys), 10):
            batch = keys[start : start + 10]
            params: dict[str, Any] = {"lookup_keys": batch, "limit": self._page_size}
            with _reading("list prices by lookup key"):
                page = self._client.v1.prices.list(params)  # type: ignore[arg-type]
                for price in page.auto_paging_iter():
                    summary = _price_summary(price)
                    if summary.lookup_key in found:
                        found[summary.lookup_key].append(summary)
        return found

    def product(self, product_id: str) -> ProductSummary | None:
        """The product, or None when Stripe has no such product."""

        def fetch() -> ProductSummary:
            product = self._client.v1.products.retrieve(product_id)
            return ProductSummary(
                id=str(product.id),
                name=str(_get(product, "name") or ""),
                active=bool(_get(product, "active")),
            )

        return _unless_missing(f"retrieve product {product_id}", fetch)


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


def _line_item(item: Any) -> LineItem:
    price = _get(item, "price")
    return LineItem(
        id=item.id,
        price_id=_get(price, "id"),
        lookup_key=_get(price, "lookup_key"),
        product_id=_id_of(_get(price, "product")),
        quantity=int(_get(item, "quantity") or 1),
        description=str(_get(item, "description") or ""),
    )


def _get(obj: Any, name: str) -> Any:
    """A field of a StripeObject (or None when the object or field is absent)."""
    return getattr(obj, name, None) if obj is not None else None


def _id_of(value: Any) -> str | None:
    """An id field that may come expanded into an object."""
    if value is None or isinstance(value, str):
        return value
    ident = _get(value, "id")
    return str(ident) if ident else None


def _plain(metadata: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in metadata.to_dict().items()} if metadata else {}


@contextmanager
def _calling(what: str) -> Iterator[None]:
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeUnavailable(f"Stripe {what}: {_message(exc)}") from exc
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if isinstance(exc, stripe.APIError) or status >= 500:
            raise StripeUnavailable(f"Stripe {what}: {_message(exc)}") from exc
        raise StripeRefused(f"Stripe {what}: {_message(exc)}") from exc


def _message(exc: stripe.StripeError) -> str:
    status = f"HTTP {exc.http_status}: " if exc.http_status else ""
    return f"{status}{exc.user_message or exc.__class__.__name__}"


# -- operator reads -------------------------------------------------------------------


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


def _session_summary(session: Any) -> SessionSummary:
    details = _get(session, "customer_details")
    return SessionSummary(
        id=str(session.id),
        created=datetime.fromtimestamp(int(_get(session, "created") or 0), UTC),
        status=_get(session, "status"),
        payment_status=_get(session, "payment_status"),
        mode=_get(session, "mode"),
        livemode=bool(_get(session, "livemode")),
        customer=_id_of(_get(session, "customer")),
        email=_get(details, "email") or _get(session, "customer_email"),
        amount_total=_get(session, "amount_total"),
        currency=_get(session, "currency"),
    )


def _price_summary(price: Any) -> PriceSummary:
    return PriceSummary(
        id=str(price.id),
        active=bool(_get(price, "active")),
        lookup_key=_get(price, "lookup_key"),
        product_id=_id_of(_get(price, "product")),
    )


_T = TypeVar("_T")


def _unless_missing(what: str, fetch: Callable[[], _T]) -> _T | None:
    """``fetch()``, or None when Stripe answers 404 (no such object)."""
    try:
        with _reading(what):
            return fetch()
    except StripeRefused as exc:
        cause = exc.__cause__
        if isinstance(cause, stripe.InvalidRequestError) and cause.http_status == 404:
            return None
        raise


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """``_calling``, with a refused or under-privileged key as a ConfigError."""
    with _calling(what):
        try:
            yield
        except stripe.AuthenticationError as exc:
            raise ConfigError(
                "stripe.api_key", f"Stripe refused the key ({what}): {_message(exc)}"
            ) from exc
        except stripe.PermissionError as exc:
            raise ConfigError(
                "stripe.api_key",
                f"the key may not {what}: {_message(exc)}; give the restricted key read access",
            ) from exc
