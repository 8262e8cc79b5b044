"""Running an onboarding: lease, steps in order, checkpoint after each.

Failure policy (the same as for events, ``csonboard.retry``): a transient error
fails the step and schedules a retry with backoff, up to ``worker.max_attempts``
tries of that step, then ``dead``; a permanent error is ``dead`` at once;
``StillWaiting`` schedules a re-check without counting as a failure;
``OnboardingHalted`` leaves the onboarding in the status it names. A bug is
logged with its traceback and treated as transient, never lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from csonboard.errors import (
    CsonboardError,
    LeaseLost,
    OnboardingHalted,
    QueueUnavailable,
    StillWaiting,
    TransientError,
)
from csonboard.ledger import Ledger
from csonboard.metrics.instruments import timed_step
from csonboard.onboarding.run import Run, Services
from csonboard.onboarding.steps import STEPS, Step
from csonboard.queue import Doorbell, Kind
from csonboard.retry import next_attempt
from csonboard.settings import WorkerSettings

log = logging.getLogger(__name__)


class Onboarder:
    """Runs onboardings for one worker process."""

    def __init__(
        self,
        ledger: Ledger,
        doorbell: Doorbell,
        services: Services,
        policy: WorkerSettings,
        *,
        name: str,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.ledger = ledger
        self.doorbell = doorbell
        self._services = services
        self.policy = policy
        self.name = name
        self._rng = rng

    def run(self, session_id: str) -> None:
        """Take the onboarding's lease if it is due and run its remaining steps."""
        onboarding = self.ledger.onboardings.claim(session_id, self.name, self.policy.lease_seconds)
        if onboarding is None:
            return  # not due, finished, or someone else holds it
        steps = self.ledger.onboardings.steps(session_id)
        run = Run(
            onboarding=onboarding,
            owner=self.name,
            ledger=self.ledger,
            services=self._services,
            lease_seconds=self.policy.lease_seconds,
            clock=self.ledger.now,
            results={s.step: s.result for s in steps if s.status == "done"},
            partial={s.step: s.result for s in steps if s.status != "done"},
        )
        for step, perform in STEPS:
            if step not in run.results and not self._step(run, step, perform):
                return
        # A step may succeed and still leave something for a person to check.
        warnings = [w for result in run.results.values() for w in result.get("warnings", [])]
        note = "; ".join(["onboarded", *warnings])
        self.ledger.onboardings.release(session_id, self.name, status="done", note=note)
        log.info("onboarding done", extra={"session_id": session_id})
        for warning in warnings:
            log.warning("onboarding %s needs a look: %s", session_id, warning)
        # Lifecycle events that came before this onboarding finished wait for it.
        customer = run.results["ensure_stripe_customer"]["customer_id"]
        if self.ledger.lifecycle.wake(customer):
            self._ring_kind("account", customer)

    def _step(self, run: Run, step: str, perform: Step) -> bool:
        """Try one step and checkpoint its result. False when the run stops here
        (waiting, halted, failed or lease lost), with that already recorded."""
        started = time.monotonic()
        tries = self.ledger.onboardings.begin_step(
            run.session_id, self.name, step, self.policy.lease_seconds
        )
        if tries is None:
            self._lease_lost(run.session_id)
            return False
        try:
            with timed_step(step):
                result = perform(run)
        except LeaseLost:
            self._lease_lost(run.session_id)
        except StillWaiting as waiting:
            self._wait(run, step, waiting)
        except OnboardingHalted as halted:
            self._halt(run, step, halted)
        except CsonboardError as exc:
            self._fail(run, step, tries, exc)
        except Exception as exc:
            log.exception("bug in step %s of onboarding %s", step, run.session_id)
            self._fail(
                run, step, tries, TransientError(f"unexpected {exc.__class__.__name__}: {exc}")
            )
        else:
            if not self.ledger.onboardings.checkpoint(
                run.session_id,
                self.name,
                step,
                result,
                done=True,
                lease_seconds=self.policy.lease_seconds,
                **run.fields,
            ):
                self._lease_lost(run.session_id)
                return False
            run.results[step] = result
            run.fields.clear()
            log.info(
                "onboarding step done",
                extra={"session_id": run.session_id, "step": step, "duration_ms": _ms(started)},
            )
            return True
        return False

    def _wait(self, run: Run, step: str, waiting: StillWaiting) -> None:
        retry_at = self.ledger.now() + timedelta(
            seconds=waiting.retry_after or self.policy.backoff_seconds
        )
        self.ledger.onboardings.release(
            run.session_id,
            self.name,
            status="waiting",
            step=step,
            note=str(waiting),
            next_attempt_at=retry_at,
            uncount_try=True,
            **run.fields,
        )
        self._ring(run.session_id, retry_at)

    def _halt(self, run: Run, step: str, halted: OnboardingHalted) -> None:
        stuck = halted.status == "stuck"
        self.ledger.onboardings.release(
            run.session_id,
            self.name,
            status=halted.status,
            step=step,
            step_status="failed" if stuck else None,
            error=str(halted) if stuck else None,
            note=str(halted),
            uncount_try=not stuck,
            **run.fields,
        )
        level = logging.ERROR if stuck else logging.INFO
        log.log(
            level,
            "onboarding %s: %s",
            halted.status,
            halted,
            extra={"session_id": run.session_id, "step": step},
        )

    def _fail(self, run: Run, step: str, tries: int, exc: CsonboardError) -> None:
        retry_at = next_attempt(tries, exc, self.policy, self.ledger.now(), self._rng)
        self.ledger.onboardings.release(
            run.session_id,
            self.name,
            status="failed" if retry_at else "dead",
            step=step,
            step_status="failed",
            error=str(exc),
            next_attempt_at=retry_at,
            **run.fields,
        )
        fields = {"session_id": run.session_id, "step": step, "attempts": tries}
        if retry_at is None:
            log.error("onboarding dead-lettered: %s", exc, extra=fields)
            return
        log.warning(
            "onboarding step failed, retrying at %s: %s", retry_at.isoformat(), exc, extra=fields
        )
        self._ring(run.session_id, retry_at)

    def _lease_lost(self, session_id: str) -> None:
        log.warning("lost the lease on onboarding %s; another worker has it", session_id)

    def _ring(self, session_id: str, eta: datetime) -> None:
        self._ring_kind("onboarding", session_id, eta)

    def _ring_kind(self, kind: Kind, ident: str, eta: datetime | None = None) -> None:
        try:
            self.doorbell.ring(kind, ident, eta)
        except QueueUnavailable as exc:
            log.warning("could not ring for %s %s (the sweep will): %s", kind, ident, exc)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
