"""The HTTP side of csonboard: Stripe's webhook endpoint, the health checks,
the metrics and the buyer's status page.

``create_app`` is the only entry point. The request path never calls Stripe or
ComputeStacks: it verifies, stores, rings the queue and answers.
"""

from csonboard_webhooks.app import create_app

__all__ = ["create_app"]
