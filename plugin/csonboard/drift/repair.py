"""Checking one customer now, and repairing what differs.

:func:`confirm` reads the customer afresh (a :class:`~csonboard.drift.views.Lookup`)
and applies the rules: what it returns is what is really there. With ``fix``
it first takes the customer's account lease -- the lifecycle's, so no
lifecycle pass runs meanwhile -- and repairs each finding with the lifecycle's
own actions (stop and start a purchase's services, resize, suspend, lift
csonboard's suspension), each written to the lifecycle record like any other
action. Then it hands the customer back to the lifecycle, due now, so that it
re-reads Stripe and records what it learnt (a lost cancellation: the end, and
the retention counted from now). The lifecycle's subscription record is
created for a purchase whose events were all lost.

Failure policy: a repair ComputeStacks refuses (a 422, say) is recorded on
its finding as ``failed`` and the others go on; outages, bad settings and a
refused admin credential propagate (the pass is retried or stops). A customer
another worker holds -- or whose lease is lost midway -- is reported ``busy``
and repaired on a later pass. A dead-lettered account stays dead. Nothing is
ever deleted.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from csonboard.computestacks import ComputeStacksClient
from csonboard.drift.rules import (
    Action,
    Finding,
    Record,
    Resize,
    Rules,
    Start,
    Stop,
    Suspend,
    Unsuspend,
    check,
)
from csonboard.drift.views import Lookup
from csonboard.errors import (
    ComputeStacksAuthError,
    ComputeStacksNotFound,
    ComputeStacksValidationError,
    ConfigError,
    LeaseLost,
    PermanentError,
)
from csonboard.ledger import Ledger
from csonboard.ledger.drift import DriftItem
from csonboard.lifecycle.journal import Journal
from csonboard.lifecycle.power import start_service, stop_service
from csonboard.queue import Doorbell
from csonboard.stripe_api import StripeGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repairer:
    """What checking and repairing one customer needs."""

    ledger: Ledger
    cs: ComputeStacksClient
    stripe: StripeGateway
    doorbell: Doorbell
    owner: str
    lease_seconds: float
    livemode: bool

    def confirm(self, customer_id: str, rules: Rules, *, fix: bool) -> list[DriftItem]:
        """The customer's differences, read now; repaired with ``fix``."""
        findings = self._check(customer_id, rules)
        if not fix:
            return [_item(customer_id, f, "open") for f in findings]
        if not any(f.actions for f in findings):
            return [_item(customer_id, f, "left") for f in findings]
        # Decided again under the lease: nothing changes the customer meanwhile.
        account = self.ledger.lifecycle.hold(customer_id, self.owner, self.lease_seconds)
        if account is None:
            return [_item(customer_id, f, "busy" if f.actions else "left") for f in findings]
        try:
            return self._repair(customer_id, rules)
        except LeaseLost:
            log.warning("drift: lost the lease on customer %s; repaired later", customer_id)
            return [_item(customer_id, f, "busy" if f.actions else "left") for f in findings]
        finally:
            # Back to the lifecycle, due now; a dead-lettered account stays dead
            # (its error and attempts kept: it still needs a person).
            dead = account.status == "dead"
            self.ledger.lifecycle.release(
                customer_id,
                self.owner,
                status="dead" if dead else "pending",
                note=account.note,
                error=account.last_error,
                attempts=account.attempts,
            )
            if not dead:
                self.doorbell.ring_or_log("account", customer_id)

    def _check(self, customer_id: str, rules: Rules) -> list[Finding]:
        record = Record.read(self.ledger, customer_id, livemode=self.livemode)
        return check(record, Lookup(self.cs, self.stripe), rules)

    def _repair(self, customer_id: str, rules: Rules) -> list[DriftItem]:
        record = Record.read(self.ledger, customer_id, livemode=self.livemode)
        findings = check(record, Lookup(self.cs, self.stripe), rules)
        # An onboarding may have begun while ComputeStacks was read: its order's
        # project would look unpaid. Such findings wait for the next pass.
        moved = Record.read(self.ledger, customer_id, livemode=self.livemode) != record
        user_id = next((p.onboarding.cs_user_id for p in record.done), None)
        journal = Journal(self.ledger, self.owner, customer_id, user_id)
        items = []
        for finding in findings:
            if not finding.actions:
                items.append(_item(customer_id, finding, "left"))
                continue
            if moved and finding.kind == "unpaid_project":
                items.append(_item(customer_id, finding, "busy"))
                continue
            done: list[str] = []
            try:
                for action in finding.actions:
                    self._apply(action, record, journal)
                    done.append(_verb(action))
            except (ComputeStacksValidationError, PermanentError) as exc:
                if isinstance(exc, ConfigError | ComputeStacksAuthError):
                    raise
                failed = _verb(finding.actions[len(done)])
                refused = f"{finding.fix}: {failed} failed: {exc}" + (
                    f" (done before it: {', '.join(done)})" if done else ""
                )
                journal.record(failed, "failed", f"drift ({finding.kind}): {refused}")
                items.append(_item(customer_id, finding, "failed", fix=refused))
                continue
            journal.record(
                done[0], "done", f"drift ({finding.kind}): {finding.detail}; {finding.fix}"
            )
            items.append(_item(customer_id, finding, "fixed"))
        for purchase in record.done:
            if purchase.onboarding.subscription_id:
                self.ledger.lifecycle.follow(purchase.onboarding.subscription_id, customer_id)
        return items

    def _apply(self, action: Action, record: Record, journal: Journal) -> None:
        customer = record.customer_id
        match action:
            case Stop(service_id, project_id, session_id, reason) if session_id is not None:
                onboarding = next(
                    p.onboarding for p in record.purchases if p.onboarding.session_id == session_id
                )
                stop_service(
                    self.cs, self.ledger, self.owner, onboarding, service_id, project_id, reason
                )
            case Stop(service_id):
                with contextlib.suppress(ComputeStacksNotFound):  # gone: nothing runs
                    self.cs.power(service_id, "stop")
            case Start(service_id):
                start_service(self.cs, self.ledger, self.owner, customer, service_id)
            case Resize(service_id, product_id):
                self.cs.resize_service(service_id, product_id)
            case Suspend(user_id, reason):
                # Recorded first, as the lifecycle does: the suspension is known
                # to be csonboard's even if the answer is lost.
                journal.suspension(reason)
                self.cs.suspend_user(user_id)
            case Unsuspend(user_id):
                self.cs.unsuspend_user(user_id)
                journal.suspension(None)


def _verb(action: Action) -> str:
    return {
        Stop: "stop",
        Start: "start",
        Resize: "resize",
        Suspend: "suspend",
        Unsuspend: "unsuspend",
    }[type(action)]


def _item(customer_id: str, finding: Finding, outcome: str, *, fix: str | None = None) -> DriftItem:
    return DriftItem(
        customer_id=customer_id,
        kind=finding.kind,
        object=finding.object,
        detail=finding.detail,
        fix=fix or finding.fix,
        outcome=outcome,
    )
