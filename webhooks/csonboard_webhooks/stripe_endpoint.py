"""``POST /webhooks/stripe``: verify, store exactly once, ring the queue, answer.

Answers (a stable contract): 200 ``{"status": "accepted"|"duplicate"|"conflict", "event":
id}`` (a conflict: the id is known with another body, kept aside for a person);
400 ``{"error": ...}`` for a bad signature, a stale or future timestamp, the
wrong mode or an unparsable body; 413 over the size limit; 415 for a body that
is not declared JSON; 503 only when the ledger itself is down (so that Stripe
retries). Bad input never gets a 5xx, and never touches the ledger.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request

from csonboard.errors import WebhookRejected
from csonboard.metrics.instruments import SIGNATURE_FAILURES, count_webhook
from csonboard.webhook import parse_event, verify_signature
from csonboard_webhooks.state import receiver

log = logging.getLogger(__name__)
blueprint = Blueprint("stripe", __name__)


@blueprint.post("/webhooks/stripe")
def receive() -> tuple[dict[str, str], int]:
    state = receiver()
    try:
        if request.mimetype != "application/json":
            raise WebhookRejected(
                f"Content-Type must be application/json, got {request.mimetype or 'none'!r}", 415
            )
        body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
        signature = request.headers.get("Stripe-Signature")
        try:
            text = verify_signature(
                body, signature, state.secrets, tolerance=state.tolerance, now=state.clock()
            )
        except WebhookRejected:
            SIGNATURE_FAILURES.inc()
            raise
        incoming = parse_event(text, livemode=state.livemode, signature=signature, source="webhook")
    except WebhookRejected as exc:
        log.warning("webhook rejected: %s", exc, extra={"remote": request.remote_addr})
        count_webhook(None, "rejected")
        return {"error": str(exc)}, exc.status

    # Stored durably (in a group commit) before answering; the queue is rung after.
    status = state.intake.store(incoming)
    count_webhook(incoming.type, status)
    if status == "conflict":
        log.warning(
            "event %s arrived again with a different body: kept aside, the stored one stands "
            "(csonboard events show %s)",
            incoming.id,
            incoming.id,
            extra={"event_id": incoming.id, "event_type": incoming.type, "status": status},
        )
    else:
        log.info(
            "event received",
            extra={"event_id": incoming.id, "event_type": incoming.type, "status": status},
        )
    return {"status": status, "event": incoming.id}, 200
