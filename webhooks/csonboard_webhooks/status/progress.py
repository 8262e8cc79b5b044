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

Once ready, what the money says comes first: a purchase the lifecycle took out
of service (``csonboard.lifecycle.state``) is ``stopped`` -- why, in the
buyer's words, and how to pay when Stripe has an open invoice -- or
``terminated``. One-click sign-in (:func:`one_click_allowed`) is offered only
for a purchase in service whose onboarding created the ComputeStacks user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from csonboard.ledger import Onboarding, StepRecord
from csonboard.lifecycle.state import ServiceState

State = Literal[
    "in_progress",
    "retrying",
    "ready",
    "awaiting_payment",
    "failed",
    "closed",
    "refunded",
    "stopped",
    "terminated",
]
DELIVERED = ("ready", "stopped", "terminated")
"""Page states of a purchase whose projects were ready once."""
NOT_PAYABLE = ("canceled", "refunded", "disputed")
"""Causes a payment does not lift: no pay link is shown for them."""

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
    "refunding": ("failed", "failed"),
    "refunded": ("refunded", "stopped"),
    "refund_failed": ("failed", "failed"),
    "done": ("in_progress", "current"),  # done always has await_project done; see below
}

# Seconds before the page looks again, by state; None: nothing more will change
# without a person (ready, closed, terminated).
_SLOW = 30
_STOPPED = 60
"""A stopped purchase looks again once a minute, so a payment shows (each look
may read the open invoice from Stripe: not more often)."""


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
    pay_url: str | None = None
    """Stopped for non-payment: Stripe's hosted page of the open invoice."""
    one_click: bool = False
    """Whether one-click sign-in may be offered at all (not in the JSON: the
    page's ``sign_in`` says what the buyer needs to know)."""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("one_click")
        data["ready_at"] = self.ready_at.isoformat() if self.ready_at else None
        return data


def describe(
    onboarding: Onboarding,
    steps: list[StepRecord],
    *,
    support: str,
    refresh_seconds: int,
    service: ServiceState | None = None,
    pay_url: str | None = None,
) -> Progress:
    """The progress of ``onboarding`` for its buyer. ``support`` is how to reach
    a person, as a phrase ("write to help@example.com"). ``service`` is the
    purchase's service state (None: in service); ``pay_url`` the hosted page of
    its subscription's open invoice, if Stripe gave one."""
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
    if state == "ready" and service is not None and not service.in_service:
        state = "stopped" if service.state == "stopped" else "terminated"
    if state != "stopped" or service is None or service.cause in NOT_PAYABLE:
        pay_url = None  # paying an invoice restarts nothing then
    if state in ("stopped", "terminated") and service is not None:
        headline, message = _service_words(service, pay_url, support)
    elif state == "refunded" and _nothing_paid(done):
        headline, message = (
            "We could not set up your service",
            "Nothing was charged for this purchase, so there is nothing to refund. "
            f"If you have questions, {support}.",
        )
    else:
        headline, message = _words(state, support)
    refresh: int | None = {
        "ready": None,
        "closed": None,
        "refunded": None,
        "terminated": None,
        "failed": _SLOW,
        "awaiting_payment": _SLOW,
        "stopped": _STOPPED,
    }.get(state, refresh_seconds)
    ready_at = None
    if ready_step is not None:
        ready_at = ready_step.finished_at or onboarding.finished_at or onboarding.updated_at
    return Progress(
        state,
        headline,
        message,
        tuple(stages),
        ready_at,
        refresh,
        pay_url=pay_url,
        one_click=one_click_allowed(steps),
    )


def one_click_allowed(steps: list[StepRecord]) -> bool:
    """Whether this purchase's onboarding may sign its buyer in with one click:
    it *created* the ComputeStacks user (``ensure_cs_user`` says ``created``),
    for a Stripe customer that is not an earlier buyer's joined to this
    purchase (``ensure_stripe_customer`` neither ``repeat_buyer`` nor naming an
    ``earlier_session``). Checkout does not verify a guest's email, so a user
    found, adopted or joined by email may be someone else's account: its owner
    signs in with their password (docs/security.md)."""
    done = {s.step: s.result for s in steps if s.status == "done"}
    user = done.get("ensure_cs_user")
    customer = done.get("ensure_stripe_customer")
    if user is None or customer is None or user.get("how") != "created":
        return False
    return customer.get("how") != "repeat_buyer" and not customer.get("earlier_session")


def sign_in_open(progress: Progress, now: datetime, window_hours: float) -> bool:
    """Whether "Open your control panel" is offered now: the project is ready
    (and in service), the onboarding made the account (:func:`one_click_allowed`),
    and it became ready less than ``window_hours`` ago."""
    if progress.state != "ready" or progress.ready_at is None or not progress.one_click:
        return False
    return now - progress.ready_at <= timedelta(hours=window_hours)


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _service_words(service: ServiceState, pay_url: str | None, support: str) -> tuple[str, str]:
    """What a buyer is told about a purchase out of service, in their words."""
    if service.cause in ("refunded", "disputed"):
        return _money_words(service, support)
    if service.state == "terminated":
        when = f" on {_day(service.since)}" if service.since else ""
        return (
            "Your service has ended",
            f"Your subscription ended, and the projects of this purchase were deleted{when}. "
            f"If you have questions, {support}.",
        )
    headline = "Your service is paused"
    if service.cause == "canceled":
        kept = (
            f"Your projects are kept until {_day(service.ends_at)}; after that they are deleted."
            if service.ends_at
            else "Your projects are kept for a while; after that they are deleted."
        )
        return (
            headline,
            f"Your subscription has ended, so we have stopped your service. {kept} "
            f"If you want to keep them, {support}.",
        )
    why = {
        "past_due": "We have not received the payment for your subscription",
        "unpaid": "The payment for your subscription did not go through after several tries",
        "paused": "Your subscription is paused",
        None: "Your subscription is not paid up",
    }[service.cause]
    how = (
        "Pay the open invoice and it starts again within a few minutes."
        if pay_url
        else f"To pay and start it again, {support}."
    )
    if service.cause == "paused":
        how = (
            "It starts again within a few minutes of the subscription being resumed. "
            + ("You can pay the open invoice below. " if pay_url else "")
            + f"To resume it, {support}."
        )
    return headline, f"{why}, so we have stopped your service. Your data is kept. {how}"


def _money_words(service: ServiceState, support: str) -> tuple[str, str]:
    """A purchase whose payment was refunded or disputed."""
    what = (
        "Your payment was refunded"
        if service.cause == "refunded"
        else "Your payment is disputed with your card issuer"
    )
    if service.state == "terminated":
        return (
            "Your service has ended",
            f"{what}, and the projects of this purchase were deleted. "
            f"If you have questions, {support}.",
        )
    kept = (
        f"Your projects are kept until {_day(service.ends_at)}; after that they are deleted."
        if service.ends_at
        else "Your data is kept."
    )
    return (
        "Your service is paused",
        f"{what}, so we have stopped your service. {kept} If you have questions, {support}.",
    )


def _nothing_paid(done: dict[str, StepRecord]) -> bool:
    """Whether Checkout took no payment (a free or fully discounted purchase)."""
    session = done.get(STAGES[0][2])
    return session is not None and session.result.get("payment_status") == "no_payment_required"


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
    if state == "refunded":
        return (
            "Your payment was refunded",
            "We could not set up your service, so we have refunded your payment in full; "
            "it reaches your account within a few business days, as your bank handles it. "
            f"If you have questions, {support}.",
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
