"""A Stripe API stand-in for the Checkout → subscription flow csonboard follows,
and the usage it bills through meters.

The official ``stripe`` library (16.x) talks to it unchanged through
``stripe.StripeClient(api_key, base_addresses={"api": url})``: Stripe's paths,
form-encoded parameters, object shapes (API 2026-10-28), error envelopes,
idempotency keys and signed, retried webhooks. ``/_sandbox/...`` routes play
the buyer and the card network and steer failures and delivery.

Modules: ``state`` (objects and ids), ``forms`` (bracketed parameters),
``shapes``/``billing``/``invoices`` (object builders and invoice steps),
``charges`` (every successful payment's charge and balance transaction),
``invoice_payments`` (what links a paid invoice to its PaymentIntent),
``refunds``, ``disputes`` and ``fraud_warnings`` (money going back, and the card
network's chargebacks, inquiries and early fraud warnings),
``checkout``/``purchase`` (sessions and what buyers do with them),
``payment_links`` (links that open a new session per buyer), ``lifecycle``
(renewals, dunning, pausing, cancellation), ``subscribe`` (subscriptions made
by API), ``subscriptions`` (the ``/v1`` subscription writes), ``customers``
(with deletion), ``prices`` (products and prices, licensed or metered),
``meters`` (billing meters), ``meter_events`` (usage reported to them: the
24-hour identifier and 35-day timestamp windows), ``meter_summaries`` (their
aggregates per customer), ``queries`` (lists),
``errors`` (Stripe's error envelope), ``events``, ``delivery`` (webhooks),
``idempotency``, ``faults``, ``api`` (``/v1``), ``control`` (``/_sandbox``),
``app`` (factory).
"""

from csonboard.sandbox.stripe.account import SandboxAccount, sandbox_account
from csonboard.sandbox.stripe.app import DEFAULT_API_KEY, create_app, run

__all__ = ["DEFAULT_API_KEY", "SandboxAccount", "create_app", "run", "sandbox_account"]
