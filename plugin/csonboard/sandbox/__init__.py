"""Local stand-ins for the outside world, used by ``csonboard demo`` and the tests.

- ``csonboard.sandbox.computestacks``: a ComputeStacks controller simulator that
  behaves as the controller's source (``ComputeStacks/controller``) does.
- ``csonboard.sandbox.stripe``: a Stripe API stand-in that the official stripe
  library talks to unchanged, and that signs and delivers webhooks.

Both are Flask apps served over real HTTP. Nothing in the core imports this
package; they are separate processes (or threads) in every test, as the real
services would be.
"""
