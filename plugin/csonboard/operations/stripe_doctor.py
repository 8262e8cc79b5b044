"""``csonboard stripe doctor``: is the live Stripe account sending csonboard its events?

Each check is a :class:`Finding` (ok, warning or problem) with one line of text:

- the key: its mode (from its prefix) against ``stripe.mode``; a restricted key
  is noted;
- the endpoints that send to csonboard: those with the given URL, or else every
  endpoint sent a type csonboard handles (or ``*``). None is a problem. For each:
  enabled; its URL (https in live mode; the receiver's path, else a warning); its
  event types cover :data:`~csonboard.routes.HANDLED` (missing ones are a
  problem, ``*`` too -- every event is sent and stored for nothing -- and extra
  ones a warning); its API version is the pinned one (a problem otherwise, the
  account default (null) included: only a new endpoint can change it). An
  endpoint superseded by an enabled one with the pinned version at the same URL
  (a roll-over) is only noted: ok when disabled, a warning while it still sends;
- deliveries: events of the handled types from the last three days that some
  endpoint has not acknowledged (Stripe's ``delivery_success=false``) are a
  problem. Events younger than :data:`GRACE` are left out: they may be on
  their way.

Failure policy: reads only. A refused key is a ConfigError, an outage
StripeUnavailable, as the gateway raises them; findings never show the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from csonboard.operations.stripe_setup import PINNED, RECEIVER_PATH
from csonboard.routes import HANDLED
from csonboard.stripe_api import StripeGateway
from csonboard.stripe_api.records import WebhookEndpoint

Level = Literal["ok", "warning", "problem"]
RETRY_WINDOW = timedelta(days=3)
"""How long Stripe retries a delivery (live mode)."""
GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Finding:
    level: Level
    subject: str
    """What was checked: ``key``, ``endpoints``, ``deliveries`` or an endpoint id."""
    text: str

    def __str__(self) -> str:
        return f"{self.level:<8} {self.subject}: {self.text}"


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    endpoints: tuple[WebhookEndpoint, ...]
    """The endpoints checked."""

    def count(self, level: Level) -> int:
        return sum(1 for f in self.findings if f.level == level)


def key_findings(key: str, *, mode_setting: str, livemode: bool) -> list[Finding]:
    """The key's kind and mode, from its prefix only (the key is never shown)."""
    mode = "live" if livemode else "test"
    parts = key.split("_")
    kind, key_mode = parts[0], parts[1] if len(parts) > 2 else ""
    if kind not in ("sk", "rk") or key_mode not in ("test", "live"):
        return [
            Finding(
                "warning",
                "key",
                f"its prefix tells neither test nor live; stripe.mode = {mode_setting} decides: "
                f"{mode} mode",
            )
        ]
    prefix = f"{kind}_{key_mode}_"
    name = "restricted key" if kind == "rk" else "secret key"
    if key_mode != mode:
        return [Finding("problem", "key", f"a {key_mode} {name} ({prefix}...) in {mode} mode")]
    source = "from the key" if mode_setting == "auto" else f"as stripe.mode = {mode_setting} says"
    found = [Finding("ok", "key", f"a {mode}-mode {name} ({prefix}...): {mode} mode, {source}")]
    if kind == "rk":
        found.append(
            Finding(
                "ok",
                "key",
                "restricted: each command needs its permissions (this one reads Webhook "
                "Endpoints and Events; setup writes Webhook Endpoints); a missing one stops "
                "the command with a configuration error naming the call",
            )
        )
    return found


def diagnose(
    gateway: StripeGateway,
    *,
    livemode: bool,
    now: datetime,
    url: str | None = None,
    api_version: str = PINNED,
    events: Sequence[str] = HANDLED,
) -> Diagnosis:
    """Check the account's endpoints and recent deliveries (reads only)."""
    endpoints = tuple(
        e
        for e in gateway.list_webhook_endpoints()
        if (e.url == url if url else "*" in e.enabled_events or set(e.enabled_events) & set(events))
    )
    findings: list[Finding] = []
    if not endpoints:
        where = url or "https://<your-host>/webhooks/stripe"
        findings.append(
            Finding(
                "problem",
                "endpoints",
                f"no endpoint sends csonboard's events{f' to {url}' if url else ''}; "
                f"run csonboard stripe setup --url {where}",
            )
        )
    for endpoint in endpoints:
        successor = _successor(endpoint, endpoints, api_version)
        if successor is not None:
            findings.append(_superseded(endpoint, successor))
            continue
        findings += _endpoint_findings(endpoint, livemode, api_version, events)
    findings.append(_deliveries(gateway, now, events))
    return Diagnosis(tuple(findings), endpoints)


