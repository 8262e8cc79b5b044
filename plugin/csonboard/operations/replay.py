"""Replays: an operator asks for work to be done again.

- :func:`replay_events`: events already in the ledger are made due again; with
  a ``fetch`` function (``--from-stripe``) events the ledger lacks are read from
  the Stripe API (source ``stripe_api``) and stored first.
- :func:`replay_file`: events exported from the Stripe Dashboard or CLI are
  stored unsigned, with source ``operator``: the operator vouches for them.
- :func:`replay_session`: a Checkout Session's onboarding resumes at its first
  unfinished step, or re-runs from a named step (its checkpoint and those after
  it are dropped first).

Failure policy: nothing here raises for one item that cannot be replayed; each
item gets a :class:`Replayed` saying what happened, and the caller decides the
exit status. Ledger outages and Stripe being unreachable do raise (the whole
request failed). With ``dry_run`` the ledger and the queue are left untouched;
``fetch`` may still read from Stripe, which changes nothing there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from csonboard.errors import StripeRefused, WebhookRejected
from csonboard.ledger import EventRecord, IncomingEvent, Ledger, Onboarding, OrderRecord
from csonboard.ledger.onboardings import ABANDONED, COMPLETED, REFUND_ENDED
from csonboard.onboarding import STEP_NAMES
from csonboard.operations.ringing import ring_all
from csonboard.queue import Doorbell
from csonboard.webhook import parse_event

STRIPE_KEEPS_EVENTS_DAYS = 30


@dataclass(frozen=True)
class Replayed:
    """What became of one requested replay."""

    ident: str
    ok: bool
    message: str


@dataclass
class ReplayReport:
    items: list[Replayed] = field(default_factory=list)
    warning: str | None = None
    """Set when the work is due in the ledger but the queue could not be rung."""

    @property
    def failed(self) -> list[Replayed]:
        return [item for item in self.items if not item.ok]


# -- events ---------------------------------------------------------------------------------


def replay_events(
    ledger: Ledger,
    doorbell: Doorbell | None,
    event_ids: Sequence[str],
    *,
    fetch: Callable[[str], bytes | None] | None = None,
    livemode: bool = False,
    dry_run: bool = False,
) -> ReplayReport:
    """Re-process each event. ``fetch`` (the Stripe API's event body, None for
    "no such event") is used for events the ledger does not have; ``livemode``
    is the mode fetched events must be in. ``doorbell`` may be None for a dry run."""
    report = ReplayReport()
    queued: list[str] = []
    for event_id in dict.fromkeys(event_ids):
        record = ledger.events.get(event_id)
        if record is not None:
            item = _requeue_event(ledger, record, dry_run)
        elif fetch is None:
            item = Replayed(
                event_id,
                False,
                "not in the ledger; add --from-stripe to fetch it from the Stripe API "
                f"(Stripe keeps events {STRIPE_KEEPS_EVENTS_DAYS} days), or give an "
                "exported copy with --file",
            )
        else:
            item = _fetch_event(ledger, event_id, fetch, livemode, dry_run)
        report.items.append(item)
        if item.ok and not dry_run:
            queued.append(event_id)
    if doorbell is not None:
        report.warning = ring_all(doorbell, "event", queued)
    return report


def replay_file(
    ledger: Ledger,
    doorbell: Doorbell | None,
    path: Path,
    *,
    livemode: bool,
    dry_run: bool = False,
) -> ReplayReport:
    """Store and re-process the events in an exported file (see :func:`read_event_file`).
    An event the ledger already has is replayed from the ledger's copy."""
    report = ReplayReport()
    queued: list[str] = []
    for incoming in read_event_file(path, livemode=livemode):
        record = ledger.events.get(incoming.id)
        if record is not None:
            item = _requeue_event(ledger, record, dry_run)
            item = Replayed(item.ident, item.ok, f"already in the ledger; {item.message}")
        else:
            item = _store(ledger, incoming, "read from the file", dry_run)
        report.items.append(item)
        if item.ok and not dry_run:
            queued.append(incoming.id)
    if doorbell is not None:
        report.warning = ring_all(doorbell, "event", queued)
    return report


