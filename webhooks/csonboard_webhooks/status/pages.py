"""What the status pages need, built once per app by :func:`build_pages`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app

from csonboard.computestacks import ComputeStacksClient
from csonboard.ledger import Ledger
from csonboard.queue import Doorbell
from csonboard.runtime import computestacks_admin
from csonboard.settings import Settings, StatusSettings
from csonboard.stripe_api import StripeGateway
from csonboard_webhooks.status.limiter import Limiter, SlidingWindowLimiter
from csonboard_webhooks.status.links import Links

log = logging.getLogger(__name__)

EXTENSION = "csonboard_status"

STRIPE_LOOKUPS_PER_MINUTE = 60
"""Stripe reads /welcome may make per minute (per receiver process, or shared
through a Redis queue) for sessions the ledger does not know. Anyone can send
made-up session ids; without a cap they would spend the Stripe rate limit the
worker needs. A buyer past it sees "try again in a moment", and the page
retries by itself."""

INVOICE_LOOKUPS_PER_MINUTE = 60
"""Stripe reads of an open invoice's page the status pages may make per minute
(per receiver process, or shared through a Redis queue): one per view of a
purchase stopped for non-payment. Past it, the page goes without the "Pay the
open invoice" link and says whom to ask instead."""


@dataclass(frozen=True)
class StatusPages:
    settings: StatusSettings
    links: Links
    ledger: Ledger
    doorbell: Doorbell
    stripe: StripeGateway
    cs: ComputeStacksClient  # the admin credential: it mints the sign-in tokens
    control_panel: str  # ComputeStacks' base address, where the buyer signs in
    livemode: bool
    sign_ins: Limiter
    stripe_lookups: Limiter  # /welcome's reads of unknown sessions
    invoice_lookups: Limiter  # reads of a stopped purchase's open invoice
    clock: Callable[[], datetime]
    retention_days: float | None = None  # lifecycle.retention_days: when projects go

    @property
    def control_panel_origin(self) -> str:
        parts = urlsplit(self.control_panel)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def support(self) -> str:
        """How the buyer reaches a person, as a phrase that ends a sentence."""
        email = self.settings.support_email
        return f"write to {email}" if email else "reply to your payment receipt"


def build_pages(
    settings: Settings, ledger: Ledger, doorbell: Doorbell, clock: Callable[[], datetime]
) -> StatusPages | None:
    """The status pages for ``settings``, or None when ``CSONBOARD_SECRET_KEY``
    is not set (they answer 503 then). Raises ConfigError when the key is set
    but Stripe or ComputeStacks is not configured: the pages need both."""
    keys = settings.secret_keys()
    if not keys:
        log.warning(
            "the buyer's status page (/welcome, /status/...) is off: set CSONBOARD_SECRET_KEY "
            "to turn it on"
        )
        return None
    return StatusPages(
        settings=settings.status,
        links=Links(keys, token_days=settings.status.token_days, clock=clock),
        ledger=ledger,
        doorbell=doorbell,
        stripe=StripeGateway.from_settings(settings),
        cs=computestacks_admin(settings),
        control_panel=settings.cs.url.rstrip("/"),
        livemode=settings.livemode,
        sign_ins=_limiter(
            settings, doorbell, "sign-ins", settings.status.sso_per_hour, 3600.0, clock
        ),
        stripe_lookups=_limiter(
            settings, doorbell, "stripe-lookups", STRIPE_LOOKUPS_PER_MINUTE, 60.0, clock
        ),
        invoice_lookups=_limiter(
            settings, doorbell, "invoice-lookups", INVOICE_LOOKUPS_PER_MINUTE, 60.0, clock
        ),
        clock=clock,
        retention_days=settings.lifecycle.retention_days,
    )


def _limiter(
    settings: Settings,
    doorbell: Doorbell,
    name: str,
    limit: int,
    window: float,
    clock: Callable[[], datetime],
) -> Limiter:
    """In the queue's Redis when there is one (shared by every receiver
    process), else in this process's memory."""
    seconds = lambda: clock().timestamp()  # noqa: E731
    client = doorbell.redis()
    if client is None:
        return SlidingWindowLimiter(limit, window, clock=seconds)
    from csonboard_webhooks.status.shared_limiter import RedisSlidingWindowLimiter

    prefix = f"csonboard:{settings.queue_name}:limit:{name}"
    return RedisSlidingWindowLimiter(client, prefix, limit, window, clock=seconds)


def status_pages() -> StatusPages | None:
    """The current app's :class:`StatusPages` (None when switched off)."""
    found: StatusPages | None = current_app.extensions.get(EXTENSION)
    return found
