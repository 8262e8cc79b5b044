"""What the buyer is told: four stages and a plain sentence, derived from the
onboarding's status and its checkpointed steps. Pure: no I/O, no Flask.

Stages and the step whose checkpoint completes each:

=====================  ====================
Payment confirmed      ``fetch_session``
Account created        ``ensure_cs_user``
Project ordered        ``place_order``
Project ready          ``await_project``
=====================  ====================

The project is ready once ``await_project`` is done, even if the last step
(writing ids back to Stripe) is still retrying: that is the operator's
business, not the buyer's. Every stage's state is said in words as well as
shown, so nothing is told by colour alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from csonboard.ledger import Onboarding, StepRecord

State = Literal["in_progress", "retrying", "ready", "awaiting_payment", "failed", "closed"]
StageState = Literal["done", "current", "retrying", "waiting", "failed", "stopped", "not_started"]

STAGES: tuple[tuple[str, str, str], ...] = (
    ("payment", "Payment confirmed", "fetch_session"),
    ("account", "Account created", "ensure_cs_user"),
    ("order", "Project ordered", "place_order"),
    ("ready", "Project ready", "await_project"),
)
READY_STEP = STAGES[-1][2]

_STAGE_WORDS: dict[StageState, str] = {
    "done": "Done",
    "current": "In progress",
    "retrying": "Retrying",
    "waiting": "Waiting for your payment",
    "failed": "Needs our attention",
    "stopped": "Not completed",
    "not_started": "Not started yet",
}

# Status of the onboarding -> (page state, state of the first unfinished stage).
_BY_STATUS: dict[str, tuple[State, StageState]] = {
    "pending": ("in_progress", "current"),
    "running": ("in_progress", "current"),
    "waiting": ("in_progress", "current"),
    "failed": ("retrying", "retrying"),
    "awaiting_payment": ("awaiting_payment", "waiting"),
    "dead": ("failed", "failed"),
    "stuck": ("failed", "failed"),
    "closed": ("closed", "stopped"),
    "done": ("in_progress", "current"),  # done always has await_project done; see below
}

# Seconds before the page looks again, by state; None: nothing more will change
# without a person (ready, closed).
_SLOW = 30


@dataclass(frozen=True)
class Stage:
    key: str
    label: str
    state: StageState
    words: str


@dataclass(frozen=True)
class Progress:
    """The page's content, apart from branding and the sign-in button."""

    state: State
    headline: str
    message: str
    stages: tuple[Stage, ...]
    ready_at: datetime | None
    refresh_seconds: int | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ready_at"] = self.ready_at.isoformat() if self.ready_at else None
        return data


def describe(
    onboarding: Onboarding,
    steps: list[StepRecord],
    *,
    support: str,
    refresh_seconds: int,
) -> Progress:
    """The progress of ``onboarding`` for its buyer. ``support`` is how to reach
    a person, as a phrase ("write to help@example.com")."""
    done = {s.step: s for s in steps if s.status == "done"}
    ready_step = done.get(READY_STEP)
    state, frontier_state = _BY_STATUS.get(onboarding.status, ("in_progress", "current"))
    if ready_step is not None:
        state = "ready"
    stages: list[Stage] = []
    frontier_seen = False
    for key, label, step in STAGES:
        if step in done:
            stage_state: StageState = "done"
        elif not frontier_seen:
            frontier_seen = True
            stage_state = frontier_state
        else:
            stage_state = "not_started"
        stages.append(Stage(key, label, stage_state, _STAGE_WORDS[stage_state]))
    headline, message = _words(state, support)
    refresh: int | None = {
        "ready": None,
        "closed": None,
        "failed": _SLOW,
        "awaiting_payment": _SLOW,
    }.get(state, refresh_seconds)
    ready_at = None
    if ready_step is not None:
        ready_at = ready_step.finished_at or onboarding.finished_at or onboarding.updated_at
    return Progress(state, headline, message, tuple(stages), ready_at, refresh)


def sign_in_open(progress: Progress, now: datetime, window_hours: float) -> bool:
    """Whether "Open your control panel" is offered now: the project is ready
    and became so less than ``window_hours`` ago."""
    if progress.state != "ready" or progress.ready_at is None:
        return False
    return now - progress.ready_at <= timedelta(hours=window_hours)


def _words(state: State, support: str) -> tuple[str, str]:
    if state == "ready":
        return "Your service is ready", "Your project is up and running."
    if state == "retrying":
        return (
            "This is taking a little longer",
            "One step did not work on the first try. We are retrying automatically; "
            "you do not need to do anything.",
        )
    if state == "awaiting_payment":
        return (
            "Payment not confirmed yet",
            "Your payment method takes a while to confirm (some bank payments take a few "
            "business days). We will set up your service as soon as the payment is "
            "confirmed; this page updates by itself.",
        )
    if state == "failed":
        return (
            "We could not finish setting up your service",
            "Our team has been alerted and will finish it or contact you. You do not need "
            f"to pay again. If you have questions, {support}.",
        )
    if state == "closed":
        return (
            "This purchase was not completed",
            "The payment did not go through or the checkout expired, so nothing was set up. "
            f"If you were charged, {support}.",
        )
    return (
        "We are setting up your service",
        "This usually takes a few minutes. This page updates by itself; bookmark it to "
        "come back later.",
    )
