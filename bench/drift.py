"""Drift at scale: a full pass over many customers, report-only and with --fix.

    python bench/drift.py [--customers 10000] [--drifted 100] [--backend sqlite|postgres]
                          [--pace RPM] [--json]

Sets up, before the clock starts: the ComputeStacks simulator and the Stripe
stand-in on loopback in this process (contract checking off) and a fresh
ledger. Each customer has what a finished onboarding leaves: a Stripe customer
with an active subscription (the wordpress plan, two services, or the
static-site plan, one, in turn); a ComputeStacks user whose external_id is the
customer, holding the project the plan pins with its services running; and
the onboarding in the ledger with its steps, its completed order and the
lifecycle's account and subscription facts. Stripe's objects are made by the
stand-in's own functions and ComputeStacks' by the simulator's (an order per
customer, provisioned by the simulator's clock); the ledger rows in bulk.

Then ``--drifted`` customers, spread evenly over all and the plans in turn,
drift behind csonboard's back: nine in ten have their subscription cancelled
in Stripe (no webhook reaches csonboard), one in ten orders a second project
in the panel with its own API access. What a pass must find follows from
that, and the bench fails (exit status 1, after printing its figures) unless
both passes find exactly that, the report-only pass changed nothing in
ComputeStacks, and the --fix pass stopped and suspended what it should and
changed, resized and deleted nothing else.

ComputeStacks pages its users and services lists by keys that tie (a name, a
label), and the simulator orders ties differently on each page, as
PostgreSQL may: a row can come on two pages or on none, and ``Total`` counts
it. Both the bare read and csonboard's survey report such rows as missed;
they page the same lists the same way over the same rows, so they miss the
same ones, and a seeded item not found because its one sign was a service on
no page is named as such among the problems (it is still a failure: the pass
did not find it).

Measured, each phase in a fresh process (as ``csonboard drift`` runs), one
after the other:

- **bare**: the reads any full comparison must make, with no ledger and no
  pacing: every ComputeStacks user, project and container service (admin
  lists, 200 a page, as drift's survey asks) and every Stripe customer and
  subscription (``status=all``, 100 a page), indexed for a comparison;
- **csonboard, report-only**: ``Drift.full_pass(fix=False)``: the survey,
  every customer's ledger record checked against it, each candidate read
  again one by one (confirmed);
- **csonboard, --fix**: ``Drift.full_pass(fix=True)``: the same, the
  confirmed differences repaired under the customer's lease.

csonboard's passes use a ComputeStacks client without pacing (``Drift`` and
``Repairer`` built as ``runtime.drift_checks`` builds them, minus
``.paced(...)``): even at the highest pacing the settings allow (500 requests
a minute) its sleeping would outweigh all else. ``--pace RPM`` runs them
through ``runtime.drift_checks`` instead, paced. The floors that the real rate
limit and the pacing set for the requests counted are reported beside:
ComputeStacks throttles each client IP to 2,500 requests per 5 minutes
(``config/initializers/rack_attack.rb`` in the controller), which is 500 a
minute, the pacing's maximum.

Every client of every phase waits up to ``TIMEOUT`` for an answer: at 10,000
customers the simulator takes seconds to render a page of services, more
than csonboard's default 10 s ComputeStacks timeout.

Reported per phase: wall time; the time the sandboxes spent answering
(measured around their WSGI apps; the wall time includes it, so wall minus
serving is the client's own time, plus the HTTP servers' parsing and the
loopback); requests to each API; the items found by
kind; and memory: the peak resident size of the phase's process (Linux
``VmHWM``, the counter behind ``ru_maxrss``) and how far it rose during the
phase above what the process held when the phase began (the peak is reset
through ``/proc/self/clear_refs`` first).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp
from typing import Any, ParamSpec, TypeVar
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import requests
import stripe
from common import DEFAULT_POSTGRES, drop_database, fresh_database, sandbox_env
from flask import Flask
from sqlalchemy import insert

from csonboard.computestacks import ComputeStacksClient, NewOrder, OrderContainer
from csonboard.drift import Drift, Repairer
from csonboard.ledger import Ledger
from csonboard.ledger.schema import (
    accounts,
    onboarding_steps,
    onboardings,
    orders,
    subscriptions,
)
from csonboard.plans import Plan
from csonboard.queue import open_doorbell
from csonboard.runtime import build_services, drift_checks
from csonboard.sandbox.computestacks import accounts as cs_accounts
from csonboard.sandbox.computestacks import create_app as create_cs_app
from csonboard.sandbox.computestacks.records import (
    OrderedContainer,
    OrderPlan,
    OrderRecord,
    UserRecord,
)
from csonboard.sandbox.computestacks.state import World
from csonboard.sandbox.computestacks.wire import EXTENSION, Simulator
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stripe import SandboxAccount, sandbox_account
from csonboard.sandbox.stripe import create_app as create_stripe_app
from csonboard.sandbox.stripe.billing import pay_first_invoice
from csonboard.sandbox.stripe.customers import create_customer
from csonboard.sandbox.stripe.events import AUTOMATIC
from csonboard.sandbox.stripe.subscribe import create_subscription
from csonboard.settings import DriftSettings, load_settings

KEY = "sk_test_sandbox"
CS_LIMIT = 2500 / 300  # requests a second per client IP (rack_attack.rb): 500 a minute
SURVEY_PER_PAGE = 200  # what drift's survey asks for (views.SURVEY_PAGE)
STRIPE_PER_PAGE = 100  # Stripe's largest page, the gateway's page size
PLANS = ("wordpress", "static-site")  # taken in turn: two services, then one
PRICES = {  # price, product, lookup key: what the Checkout sold
    "wordpress": ("price_sandbox_wordpress_monthly", "prod_sandbox_wordpress", "wordpress-monthly"),
    "static-site": ("price_sandbox_static_monthly", "prod_sandbox_static", "static-site-monthly"),
}
PANEL_EVERY = 10  # one drifted customer in ten orders in the panel; the others cancel
PANEL_VARIANT, PANEL_PRODUCT = 1020, 10  # a static site (Nginx) on the smallest package
TIMEOUT = 300  # seconds, for every client of every phase: the simulator renders a page
# of services by scanning every container, which takes seconds at 10,000 customers

T = TypeVar("T")
P = ParamSpec("P")
Item = tuple[str, str, str, str]
"""(customer, kind, object, outcome) of a drift item."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--drifted", type=int, default=100, help="customers that drift")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES)
    parser.add_argument(
        "--pace",
        type=float,
        default=None,
        metavar="RPM",
        help="pace csonboard's ComputeStacks requests to RPM a minute (at most 500)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not 0 < args.drifted <= args.customers:
        parser.error("--drifted must be between 1 and --customers")
    if args.pace is not None and not 0 < args.pace <= CS_LIMIT * 60:
        parser.error("--pace must be above 0 and at most 500")
    results, problems = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:>42}: {value}")
    if problems:
        raise SystemExit("drift bench FAILED:\n  " + "\n  ".join(problems))


