"""What a customer should have in ComputeStacks, compared with what it has.

The expectation comes from Stripe (each purchase's subscription as it is now,
whether the customer still exists) and the ledger (what each purchase
ordered, which services csonboard stopped, whose suspension the user's is);
what ComputeStacks has comes from a :class:`~csonboard.drift.views.View`.
:func:`check` lists every difference as a :class:`Finding`: its kind, the
object, what differs, and the repair ``--fix`` would make (none for what
needs a person). The kinds:

- ``should_be_stopped``: a service runs while its purchase is out of service
  (unpaid past grace, paused, cancelled -- also when the webhooks saying so
  were lost, or someone started it again). Repair: stop it, recorded so that
  payment starts it again.
- ``should_be_running``: csonboard stopped a service and its purchase is in
  service again. Repair: start it.
- ``wrong_package``: a service's product is not the one its purchase pays for
  (resized in the panel). Repair: resize it back.
- ``should_be_suspended``: the user is active while none of the customer's
  purchases is in service (an operator reactivated it). Repair: suspend it.
- ``should_be_active``: csonboard's own suspension outlived the reason for it.
  Repair: lift it.
- ``missing_project``: a live purchase's project is gone from ComputeStacks.
  Needs a person.
- ``missing_user``: the customer has a live purchase but ComputeStacks has no
  user for them (deleted by hand while Stripe still bills). Needs a person.
- ``unpaid_project``: a project of the customer's user that no purchase made,
  created after their first purchase, with services running (ordered in the
  panel, where ``bypass_billing`` makes it free). By ``drift.unowned``: its
  services stopped, or left running.
- ``orphan_user``: a user whose ``external_id`` names a Stripe customer the
  account does not have, still active or running something. By
  ``drift.unowned``, if csonboard created it: suspended and its services
  stopped; otherwise left.

Nothing is ever deleted. The rules are pure: no calls but the view's, no writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from csonboard.computestacks import Project, Service, User
from csonboard.ledger import Ledger, Onboarding, OrderRecord
from csonboard.ledger.lifecycle import SubscriptionFacts
from csonboard.ledger.onboardings import COMPLETED, IN_PROGRESS
from csonboard.ledger.power import StoppedService
from csonboard.lifecycle.plan_change import target_plan
from csonboard.lifecycle.policy import ORPHANED, decide
from csonboard.lifecycle.purchases import Hold, holds
from csonboard.plans import Catalog
from csonboard.settings import LifecycleSettings

PERSON = "none: needs a person"

State = Literal["in_service", "stopped", "ended", "unknown"]


# -- repairs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """Stop a service: a purchase's (recorded, so payment starts it again) or,
    with no ``session_id``, one no purchase owns (never started by csonboard)."""

    service_id: int
    project_id: int
    session_id: str | None
    reason: str


@dataclass(frozen=True)
class Start:
    service_id: int


@dataclass(frozen=True)
class Resize:
    service_id: int
    product_id: int


@dataclass(frozen=True)
class Suspend:
    user_id: int
    reason: str


@dataclass(frozen=True)
class Unsuspend:
    user_id: int


Action = Stop | Start | Resize | Suspend | Unsuspend


@dataclass(frozen=True)
class Finding:
    kind: str
    object: str
    detail: str
    fix: str
    """What the repair does, or why there is none."""
    actions: tuple[Action, ...] = ()


# -- what the ledger says ---------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    """One Checkout Session of the customer, as the ledger has it."""

    onboarding: Onboarding
    orders: tuple[OrderRecord, ...]
    """Every order it placed, those a replay gave up on too."""
    units: tuple[dict[str, Any], ...]
    """``resolve_plan``'s units: plan, and each container's pinned product."""
    line_items: tuple[dict[str, Any], ...]
    """``fetch_session``'s line items: what was bought."""
    created_user: int | None
    """The ComputeStacks user its ``ensure_cs_user`` created, if it did."""
    facts: SubscriptionFacts | None
    hold: Hold | None = None
    """Held out of service because its money went back (a refund, a dispute)."""


