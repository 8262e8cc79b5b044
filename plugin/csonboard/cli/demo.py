"""``csonboard demo``: one purchase, end to end, against the bundled sandboxes.

Starts the ComputeStacks simulator, the Stripe stand-in, the receiver and a
worker on a temporary SQLite ledger; buys a plan through Checkout; shows each
onboarding step as it happens; prints what now exists on both sides; then the
customer uses some bandwidth beyond the package, and the usage sync bills it
through the Stripe meter the example catalog names. Exits 0 only when the
project exists.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import echo_json
from csonboard.errors import CsonboardError
from csonboard.logs import configure_logging

DESCRIBE = {
    "fetch_session": lambda r: (
        f"payment confirmed: {r['payment_status']}, "
        f"{sum(i['quantity'] for i in r['line_items'])} unit(s) bought"
    ),
    "resolve_plan": lambda r: (
        "plan: " + ", ".join(f"{u['plan']} -> project {u['project_name']!r}" for u in r["units"])
    ),
    "ensure_stripe_customer": lambda r: (
        f"Stripe customer {r['customer_id']}"
        + (" (created for a guest checkout)" if r["created"] else "")
    ),
    "ensure_cs_user": lambda r: f"ComputeStacks user #{r['user_id']} {r['email']} ({r['how']})",
    "place_order": lambda r: "order placed: " + ", ".join(o["order_id"] for o in r["orders"]),
    "await_project": lambda r: (
        "project ready: " + ", ".join(f"#{p['project_id']}" for p in r["projects"])
    ),
    "link_back": lambda r: f"Stripe customer metadata written: {r['metadata']}",
}


def _check_price(price: str) -> None:
    """BadParameter unless the sandbox sells ``price`` and a plan maps it."""
    from csonboard.plans import load_catalog as load_plans
    from csonboard.sandbox.catalog import example_plans, load_catalog

    plans = load_plans(example_plans())
    sold = {
        p["id"]: p.get("lookup_key")
        for p in load_catalog()["stripe"]["prices"]
        if plans.match(p["id"], p.get("lookup_key"), p.get("product"))
    }
    if price not in sold:
        raise click.BadParameter(
            f"{price!r} is not a sandbox price a plan sells; choose one of: "
            + ", ".join(sorted(sold)),
            param_hint="--price",
        )


@click.command("demo")
@click.option(
    "--price",
    default="price_sandbox_wordpress_monthly",
    show_default=True,
    help="A sandbox price to buy (an unknown one is refused with the list of prices).",
)
@click.option("--quantity", type=click.IntRange(1, 10), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the final onboarding record as JSON.")
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait.",
)
@pass_context
def command(ctx: Context, price: str, quantity: int, as_json: bool, timeout: float) -> None:
    """Buy a plan in the sandbox and watch it become a ComputeStacks project."""
    from csonboard.sandbox.stack import sandbox_stack

    if not math.isfinite(timeout):  # nan passes every range check
        raise click.BadParameter("must be a number of seconds", param_hint="--timeout")
    _check_price(price)

    if ctx.log_level is None:  # the demo's own lines tell the story
        configure_logging("json" if ctx.log_format == "json" else "text", "WARNING")

    with (
        tempfile.TemporaryDirectory(prefix="csonboard-demo-") as tmp,
        sandbox_stack(Path(tmp)) as stack,
    ):
        mode = "payment" if price.endswith("_once") else "subscription"
        session_id = stack.checkout({price: quantity}, mode=mode, email="ada@example.com")
        say = (lambda text: None) if as_json else click.echo
        say(f"Checkout Session {session_id} created ({mode} mode, {quantity} x {price})")
        stack.pay(session_id, name="Ada Lovelace", email="ada@example.com")
        say("buyer paid; Stripe delivers the signed webhook to the receiver ...")
        say(
            f"(the buyer's status page, while the demo runs: "
            f"{stack.receiver_url}/welcome?session_id={session_id})"
        )
        onboarding = _follow(stack, session_id, timeout, say)
        projects = [o for o in stack.ledger.onboardings.orders(session_id) if o.project_id]
        if as_json:
            echo_json(
                {
                    **vars(onboarding),
                    "steps": stack.ledger.onboardings.steps(session_id),
                    "orders": stack.ledger.onboardings.orders(session_id),
                }
            )
        else:
            _summary(stack, onboarding.cs_user_id, onboarding.customer_id)
        if onboarding.status != "done" or not projects:
            reason = onboarding.last_error or onboarding.note
            raise CsonboardError(f"the onboarding ended {onboarding.status}: {reason}")
        if not as_json:
            _bill_usage(stack, onboarding)


def _follow(stack: Any, session_id: str, timeout: float, say: Any) -> Any:
    shown: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        for step in stack.ledger.onboardings.steps(session_id):
            if step.status == "done" and step.step not in shown:
                shown.add(step.step)
                say(f"  ✓ {step.step:<23} {DESCRIBE[step.step](step.result)}")
        onboarding = stack.ledger.onboardings.get(session_id)
        if onboarding and onboarding.status in ("done", "dead", "stuck", "closed"):
            if onboarding.status != "done":
                say(f"  ✗ {onboarding.step}: {onboarding.last_error or onboarding.note}")
            return onboarding
        if time.monotonic() > deadline:
            raise CsonboardError(
                f"gave up after {timeout:g} s: the onboarding is "
                f"{onboarding.status if onboarding else 'not started'}"
            )
        time.sleep(0.1)


def _summary(stack: Any, user_id: int | None, customer_id: str | None) -> None:
    if user_id is None or customer_id is None:
        return
    user = stack.cs_admin.get_user(user_id)
    click.echo("\nComputeStacks user:")
    click.echo(
        f"  #{user.id} {user.fname} {user.lname} <{user.email}> external_id={user.external_id}"
    )
    click.echo(f"  labels={dict(user.labels)} active={user.active}")
    click.echo("ComputeStacks projects:")
    for project in stack.cs_admin.list_user_projects(user_id):
        click.echo(f"  #{project.id} {project.name!r} ({project.current_state})")
    click.echo(f"Stripe customer {customer_id} metadata:")
    for key, value in sorted(
        stack.stripe.v1.customers.retrieve(customer_id).metadata.to_dict().items()
    ):
        click.echo(f"  {key} = {value}")


DEMO_OVERAGE = "12.5"
"""GB of bandwidth beyond the package the demo's customer uses."""


