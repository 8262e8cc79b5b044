"""Running the lifecycle of one Stripe customer, under its account's lease.

For every subscription of the customer csonboard follows: re-fetch it from
Stripe, decide (``policy.decide``), handle a plan change, delete its projects
when its retention has ended, record the facts and the schedule. Then bring
the ComputeStacks user in line with all of them at once: suspended while any
subscription wants it, unsuspended when none does -- but only a suspension
csonboard made itself is ever lifted.

A subscription whose onboarding has not finished waits for it: the account
sleeps until an onboarding of the customer completes, which wakes it.

Failure policy: as for onboardings (``csonboard.retry``): transient errors are
retried with backoff, then the account is ``dead``; every step is idempotent
(re-deciding from Stripe's current state, suspending a suspended user, deleting
a deleted project), so a retry or a crash repeats nothing harmful.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from csonboard.errors import (
    ComputeStacksNotFound,
    CsonboardError,
    LeaseLost,
    QueueUnavailable,
    TransientError,
)
from csonboard.ledger import Ledger, Onboarding
from csonboard.ledger.lifecycle import Account, SubscriptionFacts
from csonboard.ledger.onboardings import IN_PROGRESS
from csonboard.lifecycle.plan_change import change_plan
from csonboard.lifecycle.policy import Decision, decide
from csonboard.lifecycle.power import forget_purchase, projects_of, start_purchase, stop_purchase
from csonboard.onboarding import Services
from csonboard.queue import Doorbell
from csonboard.retry import next_attempt
from csonboard.settings import LifecycleSettings, WorkerSettings

log = logging.getLogger(__name__)


@dataclass
class _Pass:
    """One pass over one account."""

    account: Account
    onboardings: list[Onboarding]
    cs_user_id: int | None
    waiting: list[str] = dataclasses.field(default_factory=list)
    decisions: dict[str, Decision] = dataclasses.field(default_factory=dict)


class LifecycleRunner:
    """Runs customers' lifecycle work for one worker process."""

    def __init__(
        self,
        ledger: Ledger,
        doorbell: Doorbell,
        services: Services,
        worker: WorkerSettings,
        policy: LifecycleSettings,
        *,
        name: str,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.ledger = ledger
        self.doorbell = doorbell
        self.services = services
        self.worker = worker
        self.policy = policy
        self.name = name
        self._rng = rng

    def run(self, customer_id: str) -> None:
        """Reconcile one customer if their account is due and nobody holds it."""
        account = self.ledger.lifecycle.claim(customer_id, self.name, self.worker.lease_seconds)
        if account is None:
            return
        try:
            work = self._reconcile(account)
        except CsonboardError as exc:
            self._fail(account, exc)
            return
        except Exception as exc:
            log.exception("bug in the lifecycle of customer %s", customer_id)
            self._fail(account, TransientError(f"unexpected {exc.__class__.__name__}: {exc}"))
            return
        recheck = min((d.recheck_at for d in work.decisions.values() if d.recheck_at), default=None)
        status = "waiting" if recheck else ("waiting_onboarding" if work.waiting else "idle")
        note = "; ".join(f"{sub}: {d.reason}" for sub, d in work.decisions.items())
        if work.waiting:
            note = "; ".join(
                filter(None, [note, f"waiting for the onboarding of {', '.join(work.waiting)}"])
            )
        left = self.ledger.lifecycle.release(
            customer_id,
            self.name,
            status=status,
            note=note or None,
            next_attempt_at=recheck,
            cs_user_id=work.cs_user_id,
        )
        if left == "pending":  # news arrived during this pass: once more, now
            self._ring(customer_id)
        elif recheck:
            self._ring(customer_id, recheck)
        log.info("lifecycle reconciled", extra={"customer_id": customer_id, "status": status})

    def _reconcile(self, account: Account) -> _Pass:
        customer = account.customer_id
        onboardings = self.ledger.onboardings.find(customer_id=customer, limit=10_000)
        done = [o for o in onboardings if o.status == "done" and o.cs_user_id is not None]
        work = _Pass(account, onboardings, done[0].cs_user_id if done else None)
        for facts in self.ledger.lifecycle.subscriptions(customer):
            if facts.ours is not False and facts.terminated_at is None:
                self._subscription(work, facts)
        if work.cs_user_id is not None:
            self._align_user(work)
        return work

    def _subscription(self, work: _Pass, facts: SubscriptionFacts) -> None:
        sub_id = facts.subscription_id
        onboarding = next((o for o in work.onboardings if o.subscription_id == sub_id), None)
        if onboarding is None:
            if not self._adopt(work, facts):
                return
            work.waiting.append(sub_id)
            return
        if onboarding.status == "closed":
            self._save(
                work,
                dataclasses.replace(facts, ours=False, reason="its checkout provisioned nothing"),
            )
            return
        if onboarding.status != "done":
            work.waiting.append(sub_id)
            return
        now = self.ledger.now()
        subscription = self.services.stripe.subscription(sub_id)
        decision = decide(
            subscription, past_due_since=facts.past_due_since, policy=self.policy, now=now
        )
        prices = tuple(sorted(i.price_id for i in subscription.items if i.price_id))
        baseline = facts.price_ids or _bought_prices(self.ledger, onboarding)
        if prices != baseline:
            status, reason = change_plan(self.services, self.ledger, onboarding, subscription)
            self._record(
                work,
                "plan_change" if status == "needs_operator" else "resize",
                status,
                reason,
                sub_id,
            )
        terminated_at = facts.terminated_at
        if decision.terminate:
            self._terminate(work, onboarding, decision.reason)
            terminated_at = now
        elif decision.stop:
            self._stop(work, onboarding, decision.reason)
        else:
            self._start(work, onboarding)
        self._save(
            work,
            dataclasses.replace(
                facts,
                stripe_status=subscription.status,
                price_ids=prices,
                past_due_since=decision.past_due_since,
                wants_suspension=decision.stop,
                reason=decision.reason,
                terminated_at=terminated_at,
                ours=True,
            ),
        )
        self.ledger.lifecycle.reschedule(
            self.name,
            work.account.customer_id,
            sub_id,
            decision.planned,
            cs_user_id=work.cs_user_id,
            settled=f"now: {decision.reason}",
        )
        work.decisions[sub_id] = decision

    def _adopt(self, work: _Pass, facts: SubscriptionFacts) -> bool:
        """A subscription no onboarding names yet: if a Checkout Session made it,
        start that onboarding (and wait for it); else it is not ours."""
        sessions = self.services.stripe.sessions_of_subscription(facts.subscription_id)
        if not sessions:
            self._save(
                work,
                dataclasses.replace(
                    facts, ours=False, reason="not sold through a Checkout Session"
                ),
            )
            return False
        for session_id in sessions:
            if self.ledger.onboardings.start(
                session_id, livemode=self.services.livemode, source="lifecycle"
            ):
                self._ring_onboarding(session_id)
        return True

    def _stop(self, work: _Pass, onboarding: Onboarding, reason: str) -> None:
        """Take the purchase out of service: stop its running services."""
        change = stop_purchase(self.services.cs, self.ledger, self.name, onboarding, reason)
        sub = onboarding.subscription_id
        if change.changed:
            shown = _services(change.changed)
            self._record(work, "stop", "done", f"{reason}: stopped services {shown}", sub)
        if change.left_alone:
            self._record_once(
                work,
                "stop",
                "declined",
                f"services {_services(change.left_alone)} were already stopped, not by "
                "csonboard: left as they are, and csonboard will not start them",
            )

    def _start(self, work: _Pass, onboarding: Onboarding) -> None:
        """Back in service: start the services csonboard stopped (only those)."""
        change = start_purchase(self.services.cs, self.ledger, self.name, onboarding)
        if change.changed:
            self._record(
                work,
                "start",
                "done",
                f"paid again: started services {_services(change.changed)} "
                "(those csonboard had stopped)",
                onboarding.subscription_id,
            )

    def _terminate(self, work: _Pass, onboarding: Onboarding, reason: str) -> None:
        projects = projects_of(self.ledger, onboarding)
        for project_id in projects:
            with contextlib.suppress(ComputeStacksNotFound):  # already gone
                self.services.cs.delete_project(project_id)
        forget_purchase(self.ledger, self.name, onboarding)
        shown = ", ".join(f"#{p}" for p in projects) or "none"
        self._record(
            work,
            "terminate",
            "done",
            f"{reason}; retention ended: deleted projects {shown}",
            onboarding.subscription_id,
        )
        if self.policy.delete_user and work.cs_user_id is not None:
            self._delete_user(work, onboarding)

    def _delete_user(self, work: _Pass, ending: Onboarding) -> None:
        """Delete the emptied user, only if csonboard made it, no other purchase
        of the customer is live, and ComputeStacks holds no project csonboard
        does not know (listed now, not assumed)."""
        assert work.cs_user_id is not None
        sub = ending.subscription_id
        if not self._nothing_else_left(work, ending):
            return
        if not _made_by_csonboard(self.ledger, work.onboardings, work.cs_user_id):
            self._record_once(
                work,
                "delete_user",
                "declined",
                f"user #{work.cs_user_id} was not created by csonboard: not deleted",
            )
            return
        known = {
            p for o in work.onboardings if o.status == "done" for p in projects_of(self.ledger, o)
        }
        unknown = [
            p.id for p in self.services.cs.list_user_projects(work.cs_user_id) if p.id not in known
        ]
        if unknown:
            self._record_once(
                work,
                "delete_user",
                "declined",
                f"user #{work.cs_user_id} has projects csonboard did not make "
                f"({', '.join(f'#{p}' for p in unknown)}): not deleted",
            )
            return
        with contextlib.suppress(ComputeStacksNotFound):
            self.services.cs.delete_user(work.cs_user_id)
        self._record(work, "delete_user", "done", "no other projects through csonboard", sub)

    def _nothing_else_left(self, work: _Pass, ending: Onboarding) -> bool:
        live = {
            f.subscription_id
            for f in self.ledger.lifecycle.subscriptions(work.account.customer_id)
            if f.terminated_at is None
        }
        others = [
            o for o in work.onboardings if o.status == "done" and o.session_id != ending.session_id
        ]
        return all(o.subscription_id and o.subscription_id not in live for o in others)

    def _align_user(self, work: _Pass) -> None:
        """The user is active while any of the customer's purchases is in service
        (or on its way: an onboarding in progress), and suspended by csonboard when
        none is -- also once everything is terminated, so an emptied account with
        ``bypass_billing`` cannot order for free. Only csonboard's own suspension
        is ever lifted; declining is recorded."""
        assert work.cs_user_id is not None
        out = self._out_of_service(work)
        if out is None:
            return  # nothing bought yet through csonboard
        user = self.services.cs.get_user(work.cs_user_id)
        ours = work.account.suspended_reason
        if out:
            reason = "no purchase in service: " + "; ".join(out)
            if user.active:
                # Recorded first: if the answer is lost (or this process dies),
                # the suspension is still known to be csonboard's, so a payment
                # lifts it. A retry finds the user active and suspends again.
                self._set_suspension(work, reason)
                self.services.cs.suspend_user(user.id)
                self._record(work, "suspend", "done", reason)
            elif ours is None:
                self._record_once(
                    work,
                    "suspend",
                    "declined",
                    "already suspended, not by csonboard; left as it is",
                )
            elif ours != reason:
                self._set_suspension(work, reason)
            return
        if ours is not None:
            if not user.active:
                self.services.cs.unsuspend_user(user.id)
                self._record(
                    work, "unsuspend", "done", f"a purchase is in service again (was: {ours})"
                )
            self._set_suspension(work, None)
        elif not user.active:
            self._record_once(
                work,
                "unsuspend",
                "declined",
                f"user #{user.id} is suspended, but not by csonboard: not lifted",
            )

    def _out_of_service(self, work: _Pass) -> list[str] | None:
        """Why each of the customer's purchases is out of service; an empty list
        when one is in service (or coming: an onboarding in progress); None when
        the customer bought nothing through csonboard yet."""
        facts = {
            f.subscription_id: f
            for f in self.ledger.lifecycle.subscriptions(work.account.customer_id)
        }
        done = [o for o in work.onboardings if o.status == "done"]
        if any(o.status in IN_PROGRESS for o in work.onboardings):
            return []
        if not done:
            return None
        out = []
        for onboarding in done:
            sub = facts.get(onboarding.subscription_id or "")
            if sub is None or sub.ours is False:
                return []  # a one-time purchase, or one not followed: in service
            if sub.terminated_at is not None:
                out.append(f"{sub.subscription_id}: terminated")
            elif sub.wants_suspension:
                out.append(f"{sub.subscription_id}: {sub.reason}")
            else:
                return []
        return out

    # -- recording under the lease ------------------------------------------------------

    def _save(self, work: _Pass, facts: SubscriptionFacts) -> None:
        self._check(self.ledger.lifecycle.save_facts(self.name, facts))

    def _set_suspension(self, work: _Pass, reason: str | None) -> None:
        self._check(
            self.ledger.lifecycle.set_suspension(self.name, work.account.customer_id, reason)
        )

    def _record(
        self, work: _Pass, action: str, status: str, reason: str, subscription_id: str | None = None
    ) -> None:
        self._check(
            self.ledger.lifecycle.record(
                self.name,
                work.account.customer_id,
                action=action,
                status=status,
                reason=reason,
                subscription_id=subscription_id,
                cs_user_id=work.cs_user_id,
            )
        )
        level = logging.WARNING if status in ("declined", "needs_operator") else logging.INFO
        log.log(
            level,
            "lifecycle %s %s: %s",
            action,
            status,
            reason,
            extra={"customer_id": work.account.customer_id},
        )

    def _record_once(self, work: _Pass, action: str, status: str, reason: str) -> None:
        latest = self.ledger.lifecycle.actions(customer_id=work.account.customer_id, limit=1)
        if not latest or (latest[0].action, latest[0].status, latest[0].reason) != (
            action,
            status,
            reason,
        ):
            self._record(work, action, status, reason)

    def _check(self, held: bool) -> None:
        if not held:
            raise LeaseLost(f"lost the lease on customer {self.name}")

    # -- failure and scheduling ---------------------------------------------------------

    def _fail(self, account: Account, exc: CsonboardError) -> None:
        if isinstance(exc, LeaseLost):
            log.warning("lost the lease on customer %s; another worker has it", account.customer_id)
            return
        attempts = account.attempts + 1
        retry_at = next_attempt(attempts, exc, self.worker, self.ledger.now(), self._rng)
        self.ledger.lifecycle.release(
            account.customer_id,
            self.name,
            status="failed" if retry_at else "dead",
            error=str(exc),
            note=account.note,
            next_attempt_at=retry_at,
            attempts=attempts,
        )
        if retry_at is None:
            log.error(
                "lifecycle dead-lettered: %s", exc, extra={"customer_id": account.customer_id}
            )
        else:
            log.warning(
                "lifecycle failed, retrying at %s: %s",
                retry_at.isoformat(),
                exc,
                extra={"customer_id": account.customer_id},
            )
            self._ring(account.customer_id, retry_at)

    def _ring(self, customer_id: str, eta: datetime | None = None) -> None:
        try:
            self.doorbell.ring("account", customer_id, eta)
        except QueueUnavailable as exc:
            log.warning("could not schedule customer %s (the sweep will): %s", customer_id, exc)

    def _ring_onboarding(self, session_id: str) -> None:
        try:
            self.doorbell.ring("onboarding", session_id)
        except QueueUnavailable as exc:
            log.warning("could not ring for onboarding %s (the sweep will): %s", session_id, exc)


def _services(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def _made_by_csonboard(ledger: Ledger, onboardings: list[Onboarding], user_id: int) -> bool:
    """Whether one of these onboardings created the ComputeStacks user (rather
    than finding or adopting it)."""
    for onboarding in onboardings:
        for step in ledger.onboardings.steps(onboarding.session_id):
            result = step.result
            if (step.step, step.status, result.get("user_id"), result.get("how")) == (
                "ensure_cs_user",
                "done",
                user_id,
                "created",
            ):
                return True
    return False


def _bought_prices(ledger: Ledger, onboarding: Onboarding) -> tuple[str, ...]:
    """The prices the customer checked out with, from the onboarding's record."""
    for step in ledger.onboardings.steps(onboarding.session_id):
        if step.step == "fetch_session":
            return tuple(
                sorted(i["price_id"] for i in step.result.get("line_items", []) if i["price_id"])
            )
    return ()