# -- measuring ------------------------------------------------------------------------------


class Served:
    """Counts the requests a WSGI app answers under ``prefix`` and the time it
    spends producing those answers."""

    def __init__(self, app: WSGIApplication, prefix: str) -> None:
        self._app = app
        self._prefix = prefix
        self._lock = threading.Lock()
        self.requests = 0
        self.seconds = 0.0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not str(environ.get("PATH_INFO", "")).startswith(self._prefix):
            return self._app(environ, start_response)
        started = time.perf_counter()
        try:
            return self._app(environ, start_response)
        finally:
            took = time.perf_counter() - started
            with self._lock:
                self.requests += 1
                self.seconds += took

    def reading(self) -> tuple[int, float]:
        with self._lock:
            return self.requests, self.seconds


def _serve(app: Flask, prefix: str) -> Served:
    served = Served(app.wsgi_app, prefix)
    app.wsgi_app = served  # type: ignore[method-assign]
    return served


@dataclass(frozen=True)
class Outcome:
    """What a phase's process reports: its time, memory and findings."""

    seconds: float
    peak_rss_kb: int
    """The process's peak resident size (``VmHWM``) during the phase."""
    start_rss_kb: int
    """Its resident size when the phase began (imports, settings, clients)."""
    items: list[Item] = field(default_factory=list)
    customers: int = 0
    missed: dict[str, int] = field(default_factory=dict)
    """Rows a ComputeStacks list counted (``Total``) that no page returned, by list."""
    rows: dict[str, int] = field(default_factory=dict)
    listed: frozenset[int] = frozenset()
    """The container services the bare read's pages returned."""


@dataclass(frozen=True)
class Phase:
    """One measured phase, with what the sandboxes served for it."""

    outcome: Outcome
    cs_requests: int
    stripe_requests: int
    serving_seconds: float


def _measure(
    cs: Served, stripe_api: Served, work: Callable[P, Outcome], *args: P.args, **kw: P.kwargs
) -> Phase:
    """Run ``work`` in a fresh process; count what the sandboxes served meanwhile."""
    cs_before, cs_time = cs.reading()
    stripe_before, stripe_time = stripe_api.reading()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        outcome = pool.apply(work, args, kw)
    cs_after, cs_time_after = cs.reading()
    stripe_after, stripe_time_after = stripe_api.reading()
    return Phase(
        outcome=outcome,
        cs_requests=cs_after - cs_before,
        stripe_requests=stripe_after - stripe_before,
        serving_seconds=(cs_time_after - cs_time) + (stripe_time_after - stripe_time),
    )


