"""``csonboard stripe setup``: the webhook endpoint that sends csonboard its events.

The endpoint for a URL (matched exactly) must send exactly the event types
csonboard acts on (:data:`csonboard.routes.HANDLED`), rendered in the API
version stripe-python pins (``stripe.api_version``), and be enabled.
:func:`plan_setup` reads the account and says what that takes;
:func:`apply_setup` does it:

- no endpoint for the URL: create one (marked ``metadata.csonboard=webhook``);
  its signing secret comes back this once;
- one with the pinned version: set its event types and enable it where they
  differ. Its secret is not shown (Stripe shows a secret only at creation);
- only endpoints with another version: Stripe cannot change an endpoint's
  version, so create a new one next to them (a roll-over: the caller prints
  the steps). A later run finds the new one and leaves the old ones alone.

Creating is idempotent: the key is derived from the mode, URL, version and
event types, so two runs at once (or one retried) within Stripe's 24 hours of
key memory get one endpoint and the same secret. Stripe replays a remembered
creation even when that endpoint has been deleted since, so every creation is
checked against the endpoint as it is now, and made anew (under a key naming
the gone endpoint) when it no longer sends to the URL.

Failure policy: :func:`check_url` raises ValueError for a URL Stripe would
refuse (the CLI: exit 2); Stripe errors propagate as the gateway raises them (a
refused key is a ConfigError). :func:`plan_setup` only reads. The secret is
only ever in :attr:`SetupResult.secret`: never logged, stored or put in an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

import stripe

from csonboard.errors import PermanentError
from csonboard.routes import HANDLED
from csonboard.stripe_api import StripeGateway
from csonboard.stripe_api.records import WebhookEndpoint

RECEIVER_PATH = "/webhooks/stripe"
MARK = {"csonboard": "webhook"}
DESCRIPTION = "csonboard: paid Checkouts become ComputeStacks projects (csonboard stripe setup)"
PINNED = stripe.api_version
"""The API version stripe-python (and so csonboard) is written against."""


@dataclass(frozen=True)
class SetupPlan:
    """What :func:`apply_setup` will do for ``url``."""

    url: str
    livemode: bool
    api_version: str
    events: tuple[str, ...]
    endpoint: WebhookEndpoint | None
    """The endpoint with the pinned version that is kept; None: one is created."""
    added: tuple[str, ...] = ()
    """Event types the kept endpoint is not sent yet."""
    removed: tuple[str, ...] = ()
    """Event types (or ``*``) it is sent but should not be."""
    enable: bool = False
    others: tuple[WebhookEndpoint, ...] = ()
    """Every other endpoint with this URL (another version, or a duplicate)."""

    @property
    def action(self) -> Literal["create", "update", "none"]:
        """``create``, ``update`` or ``none``."""
        if self.endpoint is None:
            return "create"
        return "update" if self.added or self.removed or self.enable else "none"

    @property
    def still_sending(self) -> tuple[WebhookEndpoint, ...]:
        """Other endpoints that are enabled: they keep sending to the URL."""
        return tuple(other for other in self.others if other.enabled)


@dataclass(frozen=True)
class SetupResult:
    plan: SetupPlan
    endpoint: WebhookEndpoint
    """The endpoint as Stripe has it after the run."""
    secret: str | None = field(default=None, repr=False)
    """The signing secret of a created endpoint (Stripe shows it only then)."""


def check_url(url: str, *, livemode: bool) -> list[str]:
    """Warnings about ``url`` as a receiver's address; ValueError if Stripe would
    refuse it (not http(s) with a host, or not https in live mode)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    if livemode and parts.scheme != "https":
        raise ValueError(f"{url!r}: live-mode endpoints must use https (Stripe refuses others)")
    if parts.path != RECEIVER_PATH:
        return [
            f"the path of {url} is {parts.path or '/'!r}, not {RECEIVER_PATH!r} where "
            "csonboard's receiver listens (fine only if a proxy maps it there)"
        ]
    return []


def plan_setup(
    gateway: StripeGateway,
    url: str,
    *,
    livemode: bool,
    api_version: str = PINNED,
    events: Sequence[str] = HANDLED,
) -> SetupPlan:
    """Read the account's endpoints and decide (one read, no writes)."""
    same_url = [e for e in gateway.list_webhook_endpoints() if e.url == url]
    wanted = tuple(events)
    pinned = [e for e in same_url if e.api_version == api_version]
    if not pinned:
        return SetupPlan(url, livemode, api_version, wanted, None, others=tuple(same_url))
    # Several with the pinned version (made by hand): keep an enabled one, ours first.
    kept = min(pinned, key=lambda e: (not e.enabled, e.metadata.get("csonboard") != "webhook"))
    return _changes(
        SetupPlan(
            url,
            livemode,
            api_version,
            wanted,
            kept,
            others=tuple(e for e in same_url if e is not kept),
        )
    )


def apply_setup(gateway: StripeGateway, plan: SetupPlan) -> SetupResult:
    """Carry ``plan`` out. Raises PermanentError if Stripe keeps answering with
    endpoints that no longer exist (it cannot, after one fresh key)."""
    if plan.endpoint is not None:
        return SetupResult(plan, _update(gateway, plan))
    replaced: list[str] = []
    for _ in range(3):
        created, secret = gateway.create_webhook_endpoint(
            plan.url,
            plan.events,
            plan.api_version,
            description=DESCRIPTION,
            metadata=MARK,
            idempotency_key=idempotency_key(plan, replaced),
        )
        current = gateway.webhook_endpoint(created.id)
        if current is not None and current.url == plan.url:
            # A replay may return an endpoint changed since it was made: set it right.
            fixed = _changes(replace(plan, endpoint=current))
            return SetupResult(plan, _update(gateway, fixed), secret)
        replaced.append(created.id)  # deleted (or moved) after an earlier run made it
    raise PermanentError(
        f"Stripe answered the creation of the webhook endpoint for {plan.url} with endpoints "
        f"that no longer send there ({', '.join(replaced)}); try again in 24 hours"
    )


def idempotency_key(plan: SetupPlan, replaced: Sequence[str] = ()) -> str:
    """The same for every run creating the same endpoint: mode, URL, version and
    event types, plus the endpoints an earlier key already made and lost."""
    identity = json.dumps(
        [
            "live" if plan.livemode else "test",
            plan.url,
            plan.api_version,
            sorted(plan.events),
            list(replaced),
        ]
    )
    return f"csonboard-webhook-endpoint-{hashlib.sha256(identity.encode()).hexdigest()[:40]}"


def _changes(plan: SetupPlan) -> SetupPlan:
    """``plan`` with what its endpoint lacks or has too much."""
    assert plan.endpoint is not None
    have = set(plan.endpoint.enabled_events)
    added = () if "*" in have else tuple(e for e in plan.events if e not in have)
    removed = tuple(sorted(have - set(plan.events)))
    return replace(plan, added=added, removed=removed, enable=not plan.endpoint.enabled)


def _update(gateway: StripeGateway, plan: SetupPlan) -> WebhookEndpoint:
    assert plan.endpoint is not None
    if plan.action == "none":
        return plan.endpoint
    return gateway.update_webhook_endpoint(
        plan.endpoint.id,
        events=plan.events if plan.added or plan.removed else None,
        enabled=True if plan.enable else None,
    )
