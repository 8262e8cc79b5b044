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

from flask import Blueprint, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

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
        body = _body()
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


def _body() -> bytes:
    """The request body; 413 past ``MAX_CONTENT_LENGTH``. Werkzeug enforces
    the limit on a declared length, but cuts a chunked body at the limit
    without a word (a false signature failure, or the tail of a signed body
    dropped): that one is read here, one byte past the limit, to tell."""
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)  # no length and no end: Werkzeug reads nothing
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    stream, parts, size = request.environ["wsgi.input"], [], 0
    while size <= limit:
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise RequestEntityTooLarge()
    return b"".join(parts)
