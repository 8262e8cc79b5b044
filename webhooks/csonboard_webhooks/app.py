"""The Flask app factory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, current_app
from werkzeug.exceptions import HTTPException

from csonboard.errors import LedgerUnavailable
from csonboard.ledger import Ledger, utcnow
from csonboard.queue import Doorbell, open_doorbell
from csonboard.settings import Settings
from csonboard_webhooks import health, stripe_endpoint
from csonboard_webhooks.intake import Intake
from csonboard_webhooks.metrics import install_metrics
from csonboard_webhooks.state import Receiver
from csonboard_webhooks.status import install_status_pages

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    ledger: Ledger | None = None,
    doorbell: Doorbell | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Flask:
    """Build the receiver for ``settings``.

    Serves ``/metrics`` and the buyer's status page (``/welcome``,
    ``/status/<token>``) besides the webhook endpoint.

    Raises ConfigError when a setting the receiver needs is missing (webhook
    secrets, a way to tell test from live mode; with ``CSONBOARD_SECRET_KEY``
    set, the Stripe key and ComputeStacks credential the status page uses).
    The ledger is not migrated
    here; ``csonboard serve`` does that before starting, and ``/readyz`` says
    when it has not been.
    """
    ledger = ledger or settings.open_ledger()
    doorbell = doorbell or open_doorbell(settings)
    state = Receiver(
        ledger=ledger,
        doorbell=doorbell,
        intake=Intake(ledger, doorbell),
        secrets=tuple(settings.webhook_secrets()),
        tolerance=settings.stripe.tolerance_seconds,
        livemode=settings.livemode,
        clock=clock,
    )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.receiver.max_body_bytes
    app.extensions["csonboard"] = state
    app.register_blueprint(stripe_endpoint.blueprint)
    app.register_blueprint(health.blueprint)
    install_metrics(app, state)
    install_status_pages(
        app, settings, ledger=state.ledger, doorbell=state.doorbell, clock=state.clock
    )
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(LedgerUnavailable, _ledger_down)
    return app


def _http_error(exc: HTTPException) -> tuple[dict[str, str], int]:
    if exc.code == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return {"error": f"body too large: the limit is {limit} bytes"}, 413
    return {"error": exc.description or exc.name}, exc.code or 500


def _ledger_down(exc: LedgerUnavailable) -> tuple[dict[str, str], int]:
    # Not the sender's fault: a 5xx makes Stripe deliver the event again later.
    log.error("cannot store a webhook: %s", exc)
    return {"error": "temporarily unable to store the event; retry later"}, 503
