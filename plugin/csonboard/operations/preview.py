"""What ``csonboard replay --session ... --dry-run`` shows: which steps are done
(with their recorded results), which would run, and the calls each would make.

Reads the ledger (and the plan catalog, when given) only: no Stripe or
ComputeStacks call is made and nothing is written, so a preview can be taken
at any time, even while a worker runs the onboarding.

The calls listed follow what the steps in ``csonboard.onboarding`` do; the
text is derived from the recorded results where they are known (the customer,
the user, the orders); ids not known yet are shown in braces (``{customer}``).
Projects failed orders left, which ``place_order`` deletes before it orders
again, are listed with the DELETE that would remove each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from csonboard.ledger import Ledger, Onboarding, StepRecord
from csonboard.ledger.onboardings import COMPLETED, OrderRecord
from csonboard.onboarding import STEP_NAMES
from csonboard.operations.replay import (
    ENDED,
    busy_message,
    forgotten_steps,
    leftovers_to_delete,
)
from csonboard.plans import Catalog

StepState = Literal["kept", "rerun", "run"]


@dataclass(frozen=True)
class StepPreview:
    step: str
    state: StepState
    """``kept``: done, its result is reused; ``rerun``: done, but would run
    again; ``run``: not done yet, would run."""
    record: StepRecord | None
    calls: tuple[str, ...]


@dataclass(frozen=True)
class SessionPreview:
    session_id: str
    onboarding: Onboarding | None
    verdict: str
    """One sentence: what a replay with these options would do."""
    would_run: bool
    steps: tuple[StepPreview, ...]
    orders: tuple[OrderRecord, ...]
    abandoned: tuple[OrderRecord, ...]
    """Orders without a project that a replay from place_order gives up on."""
    leftovers: tuple[OrderRecord, ...] = ()
    """Orders whose leftover project (``leftover``) ``place_order`` would
    delete before ordering again: failed orders this replay abandons, and
    those an earlier replay abandoned whose project is not deleted yet."""


def preview_session(
    ledger: Ledger,
    session_id: str,
    *,
    from_step: str | None = None,
    catalog: Catalog | None = None,
) -> SessionPreview:
    """What :func:`~csonboard.operations.replay.replay_session` would do now."""
    onboarding = ledger.onboardings.get(session_id)
    records = {s.step: s for s in ledger.onboardings.steps(session_id)} if onboarding else {}
    orders = tuple(ledger.onboardings.orders(session_id)) if onboarding else ()
    forget = set(forgotten_steps(from_step))
    abandoned = tuple(o for o in orders if o.status != COMPLETED) if "place_order" in forget else ()

    known: dict[str, dict[str, Any]] = {}
    steps = []
    for name in STEP_NAMES:
        record = records.get(name)
        done = record is not None and record.status == "done"
        state: StepState = "run" if not done else ("rerun" if name in forget else "kept")
        if state == "kept" and record is not None:
            known[name] = record.result
        steps.append(StepPreview(name, state, record, ()))

    would_run, verdict = _verdict(ledger, onboarding, session_id, from_step)
    kept_orders = tuple(o for o in orders if o not in abandoned)
    places = "place_order" not in known
    leftovers = (
        tuple(leftovers_to_delete(ledger, session_id, abandoned))
        if onboarding and would_run and places
        else ()
    )
    if leftovers:
        shown = ", ".join(f"#{o.leftover}" for o in leftovers)
        verdict += f"; place_order first deletes the project(s) failed orders left: {shown}"
    open_orders = [o.order_id for o in abandoned if o.status not in ENDED]
    if would_run and open_orders:
        verdict += (
            f"; order(s) {', '.join(open_orders)} are asked about in ComputeStacks first, and "
            "the replay is refused while one may still complete"
        )
    waited = records["await_project"].result if "await_project" in records else {}
    services = {
        str(f.get("order_id")): f.get("services")
        for f in waited.get("left_behind") or []
        if isinstance(f, dict)
    }
    context = _Context(session_id, known, onboarding, kept_orders, catalog, leftovers, services)
    steps = [
        StepPreview(s.step, s.state, s.record, _calls_of(s.step, context) if would_run else ())
        if s.state != "kept"
        else s
        for s in steps
    ]
    return SessionPreview(
        session_id, onboarding, verdict, would_run, tuple(steps), orders, abandoned, leftovers
    )


def _verdict(
    ledger: Ledger, onboarding: Onboarding | None, session_id: str, from_step: str | None
) -> tuple[bool, str]:
    if onboarding is None:
        return True, (
            "no onboarding yet: a replay creates one (after checking Stripe has the "
            "session) and runs every step"
        )
    if onboarding.status == "done" and from_step is None:
        return False, "already done: a replay changes nothing (--from-step STEP re-runs steps)"
    now = ledger.now()
    expires = onboarding.lease_expires_at
    if onboarding.status == "running" and expires is not None and expires >= now:
        return False, f"a replay would be refused: {busy_message(onboarding)}"
    where = f" at {onboarding.step}" if onboarding.step else ""
    start = f"from {from_step}" if from_step else "from its first unfinished step"
    return True, f"{onboarding.status}{where}: a replay queues it to run {start}"


@dataclass(frozen=True)
class _Context:
    session_id: str
    known: Mapping[str, dict[str, Any]]
    onboarding: Onboarding | None
    orders: tuple[OrderRecord, ...]
    catalog: Catalog | None
    leftovers: tuple[OrderRecord, ...] = ()
    services: Mapping[str, Any] | None = None
    """Services each failed order's project had, by order id, as recorded."""

    def customer(self) -> str:
        kept = self.known.get("ensure_stripe_customer", {}).get("customer_id")
        return str(kept) if kept else "{customer}"

    def user(self) -> str:
        kept = self.known.get("ensure_cs_user", {}).get("user_id")
        return str(kept) if kept else "{user}"