def read_event_file(path: Path, *, livemode: bool) -> list[IncomingEvent]:
    """The events in ``path``: one event as JSON (``stripe events retrieve``, the
    Dashboard's event view), a JSON array of events, or a list object
    (``stripe events list``). A single event keeps its exact bytes; events
    taken out of an array are stored as re-serialised JSON.

    Raises WebhookRejected naming the file for anything unreadable, an
    object that is not a snapshot event, or an event of the other mode.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WebhookRejected(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WebhookRejected(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and data.get("object") == "list":
        data = data.get("data")
    if isinstance(data, dict):
        return [_parse(path, raw, livemode)]
    if not isinstance(data, list) or not data:
        raise WebhookRejected(f"{path} holds no Stripe event (expected an event, a list of them)")
    return [
        _parse(path, json.dumps(item).encode("utf-8"), livemode, index)
        for index, item in enumerate(data)
    ]


def _parse(path: Path, body: bytes, livemode: bool, index: int | None = None) -> IncomingEvent:
    try:
        return parse_event(body, livemode=livemode, signature=None, source="operator")
    except WebhookRejected as exc:
        where = f"{path}" if index is None else f"{path}, item {index}"
        raise WebhookRejected(f"{where}: {exc}") from None


def _requeue_event(ledger: Ledger, record: EventRecord, dry_run: bool) -> Replayed:
    was = _describe_event(record)
    if _leased(record.status, "processing", record.lease_expires_at, ledger.now()):
        return Replayed(
            record.id, False, f"a worker is processing it now ({was}); let it finish first"
        )
    if dry_run:
        return Replayed(record.id, True, f"would be re-processed ({was}){_hint(ledger, record)}")
    if not ledger.events.requeue([record.id]):
        return Replayed(record.id, False, "a worker took it meanwhile; let it finish first")
    return Replayed(record.id, True, f"queued again ({was}){_hint(ledger, record)}")


def _fetch_event(
    ledger: Ledger,
    event_id: str,
    fetch: Callable[[str], bytes | None],
    livemode: bool,
    dry_run: bool,
) -> Replayed:
    body = fetch(event_id)
    if body is None:
        return Replayed(
            event_id,
            False,
            f"Stripe has no event {event_id}: the id is wrong, or the event is older than "
            f"the {STRIPE_KEEPS_EVENTS_DAYS} days Stripe keeps events. For a purchase run "
            "`csonboard reconcile --since 90d` or `csonboard replay --session cs_...`; "
            "or replay an exported copy with --file",
        )
    try:
        incoming = parse_event(body, livemode=livemode, signature=None, source="stripe_api")
    except WebhookRejected as exc:
        return Replayed(event_id, False, f"Stripe's copy cannot be used: {exc}")
    return _store(ledger, incoming, "fetched from Stripe", dry_run)


def _store(ledger: Ledger, incoming: IncomingEvent, how: str, dry_run: bool) -> Replayed:
    what = f"{incoming.type}" + (f" for {incoming.object_id}" if incoming.object_id else "")
    if dry_run:
        return Replayed(incoming.id, True, f"{how} ({what}); would be stored and processed")
    if not ledger.events.add(incoming):
        # It arrived (by webhook) between our look and our insert.
        ledger.events.requeue([incoming.id])
        return Replayed(incoming.id, True, f"arrived meanwhile; queued again ({what})")
    return Replayed(incoming.id, True, f"{how}, stored (source {incoming.source}), queued ({what})")


def _describe_event(record: EventRecord) -> str:
    was = f"{record.type}, was {record.status}"
    if record.status in ("failed", "dead") and record.last_error:
        was += f" after {record.attempts} tries: {record.last_error}"
    elif record.status in ("done", "ignored") and record.outcome:
        was += f": {record.outcome}"
    return was


def _hint(ledger: Ledger, record: EventRecord) -> str:
    """Re-processing a Checkout event never re-runs a finished onboarding; say so."""
    if not record.object_id or not record.object_id.startswith("cs_"):
        return ""
    onboarding = ledger.onboardings.get(record.object_id)
    if onboarding is None or onboarding.status not in ("dead", "stuck", "closed"):
        return ""
    return (
        f". Its onboarding is {onboarding.status}, which this does not change: "
        f"`csonboard replay --session {record.object_id}` re-runs it"
    )


# -- sessions -------------------------------------------------------------------------------


def replay_session(
    ledger: Ledger,
    doorbell: Doorbell,
    session_id: str,
    *,
    from_step: str | None = None,
    livemode: Callable[[], bool],
    check_session: Callable[[str], Any] | None = None,
    order_state: OrderState | None = None,
) -> ReplayReport:
    """Resume the session's onboarding, or re-run it from ``from_step``.

    Without an onboarding (its webhook never came) one is created, after
    ``check_session`` (Stripe's copy of the session; raises StripeRefused when
    there is none) confirms the id, so a typo does not leave a dead record.
    A worker holding the onboarding's lease wins: the replay is refused.

    A replay from ``place_order`` (or earlier) abandons the orders that did
    not complete and places new ones, so it is refused while one of them may
    still complete: each order the ledger does not know to have failed is
    looked up with ``order_state`` (ComputeStacks' status and project of an
    order, None when it is gone) and must have failed, been cancelled or be
    gone; one that failed is recorded with the project it left, which
    ``place_order`` deletes. Without ``order_state`` such a replay is refused.
    """
    report = ReplayReport()
    report.items.append(
        _replay_session(ledger, session_id, from_step, livemode, check_session, order_state)
    )
    if report.items[0].ok and report.items[0].message != _NOTHING_TO_DO:
        report.warning = ring_all(doorbell, "onboarding", [session_id])
    return report


_NOTHING_TO_DO = (
    "already done: nothing to resume. --from-step STEP re-runs steps "
    "(--from-step link_back rewrites the Stripe metadata)"
)


def _replay_session(
    ledger: Ledger,
    session_id: str,
    from_step: str | None,
    livemode: Callable[[], bool],
    check_session: Callable[[str], Any] | None,
    order_state: OrderState | None,
) -> Replayed:
    onboarding = ledger.onboardings.get(session_id)
    if onboarding is None:
        if check_session is not None:
            try:
                check_session(session_id)
            except StripeRefused as exc:
                return Replayed(session_id, False, f"no onboarding, and {exc}")
        ledger.onboardings.start(session_id, livemode=livemode(), source="operator replay")
        return Replayed(session_id, True, "had no onboarding: created it; every step runs")
    if onboarding.status == "done" and from_step is None:
        return Replayed(session_id, True, _NOTHING_TO_DO)
    if onboarding.status in ("refunding", *REFUND_ENDED):
        return Replayed(
            session_id,
            False,
            f"{onboarding.status}: its payment was (or is being) refunded, so it is never "
            "provisioned again; the buyer can buy anew"
            + (
                f" (csonboard refund {session_id} tries the refund again)"
                if onboarding.status == "refund_failed"
                else ""
            ),
        )
    if _leased(onboarding.status, "running", onboarding.lease_expires_at, ledger.now()):
        return Replayed(session_id, False, busy_message(onboarding))
    forget = forgotten_steps(from_step)
    steps = ledger.onboardings.steps(session_id)
    unplaced = [o for o in ledger.onboardings.orders(session_id) if o.status != COMPLETED]
    if "place_order" in forget:
        refusal = _may_still_complete(ledger, unplaced, order_state)
        if refusal is not None:
            return Replayed(session_id, False, refusal)
        unplaced = [o for o in ledger.onboardings.orders(session_id) if o.status != COMPLETED]
    leftovers = leftovers_to_delete(ledger, session_id, unplaced if "place_order" in forget else ())
    note = f"replayed by an operator{f' from {from_step}' if from_step else ''}"
    if not ledger.onboardings.requeue([session_id], forget_steps=forget, note=note):
        return Replayed(session_id, False, "a worker took it meanwhile; try again later")
    kept = {s.step for s in steps if s.status == "done"} - set(forget)
    resume_at = next((name for name in STEP_NAMES if name not in kept), None)
    was = f"was {onboarding.status}" + (f" at {onboarding.step}" if onboarding.step else "")
    message = f"queued ({was}); runs from {resume_at}"
    if forget:
        message += f"; checkpoints of {', '.join(forget)} dropped"
    if "place_order" in forget and unplaced:
        orders = ", ".join(o.order_id for o in unplaced)
        message += f"; order(s) without a project abandoned, placed anew: {orders}"
    if leftovers and "place_order" not in kept:
        shown = ", ".join(f"#{o.leftover} (order {o.order_id})" for o in leftovers)
        message += f"; project(s) failed orders left are deleted before ordering: {shown}"
    return Replayed(session_id, True, message)


OrderState = Callable[[str], tuple[str, int | None] | None]
"""ComputeStacks' status of an order and its project; None when it is gone."""
ENDED = ("failed", "cancelled")
"""Order statuses that can no longer change: such an order may be abandoned."""


