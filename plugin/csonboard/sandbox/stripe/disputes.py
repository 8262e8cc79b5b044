"""Disputes (chargebacks and inquiries): opened and decided by the card network, answered
through ``/v1/disputes``.

The network's side is played through ``/_sandbox``: ``POST
/_sandbox/charges/{id}/dispute`` (:func:`open_dispute`) and ``POST
/_sandbox/disputes/{id}/close`` (:func:`decide`); events it causes have
``request.id`` null. The merchant's side is ``GET /v1/disputes`` (by ``charge``,
``payment_intent``, ``created``), ``GET``/``POST /v1/disputes/{id}`` and ``POST
/v1/disputes/{id}/close``.

- A chargeback (``needs_response``) withdraws the disputed amount plus Stripe's
  dispute fee (1500, the US list price, in the charge's currency): events
  ``charge.dispute.created``, then ``charge.dispute.funds_withdrawn`` whose
  dispute carries the withdrawal in ``balance_transactions`` (type
  ``adjustment``, category ``dispute``, "Chargeback withdrawal for ch_...").
  The charge becomes ``disputed`` and can no longer be refunded
  (``is_charge_refundable: false``).
- An inquiry (``warning_needs_response``) moves no money: only
  ``charge.dispute.created``; the charge stays refundable.
- Decided: won (``won``; ``charge.dispute.closed`` then
  ``charge.dispute.funds_reinstated`` with the reversal, category
  ``dispute_reversal``; the dispute fee is not returned, as under Stripe's
  pricing since mid-2025), lost (``lost``, ``charge.dispute.closed``), and an
  inquiry closes ``warning_closed`` either way.

The merchant's side (``POST /v1/disputes/{id}``): ``evidence`` text fields are
staged (``evidence_details.has_evidence``) and, with ``submit`` (true unless
sent false), submitted: status ``under_review`` (``warning_under_review`` for an
inquiry), ``submission_count`` + 1, after which evidence is locked. ``metadata``
merges as everywhere. Each change emits ``charge.dispute.updated`` with the
changed fields (for ``evidence``, ``evidence_details`` and ``metadata``, only the
changed keys). File evidence names a file upload, which the sandbox has none of,
so any file id is Stripe's "No such file upload". A closed dispute refuses every
update. ``POST /v1/disputes/{id}/close`` accepts a dispute awaiting a response:
``lost`` (an inquiry ``warning_closed``), ``charge.dispute.closed``.

A dispute (or an inquiry) makes the charge's early fraud warning unactionable.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe import fraud_warnings
from csonboard.sandbox.stripe.charges import CARD, DAY, balance_transaction, unrefunded
from csonboard.sandbox.stripe.errors import invalid, no_such, unsupported, wrong_state
from csonboard.sandbox.stripe.events import EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_bool,
    as_dict,
    as_str,
    check_known,
    merge_metadata,
    sub,
)
from csonboard.sandbox.stripe.listing import (
    list_of_payments,
)
from csonboard.sandbox.stripe.state import Json, Store

REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
DISPUTE_FEE = 1500
RESPONSE_DAYS = 7
"""Days the merchant has to answer; ``due_by`` is the end of that UTC day."""

AWAITING = ("needs_response", "warning_needs_response")
REVIEWING = ("under_review", "warning_under_review")
CLOSED = ("lost", "prevented", "warning_closed", "won")

_VISA_REASON_CODES = {
    "credit_not_processed": "13.6",
    "duplicate": "12.6.1",
    "fraudulent": "10.4",
    "product_not_received": "13.1",
    "product_unacceptable": "13.3",
    "subscription_canceled": "13.2",
}
"""Visa's chargeback reason codes for the dispute reasons they map to one-to-one."""

TEXT_EVIDENCE = {
    "access_activity_log": 20000,
    "billing_address": 5000,
    "cancellation_policy_disclosure": 20000,
    "cancellation_rebuttal": 20000,
    "customer_email_address": 5000,
    "customer_name": 5000,
    "customer_purchase_ip": 5000,
    "duplicate_charge_explanation": 20000,
    "duplicate_charge_id": 5000,
    "product_description": 20000,
    "refund_policy_disclosure": 20000,
    "refund_refusal_explanation": 20000,
    "service_date": 5000,
    "shipping_address": 5000,
    "shipping_carrier": 5000,
    "shipping_date": 5000,
    "shipping_tracking_number": 5000,
    "uncategorized_text": 20000,
}
"""Text evidence fields and their maximum lengths."""
FILE_EVIDENCE = (
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
)
MAX_EVIDENCE_CHARACTERS = 150_000
_EVIDENCE_UNSUPPORTED = ("appeal", "enhanced_evidence")
_UPDATE_PARAMS = ("evidence", "expand", "metadata", "submit")
_UPDATE_UNSUPPORTED = ("intended_submission_method",)


