"""Evidence csonboard holds for a dispute (``money.submit_evidence``): when the
purchase was delivered, what it was, and how its buyer used it.

Only what csonboard itself recorded and nothing personal beyond what Stripe
already has: the day the projects became ready (``service_date``), the plans
and projects bought (``product_description``), and the days the buyer opened
the status page and signed in to the control panel from it, with times and
counts (``access_activity_log``; no IP address, browser or email).
"""

from __future__ import annotations

from csonboard.ledger import Ledger, Onboarding
from csonboard.ledger.onboardings import READY_STEP
from csonboard.plans import Catalog

_WHAT = {
    "visit": "opened the status page of this purchase",
    "sign_in": "signed in to the control panel from the status page",
}


def evidence_of(ledger: Ledger, catalog: Catalog, onboarding: Onboarding) -> dict[str, str] | None:
    """The evidence fields for ``onboarding``'s purchase; None when it was
    never delivered (its projects never became ready): nothing to show."""
    steps = {s.step: s for s in ledger.onboardings.steps(onboarding.session_id)}
    ready = steps.get(READY_STEP)
    if ready is None or ready.status != "done" or ready.finished_at is None:
        return None
    delivered = ready.finished_at
    plan_step = steps.get("resolve_plan")
    units = plan_step.result.get("units", []) if plan_step else []
    plans = []
    for unit in units:
        plan = catalog.plans.get(str(unit.get("plan")))
        described = f" ({plan.description})" if plan and plan.description else ""
        plans.append(f"{unit.get('plan')}{described}")
    projects = [o.project_id for o in ledger.onboardings.orders(onboarding.session_id)]
    shown = ", ".join(f"#{p}" for p in projects if p) or "none"
    lines = [f"{delivered:%Y-%m-%d %H:%M} UTC: the hosting projects of this purchase were ready"]
    for access in ledger.access.of_session(onboarding.session_id):
        times = (
            f"{access.first_at:%H:%M}"
            if access.count == 1
            else f"{access.count} times, {access.first_at:%H:%M} to {access.last_at:%H:%M}"
        )
        lines.append(f"{access.day} ({times} UTC): the buyer {_WHAT.get(access.kind, access.kind)}")
    return {
        "service_date": f"{delivered:%Y-%m-%d}",
        "product_description": (
            "Container hosting, delivered at once on a ComputeStacks platform: "
            + "; ".join(plans or ["a hosting plan"])
            + f". Projects: {shown}."
        ),
        "access_activity_log": "\n".join(lines)[:20_000],
    }
