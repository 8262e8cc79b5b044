"""Test harness for the Stripe stand-in: a fake clock, a real HTTP webhook receiver that
verifies every signature with the stripe library, and a handle on a running stand-in.

A module of its own (not conftest) so tests can import its types unambiguously."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import stripe
from flask import Flask, Response, request

from csonboard.sandbox.stripe import SandboxAccount, sandbox_account

API_KEY = "sk_test_sandbox_tests"
WEBHOOK_SECRET = "whsec_sandbox_tests"
RETRY_SCHEDULE = (0.05, 0.1, 0.2)


class FakeClock:
    """Unix time that moves only when told to; starts at the real time so that
    signatures pass ``construct_event``'s 300 s tolerance."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sync()

    def sync(self) -> None:
        """Jump to the real current second."""
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Delivery:
    """One webhook request as the receiver got it, verified with the real library."""

    body: bytes
    headers: dict[str, str]
    event: stripe.Event
    answered: int


@dataclass
class Receiver:
    """A tiny webhook endpoint: verifies each request, records it, fails on demand."""

    secret: str = WEBHOOK_SECRET
    deliveries: list[Delivery] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failures_left: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def reset(self) -> None:
        """Forget everything received; answer 200 again."""
        with self.cond:
            self.deliveries.clear()
            self.rejected.clear()
            self.failures_left = 0

    def fail_next(self, count: int) -> None:
        """Answer 500 to the next ``count`` requests (after verifying them)."""
        with self.cond:
            self.failures_left = count

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Wait until at least ``count`` requests arrived; return all of them."""
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.deliveries) >= count, timeout), (
                f"expected {count} webhook requests, got {len(self.deliveries)}"
            )
            return list(self.deliveries)

    def accepted(self) -> list[Delivery]:
        """The requests answered 2xx."""
        with self.cond:
            return [d for d in self.deliveries if d.answered == 200]

    def app(self) -> Flask:
        app = Flask("webhook_receiver")

        @app.post("/webhooks/stripe")
        def receive() -> Response:
            body = request.get_data()
            signature = request.headers.get("Stripe-Signature")
            try:
                event = stripe.Webhook.construct_event(body, signature, self.secret)
            except stripe.SignatureVerificationError as exc:
                with self.cond:
                    self.rejected.append(str(exc))
                return Response("bad signature", status=400)
            with self.cond:
                status = 500 if self.failures_left > 0 else 200
                self.failures_left = max(0, self.failures_left - 1)
                self.deliveries.append(Delivery(body, dict(request.headers), event, status))
                self.cond.notify_all()
            return Response("ok" if status == 200 else "boom", status=status)

        return app


@dataclass
class Sandbox:
    """The running stand-in and the ways tests talk to it."""

    url: str
    app: Flask
    clock: FakeClock
    client: stripe.StripeClient
    http: requests.Session

    @property
    def account(self) -> SandboxAccount:
        return sandbox_account(self.app)

    def control(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
        """Call a ``/_sandbox`` route and return its JSON, asserting a 2xx."""
        response = self.http.request(method, f"{self.url}/_sandbox{path}", json=body)
        assert response.ok, response.text
        return response.json()

    def control_error(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        """POST to a ``/_sandbox`` route that is expected to refuse."""
        response = self.http.post(f"{self.url}/_sandbox{path}", json=body)
        assert not response.ok
        return response

    def client_with(self, **options: Any) -> stripe.StripeClient:
        return stripe.StripeClient(API_KEY, base_addresses={"api": self.url}, **options)

    def drain(self) -> None:
        assert self.account.wait_for_deliveries(5.0), "webhook outbox did not drain"


SandboxFactory = Callable[..., Sandbox]
"""``make_sandbox``: start a private stand-in with other ``create_app`` arguments."""
