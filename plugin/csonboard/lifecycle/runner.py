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

from csonboard.errors import (
    ComputeStacksNotFound,
    CsonboardError,
    LeaseLost,
    TransientError,
)
from csonboard.ledger import Ledger, Onboarding
from csonboard.ledger.lifecycle import Account, SubscriptionFacts
from csonboard.ledger.onboardings import REFUND_ENDED
from csonboard.lifecycle.journal import Journal
from csonboard.lifecycle.plan_change import change_plan
from csonboard.lifecycle.policy import ORPHANED, Decision, decide, held
from csonboard.lifecycle.power import forget_purchase, start_purchase, stop_purchase
from csonboard.lifecycle.purchases import (
    Hold,
    bought_prices,
    holds,
    made_by_csonboard,
    nothing_else_live,
    out_of_service,
    projects_of,
    refunded_user,
)
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
    journal: Journal
    holds: dict[str, Hold] = dataclasses.field(default_factory=dict)
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
            self.doorbell.ring_or_log("account", customer_id)
        elif recheck:
            self.doorbell.ring_or_log("account", customer_id, recheck)
        log.info("lifecycle reconciled", extra={"customer_id": customer_id, "status": status})

    def _reconcile(self, account: Account) -> _Pass:
        customer = account.customer_id
        onboardings = self.ledger.onboardings.find(customer_id=customer, limit=10_000)
        done = [o for o in onboardings if o.status == "done" and o.cs_user_id is not None]
        cs_user_id = done[0].cs_user_id if done else refunded_user(self.ledger, onboardings)
        work = _Pass(
            account,
            onboardings,
            cs_user_id,
            Journal(self.ledger, self.name, customer, cs_user_id),
            holds(self.ledger, done),
        )
        for facts in self.ledger.lifecycle.subscriptions(customer):
            if facts.ours is not False and facts.terminated_at is None:
                self._subscription(work, facts)
        for onboarding in done:
            if onboarding.subscription_id is None:
                self._one_time(work, onboarding)
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
        if onboarding.status in ("closed", "refunding", *REFUND_ENDED):
            work.journal.save(
                dataclasses.replace(facts, ours=False, reason="its checkout provisioned nothing"),
            )
            return
        if onboarding.status != "done":
            work.waiting.append(sub_id)
            return
        now = self.ledger.now()
        subscription = self.services.stripe.subscription(sub_id)
        decision = decide(
            subscription,
            past_due_since=facts.past_due_since,
            ended_seen_at=facts.ended_seen_at,
            policy=self.policy,
            now=now,
        )
        hold = work.holds.get(onboarding.session_id)
        if hold is not None:
            decision = held(decision, hold.reason, hold.final_since, policy=self.policy, now=now)
        prices = tuple(sorted(i.price_id for i in subscription.items if i.price_id))
        baseline = facts.price_ids or bought_prices(self.ledger, onboarding)
        if prices != baseline:
            status, reason = change_plan(self.services, self.ledger, onboarding, subscription)
            work.journal.record(
                "plan_change" if status == "needs_operator" else "resize",
                status,
                reason,
                sub_id,
            )
        terminated_at = facts.terminated_at
        if decision.terminate and hold is not None and subscription.status != "canceled":
            # Ended for its money (refunded, dispute lost): Stripe must not
            # bill on for a service that is gone.
            self.services.stripe.cancel_subscription(
                sub_id, idempotency_key=f"csonboard-money-cancel-{sub_id}"
            )
            work.journal.record("cancel", "done", f"{hold.reason}: subscription cancelled", sub_id)
        if decision.terminate:
            self._terminate(work, onboarding, decision.reason)
            terminated_at = now
        elif decision.stop:
            self._stop(work, onboarding, decision.reason)
        else:
            self._start(work, onboarding, "paid again")
        work.journal.save(
            dataclasses.replace(
                facts,
                stripe_status=subscription.status,
                price_ids=prices,
                past_due_since=decision.past_due_since,
                ended_seen_at=decision.ended_seen_at,
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

    def _one_time(self, work: _Pass, onboarding: Onboarding) -> None:
        """A one-time purchase is in service unless its money went back: then
        stopped, and deleted after the retention once the money is gone for
        good; started again when the hold is lifted (a dispute won)."""
        hold = work.holds.get(onboarding.session_id)
        if hold is None:
            self._start(work, onboarding, "its money came back")
            return
        if hold.terminated:
            return
        decision = held(
            None, hold.reason, hold.final_since, policy=self.policy, now=self.ledger.now()
        )
        if decision.terminate:
            self._terminate(work, onboarding, decision.reason)
            self.ledger.payments.terminated(onboarding.session_id)
            return
        self._stop(work, onboarding, decision.reason)
        work.decisions[onboarding.session_id] = decision

    def _adopt(self, work: _Pass, facts: SubscriptionFacts) -> bool:
        """A subscription no onboarding names yet: if a Checkout Session made it,
        start that onboarding (and wait for it); else it is not ours."""
        sessions = self.services.stripe.sessions_of_subscription(facts.subscription_id)
        if not sessions:
            work.journal.save(
                dataclasses.replace(
                    facts, ours=False, reason="not sold through a Checkout Session"
                ),
            )
            return False
        for session_id in sessions:
            if self.ledger.onboardings.start(
                session_id, livemode=self.services.livemode, source="lifecycle"
            ):
                self.doorbell.ring_or_log("onboarding", session_id)
        return True

    def _stop(self, work: _Pass, onboarding: Onboarding, reason: str) -> None:
        """Take the purchase out of service: stop its running services."""
        change = stop_purchase(self.services.cs, self.ledger, self.name, onboarding, reason)
        sub = onboarding.subscription_id
        if change.changed:
            shown = _ids(change.changed)
            work.journal.record("stop", "done", f"{reason}: stopped services {shown}", sub)
        if change.left_alone:
            work.journal.record_once(
                "stop",
                "declined",
                f"services {_ids(change.left_alone)} were already stopped, not by "
                "csonboard: left as they are, and csonboard will not start them",
            )

    def _start(self, work: _Pass, onboarding: Onboarding, why: str) -> None:
        """Back in service: start the services csonboard stopped (only those)."""
        change = start_purchase(self.services.cs, self.ledger, self.name, onboarding)
        if change.changed:
            work.journal.record(
                "start",
                "done",
                f"{why}: started services {_ids(change.changed)} (those csonboard had stopped)",
                onboarding.subscription_id,
            )

    def _terminate(self, work: _Pass, onboarding: Onboarding, reason: str) -> None:
        projects = projects_of(self.ledger, onboarding)
        for project_id in projects:
            with contextlib.suppress(ComputeStacksNotFound):  # already gone
                self.services.cs.delete_project(project_id)
        forget_purchase(self.ledger, self.name, onboarding)
        shown = ", ".join(f"#{p}" for p in projects) or "none"
        work.journal.record(
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
        customer = work.account.customer_id
        if not nothing_else_live(self.ledger, customer, work.onboardings, ending):
            return
        if not made_by_csonboard(self.ledger, work.onboardings, work.cs_user_id):
            work.journal.record_once(
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
            work.journal.record_once(
                "delete_user",
                "declined",
                f"user #{work.cs_user_id} has projects csonboard did not make "
                f"({', '.join(f'#{p}' for p in unknown)}): not deleted",
            )
            return
        with contextlib.suppress(ComputeStacksNotFound):
            self.services.cs.delete_user(work.cs_user_id)
        work.journal.record("delete_user", "done", "no other projects through csonboard", sub)

    def _align_user(self, work: _Pass) -> None:
        """The user is active while any of the customer's purchases is in service
        (or on its way: an onboarding in progress), and suspended by csonboard when
        none is -- also once everything is terminated, so an emptied account with
        ``bypass_billing`` cannot order for free. Only csonboard's own suspension
        is ever lifted, and not one of a user whose Stripe customer is gone
        (drift's ``orphan_user`` repair) while it stays gone; declining is
        recorded."""
        assert work.cs_user_id is not None
        out = out_of_service(self.ledger, work.account.customer_id, work.onboardings)
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
                work.journal.suspension(reason)
                self.services.cs.suspend_user(user.id)
                work.journal.record("suspend", "done", reason)
            elif ours is None:
                work.journal.record_once(
                    "suspend",
                    "declined",
                    "already suspended, not by csonboard; left as it is",
                )
            elif ours != reason:
                work.journal.suspension(reason)
            return
        if ours is not None and ours.startswith(ORPHANED):
            found = self.services.stripe.customer(work.account.customer_id)
            if found is None or found.deleted:
                return  # the customer is still gone: drift's suspension stands
        if ours is not None:
            if not user.active:
                self.services.cs.unsuspend_user(user.id)
                work.journal.record(
                    "unsuspend", "done", f"a purchase is in service again (was: {ours})"
                )
            work.journal.suspension(None)
        elif not user.active:
            work.journal.record_once(
                "unsuspend",
                "declined",
                f"user #{user.id} is suspended, but not by csonboard: not lifted",
            )

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
            self.doorbell.ring_or_log("account", account.customer_id, retry_at)


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)
