"""When a purchase's money goes back: refunds, disputes, early fraud warnings.

Every event about a charge (``charge.refunded``, ``refund.*``,
``charge.dispute.*``, ``radar.early_fraud_warning.*``) is handled alike: the
charge is re-read from Stripe with its newest dispute and fraud warning
(:func:`follow_charge`), traced to the Checkout Session that sold it (in payment
mode the session's PaymentIntent; in subscription mode the invoice the payment
paid, and that invoice's subscription), judged (:func:`judge`) and recorded in
the ledger's ``payments``. The customer's lifecycle then applies it under its
lease, as it applies a subscription's state: a held purchase is stopped, and
deleted after the retention once the money is gone for good.
"""

from csonboard.money.follow import MONEY_EVENTS, follow_charge, judge, money_routes

__all__ = ["MONEY_EVENTS", "follow_charge", "judge", "money_routes"]
