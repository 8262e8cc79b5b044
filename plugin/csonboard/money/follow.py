"""Following a charge: what Stripe says of its money now, and what it means.

Failure policy: Stripe's and the ledger's errors propagate (the event is
retried); a charge Stripe does not have, or one that paid for no Checkout
Session, is recorded as ``ignored`` with the reason -- never dropped silently.
Re-reading the charge each time makes every handler idempotent and the order
of events irrelevant; the only write to Stripe (the refund an early fraud
warning asks for, by policy) carries a key per charge, and is not made for a
charge already refunded, so it happens once.
"""

from __future__ import annotations

import logging

from csonboard.errors import CsonboardError, TransientError
from csonboard.ledger import EventRecord, Ledger, Onboarding
from csonboard.ledger.payments import PaymentRecord, PaymentState
from csonboard.money.evidence import evidence_of
from csonboard.money.refund import refunded_by_csonboard
from csonboard.plans import Catalog
from csonboard.queue import Doorbell
from csonboard.settings import MoneySettings
from csonboard.stripe_api import StripeGateway
from csonboard.stripe_api.money import DISPUTE_INQUIRY, DISPUTE_OPEN, Payment
from csonboard.worker import EventHandler, Outcome

MONEY_EVENTS = (
    "charge.refunded",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "radar.early_fraud_warning.created",
    "radar.early_fraud_warning.updated",
)
"""The event types about a purchase's money going back."""
AWAITING_RESPONSE = ("needs_response", "warning_needs_response")
_SETTLE_TRIES = 3

log = logging.getLogger(__name__)


def judge(
    payment: Payment, *, one_time: bool, policy: MoneySettings
) -> tuple[str | None, bool, str]:
    """(hold, final, why): whether the purchase is held out of service for this
    payment (``dispute`` or ``refund``), whether its money is gone for good, and
    why, in words for the operator.

    A dispute that withdrew the funds holds it until decided: won lifts it,
    lost ends it. A full refund ends a one-time purchase; a subscription's
    refunded invoice ends nothing by itself (its cancellation does). A partial
    refund holds only if ``money.partial_refund = "stop"``. Inquiries change
    nothing."""
    dispute, status = payment.dispute_id, payment.dispute_status
    money = f"{payment.amount_refunded} of {payment.amount} {payment.currency}"
    if status in DISPUTE_OPEN:
        return "dispute", False, f"dispute {dispute} withdrew the funds ({status})"
    if status == "lost":
        return "dispute", True, f"dispute {dispute} was lost"
    if payment.refunded_in_full:
        if one_time:
            return "refund", True, f"refunded in full ({money})"
        return None, False, f"refunded in full ({money}); the subscription ends only if cancelled"
    if payment.amount_refunded > 0:
        if policy.partial_refund == "stop":
            return "refund", False, f"refunded in part ({money}); money.partial_refund = stop"
        return None, False, f"refunded in part ({money}): recorded (money.partial_refund = record)"
    if status in DISPUTE_INQUIRY:
        return None, False, f"inquiry {dispute} ({status}): no money moved, nothing changes"
    if status is not None:
        return None, False, f"dispute {dispute} is {status}: in service"
    if payment.fraud_warning_id is not None:
        return None, False, f"early fraud warning {payment.fraud_warning_id}: recorded"
    return None, False, "paid"


def follow_charge(
    ledger: Ledger,
    doorbell: Doorbell,
    stripe: StripeGateway,
    policy: MoneySettings,
    catalog: Catalog,
    charge_id: str,
) -> Outcome:
    """Re-read the charge, act on an early fraud warning by policy, record what
    its money means for its purchase, answer a dispute awaiting a response with
    csonboard's evidence (``money.submit_evidence``) and make the customer's
    lifecycle due."""
    payment = stripe.payment(charge_id)
    if payment is None:
        return Outcome("ignored", f"Stripe has no charge {charge_id}")
    onboarding, session_id = _purchase(ledger, stripe, payment)
    answered = _answer_fraud(stripe, policy, payment, onboarding)
    # Recorded, then read again until Stripe says what was recorded: a worker
    # holding an older read of the same charge cannot leave its state behind.
    for _ in range(_SETTLE_TRIES):
        recorded, why = _record(ledger, policy, payment, onboarding, session_id)
        again = stripe.payment(charge_id)
        if again is None or again == payment:
            break
        payment = again
    if answered:
        ledger.payments.fraud_action(payment.charge_id, "refunded")
        why = f"{why} (refunded for early fraud warning {payment.fraud_warning_id})"
    elif payment.fraud_warning_id is not None:
        ledger.payments.fraud_action(payment.charge_id, "recorded")
    if session_id is None:
        return Outcome("ignored", f"{charge_id} paid for no Checkout Session: {why}")
    if onboarding is not None and _refund_failed(ledger, onboarding, payment, why):
        why += "; csonboard's refund failed: refund_failed"
    customer = recorded.customer_id
    if customer is not None:
        ledger.lifecycle.touch(customer)
        doorbell.ring_or_log("account", customer)
    answer = policy.submit_evidence and recorded.evidence_submitted_at is None
    if answer and onboarding and _answer_dispute(ledger, stripe, catalog, payment, onboarding):
        why += "; evidence submitted"
    return Outcome("done", f"{charge_id} of {session_id}: {why}")


