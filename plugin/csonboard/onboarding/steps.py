"""The onboarding steps, in order. Each takes the :class:`Run`
and returns its result, which is checkpointed before the next step starts.
Results never hold secrets.

A step is safe to run again after a crash at any point: the Stripe writes carry
deterministic idempotency keys, the ComputeStacks user is looked up before it
is created, and orders are recorded the moment their ids are known.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

from csonboard.errors import OnboardingHalted, OnboardingRefused
from csonboard.onboarding.identity import ensure_cs_user, guest_customer
from csonboard.onboarding.ordering import await_project, place_order
from csonboard.onboarding.run import Run
from csonboard.plans import Plan
from csonboard.stripe_api import CheckoutSession, LineItem

PAID = ("paid", "no_payment_required")


def fetch_session(run: Run) -> dict[str, Any]:
    """Re-read the session and its line items from Stripe (never trust an
    event body for what was bought) and gate on payment.

    API versions before 2020-08-27 render sessions without ``payment_status``;
    Checkout then offered no delayed payment methods, so such a session that is
    complete (or too old to have a ``status`` either) was paid.
    """
    session = run.services.stripe.checkout_session(run.session_id)
    if session.livemode != run.services.livemode:
        mode = "live" if session.livemode else "test"
        raise OnboardingRefused(
            f"session {session.id} is a {mode}-mode session; csonboard runs in the other mode"
        )
    if session.mode == "setup":
        raise OnboardingHalted(
            "closed", "a setup-mode session only saves a payment method: nothing to provision"
        )
    paid = session.payment_status in PAID or (
        session.payment_status is None and session.status in (None, "complete")
    )
    if not paid:
        if session.status == "expired":
            raise OnboardingHalted("closed", "the session expired unpaid; nothing was provisioned")
        raise OnboardingHalted(
            "awaiting_payment",
            f"payment_status is {session.payment_status!r}: waiting for "
            "checkout.session.async_payment_succeeded",
        )
    if not session.line_items:
        raise OnboardingRefused(f"session {session.id} has no line items: nothing to provision")
    run.fields.update(subscription_id=session.subscription)
    return _as_result(session)


def resolve_plan(run: Run) -> dict[str, Any]:
    """Map every line item to a plan; each unit becomes one project (unless the
    plan says per_line_item). Images named by ``image_id`` are resolved to
    their default variant now, and each container's product is recorded, so
    every retry orders the same thing (a later catalog edit changes new sales
    only; drift compares each service with the product it was sold as)."""
    session = run.result("fetch_session")
    catalog = run.services.catalog
    matched: list[tuple[dict[str, Any], Plan]] = []
    unknown: list[dict[str, Any]] = []
    for item in session["line_items"]:
        plan = catalog.match(item["price_id"], item["lookup_key"], item["product_id"])
        if plan is None:
            unknown.append(item)
        else:
            matched.append((item, plan))
    if unknown:
        raise OnboardingRefused(
            f"{'; '.join(_describe(item) for item in unknown)}: matches no plan in "
            f"{catalog.source or 'the catalog'}. Add it to a plan's match, then run "
            f"`csonboard replay --session {run.session_id}`"
        )
    groups = {plan.user_group_id for _, plan in matched if plan.user_group_id}
    if len(groups) > 1:
        raise OnboardingRefused(
            f"the plans bought need different user groups ({sorted(groups)}); a user has one"
        )

    def count(item: dict[str, Any], plan: Plan) -> int:
        return int(item["quantity"]) if plan.projects == "per_unit" else 1

    variants: dict[int, int] = {}
    units: list[dict[str, Any]] = []
    total = sum(count(item, plan) for item, plan in matched)
    buyer = session["buyer"]
    for item, plan in matched:
        for _ in range(count(item, plan)):
            number = len(units) + 1
            containers = []
            for container in plan.containers:
                variant = container.image_variant_id
                if variant is None:
                    assert container.image_id is not None
                    if container.image_id not in variants:
                        variants[container.image_id] = run.services.cs.default_variant_id(
                            container.image_id
                        )
                    variant = variants[container.image_id]
                containers.append(
                    {
                        "name": container.name,
                        "image_variant_id": variant,
                        "product_id": container.product_id,
                    }
                )
            units.append(
                {
                    "unit": number,
                    "plan": plan.name,
                    "line_item": item["id"],
                    "location_id": plan.location_id,
                    "project_name": plan.project_name_for(
                        customer_name=buyer["name"] or (buyer["email"] or "").split("@")[0],
                        customer_email=buyer["email"] or "",
                        session_id=run.session_id,
                        session_tag=run.session_id[-6:],
                        unit=str(number),
                        units=str(total),
                    ),
                    "containers": containers,
                }
            )
    return {"user_group_id": next(iter(groups), None), "units": units}


def ensure_stripe_customer(run: Run) -> dict[str, Any]:
    """The session's customer or, for a guest checkout, the buyer's customer
    from :func:`~csonboard.onboarding.identity.guest_customer`: the one
    csonboard made their ComputeStacks user for (a repeat guest), the one an
    earlier try of this onboarding recorded, or one created from the buyer's
    details (same idempotency key on every retry). The result says which and why."""
    session = run.result("fetch_session")
    customer = session["customer"]
    if not customer:
        return guest_customer(run)
    run.fields.update(customer_id=customer)
    return {
        "customer_id": customer,
        "created": False,
        "how": "session",
        "reason": "the session's customer",
    }


def link_back(run: Run) -> dict[str, Any]:
    """Write the ComputeStacks ids onto the Stripe customer's metadata: the user
    and every project the customer has through csonboard (so a repeat buyer's
    earlier projects stay listed): the projects of completed orders, never one
    a failed order left behind. The idempotency key is derived from the
    session and the metadata written, so a replay is answered from Stripe's
    record and a changed value is a new request."""
    customer = run.result("ensure_stripe_customer")["customer_id"]
    user_id = run.result("ensure_cs_user")["user_id"]
    projects = run.ledger.onboardings.projects_of_customer(customer)
    metadata = {
        "computestacks_user_id": str(user_id),
        "computestacks_project_ids": _fit(",".join(str(p) for p in projects), 500),
    }
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()[:16]
    run.services.stripe.update_customer_metadata(
        customer, metadata, idempotency_key=f"csonboard-link-{run.session_id}-{digest}"
    )
    return {"customer_id": customer, "metadata": metadata}


Step = Callable[[Run], dict[str, Any]]
STEPS: tuple[tuple[str, Step], ...] = (
    ("fetch_session", fetch_session),
    ("resolve_plan", resolve_plan),
    ("ensure_stripe_customer", ensure_stripe_customer),
    ("ensure_cs_user", ensure_cs_user),
    ("place_order", place_order),
    ("await_project", await_project),
    ("link_back", link_back),
)
STEP_NAMES = tuple(name for name, _ in STEPS)


def _as_result(session: CheckoutSession) -> dict[str, Any]:
    def item(line: LineItem) -> dict[str, Any]:
        return dataclasses.asdict(line)

    return {
        "id": session.id,
        "status": session.status,
        "payment_status": session.payment_status,
        "mode": session.mode,
        "customer": session.customer,
        "subscription": session.subscription,
        "currency": session.currency,
        "locale": session.locale,
        "buyer": dataclasses.asdict(session.buyer),
        "line_items": [item(line) for line in session.line_items],
    }


def _describe(item: dict[str, Any]) -> str:
    parts = [f"price {item['price_id']}"]
    if item["lookup_key"]:
        parts.append(f"lookup key {item['lookup_key']!r}")
    if item["product_id"]:
        parts.append(f"product {item['product_id']}")
    return f"line item {item['description']!r} ({', '.join(parts)})"


def _fit(text: str, limit: int) -> str:
    """Stripe metadata values hold 500 characters; keep the newest ids."""
    while len(text) > limit:
        text = text.split(",", 1)[1]
    return text
