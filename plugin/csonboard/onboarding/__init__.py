"""Onboarding: a paid Checkout Session becomes a ComputeStacks user and project.

One record per session (``csonboard.ledger.onboardings``), safe to run many
times and concurrently; its steps (``steps.STEPS``) are checkpointed one by one.
"""

from csonboard.onboarding.run import Services
from csonboard.onboarding.runner import Onboarder
from csonboard.onboarding.steps import STEP_NAMES

__all__ = ["STEP_NAMES", "Onboarder", "Services"]
