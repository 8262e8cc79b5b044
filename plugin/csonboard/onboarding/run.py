"""What a step sees: the session being onboarded, earlier results, and the
services it may call. Steps save progress through :meth:`Run.save`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from csonboard.computestacks import ComputeStacksClient
from csonboard.errors import LeaseLost
from csonboard.ledger import Ledger, Onboarding
from csonboard.plans import Catalog
from csonboard.settings import OnboardingSettings
from csonboard.stripe_api import StripeGateway


@dataclass(frozen=True)
class Services:
    """The outside world, as the steps use it."""

    stripe: StripeGateway
    cs: ComputeStacksClient  # acting as the admin
    catalog: Catalog
    policy: OnboardingSettings
    livemode: bool


@dataclass
class Run:
    """One worker's pass over one onboarding, under its lease."""

    onboarding: Onboarding
    owner: str
    ledger: Ledger
    services: Services
    lease_seconds: float
    clock: Callable[[], datetime]
    results: dict[str, dict[str, Any]]
    partial: dict[str, dict[str, Any]]
    fields: dict[str, Any] = field(default_factory=dict)
    """Onboarding columns the current step learnt (customer_id, cs_user_id, ...);
    written with the step's checkpoint."""

    @property
    def session_id(self) -> str:
        return self.onboarding.session_id

    def result(self, step: str) -> dict[str, Any]:
        """The checkpointed result of an earlier step."""
        return self.results[step]

    def save(self, step: str, progress: dict[str, Any]) -> None:
        """Checkpoint a step's progress before its next side effect (it is kept
        if the step fails or the worker dies). Raises LeaseLost."""
        self.partial[step] = progress
        if not self.ledger.onboardings.checkpoint(
            self.session_id,
            self.owner,
            step,
            progress,
            done=False,
            lease_seconds=self.lease_seconds,
        ):
            raise LeaseLost(f"lost the lease on onboarding {self.session_id}")