def _may_still_complete(
    ledger: Ledger, unplaced: Sequence[OrderRecord], order_state: OrderState | None
) -> str | None:
    """Why abandoning ``unplaced`` could duplicate a project (see
    :func:`replay_session`), or None when none of them can complete any more
    (those ComputeStacks says ended are recorded with what they left)."""
    for order in unplaced:
        if order.status in ENDED:
            continue
        if order_state is None:
            return (
                f"order {order.order_id} is {order.status} in the ledger and ComputeStacks "
                "cannot be asked whether it may still complete; replaying from place_order "
                "could order a second project (set cs.url and the admin credential)"
            )
        state = order_state(order.order_id)
        if state is None:
            continue  # gone from ComputeStacks (its user or project deleted)
        status, project_id = state
        if status in ENDED:
            ledger.onboardings.order_ended(order.order_id, status, project_id)
        elif status == COMPLETED:
            return (
                f"order {order.order_id} completed in ComputeStacks (project #{project_id}): "
                "replaying from place_order would order a second project; replay without "
                "--from-step (or --from-step await_project) to take this one"
            )
        else:
            return (
                f"order {order.order_id} is still {status} in ComputeStacks and may complete; "
                "replaying from place_order now would order a second project. Wait until it "
                "ends (a replay without --from-step takes its project once it completes), or "
                "cancel it in ComputeStacks, then replay"
            )
    return None


