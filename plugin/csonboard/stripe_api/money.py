"""What csonboard reads of a payment whose money may go back: the charge, its
newest dispute and its newest early fraud warning, as Stripe has them now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csonboard.stripe_api.records import field, id_of

DISPUTE_OPEN = ("needs_response", "under_review")
"""A chargeback still being decided: the funds are withdrawn."""
DISPUTE_INQUIRY = ("warning_needs_response", "warning_under_review", "warning_closed")
"""An inquiry: the card issuer asks; no money moved."""


@dataclass(frozen=True)
class Payment:
    """A charge and what became of its money."""

    charge_id: str
    amount: int
    amount_refunded: int
    currency: str
    payment_intent: str | None
    customer_id: str | None
    dispute_id: str | None
    dispute_status: str | None
    fraud_warning_id: str | None
    fraud_warning_actionable: bool

    @property
    def refunded_in_full(self) -> bool:
        return self.amount > 0 and self.amount_refunded >= self.amount

    @property
    def disputed(self) -> bool:
        return self.dispute_status is not None and self.dispute_status not in DISPUTE_INQUIRY


def payment(charge: Any, dispute: Any | None, warning: Any | None) -> Payment:
    return Payment(
        charge_id=str(charge.id),
        amount=int(field(charge, "amount") or 0),
        amount_refunded=int(field(charge, "amount_refunded") or 0),
        currency=str(field(charge, "currency") or ""),
        payment_intent=id_of(field(charge, "payment_intent")),
        customer_id=id_of(field(charge, "customer")),
        dispute_id=str(dispute.id) if dispute is not None else None,
        dispute_status=str(field(dispute, "status")) if dispute is not None else None,
        fraud_warning_id=str(warning.id) if warning is not None else None,
        fraud_warning_actionable=bool(warning is not None and field(warning, "actionable")),
    )
