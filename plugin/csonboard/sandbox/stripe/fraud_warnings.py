"""Radar early fraud warnings (``issfr_...``): a card issuer's word that a charge may be
fraudulent, usually the forerunner of a ``fraudulent`` dispute.

Stripe makes them on its own; the sandbox makes one when told to
(``POST /_sandbox/charges/{id}/early_fraud_warning``), emitting
``radar.early_fraud_warning.created``. A warning is ``actionable`` while its charge
has no dispute and is not fully refunded: the refund or the dispute that ends that
flips it to false and emits ``radar.early_fraud_warning.updated``
(``previous_attributes: {"actionable": true}``). A partial refund leaves it
actionable, as Stripe's own description of the field says.

Read through ``GET /v1/radar/early_fraud_warnings`` (by ``charge``,
``payment_intent``, ``created``) and ``GET /v1/radar/early_fraud_warnings/{id}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe.errors import invalid, wrong_state
from csonboard.sandbox.stripe.events import AUTOMATIC, EventLog, Origin
from csonboard.sandbox.stripe.listing import (
    list_of_payments,
)
from csonboard.sandbox.stripe.state import Json, Store

KIND = "radar.early_fraud_warning"
FRAUD_TYPES = (
    "card_never_received",
    "fraudulent_card_application",
    "made_with_counterfeit_card",
    "made_with_lost_card",
    "made_with_stolen_card",
    "misc",
    "unauthorized_use_of_card",
)


def create_warning(store: Store, events: EventLog, charge_id: str, fraud_type: str) -> Json:
    """The issuer flagged a succeeded charge; returns the new warning.

    Refused: an unknown ``fraud_type``, a charge that did not succeed, or one that
    already has a warning (issuers send one per charge).
    """
    if fraud_type not in FRAUD_TYPES:
        raise invalid(f"fraud_type must be one of {', '.join(FRAUD_TYPES)}", "fraud_type")
    with store.lock:
        charge = store.get("charge", charge_id)
        if charge["status"] != "succeeded":
            raise wrong_state(
                f"Charge {charge_id} is {charge['status']}; only a succeeded charge can draw "
                "an early fraud warning."
            )
        if any(w["charge"] == charge_id for w in store.objects[KIND].values()):
            raise wrong_state(f"Charge {charge_id} already has an early fraud warning.")
        warning = store.put(
            {
                "id": store.new_object_id(KIND),
                "object": KIND,
                "actionable": not charge["refunded"] and not charge["disputed"],
                "charge": charge_id,
                "created": store.now(),
                "fraud_type": fraud_type,
                "livemode": False,
                "payment_intent": charge["payment_intent"],
            }
        )
        events.emit(f"{KIND}.created", warning)
        return warning


def settle_for(store: Store, events: EventLog, charge: Json, origin: Origin = AUTOMATIC) -> None:
    """``charge`` was disputed or fully refunded: its actionable warnings are no longer
    actionable (``radar.early_fraud_warning.updated`` for each)."""
    for warning in store.objects[KIND].values():
        if warning["charge"] == charge["id"] and warning["actionable"]:
            warning["actionable"] = False
            events.emit(f"{KIND}.updated", warning, previous={"actionable": True}, origin=origin)


def list_warnings(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/radar/early_fraud_warnings``."""
    return list_of_payments(store, params, KIND, "/v1/radar/early_fraud_warnings")
