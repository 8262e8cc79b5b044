"""What an operator does from a terminal, as plain functions (the CLI wraps them).

- :mod:`.replay`: re-process events (from the ledger, the Stripe API or an
  exported file) and resume or re-run a Checkout Session's onboarding;
- :mod:`.preview`: what replaying a session would do, changing nothing;
- :mod:`.retry`: re-queue failed, dead-lettered or stuck work in bulk;
- :mod:`.reconcile`: find paid Checkout Sessions without a completed onboarding;
- :mod:`.catalog_check`: check the plan catalog against live ComputeStacks and Stripe
  (its usage entries in :mod:`.usage_check`; what both report in :mod:`.findings`).

Everything here changes work only through the ledger (the truth) and then rings
the queue; a ring that fails is not a failure, because a worker's sweep finds
due work in the ledger anyway.
"""
