"""What the request handlers need, built once per process by ``create_app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from csonboard.ledger import Ledger
from csonboard.queue import Doorbell
from csonboard_webhooks.intake import Intake


@dataclass(frozen=True)
class Receiver:
    ledger: Ledger
    doorbell: Doorbell
    intake: Intake
    secrets: tuple[str, ...]
    tolerance: int
    livemode: bool
    clock: Callable[[], datetime]


def receiver() -> Receiver:
    """The current app's :class:`Receiver`."""
    found: Receiver = current_app.extensions["csonboard"]
    return found