def _record(
    ledger: Ledger,
    policy: MoneySettings,
    payment: Payment,
    onboarding: Onboarding | None,
    session_id: str | None,
) -> tuple[PaymentRecord, str]:
    """Judge the payment and write it to the ledger; (the row, why)."""
    one_time = onboarding is None or onboarding.subscription_id is None
    hold, final, why = judge(payment, one_time=one_time, policy=policy)
    customer = (onboarding.customer_id if onboarding else None) or payment.customer_id
    _, recorded = ledger.payments.record(
        PaymentState(
            charge_id=payment.charge_id,
            session_id=session_id,
            customer_id=customer,
            amount=payment.amount,
            amount_refunded=payment.amount_refunded,
            currency=payment.currency,
            dispute_id=payment.dispute_id,
            dispute_status=payment.dispute_status,
            fraud_warning_id=payment.fraud_warning_id,
            hold=hold,
            final=final,
            note=why,
        )
    )
    return recorded, why


def _refund_failed(ledger: Ledger, onboarding: Onboarding, payment: Payment, why: str) -> bool:
    """Provision-or-refund refunded the purchase in full: less refunded now
    means Stripe could not return the money (a closed card, a bank's refusal).
    Marks the onboarding ``refund_failed`` for a person; True if it did."""
    if payment.refunded_in_full or not refunded_by_csonboard(onboarding, payment.payment_intent):
        return False
    session_id = onboarding.session_id
    return ledger.onboardings.refund_failed(
        session_id,
        f"Stripe could not refund {payment.charge_id} ({why}); once the cause is fixed, "
        f"csonboard refund {session_id} tries again",
    )


def _purchase(
    ledger: Ledger, stripe: StripeGateway, payment: Payment
) -> tuple[Onboarding | None, str | None]:
    """The onboarding and session the charge paid for (traced once, then kept)."""
    known = ledger.payments.get(payment.charge_id)
    session_id = known.session_id if known else None
    if session_id is None and payment.payment_intent is not None:
        session_id, subscription_id = stripe.purchase_of_payment(payment.payment_intent)
        if subscription_id is not None:
            found = ledger.onboardings.find(subscription_id=subscription_id, limit=1)
            sessions = [found[0].session_id] if found else []
            sessions = sessions or stripe.sessions_of_subscription(subscription_id)
            session_id = sessions[0] if sessions else None
    onboarding = ledger.onboardings.get(session_id) if session_id else None
    if session_id is not None and onboarding is None:
        # Sold through Checkout, but its onboarding has not begun: retried
        # until it has, so the money news is applied to it.
        raise TransientError(f"{payment.charge_id} paid for {session_id}, not onboarded yet")
    return onboarding, session_id


def _answer_fraud(
    stripe: StripeGateway,
    policy: MoneySettings,
    payment: Payment,
    onboarding: Onboarding | None,
) -> bool:
    """Under ``money.early_fraud_warning = "refund"``, for a warned charge of a
    purchase csonboard onboarded: refund what is left of it while the warning
    is actionable (not yet refunded nor disputed), and once it is refunded in
    full cancel its subscription -- also on a retry after the refund went
    through and the cancellation did not. True when csonboard answered it."""
    if policy.early_fraud_warning != "refund" or payment.fraud_warning_id is None:
        return False
    if onboarding is None:
        return False  # not csonboard's purchase: recorded only
    refunded = payment.refunded_in_full
    if payment.fraud_warning_actionable and not refunded and payment.dispute_status is None:
        stripe.refund(
            payment.charge_id,
            reason="fraudulent",
            idempotency_key=f"csonboard-fraud-refund-{payment.charge_id}",
        )
        refunded = True
    if refunded and onboarding.subscription_id is not None:
        stripe.cancel_subscription(
            onboarding.subscription_id,
            idempotency_key=f"csonboard-fraud-cancel-{onboarding.subscription_id}",
        )
    return refunded


def _answer_dispute(
    ledger: Ledger,
    stripe: StripeGateway,
    catalog: Catalog,
    payment: Payment,
    onboarding: Onboarding,
) -> bool:
    """Submit csonboard's evidence for a dispute awaiting a response, once (a
    key per dispute; recorded after). False when there is none to give."""
    if payment.dispute_id is None or payment.dispute_status not in AWAITING_RESPONSE:
        return False
    evidence = evidence_of(ledger, catalog, onboarding)
    if evidence is None:
        return False
    try:
        stripe.submit_dispute_evidence(
            payment.dispute_id,
            evidence,
            idempotency_key=f"csonboard-evidence-{payment.dispute_id}",
        )
    except CsonboardError as exc:
        # Best effort: the hold is applied whatever becomes of the evidence.
        log.warning("evidence for dispute %s not submitted: %s", payment.dispute_id, exc)
        return False
    ledger.payments.evidence_submitted(payment.charge_id)
    return True


def money_routes(
    ledger: Ledger,
    doorbell: Doorbell,
    stripe: StripeGateway,
    policy: MoneySettings,
    catalog: Catalog,
) -> dict[str, EventHandler]:
    """Handlers for :data:`MONEY_EVENTS`: each finds its charge and follows it."""

    def handle(record: EventRecord) -> Outcome:
        object_id = record.object_id or ""
        if object_id.startswith(("ch_", "py_")):
            charge_id: str | None = object_id
        elif object_id:
            charge_id = stripe.charge_of(object_id)
        else:
            return Outcome("ignored", f"event {record.id} names no object")
        if charge_id is None:
            return Outcome("ignored", f"Stripe has no {object_id}, or it names no charge")
        return follow_charge(ledger, doorbell, stripe, policy, catalog, charge_id)

    return dict.fromkeys(MONEY_EVENTS, handle)
