"""The app factory and the blocking runner behind ``csonboard sandbox stripe``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests
from flask import Flask, Response, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.serving import make_server

from csonboard.sandbox.catalog import load_catalog
from csonboard.sandbox.stripe.account import EXTENSION, SandboxAccount, sandbox_account
from csonboard.sandbox.stripe.api import create_api
from csonboard.sandbox.stripe.control import create_control
from csonboard.sandbox.stripe.delivery import DEFAULT_RETRY_SCHEDULE, WebhookConfig
from csonboard.sandbox.stripe.errors import ApiError
from csonboard.sandbox.stripe.web import error_response, unrecognized_url

DEFAULT_API_KEY = "sk_test_sandbox"


def create_app(
    catalog: Mapping[str, Any] | None = None,
    *,
    api_key: str = DEFAULT_API_KEY,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
    duplicate_rate: float = 0.0,
    delivery_timeout: float = 10.0,
    http: requests.Session | None = None,
    check_contract: bool = True,
) -> Flask:
    """A Stripe API stand-in that the official library (16.x) talks to unchanged.

    ``catalog`` is a whole sandbox catalog (as ``load_catalog`` returns it; its
    ``stripe`` section seeds products and prices), None for the bundled one.
    ``api_key`` is the only key accepted. Events are signed with
    ``webhook_secret`` and POSTed to ``webhook_url`` (both or neither; settable
    later through ``POST /_sandbox/webhooks``), retried after
    ``retry_schedule`` seconds, duplicated at ``duplicate_rate``. ``clock``
    (Unix seconds) stamps objects, events and signatures; ``rng`` makes ids and
    duplicate decisions (seed it for reproducible runs); ``http`` is the
    session webhooks are sent with. ``check_contract`` checks every ``/v1``
    answer and every event against stripe-python's own types (see
    ``SandboxAccount``); ``GET /_sandbox/contract`` shows what was checked.

    The account is ``sandbox_account(app)``: call its ``wait_for_deliveries()``
    to drain the webhook outbox and ``stop()`` to end the delivery thread.
    Raises ValueError for a half-configured webhook or a broken catalog.
    """
    if (webhook_url is None) != (webhook_secret is None):
        raise ValueError("webhook_url and webhook_secret must be given together")
    if not 0 <= duplicate_rate <= 1:
        raise ValueError("duplicate_rate must be between 0 and 1")
    section = (load_catalog() if catalog is None else catalog).get("stripe", {})
    account = SandboxAccount(
        api_key=api_key,
        catalog_section=section,
        webhook=WebhookConfig(
            url=webhook_url,
            secret=webhook_secret,
            duplicate_rate=duplicate_rate,
            retry_schedule=tuple(retry_schedule),
            timeout=delivery_timeout,
        ),
        clock=clock,
        rng=rng or random.Random(),
        http=http,
        check_contract=check_contract,
    )
    app = Flask(__name__)
    app.extensions[EXTENSION] = account
    app.register_blueprint(create_api(account))
    app.register_blueprint(create_control(account))
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(NotFound, _not_found)
    app.register_error_handler(MethodNotAllowed, _not_found)
    return app


def _not_found(exc: NotFound | MethodNotAllowed) -> Response | NotFound | MethodNotAllowed:
    """Stripe's "Unrecognized request URL" for the API; Flask's own page elsewhere."""
    if request.path.startswith(("/v1/", "/v2/")) or request.path in ("/v1", "/v2"):
        return unrecognized_url()
    return exc


def run(
    host: str = "127.0.0.1",
    port: int = 12111,
    *,
    api_key: str = DEFAULT_API_KEY,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    catalog: Mapping[str, Any] | None = None,
) -> None:
    """Serve the stand-in on ``host:port`` until interrupted (threaded, like Stripe's
    concurrent API), then stop the webhook deliverer."""
    app = create_app(
        catalog, api_key=api_key, webhook_url=webhook_url, webhook_secret=webhook_secret
    )
    server = make_server(host, port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sandbox_account(app).stop()
