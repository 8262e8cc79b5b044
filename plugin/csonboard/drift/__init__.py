"""Drift: where Stripe and ComputeStacks disagree about a customer, and its repair.

``views`` reads both sides (the whole installation, or one customer now),
``rules`` says what each customer should have and lists the differences,
``repair`` confirms and repairs one customer under its lifecycle lease, and
``passes`` walks every customer in resumable pages. Drift never deletes.
"""

from csonboard.drift.passes import Drift, PassReport, due
from csonboard.drift.repair import Repairer
from csonboard.ledger.drift import KINDS, DriftItem

__all__ = ["KINDS", "Drift", "DriftItem", "PassReport", "Repairer", "due"]