@dataclass(frozen=True)
class Record:
    """Everything the ledger says about one customer."""

    customer_id: str
    purchases: tuple[Purchase, ...]
    held: dict[int, StoppedService]
    suspended_reason: str | None

    @classmethod
    def read(cls, ledger: Ledger, customer_id: str, *, livemode: bool) -> Record:
        onboardings = [
            o
            for o in ledger.onboardings.find(customer_id=customer_id, limit=10_000)
            if o.livemode == livemode
        ]
        facts = {f.subscription_id: f for f in ledger.lifecycle.subscriptions(customer_id)}
        held = holds(ledger, onboardings)
        purchases = []
        for onboarding in sorted(onboardings, key=lambda o: (o.created_at, o.session_id)):
            steps = {s.step: s for s in ledger.onboardings.steps(onboarding.session_id)}
            made = steps.get("ensure_cs_user")
            created = (
                made.result.get("user_id")
                if made and made.status == "done" and made.result.get("how") == "created"
                else None
            )
            plan = steps.get("resolve_plan")
            session = steps.get("fetch_session")
            purchases.append(
                Purchase(
                    onboarding=onboarding,
                    orders=tuple(ledger.onboardings.orders(onboarding.session_id, abandoned=True)),
                    units=tuple(plan.result.get("units", [])) if plan else (),
                    line_items=tuple(session.result.get("line_items", [])) if session else (),
                    created_user=created,
                    facts=facts.get(onboarding.subscription_id or ""),
                    hold=held.get(onboarding.session_id),
                )
            )
        account = ledger.lifecycle.account(customer_id)
        return cls(
            customer_id=customer_id,
            purchases=tuple(purchases),
            held={s.service_id: s for s in ledger.power.of(customer_id=customer_id)},
            suspended_reason=account.suspended_reason if account else None,
        )

    @property
    def user_id(self) -> int | None:
        """The ComputeStacks user the purchases were made for, if any."""
        return next(
            (p.onboarding.cs_user_id for p in self.purchases if p.onboarding.cs_user_id), None
        )

    @property
    def done(self) -> list[Purchase]:
        return [p for p in self.purchases if p.onboarding.status == "done"]

    @property
    def busy(self) -> bool:
        """An onboarding is on its way: its order may have made a project the
        ledger does not name yet."""
        return any(p.onboarding.status in IN_PROGRESS for p in self.purchases)


@dataclass(frozen=True)
class Rules:
    lifecycle: LifecycleSettings
    catalog: Catalog
    unowned: Literal["report", "stop"]
    now: datetime
    bought_elsewhere: Callable[[int], bool] = lambda project_id: False
    """Whether another customer's purchase made this project (it was moved to
    this customer's user): then it is paid for, not unpaid."""


# -- the check --------------------------------------------------------------------------


def check(record: Record, view: Any, rules: Rules) -> list[Finding]:
    """Every difference for one customer (``view`` is a drift ``View``)."""
    customer = record.customer_id
    user = view.user(customer, record.user_id)
    if not view.customer_exists(customer):
        return _orphan(record, user, view, rules) if user is not None else []
    done = record.done
    if not done and user is None:
        return []
    states = {p.onboarding.session_id: _state(p, view, rules) for p in done}
    live = [p for p in done if states[p.onboarding.session_id][0] != "ended"]
    if user is None:
        return [_missing_user(record, live, states)] if live else []
    projects = {p.id: p for p in view.projects(user.id) if p.current_state != "deleting"}
    findings: list[Finding] = []
    for purchase in done:
        state, reason = states[purchase.onboarding.session_id]
        findings += _purchase(record, purchase, state, reason, projects, view, rules)
    if not record.busy:
        findings += _user(record, user, done, states)
        findings += _unpaid(record, user, projects, view, rules)
    return findings


def _state(purchase: Purchase, view: Any, rules: Rules) -> tuple[State, str]:
    """The purchase as Stripe has it now: in service, stopped, ended (deleted
    by the lifecycle), or unknown (then treated as in service, never stopped)."""
    sub_id = purchase.onboarding.subscription_id
    facts = purchase.facts
    hold = purchase.hold
    if facts is not None and facts.terminated_at is not None:
        return "ended", f"{sub_id} was terminated on {facts.terminated_at:%Y-%m-%d}"
    if hold is not None:
        return ("ended" if hold.terminated else "stopped"), hold.reason
    if sub_id is None:
        return "in_service", "a one-time purchase"
    if facts is not None and facts.ours is False:
        return "unknown", f"csonboard does not follow {sub_id} ({facts.reason})"
    subscription = view.subscription(sub_id)
    if subscription is None:
        return "unknown", f"Stripe has no subscription {sub_id}"
    decision = decide(
        subscription,
        past_due_since=facts.past_due_since if facts else None,
        ended_seen_at=facts.ended_seen_at if facts else None,
        policy=rules.lifecycle,
        now=rules.now,
    )
    return ("stopped" if decision.stop else "in_service"), f"{sub_id}: {decision.reason}"


