"""csonboard: a paid Stripe Checkout becomes a running ComputeStacks project.

The core package. It never imports Flask: HTTP lives in ``csonboard_webhooks``
(the receiver) and ``csonboard.sandbox`` (the local stand-ins used by the demo
and the tests). ``csonboard.cli`` is the composition root that wires them.
"""

__version__ = "0.1.0"
