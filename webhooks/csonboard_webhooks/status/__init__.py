"""The buyer's status page: ``/welcome``, ``/status/<token>`` and the
"Open your control panel" button (see :mod:`.views`; threat model in
docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask

from csonboard.ledger import Ledger
from csonboard.queue import Doorbell
from csonboard.settings import Settings
from csonboard_webhooks.status.answers import SETTINGS_EXTENSION
from csonboard_webhooks.status.pages import EXTENSION, build_pages
from csonboard_webhooks.status.views import blueprint


def install_status_pages(
    app: Flask,
    settings: Settings,
    *,
    ledger: Ledger,
    doorbell: Doorbell,
    clock: Callable[[], datetime],
) -> None:
    """Add the status pages to ``app``. Raises ConfigError when
    ``CSONBOARD_SECRET_KEY`` is set but Stripe or ComputeStacks is not
    configured; without the key the pages answer 503."""
    app.extensions[EXTENSION] = build_pages(settings, ledger, doorbell, clock)
    app.extensions[SETTINGS_EXTENSION] = settings.status
    app.register_blueprint(blueprint)


__all__ = ["install_status_pages"]
