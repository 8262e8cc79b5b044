"""Proving a webhook is Stripe's and turning it into a ledger entry.

Two steps, kept apart so that an operator-supplied event (``replay --file``),
which has no signature, goes through the same parsing:

1. :func:`verify_signature` -- the official library's HMAC check against every
   configured secret (any match passes, for secret rotation), then our own
   timestamp window, applied to old *and* future timestamps (the library only
   checks old ones).
2. :func:`parse_event` -- the body must be a Stripe event in the mode we run
   in: a snapshot (v1) event, or a thin event notification (``v2.core.event``)
   from an event destination, which the worker completes from the API before
   anything is decided. The fields the ledger indexes are copied out.

Both raise :class:`~csonboard.errors.WebhookRejected` with a message that names
the problem and is safe to return to the sender (no secrets, no body).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import stripe

from csonboard.errors import WebhookRejected
from csonboard.ledger import IncomingEvent
from csonboard.ledger.events import EventSource

THIN = "v2.core.event"
"""The ``object`` of a thin event notification."""
_MAX_ID = 255
_MAX_API_VERSION = 64
_MAX_HEADER = 4096  # a few signatures (one per secret being rotated) and a timestamp
_YEAR_10000 = 253_402_300_800  # Unix time; datetime ends before it


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int,
    now: datetime,
) -> str:
    """Check ``header`` (``Stripe-Signature``) over the raw ``body``.

    Returns the body decoded as UTF-8 (what Stripe signed). Raises
    WebhookRejected when the body is empty or not UTF-8, the header is missing
    or malformed (Stripe's is short printable ASCII; the library cannot
    compare anything else), no secret matches, or the signed timestamp is
    more than ``tolerance`` seconds away from ``now`` in either direction.
    """
    if not body:
        raise WebhookRejected("empty body: expected a Stripe event as JSON")
    if not header:
        raise WebhookRejected("missing Stripe-Signature header")
    if len(header) > _MAX_HEADER or not (header.isascii() and header.isprintable()):
        raise WebhookRejected(
            f"malformed Stripe-Signature header: expected up to {_MAX_HEADER} printable "
            "ASCII characters"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("body is not valid UTF-8") from None

    problem = "no webhook secret configured"
    for secret in secrets:
        try:
            # tolerance=None: the library would only check old timestamps, and
            # with its own clock; the window is checked below, both ways.
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
        except stripe.SignatureVerificationError as exc:
            problem = str(exc.user_message or exc).strip()
            continue
        _check_timestamp(header, tolerance, now)
        return text
    raise WebhookRejected(f"signature verification failed: {problem}")


def _check_timestamp(header: str, tolerance: int, now: datetime) -> None:
    # The library has just verified the header, so exactly this t= was signed.
    try:
        stamp = next(int(item[2:]) for item in header.split(",") if item.startswith("t="))
    except ValueError:
        raise WebhookRejected("malformed Stripe-Signature header: t= is not a Unix time") from None
    skew = stamp - now.timestamp()
    if skew < -tolerance:
        raise WebhookRejected(
            f"timestamp is {int(-skew)} s old (tolerance {tolerance} s): "
            "a replayed or long-delayed delivery"
        )
    if skew > tolerance:
        raise WebhookRejected(
            f"timestamp is {int(skew)} s in the future (tolerance {tolerance} s): "
            "check this server's clock"
        )


def parse_event(
    text: str | bytes,
    *,
    livemode: bool,
    signature: str | None,
    source: EventSource,
) -> IncomingEvent:
    """Parse an event body into what the ledger stores.

    The stored body is the exact bytes given. A thin notification is stored
    under its own id and type (``v1.checkout.session.completed``, or a v2 type),
    ``object_id`` being its ``related_object``'s id. Raises WebhookRejected for
    JSON that is not a Stripe event, missing or mistyped fields, or an event
    whose ``livemode`` differs from ours.
    """
    raw = text.encode("utf-8") if isinstance(text, str) else text
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WebhookRejected(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise WebhookRejected("body is JSON nested too deeply to be a Stripe event") from None
    if not isinstance(data, dict):
        raise WebhookRejected("body is not a JSON object")
    kind = data.get("object")
    if kind not in ("event", THIN):
        raise WebhookRejected(
            f"not a Stripe event: 'object' is {kind!r}, expected 'event' or {THIN!r}"
        )
    event_id = _str_field(data, "id")
    event_type = _str_field(data, "type")
    event_livemode = _bool_field(data, "livemode")
    if event_livemode != livemode:
        mine, theirs = ("live", "test") if livemode else ("test", "live")
        raise WebhookRejected(
            f"{theirs}-mode event sent to a {mine}-mode endpoint: check the endpoint and keys"
        )
    if kind == THIN:
        related = data.get("related_object")
        return IncomingEvent(
            id=event_id,
            type=event_type,
            api_version=None,  # thin events are unversioned
            livemode=event_livemode,
            created=_time_field(data, "created"),
            object_id=_short_str(related.get("id")) if isinstance(related, dict) else None,
            customer_id=None,
            body=raw,
            signature=signature,
            source=source,
        )
    obj = _data_object(data)
    return IncomingEvent(
        id=event_id,
        type=event_type,
        api_version=_api_version(data),
        livemode=event_livemode,
        created=datetime.fromtimestamp(_int_field(data, "created"), UTC),
        object_id=_short_str(obj.get("id")),
        customer_id=_customer_of(obj),
        body=raw,
        signature=signature,
        source=source,
    )


def _str_field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not _is_stripe_id(value):
        raise WebhookRejected(
            f"event field {name!r} must be 1 to {_MAX_ID} printable ASCII characters"
        )
    return value


def _api_version(data: dict[str, Any]) -> str | None:
    """A snapshot event's ``api_version`` (a date and a release name), or None
    when absent (events of accounts older than versioned events)."""
    value = data.get("api_version")
    if value is None:
        return None
    if not isinstance(value, str) or not _is_stripe_id(value) or len(value) > _MAX_API_VERSION:
        raise WebhookRejected(
            f"event field 'api_version' must be 1 to {_MAX_API_VERSION} printable ASCII "
            "characters, or null"
        )
    return value


def _int_field(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    # bool is an int in Python; a created of `true` is not a timestamp.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _YEAR_10000:
        raise WebhookRejected(f"event field {name!r} must be a Unix time in seconds")
    return value


def _time_field(data: dict[str, Any], name: str) -> datetime:
    """An RFC 3339 time (how v2 events give ``created``), as UTC."""
    value = data.get(name)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise WebhookRejected(f"event field {name!r} must be an RFC 3339 time with its zone")
    return moment.astimezone(UTC)


def _bool_field(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if not isinstance(value, bool):
        raise WebhookRejected(f"event field {name!r} must be true or false")
    return value


def _data_object(data: dict[str, Any]) -> dict[str, Any]:
    inner = data.get("data")
    obj = inner.get("object") if isinstance(inner, dict) else None
    if not isinstance(obj, dict):
        raise WebhookRejected("event has no 'data.object'")
    return obj


def _customer_of(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return _short_str(obj.get("id"))
    customer = obj.get("customer")
    if isinstance(customer, dict):  # expanded
        customer = customer.get("id")
    return _short_str(customer)


def _short_str(value: object) -> str | None:
    return value if isinstance(value, str) and _is_stripe_id(value) else None


def _is_stripe_id(value: str) -> bool:
    """Stripe's ids and event types are short printable ASCII; anything else
    (NUL, a lone surrogate) would reach logs and the ledger, or fail the write."""
    return 0 < len(value) <= _MAX_ID and value.isascii() and value.isprintable()