def _bill_usage(stack: Any, onboarding: Any) -> None:
    """The customer uses bandwidth beyond the package; one usage sync bills it."""
    from csonboard.runtime import build_services, usage_sync

    stack.stop_worker()  # the sync below is the only one: its counts are the story
    stack.sandbox(
        "computestacks",
        "billing_usages",
        {"user_id": onboarding.cs_user_id, "qty": DEMO_OVERAGE, "product_id": _BANDWIDTH},
    )
    services = build_services(stack.settings)
    done = usage_sync(stack.settings, services, stack.ledger, "demo").sync(
        customer_id=onboarding.customer_id
    )
    click.echo(f"\nUsage: {DEMO_OVERAGE} GB of bandwidth beyond the package in ComputeStacks")
    for report in stack.ledger.usage.find(customer_id=onboarding.customer_id):
        click.echo(
            f"  usage row #{report.usage_id}: {report.quantity} -> {report.value} whole unit(s) "
            f"to Stripe meter {report.meter!r} ({report.status})"
        )
    [cursor] = stack.ledger.usage.cursors(onboarding.customer_id)
    click.echo(
        f"  {done.reported} meter event(s) sent; carried to the next report: "
        f"{cursor.carry or 'nothing'}"
    )


_BANDWIDTH = 20
"""The simulator's bandwidth product (plugin/csonboard/sandbox/catalog.toml)."""
