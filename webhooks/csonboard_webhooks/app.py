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
from csonboard_webhooks.state import Receiver

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    ledger: Ledger | None = None,
    doorbell: Doorbell | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Flask:
    """Build the receiver for ``settings``.

    Raises ConfigError when a setting the receiver needs is missing (webhook
    secrets, a way to tell test from live mode). The ledger is not migrated
    here; ``csonboard serve`` does that before starting, and ``/readyz`` says
    when it has not been.
    """
    state = Receiver(
        ledger=ledger or Ledger.open(settings.ledger_url),
        doorbell=doorbell or open_doorbell(settings),
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
