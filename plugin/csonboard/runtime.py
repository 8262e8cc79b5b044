"""Assembling a worker from settings (the CLI and the tests share this)."""

from __future__ import annotations

from csonboard.ledger import EventRecord, Ledger
from csonboard.queue import open_doorbell
from csonboard.settings import Settings
from csonboard.worker import EventHandler, Outcome, Worker

CHECKOUT_FULFIL = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def _awaiting_fulfilment(record: EventRecord) -> Outcome:
    return Outcome("done", f"checkout {record.object_id} recorded; waiting for fulfilment")


def build_routes() -> dict[str, EventHandler]:
    """Stripe event type -> handler. Types not listed are stored as ``ignored``."""
    return dict.fromkeys(CHECKOUT_FULFIL, _awaiting_fulfilment)


def build_worker(settings: Settings, ledger: Ledger | None = None) -> Worker:
    """A worker wired to the ledger and queue named by ``settings``."""
    ledger = ledger or Ledger.open(settings.ledger_url)
    worker: Worker | None = None

    def handle(kind: str, ident: str) -> None:
        assert worker is not None
        worker.handle(kind, ident)  # type: ignore[arg-type]

    doorbell = open_doorbell(settings, handler=handle)
    worker = Worker(ledger, doorbell, build_routes(), settings.worker)
    return worker
