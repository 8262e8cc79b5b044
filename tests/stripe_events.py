"""Building Stripe events and signing them the way Stripe does (test helpers)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import stripe


def event_body(
    event_type: str = "checkout.session.completed",
    *,
    event_id: str | None = None,
    obj: dict[str, Any] | None = None,
    livemode: bool = False,
    created: int | None = None,
    **extra: Any,
) -> str:
    """A snapshot event as Stripe would send it, as the JSON text."""
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": created if created is not None else int(time.time()),
            "livemode": livemode,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {
                "object": obj
                or {"id": f"cs_test_{uuid.uuid4().hex[:16]}", "object": "checkout.session"}
            },
            **extra,
        }
    )


def sign(body: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for ``body``, made by the official library."""
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)


def signed_headers(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(body, secret, timestamp),
    }
