"""``csonboard drift``: where Stripe and ComputeStacks disagree, and --fix.

Exit status: 0 when nothing differs (or everything found was fixed); 1 when
differences remain; 2 for bad arguments or settings.
"""

from __future__ import annotations

from collections import Counter

import click

from csonboard.cli.context import Context, pass_context
from csonboard.cli.output import echo_json, echo_table
from csonboard.errors import CsonboardError
from csonboard.ledger.drift import DriftItem
from csonboard.queue import open_doorbell
from csonboard.runtime import build_services, drift_checks
from csonboard.worker import worker_name


@click.command("drift")
@click.option("--customer", metavar="CUS_ID", help="Only this Stripe customer, read now.")
@click.option(
    "--fix",
    "fix_them",
    is_flag=True,
    help="Repair what can be: stop, start, resize, suspend (never delete).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_context
def command(ctx: Context, customer: str | None, fix_them: bool, as_json: bool) -> None:
    """Find every place where Stripe and ComputeStacks disagree; --fix repairs them.

    \b
      csonboard drift                       every customer (exit 1 if anything differs)
      csonboard drift --customer cus_... --fix

    What each customer should have comes from Stripe (every subscription, also
    the canceled ones) and the ledger; what they have from ComputeStacks. Each
    difference is listed with its kind, customer, object and what --fix does.
    A repair takes the customer's lifecycle lease and is recorded with the
    lifecycle's actions (`csonboard lifecycle list`). Projects no purchase made
    and users whose Stripe customer is gone are stopped only if
    drift.unowned = "stop". A pass over every customer is recorded; one that
    died is resumed by the next.
    """
    if customer is not None and not customer.startswith("cus_"):
        raise click.BadParameter("must be a Stripe customer id (cus_...)", param_hint="--customer")
    settings = ctx.settings
    services = build_services(settings)
    ledger = settings.open_ledger(must_exist=True)
    doorbell = open_doorbell(settings)
    try:
        drift = drift_checks(settings, services, ledger, doorbell, worker_name())
        missed: dict[str, int] = {}
        if customer is not None:
            items = drift.customer(customer, fix=fix_them)
            customers, pass_id, resumed = 1, None, None
        else:
            report = drift.full_pass(fix=fix_them)
            if report is None:
                raise CsonboardError(
                    "a drift pass is already running (the worker's or another "
                    "`csonboard drift`); try again when it ends, or check one "
                    "customer with --customer"
                )
            items, customers, pass_id = report.items, report.customers, report.pass_id
            missed, resumed = report.missed, report.resumed_after
    finally:
        doorbell.close()
        ledger.close()
    unsettled = [i for i in items if i.outcome != "fixed"]
    if as_json:
        echo_json(
            {
                "pass_id": pass_id,
                "fix": fix_them,
                "customers": customers,
                "resumed_after": resumed,
                "missed": missed,
                "items": items,
            }
        )
    else:
        _report(items, customers, fix_them, missed, resumed)
    if unsettled:
        raise CsonboardError(
            f"{len(unsettled)} difference(s) remain"
            + ("" if fix_them else ": `csonboard drift --fix` repairs what it can")
        )


def _report(
    items: list[DriftItem],
    customers: int,
    fixed_asked: bool,
    missed: dict[str, int],
    resumed: str | None,
) -> None:
    if resumed:
        click.echo(f"resumed an interrupted pass after customer {resumed}")
    if items:
        echo_table(
            ["KIND", "CUSTOMER", "OBJECT", "OUTCOME", "DETAIL", "FIX"],
            ((i.kind, i.customer_id, i.object, i.outcome, i.detail, i.fix) for i in items),
        )
    kinds = Counter(i.kind for i in items)
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "nothing"
    fixed = sum(1 for i in items if i.outcome == "fixed")
    click.echo(
        f"{customers} customer(s) checked: {shown}" + (f"; {fixed} fixed" if fixed_asked else "")
    )
    if missed:
        lost = ", ".join(f"{n} {name}" for name, n in sorted(missed.items()))
        click.echo(
            f"warning: ComputeStacks lists shifted while being read ({lost} not seen); "
            "the next pass looks again",
            err=True,
        )