# -- the card network's side (/_sandbox) --------------------------------------------------


def open_dispute(
    store: Store,
    events: EventLog,
    charge_id: str,
    *,
    reason: str,
    inquiry: bool,
    amount: int | None = None,
) -> Json:
    """The cardholder disputes a succeeded card charge; returns the dispute.

    ``amount`` defaults to what is left unrefunded. Refused: an unknown reason, a
    charge that did not succeed or was not paid by card, one fully refunded (no
    dispute is possible then), one already disputed, an amount above what is left.
    """
    if reason not in REASONS:
        raise invalid(f"reason must be one of {', '.join(REASONS)}", "reason")
    with store.lock:
        charge = store.get("charge", charge_id)
        if charge["status"] != "succeeded" or charge["payment_method_details"]["type"] != CARD:
            raise wrong_state(f"Charge {charge_id} is not a succeeded card charge.")
        if charge["disputed"]:
            raise wrong_state(f"Charge {charge_id} has already been disputed.")
        left = unrefunded(charge)
        if left <= 0:
            raise wrong_state(f"Charge {charge_id} is fully refunded; it cannot be disputed.")
        disputed = left if amount is None else amount
        if not 0 < disputed <= left:
            raise invalid(f"amount must be from 1 to {left} (what is left unrefunded)", "amount")
        now = store.now()
        network_code = None if inquiry else _VISA_REASON_CODES.get(reason)
        dispute = store.put(
            {
                "id": store.new_object_id("dispute"),
                "object": "dispute",
                "amount": disputed,
                "balance_transactions": [],
                "charge": charge_id,
                "created": now,
                "currency": charge["currency"],
                "enhanced_eligibility_types": [],
                "evidence": {
                    **dict.fromkeys(sorted((*TEXT_EVIDENCE, *FILE_EVIDENCE))),
                    "enhanced_evidence": {},
                },
                "evidence_details": {
                    "due_by": (now // DAY + RESPONSE_DAYS + 1) * DAY - 1,
                    "enhanced_eligibility": {},
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                    "submission_method": "not_submitted",
                },
                "is_charge_refundable": inquiry,
                "livemode": False,
                "metadata": {},
                "network_reason_code": network_code,
                "payment_intent": charge["payment_intent"],
                "payment_method_details": {
                    "card": {
                        "brand": "visa",
                        "case_type": "inquiry" if inquiry else "chargeback",
                        "network": "visa",
                        "network_reason_code": network_code,
                    },
                    "type": "card",
                },
                "reason": reason,
                "status": "warning_needs_response" if inquiry else "needs_response",
            }
        )
        charge["disputed"] = True
        events.emit("charge.dispute.created", dispute)
        if not inquiry:
            withdrawal = balance_transaction(
                store,
                amount=-disputed,
                currency=dispute["currency"],
                fee=DISPUTE_FEE,
                fee_description="Dispute fee",
                kind="adjustment",
                category="dispute",
                source=dispute["id"],
                description=f"Chargeback withdrawal for {charge_id}",
            )
            dispute["balance_transactions"].append(copy.deepcopy(withdrawal))
            events.emit("charge.dispute.funds_withdrawn", dispute)
        fraud_warnings.settle_for(store, events, charge)
        return dispute


def decide(store: Store, events: EventLog, dispute_id: str, *, won: bool | None) -> Json:
    """The network decided an open dispute (see the module's rules); returns it.

    ``won`` may be None only for an inquiry, which closes the same either way.
    """
    with store.lock:
        dispute = store.get("dispute", dispute_id)
        if dispute["status"] in CLOSED:
            raise wrong_state(f"Dispute {dispute_id} is already closed ({dispute['status']}).")
        inquiry = dispute["status"].startswith("warning_")
        if won is None and not inquiry:
            raise invalid("A chargeback is won or lost: send outcome won or lost.", "outcome")
        if inquiry:
            dispute["status"] = "warning_closed"
        else:
            dispute["status"] = "won" if won else "lost"
        events.emit("charge.dispute.closed", dispute)
        if won and not inquiry:
            reversal = balance_transaction(
                store,
                amount=int(dispute["amount"]),
                currency=dispute["currency"],
                fee=0,
                fee_description=None,
                kind="adjustment",
                category="dispute_reversal",
                source=dispute["id"],
                description=f"Chargeback reversal for {dispute['charge']}",
            )
            dispute["balance_transactions"].append(copy.deepcopy(reversal))
            events.emit("charge.dispute.funds_reinstated", dispute)
        return dispute


# -- the merchant's side (/v1) ---------------------------------------------------------------


def update_dispute(
    store: Store, events: EventLog, dispute_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/disputes/{id}``; returns the dispute (see the module's rules)."""
    for name in params:
        if name in _UPDATE_UNSUPPORTED:
            raise unsupported(name)
    check_known(params, _UPDATE_PARAMS)
    evidence = _read_evidence(params["evidence"]) if "evidence" in params else None
    submit = as_bool(params["submit"], "submit") if "submit" in params else None
    with store.lock:
        dispute = store.get("dispute", dispute_id)
        status = dispute["status"]
        if status in CLOSED:
            raise wrong_state(
                f"Dispute {dispute_id} is closed ({status}); a closed dispute cannot be updated."
            )
        submitting = submit is True or (evidence is not None and submit is None)
        if (evidence is not None or submitting) and status in REVIEWING:
            raise wrong_state(
                f"The evidence for dispute {dispute_id} has already been submitted; it cannot be "
                "changed or submitted again."
            )
        before = copy.deepcopy(dispute)
        if evidence is not None:
            staged = {**dispute["evidence"], **evidence}
            _check_total(staged)
            dispute["evidence"] = staged
            dispute["evidence_details"]["has_evidence"] = any(
                staged[name] is not None for name in (*TEXT_EVIDENCE, *FILE_EVIDENCE)
            )
        if submitting:
            if not dispute["evidence_details"]["has_evidence"]:
                raise invalid(
                    "There is no evidence to submit: stage some with `evidence` first.", "submit"
                )
            details = dispute["evidence_details"]
            details.update(submission_count=details["submission_count"] + 1)
            details["submission_method"] = "manual"
            inquiry = status == "warning_needs_response"
            dispute["status"] = "warning_under_review" if inquiry else "under_review"
        if "metadata" in params:
            merged, _ = merge_metadata(dispute["metadata"], params["metadata"])
            dispute["metadata"] = merged
        previous = _changes(before, dispute)
        if previous:
            events.emit("charge.dispute.updated", dispute, previous=previous, origin=origin)
        return dispute


def accept_dispute(
    store: Store, events: EventLog, dispute_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/disputes/{id}/close``: the merchant accepts a dispute awaiting a
    response; returns it ``lost`` (an inquiry ``warning_closed``) after emitting
    ``charge.dispute.closed``."""
    check_known(params, ("expand",))
    with store.lock:
        dispute = store.get("dispute", dispute_id)
        status = dispute["status"]
        if status not in AWAITING:
            raise wrong_state(
                f"Dispute {dispute_id} is {status}; only a dispute awaiting your response "
                "(needs_response, warning_needs_response) can be closed."
            )
        dispute["status"] = "warning_closed" if status == "warning_needs_response" else "lost"
        events.emit("charge.dispute.closed", dispute, origin=origin)
        return dispute


def list_disputes(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/disputes``."""
    return list_of_payments(store, params, "dispute", "/v1/disputes")


def _read_evidence(raw: Any) -> dict[str, str | None]:
    """The evidence fields sent; ``""`` clears a field."""
    fields = as_dict(raw, "evidence")
    for name in fields:
        if name in _EVIDENCE_UNSUPPORTED:
            raise unsupported(sub("evidence", name))
    check_known(fields, (*TEXT_EVIDENCE, *FILE_EVIDENCE), "evidence")
    read: dict[str, str | None] = {}
    for name, value in fields.items():
        param = sub("evidence", name)
        if name in FILE_EVIDENCE:
            file_id = as_str(value, param)
            if file_id:  # the sandbox keeps no file uploads, so no id names one
                raise no_such("file upload", file_id, param=param, status=400)
            read[name] = None
            continue
        text = as_str(value, param, max_length=TEXT_EVIDENCE[name])
        read[name] = text or None
    return read


def _check_total(evidence: Json) -> None:
    total = sum(len(evidence[name] or "") for name in TEXT_EVIDENCE)
    if total > MAX_EVIDENCE_CHARACTERS:
        raise invalid(
            f"The combined character count of all evidence fields is limited to "
            f"{MAX_EVIDENCE_CHARACTERS:,}; this evidence has {total:,}.",
            "evidence",
        )


_PARTIAL = ("evidence", "evidence_details", "metadata")


def _changes(before: Json, after: Json) -> Json:
    """``previous_attributes``: changed fields, hashes in ``_PARTIAL`` by changed key."""
    previous: Json = {}
    for key, old in before.items():
        new = after[key]
        if new == old:
            continue
        if key in _PARTIAL:
            keys = sorted(set(old) | set(new))
            previous[key] = {k: copy.deepcopy(old.get(k)) for k in keys if old.get(k) != new.get(k)}
        else:
            previous[key] = copy.deepcopy(old)
    return previous
