"""A whole csonboard on the sandboxes, in one process: the ComputeStacks
simulator, the Stripe stand-in, the receiver and a worker, talking over real
HTTP on loopback, with a SQLite ledger and queue in ``data_dir``.

``csonboard demo`` runs on it, and so do the end-to-end tests.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import stripe

from csonboard.computestacks import ComputeStacksClient
from csonboard.ledger import Ledger, Onboarding
from csonboard.queue import Doorbell, open_doorbell
from csonboard.runtime import build_worker
from csonboard.sandbox.catalog import example_plans
from csonboard.sandbox.computestacks import create_app as create_cs_app
from csonboard.sandbox.server import RunningServer, start_in_thread
from csonboard.sandbox.stripe import create_app as create_stripe_app
from csonboard.sandbox.stripe import sandbox_account
from csonboard.settings import Settings, load_settings
from csonboard.worker import Worker
from csonboard_webhooks import create_app as create_receiver

STRIPE_KEY = "sk_test_sandbox"
FINISHED = ("done", "dead", "stuck", "closed")


@dataclass
class SandboxStack:
    """The running stack and handles to drive and inspect it."""

    settings: Settings
    ledger: Ledger
    worker: Worker
    cs_url: str
    stripe_url: str
    receiver_url: str
    cs_admin: ComputeStacksClient
    stripe: stripe.StripeClient
    http: requests.Session = field(default_factory=requests.Session)
    working: threading.Event = field(default_factory=threading.Event)
    burst: threading.Lock = field(default_factory=threading.Lock)

    def stop_worker(self) -> None:
        """Stop the in-process worker (as if it were shut down) once its current
        pass is over; the ledger keeps everything it had not done."""
        self.working.clear()
        with self.burst:
            pass

    def checkout(
        self,
        prices: Mapping[str, int],
        *,
        mode: str = "subscription",
        email: str | None = "ada@example.com",
        customer: str | None = None,
        **params: Any,
    ) -> str:
        """Create a Checkout Session for ``{price: quantity}``; returns its id."""
        welcome = f"{self.receiver_url}/welcome?session_id={{CHECKOUT_SESSION_ID}}"
        # Embedded Checkout returns the buyer to return_url; hosted, to success_url.
        on_page = params.get("ui_mode") in ("embedded_page", "elements")
        body: dict[str, Any] = {
            "mode": mode,
            "line_items": [{"price": price, "quantity": qty} for price, qty in prices.items()],
            "return_url" if on_page else "success_url": welcome,
            **params,
        }
        if customer:
            body["customer"] = customer
        elif email:
            body["customer_email"] = email
        return str(self.stripe.v1.checkout.sessions.create(body).id)  # type: ignore[arg-type]

    def pay(self, session_id: str, **buyer: Any) -> None:
        """Complete the session as a buyer would (name, email, payment_status, ...)."""
        self.sandbox("stripe", f"checkout/sessions/{session_id}/complete", buyer)

    def sandbox(self, which: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """POST to a stand-in's ``/_sandbox/`` controls; returns the JSON answer."""
        base = self.stripe_url if which == "stripe" else self.cs_url
        response = self.http.post(f"{base}/_sandbox/{path}", json=dict(body or {}), timeout=30)
        response.raise_for_status()
        return response.json()

    def cs_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.cs_url}/_sandbox/state", timeout=30).json()
        return state

    def wait_for(
        self, session_id: str, timeout: float = 30.0, statuses: tuple[str, ...] = FINISHED
    ) -> Onboarding:
        """Wait until the session's onboarding reaches one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            onboarding = self.ledger.onboardings.get(session_id)
            if onboarding is not None and onboarding.status in statuses:
                return onboarding
            if time.monotonic() > deadline:
                status = onboarding.status if onboarding else "absent"
                raise TimeoutError(f"onboarding {session_id} is {status} after {timeout} s")
            time.sleep(0.05)


def stack_settings(
    data_dir: Path, cs_url: str, stripe_url: str, admin: tuple[str, str], secret: str, **env: str
) -> Settings:
    """Settings for a csonboard pointed at the sandboxes."""
    return load_settings(
        None,
        {
            "CSONBOARD_DATA_DIR": str(data_dir),
            "CSONBOARD_STRIPE_API_KEY": STRIPE_KEY,
            "CSONBOARD_STRIPE_API_BASE": stripe_url,
            "CSONBOARD_STRIPE_WEBHOOK_SECRETS": secret,
            "CSONBOARD_CS_URL": cs_url,
            "CSONBOARD_CS_ADMIN_USERNAME": admin[0],
            "CSONBOARD_CS_ADMIN_PASSWORD": admin[1],
            "CSONBOARD_PLANS": str(example_plans()),
            "CSONBOARD_SECRET_KEY": secrets.token_urlsafe(32),  # the buyer's status page
            "CSONBOARD_WORKER_POLL_SECONDS": "0.2",
            "CSONBOARD_WORKER_BACKOFF_SECONDS": "0.5",
            "CSONBOARD_ONBOARDING_POLL_SECONDS": "0.3",
            "CSONBOARD_ONBOARDING_POLL_MAX_SECONDS": "1",
            **env,
        },
    )


@contextmanager
def sandbox_stack(data_dir: Path, *, run_worker: bool = True, **env: str) -> Iterator[SandboxStack]:
    """Start everything; stop it all when the block ends. ``env`` overrides
    settings (``CSONBOARD_*`` names)."""
    admin = ("sandbox-admin", secrets.token_urlsafe(16))
    secret = f"whsec_{secrets.token_hex(16)}"
    stripe_app = create_stripe_app(api_key=STRIPE_KEY)
    servers: list[RunningServer] = []
    stop = threading.Event()
    loop: threading.Thread | None = None
    worker: Worker | None = None
    bell: Doorbell | None = None
    try:
        cs = start_in_thread(create_cs_app(admin_username=admin[0], admin_password=admin[1]))
        servers.append(cs)
        stripe_server = start_in_thread(stripe_app)
        servers.append(stripe_server)
        settings = stack_settings(data_dir, cs.url, stripe_server.url, admin, secret, **env)
        ledger = Ledger.open(settings.ledger_url)
        ledger.upgrade()
        bell = open_doorbell(settings)
        receiver = start_in_thread(create_receiver(settings, ledger=ledger, doorbell=bell))
        servers.append(receiver)
        http = requests.Session()
        http.post(
            f"{stripe_server.url}/_sandbox/webhooks",
            json={"url": f"{receiver.url}/webhooks/stripe", "secret": secret},
            timeout=10,
        ).raise_for_status()
        worker = build_worker(settings, ledger)
        stack = SandboxStack(
            settings=settings,
            ledger=ledger,
            worker=worker,
            cs_url=cs.url,
            stripe_url=stripe_server.url,
            receiver_url=receiver.url,
            cs_admin=ComputeStacksClient(
                cs.url, requests.Session(), username=admin[0], password=admin[1]
            ),
            stripe=stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_server.url}),
            http=http,
        )
        if run_worker:
            stack.working.set()
            loop = threading.Thread(
                target=_work, args=(stack, stop), name="sandbox-worker", daemon=True
            )
            loop.start()
        yield stack
    finally:
        stop.set()
        if loop is not None:
            loop.join(timeout=30)
        sandbox_account(stripe_app).stop()
        for server in reversed(servers):
            server.stop()
        if bell is not None:
            bell.close()
        if worker is not None:
            worker.doorbell.close()
            worker.ledger.close()


def _work(stack: SandboxStack, stop: threading.Event) -> None:
    """A worker in a thread: whatever is due, every tenth of a second."""
    while not stop.is_set():
        with stack.burst:
            if stack.working.is_set():
                stack.worker.run_burst()
        stop.wait(0.1)
