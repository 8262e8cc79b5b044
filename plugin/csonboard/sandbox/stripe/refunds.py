"""Refunds: ``POST /v1/refunds`` and its reads.

A refund names its ``charge`` or its ``payment_intent`` (whose ``latest_charge`` is
refunded), one of them and not both; without ``amount`` it refunds what is left.
Refused like Stripe, before anything changes:

- a charge with a dispute that does not allow a refund (a chargeback; an
  inquiry still does): "Charge ch_... has been charged back; cannot issue a
  refund." (``charge_disputed``);
- nothing left to refund: "Charge ch_... has already been refunded."
  (``charge_already_refunded``);
- more than is left: "Refund amount ($60.00) is greater than unrefunded amount on
  charge ($49.00)" (``param: amount``, no code);
- a charge that has not succeeded, a PaymentIntent without one, unknown ids.

A card refund succeeds at once. The charge's ``amount_refunded`` grows and
``refunded`` turns true once nothing is left. Events: ``charge.refunded`` (the
charge, with the old values of the fields the refund changed in
``previous_attributes``: ``amount_refunded``, ``refunded`` and ``fraud_details``
when they changed), ``refund.created`` (the refund), then, a full refund only,
``radar.early_fraud_warning.updated`` for the charge's actionable warning. The
card network then gives the refund its acquirer reference number
(``destination_details.card.reference``, ``reference_status`` ``pending`` ->
``available``), which Stripe announces as ``charge.refund.updated`` and
``refund.updated`` with ``previous_attributes`` naming the two old values; in
test mode that happens at once, so the sandbox emits both right away, with
``request`` null as for every change Stripe makes on its own. A bank-debit
refund stays ``pending`` (``pending_reason: processing``) and gets no update.

A refund can fail later (``POST /_sandbox/refunds/{id}/fail``, :func:`fail_refund`:
the card was closed, the bank refused): its ``status`` becomes ``failed`` with
a ``failure_reason`` and a ``failure_balance_transaction`` that gives the money
back to the balance; the charge's ``amount_refunded`` drops by the refund and
``refunded`` turns false. Events: ``charge.refund.updated``, ``refund.updated``
and ``refund.failed``.
``reason=fraudulent`` also records ``fraud_details.user_report: fraudulent`` on
the charge, as Stripe does.

Reads: ``GET /v1/refunds`` (by ``charge``, ``payment_intent``, ``created``),
``GET /v1/refunds/{id}``, and a charge's own at ``GET /v1/charges/{id}/refunds`` (the
``url`` of the list ``expand[]=refunds`` includes in a charge) and ``GET
/v1/charges/{id}/refunds/{refund}``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe import fraud_warnings
from csonboard.sandbox.stripe.charges import BANK_DEBIT, balance_transaction, unrefunded
from csonboard.sandbox.stripe.errors import ApiError, invalid, no_such, unsupported, wrong_state
from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_enum,
    as_int,
    as_metadata,
    as_str,
    check_known,
)
from csonboard.sandbox.stripe.listing import (
    PAGE_PARAMS,
    field_equals,
    list_of_payments,
    paginate,
)
from csonboard.sandbox.stripe.state import KINDS, Json, Store

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = (
    "charge_for_pending_refund_disputed",
    "declined",
    "expired_or_canceled_card",
    "insufficient_funds",
    "lost_or_stolen_card",
    "merchant_request",
    "unknown",
)
_MODELLED = ("amount", "charge", "expand", "metadata", "payment_intent", "reason")
_UNSUPPORTED = (
    "currency",
    "customer",
    "instructions_email",
    "origin",
    "refund_application_fee",
    "reverse_transfer",
)
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def create_refund(store: Store, events: EventLog, params: Params, origin: Origin) -> Json:
    """``POST /v1/refunds``; returns the refund (see the module's rules)."""
    for name in params:
        if name in _UNSUPPORTED:
            raise unsupported(name)
    check_known(params, _MODELLED)
    amount = as_int(params["amount"], "amount", minimum=1) if "amount" in params else None
    reason = as_enum(params["reason"], "reason", REASONS) if "reason" in params else None
    metadata = {k: v for k, v in as_metadata(params.get("metadata") or {}).items() if v}
    if "charge" in params and "payment_intent" in params:
        raise invalid(
            "You may only specify one of these parameters: charge, payment_intent.", "charge"
        )
    with store.lock:
        charge = _target(store, params)
        _check_refundable(store, charge)
        left = unrefunded(charge)
        value = left if amount is None else amount
        if value > left:
            raise ApiError(
                400,
                f"Refund amount ({_money(value, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({_money(left, charge['currency'])})",
                param="amount",
            )
        refund = _refund(store, charge, value, reason, metadata)
        before = {
            k: copy.deepcopy(charge[k]) for k in ("amount_refunded", "fraud_details", "refunded")
        }
        charge["amount_refunded"] = int(charge["amount_refunded"]) + value
        charge["refunded"] = unrefunded(charge) == 0
        if reason == "fraudulent":
            details = charge["fraud_details"] or {}
            charge["fraud_details"] = {**details, "user_report": "fraudulent"}
        previous = {k: old for k, old in before.items() if charge[k] != old}
        events.emit("charge.refunded", charge, previous=previous, origin=origin)
        events.emit("refund.created", refund, origin=origin)
        if charge["refunded"]:
            fraud_warnings.settle_for(store, events, charge, origin)
        if refund["destination_details"]["type"] == "card":
            _reference_arrives(store, events, refund)
        return refund


def list_charge_refunds(store: Store, charge_id: str, params: Mapping[str, Any]) -> Json:
    """``GET /v1/charges/{id}/refunds``: the charge's refunds, newest first."""
    check_known(params, PAGE_PARAMS)
    with store.lock:
        store.get("charge", charge_id)
        return copy.deepcopy(
            paginate(
                store.newest_first("refund"),
                params,
                url=f"/v1/charges/{charge_id}/refunds",
                label="refund",
                keep=field_equals("charge", charge_id),
            )
        )


def retrieve_charge_refund(
    store: Store, charge_id: str, refund_id: str, params: Mapping[str, Any]
) -> Json:
    """``GET /v1/charges/{id}/refunds/{refund}``: one of the charge's refunds (a refund
    of another charge is "No such refund", as for an unknown id)."""
    check_known(params, ("expand",))
    with store.lock:
        store.get("charge", charge_id)
        refund = store.get("refund", refund_id)
        if refund["charge"] != charge_id:
            raise no_such(KINDS["refund"][2], refund_id)
        return copy.deepcopy(refund)


def list_refunds(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/refunds``."""
    return list_of_payments(store, params, "refund", "/v1/refunds")


def _target(store: Store, params: Params) -> Json:
    """The charge to refund, from ``charge`` or ``payment_intent``."""
    if "charge" in params:
        charge_id = as_str(params["charge"], "charge")
        return store.get("charge", charge_id, param="charge", status=400)
    if "payment_intent" not in params:
        raise ApiError(
            400,
            "One of the following params should be provided for this request: charge or "
            "payment_intent.",
            code="parameter_missing",
        )
    intent_id = as_str(params["payment_intent"], "payment_intent")
    intent = store.get("payment_intent", intent_id, param="payment_intent", status=400)
    latest = store.find("charge", intent["latest_charge"] or "")
    if latest is None or latest["status"] != "succeeded":
        raise wrong_state(f"PaymentIntent {intent_id} does not have a successful charge to refund.")
    return latest


def _check_refundable(store: Store, charge: Json) -> None:
    if charge["disputed"]:
        disputes = [d for d in store.newest_first("dispute") if d["charge"] == charge["id"]]
        if not disputes or not disputes[0]["is_charge_refundable"]:
            raise ApiError(
                400,
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
    if charge["status"] != "succeeded":
        raise wrong_state(
            f"Charge {charge['id']} is {charge['status']}; only a succeeded charge can be refunded."
        )
    if unrefunded(charge) <= 0:
        raise ApiError(
            400,
            f"Charge {charge['id']} has already been refunded.",
            code="charge_already_refunded",
        )


def _refund(
    store: Store, charge: Json, amount: int, reason: str | None, metadata: dict[str, str]
) -> Json:
    refund_id = store.new_object_id("refund")
    described = charge["description"]
    txn = balance_transaction(
        store,
        amount=-amount,
        currency=charge["currency"],
        fee=0,
        fee_description=None,
        kind="refund",
        category="refund",
        source=refund_id,
        description=f"REFUND FOR CHARGE ({described})" if described else "REFUND FOR PAYMENT",
    )
    by_bank = charge["payment_method_details"]["type"] == BANK_DEBIT
    destination: Json = (
        {
            "type": "us_bank_transfer",
            "us_bank_transfer": {"reference": None, "reference_status": "pending"},
        }
        if by_bank
        else {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        }
    )
    return store.put(
        {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": txn["id"],
            "charge": charge["id"],
            "created": store.now(),
            "currency": charge["currency"],
            "destination_details": destination,
            "failure_balance_transaction": None,
            "failure_reason": None,
            "metadata": metadata,
            "payment_intent": charge["payment_intent"],
            "pending_reason": "processing" if by_bank else None,
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "pending" if by_bank else "succeeded",
            "transfer_reversal": None,
        }
    )


def fail_refund(store: Store, events: EventLog, refund_id: str, reason: str) -> Json:
    """The refund fails (see the module); only a pending or succeeded one can."""
    if reason not in FAILURE_REASONS:
        raise invalid(f"failure_reason must be one of {', '.join(FAILURE_REASONS)}", "reason")
    with store.lock:
        refund = store.find("refund", refund_id)
        if refund is None:
            raise no_such("refund", refund_id)
        if refund["status"] not in ("pending", "succeeded"):
            raise wrong_state(f"Refund {refund_id} is {refund['status']}; it cannot fail.")
        charge = store.find("charge", refund["charge"])
        assert charge is not None
        txn = balance_transaction(
            store,
            amount=int(refund["amount"]),
            currency=refund["currency"],
            fee=0,
            fee_description=None,
            kind="refund_failure",
            category="refund_failure",
            source=refund_id,
            description="REFUND FAILURE",
        )
        previous = {"status": refund["status"], "failure_reason": None}
        refund.update(status="failed", failure_reason=reason, failure_balance_transaction=txn["id"])
        refund["pending_reason"] = None
        charge["amount_refunded"] = int(charge["amount_refunded"]) - int(refund["amount"])
        charge["refunded"] = False
        events.emit("charge.refund.updated", refund, previous=previous, origin=AUTOMATIC)
        events.emit("refund.updated", refund, previous=previous, origin=AUTOMATIC)
        events.emit("refund.failed", refund, origin=AUTOMATIC)
        return refund


def _reference_arrives(store: Store, events: EventLog, refund: Json) -> None:
    """The card network assigned ``refund`` its acquirer reference number (23 digits,
    as Visa's and Mastercard's are): ``charge.refund.updated``, ``refund.updated``."""
    card = refund["destination_details"]["card"]
    previous = {
        "destination_details": {
            "card": {"reference": card["reference"], "reference_status": card["reference_status"]}
        }
    }
    card.update(
        reference="".join(str(store.rng.randint(0, 9)) for _ in range(23)),
        reference_status="available",
    )
    events.emit("charge.refund.updated", refund, previous=previous, origin=AUTOMATIC)
    events.emit("refund.updated", refund, previous=previous, origin=AUTOMATIC)


def _money(amount: int, currency: str) -> str:
    """``amount`` (minor units) the way Stripe's refund errors show it: ``$49.00``."""
    symbol = _SYMBOLS.get(currency.lower())
    shown = f"{amount / 100:.2f}"
    return f"{symbol}{shown}" if symbol else f"{shown} {currency.upper()}"