def _timed(work: Callable[[], T]) -> tuple[T, float, int, int]:
    """``work()``, its seconds, the process's peak and starting resident size (KiB)."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start_rss = _memory("VmRSS")
    started = time.monotonic()
    result = work()
    seconds = time.monotonic() - started
    return result, seconds, _memory("VmHWM"), start_rss


def _memory(name: str) -> int:
    found = re.search(rf"^{name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert found, f"no {name} in /proc/self/status"
    return int(found.group(1))


def _quiet() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("csonboard").setLevel(logging.WARNING)


# -- the phases (each runs in its own process) ----------------------------------------------


def bare_phase(cs_url: str, admin: tuple[str, str], stripe_url: str) -> Outcome:
    _quiet()
    http = requests.Session()
    client = stripe.StripeClient(
        KEY, base_addresses={"api": stripe_url}, http_client=stripe.RequestsClient(timeout=TIMEOUT)
    )
    (rows, missed, listed), seconds, peak, start = _timed(
        lambda: _bare(http, client, cs_url, admin)
    )
    return Outcome(seconds, peak, start, missed=missed, rows=rows, listed=listed)


def drift_phase(env: dict[str, str], fix: bool, paced: bool) -> Outcome:
    """A full pass as ``csonboard drift [--fix]`` makes it."""
    _quiet()
    settings = load_settings(None, env)
    services = build_services(settings)
    ledger = Ledger.open(settings.ledger_url)
    doorbell = open_doorbell(settings)
    try:
        if paced:
            drift = drift_checks(settings, services, ledger, doorbell, "bench")
        else:  # drift_checks without .paced(...)
            drift = Drift(
                Repairer(
                    ledger,
                    services.cs,
                    services.stripe,
                    doorbell,
                    owner="bench:drift",  # as drift_checks names it
                    lease_seconds=settings.worker.lease_seconds,
                    livemode=services.livemode,
                ),
                services.catalog,
                settings.lifecycle,
                settings.drift,
                ledger.now,
            )
        report, seconds, peak, start = _timed(lambda: drift.full_pass(fix=fix))
    finally:
        doorbell.close()
        ledger.close()
    if report is None:  # another pass holds the ledger's drift lease
        raise RuntimeError("the pass did not run: another drift pass is running")
    items = [(i.customer_id, i.kind, i.object, i.outcome) for i in report.items]
    return Outcome(seconds, peak, start, items, report.customers, report.missed)


# -- the run ------------------------------------------------------------------------------


@dataclass
class Customer:
    """One seeded customer and what ComputeStacks and Stripe hold for them."""

    n: int
    plan: str
    customer_id: str = ""
    subscription_id: str = ""
    session_id: str = ""
    user_id: int = 0
    order_id: str = ""
    project_id: int = 0
    project_name: str = ""
    service_ids: list[int] = field(default_factory=list)
    panel_project_id: int = 0
    """A project the customer ordered in the panel (drifted customers only)."""
    panel_service_id: int = 0


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The results, and what went wrong (nothing, when all is well)."""
    _quiet()
    work = Path(mkdtemp(prefix="csonboard-drift-"))
    admin = ("drift-admin", secrets.token_urlsafe(12))
    cs_app = create_cs_app(admin_username=admin[0], admin_password=admin[1])
    stripe_app = create_stripe_app(api_key=KEY, check_contract=False)
    cs_served, stripe_served = _serve(cs_app, "/api"), _serve(stripe_app, "/v1")
    cs = start_in_thread(cs_app)
    stripe_server = start_in_thread(stripe_app)
    database = None
    env = {
        **sandbox_env(work, stripe_server.url, KEY, cs.url, admin),
        "CSONBOARD_CS_TIMEOUT_SECONDS": str(TIMEOUT),  # as the bare read's
        "CSONBOARD_STRIPE_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    if args.pace is not None:
        env["CSONBOARD_DRIFT_COMPUTESTACKS_REQUESTS_PER_MINUTE"] = str(args.pace)
    if args.backend == "postgres":
        database = fresh_database(args.database_url, work.name)
        env["CSONBOARD_DATABASE_URL"] = database
    settings = load_settings(None, env)
    ledger = Ledger.open(settings.ledger_url)
    ledger.upgrade()
    simulator = cs_app.extensions[EXTENSION]
    assert isinstance(simulator, Simulator)
    account = sandbox_account(stripe_app)
    client = stripe.StripeClient(KEY, base_addresses={"api": stripe_server.url})
    paced = args.pace is not None
    try:
        plans = build_services(settings).catalog.plans
        started = time.monotonic()
        bought = datetime.now(UTC) - timedelta(days=1)
        customers = [Customer(n, PLANS[n % len(PLANS)]) for n in range(args.customers)]
        resolved = {name: _resolved(simulator.world, plans[name]) for name in PLANS}
        _seed_stripe(account, customers)
        _seed_computestacks(simulator.world, customers, plans, resolved, bought)
        _seed_ledger(ledger, customers, plans, resolved, bought)
        drifted = _spread(customers, args.drifted)
        expected = _drift(client, cs.url, admin, drifted)
        setup = time.monotonic() - started
        before = _world_state(simulator.world)

        bare = _measure(cs_served, stripe_served, bare_phase, cs.url, admin, stripe_server.url)
        report = _measure(cs_served, stripe_served, drift_phase, env, False, paced)
        problems = []
        if _world_state(simulator.world) != before:
            problems.append("report-only: it changed something in ComputeStacks")
        fixed = _measure(cs_served, stripe_served, drift_phase, env, True, paced)
        unlisted = _unlisted(drifted, bare.outcome.listed)
        problems += _compare("report-only", report.outcome, expected, unlisted, args.customers)
        problems += _compare("--fix", fixed.outcome, expected, unlisted, args.customers)
        problems += _check_repaired(simulator.world, drifted, before)
    finally:
        account.stop()
        stripe_server.stop()
        cs.stop()
        ledger.close()
        if database:
            drop_database(database)
    results = _results(args, customers, drifted, setup, bare, report, fixed)
    if problems:
        results["PROBLEMS"] = problems
    return results, problems


def _results(
    args: argparse.Namespace,
    customers: list[Customer],
    drifted: list[Customer],
    setup: float,
    bare: Phase,
    report: Phase,
    fix: Phase,
) -> dict[str, Any]:
    count = len(customers)
    default_pace = DriftSettings().computestacks_requests_per_minute
    services = sum(len(c.service_ids) for c in customers) + sum(
        1 for c in drifted if c.panel_service_id
    )
    results: dict[str, Any] = {
        "customers": count,
        "drifted": len(drifted),
        "ComputeStacks projects": count + sum(1 for c in drifted if c.panel_project_id),
        "ComputeStacks services": services,
        "backend": args.backend,
        "csonboard's ComputeStacks client": (
            f"paced to {args.pace:g} requests a minute" if args.pace else "unpaced"
        ),
        "setup (s)": round(setup, 1),
        "bare: rows read": bare.outcome.rows,
        "bare: rows missed (counted, on no page)": bare.outcome.missed,
    }
    for name, phase in (("bare", bare), ("report-only", report), ("--fix", fix)):
        outcome = phase.outcome
        results[f"{name}: wall (s)"] = round(outcome.seconds, 1)
        if phase is not bare:
            results[f"{name}: wall / bare"] = round(outcome.seconds / bare.outcome.seconds, 2)
        results[f"{name}: sandboxes serving (s)"] = round(phase.serving_seconds, 1)
        own = outcome.seconds - phase.serving_seconds
        results[f"{name}: wall - serving (s)"] = round(own, 1)
        if phase is not bare:
            bare_own = bare.outcome.seconds - bare.serving_seconds
            results[f"{name}: wall - serving, / bare's"] = round(own / bare_own, 2)
        results[f"{name}: ComputeStacks requests"] = phase.cs_requests
        results[f"{name}: Stripe requests"] = phase.stripe_requests
        results[f"{name}: requests per customer"] = round(
            (phase.cs_requests + phase.stripe_requests) / count, 3
        )
        results[f"{name}: peak RSS of its process (MB)"] = round(outcome.peak_rss_kb / 1024, 1)
        results[f"{name}: RSS growth during it (MB)"] = round(
            (outcome.peak_rss_kb - outcome.start_rss_kb) / 1024, 1
        )
        if phase is not bare:
            results[f"{name}: items"] = dict(
                sorted(Counter(f"{kind} ({out})" for _, kind, _, out in outcome.items).items())
            )
            results[f"{name}: survey rows missed"] = outcome.missed
            results[f"{name}: floor at the rate limit = paced 500/min (s)"] = round(
                phase.cs_requests / CS_LIMIT, 1
            )
            results[f"{name}: floor paced {default_pace:g}/min, the default (s)"] = round(
                phase.cs_requests * 60 / default_pace, 1
            )
    return results


# -- seeding ------------------------------------------------------------------------------


def _name(n: int) -> tuple[str, str, str]:
    """First name, last name, e-mail of customer ``n`` (unique names: ComputeStacks
    lists users by name, and users of one name can be missed between pages)."""
    return "User", f"{n:06d}", f"user{n}@example.com"


def _seed_stripe(account: SandboxAccount, customers: list[Customer]) -> None:
    """A customer and an active subscription each, made as ``POST /v1/customers``,
    ``POST /v1/subscriptions`` and the first invoice's payment make them."""
    store, events = account.store, account.events
    with store.lock:
        for c in customers:
            first, last, email = _name(c.n)
            made = create_customer(
                store, events, {"email": email, "name": f"{first} {last}"}, AUTOMATIC
            )
            price = PRICES[c.plan][0]
            subscription = create_subscription(
                store,
                events,
                {
                    "customer": made["id"],
                    "items": [{"price": price, "quantity": "1"}],
                    "payment_behavior": "default_incomplete",
                },
                AUTOMATIC,
            )
            invoice = store.get("invoice", subscription["latest_invoice"])
            pay_first_invoice(store, events, subscription, invoice)
            c.customer_id, c.subscription_id = made["id"], subscription["id"]
            c.session_id = f"cs_test_bench{c.n:08d}{secrets.token_hex(8)}"


def _seed_computestacks(
    w: World,
    customers: list[Customer],
    plans: Mapping[str, Plan],
    resolved: Mapping[str, list[dict[str, Any]]],
    bought: datetime,
) -> None:
    """Each customer's user (created as ``POST /api/admin/users`` creates it) and
    the order csonboard placed for them, provisioned by the simulator's clock."""
    at = bought.timestamp()
    with w.lock:
        for c in customers:
            first, last, email = _name(c.n)
            user = cs_accounts.create_user(
                w,
                cs_accounts.permit_user(
                    {
                        "fname": first,
                        "lname": last,
                        "email": email,
                        "external_id": c.customer_id,
                        "merge_labels": {"stripe": {"customer_id": c.customer_id}},
                        "skip_email_confirm": True,
                        "bypass_billing": True,
                    }
                )
                or {},
            )
            assert isinstance(user, UserRecord), user
            user.created_at = user.updated_at = user.confirmed_at = at
            plan = plans[c.plan]
            location = w.catalog.locations[plan.location_id]
            allowed = w.catalog.groups[user.user_group_id].region_ids
            region = next(r for r in location.regions if r.id in allowed)
            c.user_id = user.id
            c.project_name = _project_name(plan, c)
            order = OrderRecord(
                id=str(uuid.uuid4()),
                user_id=user.id,
                status="pending",
                plan=OrderPlan(pending_seconds=0.0, processing_seconds=1.0),
                project_name=c.project_name,
                skip_ssh=False,
                location_id=location.id,
                region_id=region.id,
                load_balancer_ip=region.load_balancer_ip,
                containers=tuple(_ordered(w, container) for container in resolved[c.plan]),
                created_at=at,
                updated_at=at,
            )
            w.add_order(order)
            c.order_id = order.id
        w.advance()  # every order processed and completed, a day ago
        for c in customers:
            placed = w.orders[c.order_id]
            if placed.status != "completed" or placed.project_id is None:
                raise SystemExit(f"seeding: the order of {c.customer_id} did not complete")
            c.project_id, c.service_ids = placed.project_id, list(placed.service_ids)


def _resolved(w: World, plan: Plan) -> list[dict[str, Any]]:
    """The plan's containers as ``resolve_plan`` records them: each one's name,
    the image variant to run (an image's default variant, resolved) and the
    product pinned."""
    found = []
    for container in plan.containers:
        variant = container.image_variant_id
        if variant is None:
            assert container.image_id is not None
            image = w.catalog.images[container.image_id]
            variant = next(v.id for v in image.variants if v.is_default)
        found.append(
            {
                "image_variant_id": variant,
                "name": container.name,
                "product_id": container.product_id,
            }
        )
    return found


def _ordered(w: World, container: dict[str, Any]) -> OrderedContainer:
    image, variant = w.catalog.variants[container["image_variant_id"]]
    return OrderedContainer(
        label=container["name"],
        image_id=image.id,
        variant_id=variant.id,
        product_id=container["product_id"],
        params={},
        domains=(),
    )


def _project_name(plan: Plan, c: Customer) -> str:
    first, last, email = _name(c.n)
    return plan.project_name.format(
        plan=plan.name,
        customer_name=f"{first} {last}",
        customer_email=email,
        session_id=c.session_id,
        session_tag=c.session_id[-6:],
        unit=1,
        units=1,
    )


def _seed_ledger(
    ledger: Ledger,
    customers: list[Customer],
    plans: Mapping[str, Plan],
    resolved: Mapping[str, list[dict[str, Any]]],
    bought: datetime,
) -> None:
    """The rows a finished onboarding and the lifecycle's first look leave."""
    done = bought + timedelta(seconds=1)
    rows: dict[str, list[dict[str, Any]]] = {
        "onboardings": [],
        "steps": [],
        "orders": [],
        "accounts": [],
        "subscriptions": [],
    }
    for c in customers:
        plan = plans[c.plan]
        rows["onboardings"].append(
            {
                "session_id": c.session_id,
                "status": "done",
                "livemode": False,
                "step": "link_back",
                "customer_id": c.customer_id,
                "subscription_id": c.subscription_id,
                "cs_user_id": c.user_id,
                "note": "onboarded",
                "source": f"event evt_bench{c.n:08d}",
                "deadline_at": bought + timedelta(minutes=15),
                "created_at": bought,
                "updated_at": done,
                "finished_at": done,
            }
        )
        results = _step_results(c, plan, resolved[c.plan])
        rows["steps"] += [
            {
                "session_id": c.session_id,
                "step": step,
                "status": "done",
                "result": json.dumps(result),
                "attempts": 1,
                "started_at": bought,
                "finished_at": bought,
            }
            for step, result in results.items()
        ]
        rows["orders"].append(
            {
                "order_id": c.order_id,
                "session_id": c.session_id,
                "unit": 1,
                "cs_user_id": c.user_id,
                "project_name": c.project_name,
                "status": "completed",
                "project_id": c.project_id,
                "placed_at": bought,
                "updated_at": done,
            }
        )
        active = f"{c.subscription_id}: the subscription is active"
        rows["accounts"].append(
            {
                "customer_id": c.customer_id,
                "cs_user_id": c.user_id,
                "status": "idle",
                "attempts": 0,
                "note": active,
                "dirty": False,
                "created_at": bought,
                "updated_at": done,
            }
        )
        rows["subscriptions"].append(
            {
                "subscription_id": c.subscription_id,
                "customer_id": c.customer_id,
                "stripe_status": "active",
                "price_ids": json.dumps([PRICES[c.plan][0]]),
                "wants_suspension": False,
                "reason": "the subscription is active",
                "ours": True,
                "last_event_at": bought,
                "created_at": bought,
                "updated_at": done,
            }
        )
    tables = (
        (onboardings, "onboardings"),
        (onboarding_steps, "steps"),
        (orders, "orders"),
        (accounts, "accounts"),
        (subscriptions, "subscriptions"),
    )
    batch = 2000
    with ledger.write() as connection:
        for table, key in tables:
            for start in range(0, len(rows[key]), batch):
                connection.execute(insert(table), rows[key][start : start + batch])


def _step_results(
    c: Customer, plan: Plan, containers: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each step's recorded result, as a real onboarding of the plan records it."""
    price, product, lookup_key = PRICES[c.plan]
    first, last, email = _name(c.n)
    line_item = f"li_bench{c.n:08d}"
    unit = {
        "containers": containers,
        "line_item": line_item,
        "location_id": plan.location_id,
        "plan": plan.name,
        "project_name": c.project_name,
        "unit": 1,
    }
    return {
        "fetch_session": {
            "buyer": {"email": email, "name": f"{first} {last}"},
            "currency": "usd",
            "customer": c.customer_id,
            "id": c.session_id,
            "line_items": [
                {
                    "description": plan.description,
                    "id": line_item,
                    "lookup_key": lookup_key,
                    "price_id": price,
                    "product_id": product,
                    "quantity": 1,
                }
            ],
            "mode": "subscription",
            "payment_status": "paid",
            "status": "complete",
            "subscription": c.subscription_id,
        },
        "resolve_plan": {"units": [unit], "user_group_id": None},
        "ensure_stripe_customer": {
            "created": False,
            "customer_id": c.customer_id,
            "how": "session",
            "reason": "the session's customer",
        },
        "ensure_cs_user": {"email": email, "how": "created", "user_id": c.user_id},
        "place_order": {
            "credentials_deleted": [f"csonboard {c.session_id} #1"],
            "credentials_unaccounted": [],
            "leftovers_deleted": [],
            "orders": [{"order_id": c.order_id, "project_name": c.project_name, "unit": 1}],
            "warnings": [],
        },
        "await_project": {
            "projects": [{"order_id": c.order_id, "project_id": c.project_id, "unit": 1}]
        },
        "link_back": {
            "customer_id": c.customer_id,
            "metadata": {
                "computestacks_project_ids": str(c.project_id),
                "computestacks_user_id": str(c.user_id),
            },
        },
    }


# -- drift ------------------------------------------------------------------------------

Expected = list[Item]
"""(customer, kind, object, outcome of the --fix pass) of every difference seeded."""


def _drift(
    client: stripe.StripeClient, cs_url: str, admin: tuple[str, str], drifted: list[Customer]
) -> Expected:
    """Make ``drifted`` drift behind csonboard's back; what a pass must find."""
    expected: Expected = []
    cs_admin = ComputeStacksClient(cs_url, requests.Session(), username=admin[0], password=admin[1])
    panel = [c for i, c in enumerate(drifted) if i % PANEL_EVERY == PANEL_EVERY - 1]
    for c in drifted:
        if any(c is p for p in panel):
            continue
        # Cancelled in the Dashboard; the stand-in has no webhook endpoint, so
        # csonboard hears nothing: its services run on and its user stays active.
        client.v1.subscriptions.cancel(c.subscription_id)
        expected += [
            (c.customer_id, "should_be_stopped", f"service #{s}", "fixed") for s in c.service_ids
        ]
        expected.append((c.customer_id, "should_be_suspended", f"user #{c.user_id}", "fixed"))
    if panel:
        requests.post(
            f"{cs_url}/_sandbox/orders",
            json={"pending_seconds": 0, "processing_seconds": 0},
            timeout=30,
        ).raise_for_status()
    placed = []
    for c in panel:
        # The customer orders a second site in the panel (bypass_billing: free).
        credential = cs_admin.create_api_credential(c.user_id, "panel")
        own = cs_admin.as_user(credential.username, credential.password)
        order = own.create_order(
            NewOrder(
                project_name="my own site",
                containers=(
                    OrderContainer(
                        image_variant_id=PANEL_VARIANT, product_id=PANEL_PRODUCT, name="nginx"
                    ),
                ),
            )
        )
        placed.append((c, own, order.id))
    for c, own, order_id in placed:
        deadline = time.monotonic() + 60
        while (
            got := own.get_order(order_id)
        ).status.value != "completed" or got.project_id is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"the panel order {order_id} of {c.customer_id} did not complete")
            time.sleep(0.05)
        c.panel_project_id = got.project_id
        [service] = cs_admin.list_project_services(got.project_id)
        c.panel_service_id = service.id
        expected.append((c.customer_id, "unpaid_project", f"project #{got.project_id}", "left"))
    return expected


def _spread(customers: list[Customer], count: int) -> list[Customer]:
    """``count`` customers spread evenly over all of them, the plans in turn
    (every ``len // count``-th alone would all be of one plan when that step
    is a multiple of the number of plans)."""
    step = len(customers) // count
    kinds = len(PLANS)
    return [
        customers[i * step + ((i - i * step) % kinds if step >= kinds else 0)] for i in range(count)
    ]


@dataclass(frozen=True)
class WorldState:
    """What a drift pass may change in ComputeStacks, and what it must not delete."""

    users: dict[int, bool]
    """Each user's ``active``."""
    projects: frozenset[int]
    services: dict[int, int]
    """Each service's product."""
    containers: dict[int, tuple[int, str]]
    """Each container's service and ``req_state``."""


def _world_state(w: World) -> WorldState:
    with w.lock:
        w.advance()
        return WorldState(
            users={u.id: u.active for u in w.users.values()},
            projects=frozenset(w.projects),
            services={s.id: s.product_id for s in w.services.values()},
            containers={c.id: (c.service_id, c.req_state) for c in w.containers.values()},
        )


def _check_repaired(w: World, drifted: list[Customer], before: WorldState) -> list[str]:
    """What the --fix pass should have left: cancelled customers' services asked
    to stop and their users suspended; panel projects running (drift.unowned is
    "report"); nothing else changed, nothing deleted."""
    after = _world_state(w)
    users = dict(before.users)
    containers = dict(before.containers)
    for c in drifted:
        if c.panel_project_id:
            continue
        users[c.user_id] = False
        for container, (service, _) in before.containers.items():
            if service in c.service_ids:
                containers[container] = (service, "stopped")
    want = WorldState(users, before.projects, before.services, containers)
    problems = []
    if after.projects != want.projects or after.services.keys() != want.services.keys():
        problems.append("--fix: projects or services were deleted or added")
    if after.users.keys() != want.users.keys() or after.containers.keys() != want.containers.keys():
        problems.append("--fix: users or containers were deleted or added")
    wrong_users = sorted(u for u in want.users if after.users.get(u) != want.users[u])
    if wrong_users:
        problems.append(f"--fix: {len(wrong_users)} user(s) active wrongly, e.g. {wrong_users[:5]}")
    wrong_services = sorted(
        {
            service
            for container, (service, state) in want.containers.items()
            if after.containers.get(container) != (service, state)
        }
    )
    if wrong_services:
        problems.append(
            f"--fix: {len(wrong_services)} service(s) in the wrong power state, "
            f"e.g. {wrong_services[:5]}"
        )
    resized = sorted(s for s in want.services if after.services.get(s) != want.services[s])
    if resized:
        problems.append(f"--fix: {len(resized)} service(s) resized, e.g. {resized[:5]}")
    return problems


def _unlisted(drifted: list[Customer], listed: frozenset[int]) -> set[tuple[str, str, str]]:
    """The seeded items whose one sign in the survey is a service that no page
    of the container_services list returned to the bare read (which pages the
    list as the survey does, over the same rows): an unpaid project's service.
    The other drift shows in the users list, which is sorted by a unique name."""
    return {
        (c.customer_id, "unpaid_project", f"project #{c.panel_project_id}")
        for c in drifted
        if c.panel_project_id and c.panel_service_id not in listed
    }


def _compare(
    name: str,
    outcome: Outcome,
    expected: Expected,
    unlisted: set[tuple[str, str, str]],
    customers: int,
) -> list[str]:
    """How a pass's items differ from what was seeded (nothing, if all is well):
    a report-only pass leaves everything ``open``; --fix repairs what it can.
    An item not found whose service no page listed is still a problem, named
    as such."""
    want = Counter(
        (c, kind, obj, fixed if name == "--fix" else "open") for c, kind, obj, fixed in expected
    )
    found = Counter(outcome.items)
    problems = []
    if outcome.customers != customers:
        problems.append(f"{name}: {outcome.customers} customers checked, not {customers}")
    missing = want - found
    paged_out = Counter({row: n for row, n in missing.items() if row[:3] in unlisted})
    for label, rows in (
        ("not found: their service was on no page of the services list", paged_out),
        ("not found", missing - paged_out),
        ("not seeded", found - want),
    ):
        if rows:
            kinds = Counter(kind for _, kind, _, _ in rows.elements())
            shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            examples = "; ".join(" ".join(row) for row in list(rows)[:3])
            problems.append(
                f"{name}: {sum(rows.values())} item(s) {label} ({shown}), e.g. {examples}"
            )
    return problems


# -- bare ------------------------------------------------------------------------------


def _bare(
    http: requests.Session, client: stripe.StripeClient, cs_url: str, admin: tuple[str, str]
) -> tuple[dict[str, int], dict[str, int], frozenset[int]]:
    """Every list a full comparison must read, indexed as a comparison needs
    them, with no ledger and no pacing: how many rows each gave, how many
    ComputeStacks counted but no page returned (by list), and the services listed."""
    users, users_missed = _pages(http, f"{cs_url}/api/admin/users", "users", admin)
    projects, projects_missed = _pages(http, f"{cs_url}/api/admin/projects", "projects", admin)
    services, services_missed = _pages(
        http, f"{cs_url}/api/admin/container_services", "container_services", admin, all="true"
    )
    missed = {
        name: n
        for name, n in (
            ("users", users_missed),
            ("projects", projects_missed),
            ("services", services_missed),
        )
        if n
    }
    customers = {
        c.id for c in client.v1.customers.list({"limit": STRIPE_PER_PAGE}).auto_paging_iter()
    }
    subscriptions = {
        s.id: s
        for s in client.v1.subscriptions.list(
            {"status": "all", "limit": STRIPE_PER_PAGE}
        ).auto_paging_iter()
    }
    by_external = {u["external_id"]: u for u in users.values() if u.get("external_id")}
    projects_of: dict[int, list[dict[str, Any]]] = {}
    for project in projects.values():
        projects_of.setdefault(project["user"]["id"], []).append(project)
    services_of: dict[int, list[dict[str, Any]]] = {}
    for service in services.values():
        services_of.setdefault(service["project"]["id"], []).append(service)
    rows = {
        "users": len(by_external),
        "projects": len(projects),
        "services": len(services),
        "Stripe customers": len(customers),
        "Stripe subscriptions": len(subscriptions),
    }
    return rows, missed, frozenset(services)


def _pages(
    http: requests.Session, url: str, key: str, admin: tuple[str, str], **params: str
) -> tuple[dict[int, dict[str, Any]], int]:
    """Every row of a ComputeStacks admin list, 200 a page, each once (by id);
    and how many the last page's ``Total`` counted that no page returned."""
    rows: dict[int, dict[str, Any]] = {}
    page = 1
    while True:
        query: dict[str, str | int] = {**params, "page": page, "per_page": SURVEY_PER_PAGE}
        answer = http.get(
            url,
            params=query,
            auth=admin,
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
        answer.raise_for_status()
        listed = answer.json()[key]
        rows.update((row["id"], row) for row in listed)
        if not listed or "next" not in answer.links:
            total = int(answer.headers.get("Total", len(rows)))
            return rows, max(total - len(rows), 0)
        page += 1


if __name__ == "__main__":
    main()