def _fetch_session(c: _Context) -> tuple[str, ...]:
    return (
        f"Stripe GET /v1/checkout/sessions/{c.session_id}",
        f"Stripe GET /v1/checkout/sessions/{c.session_id}/line_items (every page)",
    )


def _resolve_plan(c: _Context) -> tuple[str, ...]:
    source = (c.catalog.source if c.catalog else "") or "the plan catalog"
    calls = [f"none to Stripe: matches each line item to a plan of {source}"]
    session = c.known.get("fetch_session")
    if session is None or c.catalog is None:
        calls.append(
            "ComputeStacks GET /api/admin/container_images/{image} for each container "
            "given by image_id (its default variant)"
        )
        return tuple(calls)
    images: set[int] = set()
    for item in session.get("line_items", []):
        plan = c.catalog.match(item.get("price_id"), item.get("lookup_key"), item.get("product_id"))
        if plan is None:
            calls.append(f"price {item.get('price_id')} matches no plan: the step would fail")
            continue
        calls.append(f"price {item.get('price_id')} -> plan {plan.name}")
        images.update(k.image_id for k in plan.containers if k.image_id is not None)
    calls.extend(f"ComputeStacks GET /api/admin/container_images/{i}" for i in sorted(images))
    return tuple(calls)


def _ensure_stripe_customer(c: _Context) -> tuple[str, ...]:
    session = c.known.get("fetch_session")
    if session is not None and session.get("customer"):
        return (f"none: the session's customer {session['customer']}",)
    key = f"csonboard-customer-{c.session_id}"
    guest = "" if session is not None else " (only for a guest checkout)"
    return (
        "ComputeStacks GET /api/admin/users/{email}?find_by_email=true and, for a user "
        f"csonboard made, Stripe GET /v1/customers/{{id}}: a repeat guest's customer{guest}",
        "Stripe GET /v1/customers/{id} for a customer an earlier try recorded, else "
        "GET /v1/customers?email=… for one made for this session",
        f"Stripe POST /v1/customers if none is found (idempotency key {key})",
    )


def _ensure_cs_user(c: _Context) -> tuple[str, ...]:
    return (
        f"ComputeStacks GET /api/admin/users/{c.customer()}?find_by_external_id=true",
        "ComputeStacks POST /api/admin/users if there is none (then, on a taken email, "
        "GET /api/admin/users/{email}?find_by_email=true)",
    )


def _place_order(c: _Context) -> tuple[str, ...]:
    units = c.known.get("resolve_plan", {}).get("units")
    placed = {o.unit for o in c.orders}
    user = c.user()
    deletes = tuple(_delete_leftover(c, o) for o in c.leftovers)
    if deletes:
        users = sorted({o.cs_user_id for o in c.leftovers})
        deletes = (
            *(f"ComputeStacks GET /api/admin/users/{u}/projects (their states)" for u in users),
            *deletes,
        )
    if units is not None:
        missing = [u for u in units if u["unit"] not in placed]
        if not missing:
            return (*deletes, "none: every unit has its order already")
        what = ", ".join(f"unit {u['unit']} {u['project_name']!r}" for u in missing)
    else:
        what = "each unit bought" + (f" (units {sorted(placed)} have orders)" if placed else "")
    return (
        *deletes,
        f"ComputeStacks POST /api/admin/users/{user}/api_credentials (a credential for the order)",
        "ComputeStacks GET /api/orders as the customer (orders placed before)",
        f"ComputeStacks POST /api/orders as the customer for {what}",
        f"ComputeStacks DELETE /api/admin/users/{user}/api_credentials/{{credential}}",
    )


def _delete_leftover(c: _Context, order: OrderRecord) -> str:
    services = (c.services or {}).get(order.order_id)
    had = f", {services} service(s)" if isinstance(services, int) else ""
    return (
        f"ComputeStacks DELETE /api/projects/{order.leftover} (project {order.project_name!r}"
        f"{had}, left by failed order {order.order_id}; deleted before ordering again "
        "if it is still there in state alert)"
    )


def _await_project(c: _Context) -> tuple[str, ...]:
    calls = []
    for order in c.orders:
        if order.status == COMPLETED:
            continue
        calls.append(f"ComputeStacks GET /api/admin/orders/{order.order_id} until completed")
        if order.status in ("failed", "cancelled"):
            left = f" and left project #{order.leftover}" if order.leftover is not None else ""
            calls.append(
                f"order {order.order_id} already {order.status}{left}: this step would fail "
                "again; --from-step place_order deletes what it left and places a new order"
            )
    if not c.orders or "place_order" not in c.known:
        calls.append("ComputeStacks GET /api/admin/orders/{order} for each new order")
    return tuple(calls) or ("none: every order has its project",)


def _link_back(c: _Context) -> tuple[str, ...]:
    return (
        f"Stripe POST /v1/customers/{c.customer()} (metadata computestacks_user_id, "
        "computestacks_project_ids)",
    )


def _calls_of(step: str, context: _Context) -> tuple[str, ...]:
    describe = _CALLS.get(step)
    return describe(context) if describe else ("(not described here: see csonboard.onboarding)",)


_CALLS = {
    "fetch_session": _fetch_session,
    "resolve_plan": _resolve_plan,
    "ensure_stripe_customer": _ensure_stripe_customer,
    "ensure_cs_user": _ensure_cs_user,
    "place_order": _place_order,
    "await_project": _await_project,
    "link_back": _link_back,
}