def _purchase(
    record: Record,
    purchase: Purchase,
    state: State,
    reason: str,
    projects: dict[int, Project],
    view: Any,
    rules: Rules,
) -> list[Finding]:
    if state == "unknown":
        return []
    session = purchase.onboarding.session_id
    products = _products(purchase, view, rules)
    findings = []
    for order in purchase.orders:
        if order.status != COMPLETED or order.project_id is None:
            continue
        project = projects.get(order.project_id)
        if project is None:
            if state != "ended":
                findings.append(
                    Finding(
                        "missing_project",
                        f"project #{order.project_id}",
                        f"project #{order.project_id} ({order.project_name!r}) of purchase "
                        f"{session} is gone from ComputeStacks; the purchase is {_said(state)} "
                        f"({reason})",
                        f"{PERSON}: refund in Stripe, or re-create it by hand (drift then "
                        "lists the new project as unpaid_project)",
                    )
                )
            continue
        wanted = products.get(order.unit, {})
        for service in view.services(project.id):
            findings += _service(record, purchase, state, reason, project, service, wanted, view)
    return findings


def _service(
    record: Record,
    purchase: Purchase,
    state: State,
    reason: str,
    project: Project,
    service: Service,
    wanted: dict[str, int],
    view: Any,
) -> list[Finding]:
    session = purchase.onboarding.session_id
    name = f"service #{service.id} ({service.label}) of project #{project.id}"
    findings = []
    if state in ("stopped", "ended") and view.running(service) is not False:
        findings.append(
            Finding(
                "should_be_stopped",
                f"service #{service.id}",
                f"{name} is running, but purchase {session} is out of service ({reason})",
                "stop it (recorded: payment starts it again)",
                (Stop(service.id, project.id, session, reason),),
            )
        )
    held = record.held.get(service.id)
    if state == "in_service" and held is not None:
        findings.append(
            Finding(
                "should_be_running",
                f"service #{service.id}",
                f"csonboard stopped {name} ({held.reason}); purchase {session} is in service "
                f"again ({reason})",
                "start it",
                (Start(service.id),),
            )
        )
    expected = wanted.get(service.label or service.name)
    if (
        state != "ended"
        and expected is not None
        and service.product_id != expected
        and service.current_state != "working"  # a resize may be under way
    ):
        findings.append(
            Finding(
                "wrong_package",
                f"service #{service.id}",
                f"{name} has product #{service.product_id}; purchase {session} pays for "
                f"product #{expected}",
                f"resize it to product #{expected}",
                (Resize(service.id, expected),),
            )
        )
    return findings


def _products(purchase: Purchase, view: Any, rules: Rules) -> dict[int, dict[str, int]]:
    """Per unit, the product each service (by name) should have: as sold (the
    products ``resolve_plan`` pinned), or the plan a changed price maps to
    when the lifecycle resizes for it. Empty where it cannot be told (a plan
    change that needs a person, or a purchase from before products were
    pinned whose plan left the catalog)."""
    sub_id = purchase.onboarding.subscription_id
    subscription = view.subscription(sub_id) if sub_id else None
    bought = sorted(i["price_id"] for i in purchase.line_items if i["price_id"])
    now = sorted(i.price_id for i in subscription.items if i.price_id) if subscription else []
    if subscription is not None and now != bought:
        old, plan, _ = target_plan(rules.catalog, purchase.units, purchase.line_items, subscription)
        if plan is None:
            return {}
        if plan.name != old:  # resized to another plan: the catalog's products now
            return {
                unit["unit"]: {c.name: c.product_id for c in plan.containers}
                for unit in purchase.units
            }
        # Another price of the same plan (monthly to yearly): as sold.
    products: dict[int, dict[str, int]] = {}
    for unit in purchase.units:
        plan = rules.catalog.plans.get(unit["plan"])
        fallback = {c.name: c.product_id for c in plan.containers} if plan else {}
        pinned: dict[str, int] = {}
        for container in unit.get("containers", []):
            product = container.get("product_id") or fallback.get(container["name"])
            if product is not None:
                pinned[container["name"]] = int(product)
        products[unit["unit"]] = pinned
    return products


def _user(
    record: Record, user: User, done: list[Purchase], states: dict[str, tuple[State, str]]
) -> list[Finding]:
    """Active while a purchase is in service; suspended (by csonboard) when none
    is, as the lifecycle keeps it. A suspension that is not csonboard's is
    never lifted."""
    if not done:
        return []
    out = [states[p.onboarding.session_id] for p in done]
    in_service = [reason for state, reason in out if state in ("in_service", "unknown")]
    if user.active and not in_service:
        reason = "no purchase in service: " + "; ".join(reason for _, reason in out)
        return [
            Finding(
                "should_be_suspended",
                f"user #{user.id}",
                f"user #{user.id} ({user.email}) is active, but {reason}",
                "suspend it (as csonboard's own suspension)",
                (Suspend(user.id, reason),),
            )
        ]
    if not user.active and in_service and record.suspended_reason is not None:
        return [
            Finding(
                "should_be_active",
                f"user #{user.id}",
                f"user #{user.id} ({user.email}) is held suspended by csonboard "
                f"({record.suspended_reason}), but a purchase is in service ({in_service[0]})",
                "lift csonboard's suspension",
                (Unsuspend(user.id),),
            )
        ]
    return []