def _successor(
    endpoint: WebhookEndpoint, endpoints: Sequence[WebhookEndpoint], api_version: str
) -> WebhookEndpoint | None:
    """An enabled endpoint with the pinned version at the same URL that takes
    over from ``endpoint`` (one with another version, or a disabled one)."""
    if endpoint.enabled and endpoint.api_version == api_version:
        return None
    for other in endpoints:
        if (
            other is not endpoint
            and other.url == endpoint.url
            and other.enabled
            and other.api_version == api_version
        ):
            return other
    return None


def _superseded(endpoint: WebhookEndpoint, successor: WebhookEndpoint) -> Finding:
    if not endpoint.enabled:
        return Finding(
            "ok",
            endpoint.id,
            f"disabled; {successor.id} sends to {endpoint.url} in its place (delete it when "
            "you like)",
        )
    return Finding(
        "warning",
        endpoint.id,
        f"still sends to {endpoint.url} (API version {endpoint.api_version or 'account default'})"
        f" next to {successor.id}: every event arrives twice (harmless, stored once); disable "
        f"or delete it once the receivers verify {successor.id}'s secret",
    )


def _endpoint_findings(
    endpoint: WebhookEndpoint, livemode: bool, api_version: str, events: Sequence[str]
) -> list[Finding]:
    fix = f"csonboard stripe setup --url {endpoint.url}"
    found = []
    if endpoint.enabled:
        found.append(Finding("ok", endpoint.id, f"enabled, sends to {endpoint.url}"))
    else:
        message = f"disabled ({endpoint.url}): Stripe sends it nothing; `{fix}` enables it"
        found.append(Finding("problem", endpoint.id, message))
    found.append(_url(endpoint, livemode))
    found.append(_events(endpoint, events, fix))
    if endpoint.api_version == api_version:
        found.append(Finding("ok", endpoint.id, f"API version {api_version}"))
    else:
        version = endpoint.api_version or "null: the account's default, which can change"
        found.append(
            Finding(
                "problem",
                endpoint.id,
                f"API version {version}, not {api_version} as csonboard's Stripe library; "
                f"Stripe cannot change it: `{fix}` creates a new endpoint and says how to roll "
                "over",
            )
        )
    return found


def _url(endpoint: WebhookEndpoint, livemode: bool) -> Finding:
    parts = urlsplit(endpoint.url)
    if livemode and parts.scheme != "https":
        return Finding("problem", endpoint.id, f"{endpoint.url} is not https (live mode)")
    if parts.path != RECEIVER_PATH:
        return Finding(
            "warning",
            endpoint.id,
            f"the path is {parts.path or '/'!r}, not {RECEIVER_PATH!r} where the receiver "
            "listens (fine only behind a proxy that maps it there)",
        )
    return Finding("ok", endpoint.id, f"URL path {RECEIVER_PATH}")


def _events(endpoint: WebhookEndpoint, events: Sequence[str], fix: str) -> Finding:
    have = set(endpoint.enabled_events)
    if "*" in have:
        return Finding(
            "problem",
            endpoint.id,
            f"is sent every event type (*): each is delivered and stored for nothing; `{fix}` "
            f"narrows it to the {len(events)} csonboard handles",
        )
    missing = [e for e in events if e not in have]
    if missing:
        return Finding(
            "problem",
            endpoint.id,
            f"is not sent {len(missing)} event type(s) csonboard handles: {', '.join(missing)}; "
            f"`{fix}` adds them",
        )
    extra = sorted(have - set(events))
    if extra:
        return Finding(
            "warning",
            endpoint.id,
            f"is also sent {len(extra)} type(s) csonboard ignores (stored for nothing): "
            f"{', '.join(extra)}",
        )
    return Finding(
        "ok", endpoint.id, f"is sent exactly the {len(events)} event types csonboard handles"
    )


def _deliveries(gateway: StripeGateway, now: datetime, events: Sequence[str]) -> Finding:
    undelivered = gateway.undelivered_events(now - RETRY_WINDOW, events, until=now - GRACE)
    if not undelivered:
        return Finding(
            "ok",
            "deliveries",
            "every event of csonboard's types from the last 3 days was acknowledged",
        )
    oldest = min(undelivered, key=lambda e: (e.created, e.id))
    return Finding(
        "problem",
        "deliveries",
        f"{len(undelivered)} event(s) of csonboard's types from the last 3 days not acknowledged "
        f"by some endpoint; oldest {oldest.id} {oldest.type} at "
        f"{oldest.created:%Y-%m-%d %H:%M:%S} UTC. Stripe retries for 3 days; "
        "`csonboard reconcile` recovers purchases whose webhook never arrived",
    )
