"""``/healthz`` (the process answers) and ``/readyz`` (it can do its job)."""

from __future__ import annotations

from flask import Blueprint

from csonboard.errors import CsonboardError
from csonboard_webhooks.state import receiver

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, object], int]:
    """200 when the ledger answers with a current schema and the queue answers;
    503 naming what is not ready otherwise."""
    state = receiver()
    report: dict[str, object] = {}
    try:
        state.ledger.ping()
        pending = state.ledger.pending_migrations()
        report["ledger"] = (
            f"migrations pending ({', '.join(pending)}): run `csonboard db upgrade`"
            if pending
            else "ok"
        )
    except CsonboardError as exc:
        report["ledger"] = str(exc)
    try:
        report["queue_depth"] = state.doorbell.depth()
        report["queue"] = "ok"
    except CsonboardError as exc:
        report["queue"] = str(exc)
    ready = report["ledger"] == "ok" and report["queue"] == "ok"
    report["status"] = "ready" if ready else "not ready"
    return report, 200 if ready else 503