def leftovers_to_delete(
    ledger: Ledger, session_id: str, abandoning: Sequence[OrderRecord] = ()
) -> list[OrderRecord]:
    """The orders whose leftover project ``place_order`` deletes when it runs next:
    those already abandoned with their project not yet deleted, and those a
    replay from place_order is about to abandon (``abandoning``) that left one."""
    already = [
        o
        for o in ledger.onboardings.orders(session_id, abandoned=True)
        if o.status == ABANDONED and o.leftover is not None
    ]
    return already + [o for o in abandoning if o.leftover is not None]


def forgotten_steps(from_step: str | None) -> tuple[str, ...]:
    """The steps whose checkpoints a replay from ``from_step`` drops.
    Raises ValueError for a name that is not a step."""
    if from_step is None:
        return ()
    return STEP_NAMES[STEP_NAMES.index(from_step) :]


def busy_message(onboarding: Onboarding) -> str:
    until = onboarding.lease_expires_at.isoformat() if onboarding.lease_expires_at else "?"
    return (
        f"a worker ({onboarding.lease_owner}) is running it now, at {onboarding.step}; "
        f"its lease runs until {until}. Let it finish, then look again "
        f"(`csonboard onboardings show {onboarding.session_id}`)"
    )


def _leased(status: str, working: str, expires: datetime | None, now: datetime) -> bool:
    return status == working and expires is not None and expires >= now
