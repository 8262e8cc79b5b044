"""Billing usage rows as the controller writes them
(``SubscriptionProduct#generate_usage!`` in ``app/models/subscription_product.rb``,
prices from ``app/models/billing_resource_price.rb``), for the rows the test
controls add (``POST /_sandbox/billing_usages``).

A row names one subscription product of the user (the simulator keeps one
per user and product). ``qty`` is the billable quantity and ``qty_total`` the
full one (defaulting to ``qty``). ``rate`` is the product's price when the
product is in the user's billing plan, else 0. ``rate_period`` is the price's
term in hours (hour 1, month 730, year 8760). ``total``:

- aggregated products (bandwidth): ``rate * qty``, not prorated;
- everything else: ``rate / rate_period`` times the period in hours (rounded to
  4 places for an hourly price, 2 otherwise) times ``qty``;

rounded to 8 places. A row whose total is 0 is made processed at once
(``processed_on`` now); any other row, also one of a ``bypass_billing`` user,
starts unprocessed (the month-end ``AggregateUsageService`` is not simulated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from csonboard.sandbox.computestacks.records import UsageRecord, UserRecord
from csonboard.sandbox.computestacks.seed import ProductSeed, ResourceProductSeed
from csonboard.sandbox.computestacks.state import World

DEFAULT_PERIOD = 3 * 3600
"""The collector's cadence (``lib/clock.rb``: every 3 hours): the default period."""

TERM_HOURS = {"month": 730, "year": 8760}
"""``BillingResourcePrice#rate_term``; any other term is hourly (1)."""

KEYS = frozenset({"user_id", "product_id", "qty", "qty_total", "period_start", "period_end"})

_EIGHT_PLACES = Decimal("1e-8")

Product = ProductSeed | ResourceProductSeed


class UsageInputError(Exception):
    """A usage row the test controls refuse: ``status`` and a message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UsageInput:
    """A checked request for one row."""

    user: UserRecord
    product: Product
    qty: Decimal
    qty_total: Decimal
    period_start: float
    period_end: float


def find_product(w: World, product_id: int) -> Product | None:
    """A package or resource product by id."""
    return w.catalog.products.get(product_id) or w.catalog.resources.get(product_id)


def default_product(w: World) -> ResourceProductSeed | None:
    """The seeded bandwidth product (lowest id), if any."""
    bandwidth = (p for _, p in sorted(w.catalog.resources.items()))
    return next((p for p in bandwidth if p.resource_kind == "bandwidth"), None)


def read_usage(w: World, body: object, where: str = "") -> UsageInput:
    """Check one row's JSON object: 400 for a malformed field, 422 for an
    unknown user or product. ``where`` prefixes field names (``rows[3].``)."""
    if not isinstance(body, dict):
        raise UsageInputError(400, f"{where.rstrip('.') or 'body'} must be a JSON object")
    unknown = sorted(set(body) - KEYS)
    if unknown:
        raise UsageInputError(400, f"{where}{unknown[0]} is not a known key")
    user_id = _id(body, "user_id", where, required=True)
    user = w.users.get(user_id) if user_id is not None else None
    if user is None:
        raise UsageInputError(422, f"{where}user_id: there is no user {user_id}")
    product_id = _id(body, "product_id", where, required=False)
    product: Product | None
    if product_id is None:
        product = default_product(w)
        if product is None:
            raise UsageInputError(422, f"{where}product_id: no bandwidth product is seeded")
    else:
        product = find_product(w, product_id)
        if product is None:
            raise UsageInputError(422, f"{where}product_id: there is no product {product_id}")
    qty = _decimal(body, "qty", where)
    if qty is None:
        raise UsageInputError(400, f"{where}qty is required")
    if qty < 0:
        raise UsageInputError(400, f"{where}qty must be >= 0 (it is the billable quantity)")
    qty_total = _decimal(body, "qty_total", where)
    now = w.clock()
    end = _moment(body, "period_end", where)
    start = _moment(body, "period_start", where)
    if end is None:
        end = now
    if start is None:
        start = end - DEFAULT_PERIOD
    if start > end:
        raise UsageInputError(400, f"{where}period_start must not be after period_end")
    return UsageInput(
        user=user,
        product=product,
        qty=qty,
        qty_total=qty if qty_total is None else qty_total,
        period_start=start,
        period_end=end,
    )


def add_usage(w: World, given: UsageInput) -> UsageRecord:
    """Make and store the row for a checked request."""
    now = w.clock()
    product = given.product
    in_plan = product.id in w.catalog.groups[given.user.user_group_id].product_ids
    rate = Decimal(product.price) if in_plan else Decimal(0)
    rate_period = TERM_HOURS.get(product.term, 1)
    total = _total(product, rate, rate_period, given)
    sub = w.subscribe(given.user, product.id, min(now, given.period_start))
    processed = total.is_zero()
    row = UsageRecord(
        id=w.next_id("billing_usage"),
        user_id=given.user.id,
        subscription_product_id=sub.id,
        period_start=given.period_start,
        period_end=given.period_end,
        rate=rate,
        rate_period=rate_period,
        qty=given.qty,
        qty_total=given.qty_total,
        total=total,
        processed=processed,
        processed_on=now if processed else None,
        created_at=now,
        updated_at=now,
        external_id=sub.external_id,
    )
    w.add_usage(row)
    return row


def _total(product: Product, rate: Decimal, rate_period: int, given: UsageInput) -> Decimal:
    if isinstance(product, ResourceProductSeed) and product.is_aggregated:
        total = rate * given.qty
    elif rate.is_zero():
        total = Decimal(0)
    else:
        # BillingResourcePrice#prorated_total: hourly price x fractional hours x qty.
        places = Decimal("1e-4") if product.term == "hour" else Decimal("1e-2")
        seconds = Decimal(repr(given.period_end - given.period_start))
        hours = (seconds / 3600).quantize(places, ROUND_HALF_UP)
        total = rate / rate_period * hours * given.qty
    return total.quantize(_EIGHT_PLACES, ROUND_HALF_UP)


# -- fields ----------------------------------------------------------------------------------


def _id(body: Mapping[str, object], key: str, where: str, *, required: bool) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageInputError(400, f"{where}{key} must be an integer")
    return value


def _decimal(body: Mapping[str, object], key: str, where: str) -> Decimal | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            pass
        else:
            if number.is_finite():
                return number
    raise UsageInputError(400, f"{where}{key} must be a number or a decimal string")


def _moment(body: Mapping[str, object], key: str, where: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment.timestamp()
    problem = "must be epoch seconds or an ISO-8601 time with an offset (2024-05-15T12:20:00Z)"
    raise UsageInputError(400, f"{where}{key} {problem}")