def _missing_user(
    record: Record, live: list[Purchase], states: dict[str, tuple[State, str]]
) -> Finding:
    known = next((p.onboarding.cs_user_id for p in live if p.onboarding.cs_user_id), None)
    first = live[0].onboarding.session_id
    return Finding(
        "missing_user",
        f"user #{known}" if known else "user",
        f"ComputeStacks has no user with external_id {record.customer_id}"
        + (f" (it was user #{known})" if known else "")
        + f", but purchase {first} is {_said(states[first][0])} ({states[first][1]})",
        f"{PERSON}: provide the service again by hand, or cancel and refund in Stripe",
    )


def _unpaid(
    record: Record, user: User, projects: dict[int, Project], view: Any, rules: Rules
) -> list[Finding]:
    """Projects of the user no purchase made, created since the first purchase
    began (older ones were there before csonboard), with services running."""
    if not record.purchases:
        return []
    orders = [o for p in record.purchases for o in p.orders]
    known = {o.project_id for o in orders} | {o.left_project_id for o in orders}
    # An order not yet seen completed names its project only by the name it asked for.
    pending = {o.project_name for o in orders if o.status != COMPLETED}
    since = record.purchases[0].onboarding.created_at
    findings = []
    for project in projects.values():
        if project.id in known or project.name in pending or rules.bought_elsewhere(project.id):
            continue
        if project.created_at is not None and project.created_at < since:
            continue
        running = [s for s in view.services(project.id) if view.running(s) is not False]
        if not running:
            continue
        ids = ", ".join(f"#{s.id}" for s in running)
        why = f"project #{project.id} was bought by no purchase"
        findings.append(
            Finding(
                "unpaid_project",
                f"project #{project.id}",
                f"project #{project.id} ({project.name!r}) of user #{user.id} was made "
                f"by no purchase of {record.customer_id} (ordered in the panel?) and "
                f"runs services {ids}",
                *_unowned(rules, running, project, why),
            )
        )
    return findings


def _orphan(record: Record, user: User, view: Any, rules: Rules) -> list[Finding]:
    """A user whose external_id names no customer of the Stripe account."""
    if user.is_admin:
        return []
    running: list[tuple[Project, Service]] = [
        (project, service)
        for project in view.projects(user.id)
        if project.current_state != "deleting"
        for service in view.services(project.id)
        if view.running(service) is not False
    ]
    if not user.active and not running:
        return []  # nothing runs, nothing can be ordered: settled
    made = any(p.created_user == user.id for p in record.purchases)
    why = f"{ORPHANED}{record.customer_id} is no customer of the Stripe account"
    shown = ", ".join(f"#{s.id}" for _, s in running) or "none"
    detail = (
        f"user #{user.id} ({user.email}) has external_id {record.customer_id}, which is no "
        f"customer of the Stripe account (deleted, or of the other mode); it is "
        f"{'active' if user.active else 'suspended'}, running services {shown}"
    )
    if rules.unowned == "report":
        return [Finding("orphan_user", f"user #{user.id}", detail, "left: drift.unowned = report")]
    if not made:
        return [
            Finding("orphan_user", f"user #{user.id}", detail, "left: csonboard did not create it")
        ]
    actions: list[Action] = [Suspend(user.id, why)] if user.active else []
    actions += [Stop(s.id, p.id, None, why) for p, s in running]
    return [
        Finding(
            "orphan_user",
            f"user #{user.id}",
            detail,
            "suspend it and stop its services (never deleted)",
            tuple(actions),
        )
    ]


def _unowned(
    rules: Rules, running: Sequence[Service], project: Project, why: str
) -> tuple[str, tuple[Action, ...]]:
    """The fix text and actions for a project no purchase owns."""
    if rules.unowned == "report":
        return "left running: drift.unowned = report", ()
    ids = ", ".join(f"#{s.id}" for s in running)
    return (
        f"stop services {ids} (never deleted; csonboard never starts them)",
        tuple(Stop(s.id, project.id, None, why) for s in running),
    )


def _said(state: State) -> str:
    return {
        "in_service": "in service",
        "stopped": "out of service",
        "ended": "ended",
        "unknown": "not followed",
    }[state]
