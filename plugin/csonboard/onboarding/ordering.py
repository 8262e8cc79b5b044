"""``place_order`` and ``await_project``: one ComputeStacks order per unit, placed
as the customer, then watched until it has completed.

ComputeStacks has no idempotency keys, so placing is done in this order, each
line checkpointed before the next side effect:

1. delete API credentials a previous try minted but did not get to delete;
2. delete the projects this onboarding's failed orders left behind, once a
   replay has abandoned those orders (the order row names the project until
   then; it is marked deleted after the DELETE; one already gone or being
   deleted is only marked);
3. mint a credential for the customer (admin API), record its id;
4. per unit still without an order: record the intent (project name and the
   orders the user already has), POST the order as the customer, record the
   order id at once;
5. delete the credential (the password was never stored).

After a crash between the POST and recording its id, the next try finds the
order among the user's orders: one it did not know before, that no other
onboarding recorded, with the intended project name. If it cannot tell which
order is its own, it stops and asks a person rather than guess.

A project is the customer's only once its order is ``completed``; what a
failed order leaves is handled in ``leftovers``.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from csonboard.computestacks import (
    ComputeStacksClient,
    NewOrder,
    OrderContainer,
    OrderStatus,
)
from csonboard.errors import (
    ComputeStacksNotFound,
    ComputeStacksValidationError,
    LeaseLost,
    OnboardingHalted,
    OnboardingRefused,
    StillWaiting,
)
from csonboard.ledger.onboardings import LEFTOVER_DELETED
from csonboard.onboarding import leftovers
from csonboard.onboarding.run import Run

log = logging.getLogger(__name__)

STEP = "place_order"
FAILED = (OrderStatus.FAILED, OrderStatus.CANCELLED)


def place_order(run: Run) -> dict[str, Any]:
    units = run.result("resolve_plan")["units"]
    user_id = run.result("ensure_cs_user")["user_id"]
    progress: dict[str, Any] = run.partial.get(STEP) or {"credentials": [], "intents": {}}
    _delete_leftover_credentials(run, user_id, progress)
    warnings = leftovers.delete_abandoned(run)

    placed = {order.unit for order in run.ledger.onboardings.orders(run.session_id)}
    missing = [unit for unit in units if unit["unit"] not in placed]
    if missing:
        _lift_our_suspension(run, user_id)
        # The name is recorded before the credential exists: if the answer is
        # lost, the name is all anyone can find it by (there is no list API).
        name = f"csonboard {run.session_id} #{len(progress['credentials']) + 1}"
        progress["credentials"].append({"name": name, "id": None, "deleted": False})
        run.save(STEP, progress)
        credential = run.services.cs.create_api_credential(user_id, name)
        progress["credentials"][-1]["id"] = credential.id
        run.save(STEP, progress)
        customer = run.services.cs.as_user(credential.username, credential.password)
        try:
            for unit in missing:
                _place_unit(run, customer, user_id, unit, progress)
        finally:
            _delete_credential(run, user_id, progress, credential.id)
    unaccounted = [c["name"] for c in progress["credentials"] if c["id"] is None]
    if unaccounted:
        warnings.append(
            f"ComputeStacks user #{user_id} may hold API credential(s) named "
            f"{', '.join(repr(n) for n in unaccounted)}: a worker stopped while one was "
            "being created and its id never arrived. Delete them in ComputeStacks "
            "(the user's API credentials); the API cannot list them"
        )
    orders = run.ledger.onboardings.orders(run.session_id)
    return {
        "orders": [
            {"unit": o.unit, "order_id": o.order_id, "project_name": o.project_name} for o in orders
        ],
        "credentials_deleted": [c["name"] for c in progress["credentials"] if c["deleted"]],
        "credentials_unaccounted": unaccounted,
        "leftovers_deleted": [
            {
                "order_id": o.order_id,
                "project_id": o.left_project_id,
                "project_name": o.project_name,
            }
            for o in run.ledger.onboardings.orders(run.session_id, abandoned=True)
            if o.status == LEFTOVER_DELETED
        ],
        "warnings": warnings,
    }


def _place_unit(
    run: Run,
    customer: ComputeStacksClient,
    user_id: int,
    unit: dict[str, Any],
    progress: dict[str, Any],
) -> None:
    key = str(unit["unit"])
    intent = progress["intents"].get(key)
    if intent is not None:
        order_id = _find_own_order(run, customer, user_id, intent)
        if order_id is not None:
            _record(run, unit, order_id, user_id, "pending")
            return
    progress["intents"][key] = {
        "project_name": unit["project_name"],
        "known_orders": sorted(order.id for order in customer.list_orders()),
    }
    run.save(STEP, progress)
    try:
        order = customer.create_order(_new_order(run, unit))
    except ComputeStacksValidationError as exc:
        raise OnboardingRefused(
            f"ComputeStacks refused the order for {unit['project_name']!r}: "
            f"{'; '.join(map(str, exc.errors)) or 'no reason given (over quota?)'}. "
            f"Fix the plan {unit['plan']!r} or the account, then run "
            f"`csonboard replay --session {run.session_id} --from-step resolve_plan`"
        ) from exc
    _record(run, unit, order.id, user_id, OrderStatus.PENDING.value)


def _new_order(run: Run, unit: dict[str, Any]) -> NewOrder:
    # Params come from the catalog, not the ledger: they may hold values an
    # operator considers secret, and the ledger never stores those.
    plan = run.services.catalog.plans.get(unit["plan"])
    if plan is None:
        raise OnboardingRefused(
            f"plan {unit['plan']!r} is no longer in the catalog; restore it or run "
            f"`csonboard replay --session {run.session_id} --from-step resolve_plan`"
        )
    configured = {container.name: container for container in plan.containers}
    containers = []
    for chosen in unit["containers"]:
        container = configured.get(chosen["name"])
        if container is None:
            raise OnboardingRefused(
                f"container {chosen['name']!r} left plan {plan.name!r}; run "
                f"`csonboard replay --session {run.session_id} --from-step resolve_plan`"
            )
        containers.append(
            OrderContainer(
                image_variant_id=chosen["image_variant_id"],
                # Pinned by resolve_plan (older checkpoints did not: the catalog's).
                product_id=chosen.get("product_id", container.product_id),
                name=container.name,
                params=dict(container.params),
                domains=container.domains,
            )
        )
    return NewOrder(
        project_name=unit["project_name"],
        containers=tuple(containers),
        location_id=unit["location_id"],
    )


def _find_own_order(
    run: Run, customer: ComputeStacksClient, user_id: int, intent: dict[str, Any]
) -> str | None:
    """The order a previous try placed but did not record, if there is one."""
    known = set(intent["known_orders"]) | run.ledger.onboardings.order_ids_of_user(user_id)
    candidates = [
        order.id
        for order in customer.list_orders()
        if order.id not in known
        and customer.get_order(order.id).project_name == intent["project_name"]
    ]
    if len(candidates) > 1:
        raise OnboardingRefused(
            f"cannot tell which of ComputeStacks orders {', '.join(candidates)} (all named "
            f"{intent['project_name']!r}) this onboarding placed before it was interrupted. "
            "Cancel the extra ones in ComputeStacks, then run "
            f"`csonboard replay --session {run.session_id} --from-step place_order`"
        )
    if candidates:
        log.warning(
            "recovered an order placed before an interruption",
            extra={"session_id": run.session_id, "order_id": candidates[0]},
        )
    return candidates[0] if candidates else None


def _record(run: Run, unit: dict[str, Any], order_id: str, user_id: int, status: str) -> None:
    if not run.ledger.onboardings.record_order(
        run.session_id,
        run.owner,
        unit=unit["unit"],
        order_id=order_id,
        cs_user_id=user_id,
        project_name=unit["project_name"],
        status=status,
        lease_seconds=run.lease_seconds,
    ):
        raise LeaseLost(f"lost the lease on onboarding {run.session_id} after order {order_id}")


def _lift_our_suspension(run: Run, user_id: int) -> None:
    """ComputeStacks refuses orders of a suspended user. A suspension csonboard
    made (its customer had no purchase in service) is lifted for the new one;
    any other is refused for a person to decide. Unsuspended first, then
    forgotten: a crash in between leaves csonboard's reason on an active user,
    which the lifecycle clears, never a suspension nobody owns."""
    if run.services.cs.get_user(user_id).active:
        return
    customer_id = run.result("ensure_stripe_customer")["customer_id"]
    account = run.ledger.lifecycle.account(customer_id)
    if account is None or account.suspended_reason is None:
        raise OnboardingRefused(
            f"ComputeStacks user #{user_id} is suspended, and not by csonboard: ComputeStacks "
            "refuses orders of a suspended user. If this customer may buy again, lift the "
            f"suspension in ComputeStacks, then run `csonboard replay --session {run.session_id}`"
        )
    run.services.cs.unsuspend_user(user_id)
    run.ledger.lifecycle.lifted_for_purchase(
        customer_id, run.session_id, user_id, account.suspended_reason
    )


def _delete_leftover_credentials(run: Run, user_id: int, progress: dict[str, Any]) -> None:
    for credential in progress["credentials"]:
        if credential["id"] is not None and not credential["deleted"]:
            _delete_credential(run, user_id, progress, credential["id"])


def _delete_credential(
    run: Run, user_id: int, progress: dict[str, Any], credential_id: int
) -> None:
    """Delete a minted credential and record that it is gone. A failure leaves
    it recorded as not deleted, and the step fails so that a retry cleans up."""
    # Not found: already gone (deleted by an earlier try whose record was lost).
    with contextlib.suppress(ComputeStacksNotFound):
        run.services.cs.delete_api_credential(user_id, credential_id)
    for credential in progress["credentials"]:
        if credential["id"] == credential_id:
            credential["deleted"] = True
    run.save(STEP, progress)


def await_project(run: Run) -> dict[str, Any]:
    """Wait, by scheduled re-checks, until every order has completed. A project
    ComputeStacks shows while its order is still processing is not ready: it
    is made before the services, and stays if the order then fails.

    A failed order is dead-lettered (ComputeStacks gives no reason in its API),
    naming the project it left, which is recorded on the order row so that
    ``place_order`` deletes it before ordering again; an order not finished by
    the deadline marks the onboarding ``stuck``.
    """
    progress: dict[str, Any] = run.partial.get("await_project") or {"polls": 0}
    policy = run.services.policy
    now = run.clock()
    deadline = run.onboarding.deadline_at
    if deadline is None:
        deadline = now + timedelta(minutes=policy.order_deadline_minutes)
        run.fields["deadline_at"] = deadline

    unfinished = []
    failed: list[dict[str, Any]] = []
    for record in run.ledger.onboardings.orders(run.session_id):
        if record.status == OrderStatus.COMPLETED.value:
            continue
        order = run.services.cs.get_admin_order(record.order_id)
        if order.status == OrderStatus.COMPLETED and order.project_id is not None:
            _update(run, record.order_id, order.status.value, order.project_id)
        elif order.status in FAILED:
            # The project it left, not the customer's: recorded to be deleted.
            _update(run, record.order_id, order.status.value, order.project_id)
            failed.append(leftovers.left_behind(run, record, order))
        else:
            unfinished.append(f"{record.order_id} ({order.status.value})")
    if failed:
        progress["left_behind"] = failed
        run.save("await_project", progress)
        raise OnboardingRefused(
            f"{'; '.join(leftovers.describe(f) for f in failed)}. The API gives no reason: "
            "look at the user's event log in ComputeStacks (a suspended user, quota, "
            f"capacity?). After fixing it run `csonboard replay --session {run.session_id} "
            "--from-step place_order`"
        )
    orders = run.ledger.onboardings.orders(run.session_id)
    if not unfinished:
        return {
            "projects": [
                {"unit": o.unit, "order_id": o.order_id, "project_id": o.project_id} for o in orders
            ]
        }
    if now >= deadline:
        raise OnboardingHalted(
            "stuck",
            f"order(s) {', '.join(unfinished)} not finished after "
            f"{policy.order_deadline_minutes:g} minutes: is ComputeStacks processing orders? "
            f"Resume with `csonboard replay --session {run.session_id}`",
        )
    progress["polls"] += 1
    run.save("await_project", progress)
    delay = min(policy.poll_max_seconds, policy.poll_seconds * 1.5 ** (progress["polls"] - 1))
    raise StillWaiting(
        f"waiting for ComputeStacks order(s) {', '.join(unfinished)}", retry_after=delay
    )


def _update(run: Run, order_id: str, status: str, project_id: int | None) -> None:
    if not run.ledger.onboardings.update_order(
        run.session_id,
        run.owner,
        order_id,
        status=status,
        project_id=project_id,
        lease_seconds=run.lease_seconds,
    ):
        raise LeaseLost(f"lost the lease on onboarding {run.session_id}")
