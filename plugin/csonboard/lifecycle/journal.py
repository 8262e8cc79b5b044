"""What a lifecycle pass writes down about one customer, under the account's lease.

Every write is refused by the ledger once the lease has passed on; the journal
turns that refusal into LeaseLost, so a pass that lost its customer stops
before doing anything more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from csonboard.errors import LeaseLost
from csonboard.ledger import Ledger
from csonboard.ledger.lifecycle import SubscriptionFacts

log = logging.getLogger(__name__)


@dataclass
class Journal:
    ledger: Ledger
    owner: str
    customer_id: str
    cs_user_id: int | None

    def save(self, facts: SubscriptionFacts) -> None:
        """What was learnt about a subscription."""
        self._check(self.ledger.lifecycle.save_facts(self.owner, facts))

    def suspension(self, reason: str | None) -> None:
        """csonboard now holds the user suspended for ``reason`` (None: it does not)."""
        self._check(self.ledger.lifecycle.set_suspension(self.owner, self.customer_id, reason))

    def record(
        self, action: str, status: str, reason: str, subscription_id: str | None = None
    ) -> None:
        """An action done, declined or needing an operator; also logged."""
        self._check(
            self.ledger.lifecycle.record(
                self.owner,
                self.customer_id,
                action=action,
                status=status,
                reason=reason,
                subscription_id=subscription_id,
                cs_user_id=self.cs_user_id,
            )
        )
        level = logging.WARNING if status in ("declined", "needs_operator") else logging.INFO
        log.log(
            level,
            "lifecycle %s %s: %s",
            action,
            status,
            reason,
            extra={"customer_id": self.customer_id},
        )

    def record_once(self, action: str, status: str, reason: str) -> None:
        """:meth:`record`, unless it is what was recorded last (a state that
        persists is noted once, not on every pass)."""
        latest = self.ledger.lifecycle.actions(customer_id=self.customer_id, limit=1)
        if not latest or (latest[0].action, latest[0].status, latest[0].reason) != (
            action,
            status,
            reason,
        ):
            self.record(action, status, reason)

    def _check(self, held: bool) -> None:
        if not held:
            raise LeaseLost(f"lost the lease on customer {self.customer_id}")
