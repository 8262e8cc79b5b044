"""``csonboard replay``: events from the ledger, from the Stripe API and from an
exported file; a session's onboarding resumed or re-run from a step; dry runs
that change nothing. End to end on the sandboxes, the worker driven by hand."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from csonboard.errors import ComputeStacksNotFound
from csonboard.operations.replay import replay_session
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from operator_support import (
    buy,
    checkout_event_id,
    cli_env,
    delivered,
    run,
    settle,
    stripe_get,
    world,
)
from shop_support import failing_orders, open_shop

WORDPRESS = "price_sandbox_wordpress_monthly"
STATIC = "price_sandbox_static_monthly"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    # One try per step: a single transient failure dead-letters, as after an
    # outage that outlasted every retry.
    with sandbox_stack(
        tmp_path_factory.mktemp("replay") / "data",
        run_worker=False,
        CSONBOARD_WORKER_MAX_ATTEMPTS="1",
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
    ) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        yield stack


@pytest.fixture(scope="module")
def env(stack: SandboxStack) -> dict[str, str]:
    return cli_env(stack.settings)


@pytest.fixture
def undelivered(stack: SandboxStack) -> Iterator[None]:
    """Stripe's webhooks are held back for the test (the endpoint is "down")."""
    stack.sandbox("stripe", "webhooks", {"paused": True})
    try:
        yield
    finally:
        stack.sandbox("stripe", "webhooks", {"paused": False})
        delivered(stack)
        stack.worker.run_burst()


def cs_orders_of(stack: SandboxStack, user_id: int | None) -> list[dict[str, object]]:
    return [o for o in stack.cs_state()["orders"] if o["owner"] == user_id]


def test_a_dead_event_replayed_from_the_ledger_fulfils_the_purchase(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    session_id = buy(stack, {STATIC: 1})
    [event] = stack.ledger.events.find(object_id=session_id)
    # The event was dead-lettered before it started an onboarding.
    assert stack.ledger.events.claim(event.id, "crashed-worker", 60)
    stack.ledger.events.fail(event.id, "crashed-worker", "ledger unavailable: disk full", None)
    before = world(stack)

    dry = run(env, "replay", event.id, "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert "would be re-processed" in dry.stdout and "was dead" in dry.stdout
    assert world(stack) == before

    replayed = run(env, "replay", event.id)

    assert replayed.exit_code == 0, replayed.output
    assert f"✓ {event.id}  queued again" in replayed.stdout
    assert "disk full" in replayed.stdout
    onboarding = settle(stack, session_id)
    assert onboarding.status == "done", onboarding.last_error
    record = stack.ledger.events.get(event.id)
    assert record is not None and (record.status, record.attempts) == ("done", 1)

    again = run(env, "replay", event.id)  # replaying a done purchase's event is harmless

    assert again.exit_code == 0, again.output
    stack.worker.run_burst()
    assert len(cs_orders_of(stack, onboarding.cs_user_id)) == 1


@pytest.mark.usefixtures("undelivered")
def test_an_event_the_ledger_lacks_is_fetched_from_stripe_only_when_asked(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    session_id = buy(stack, {STATIC: 1}, wait=False)
    event_id = checkout_event_id(stack, session_id)
    assert stack.ledger.events.get(event_id) is None

    plain = run(env, "replay", event_id)

    assert plain.exit_code == 1
    assert "not in the ledger; add --from-stripe" in plain.stdout
    assert "1 of 1 could not be replayed" in plain.stderr
    assert stack.ledger.events.get(event_id) is None

    fetched = run(env, "replay", event_id, "--from-stripe")

    assert fetched.exit_code == 0, fetched.output
    assert "fetched from Stripe, stored (source stripe_api)" in fetched.stdout
    record = stack.ledger.events.get(event_id)
    assert record is not None
    assert (record.source, record.signature, record.object_id) == ("stripe_api", None, session_id)
    assert settle(stack, session_id).status == "done"


def test_an_event_stripe_no_longer_keeps_is_named_as_older_than_30_days(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    result = run(env, "replay", "evt_from_last_year", "--from-stripe")

    assert result.exit_code == 1
    assert "Stripe has no event evt_from_last_year" in result.stdout
    assert "older than the 30 days Stripe keeps events" in result.stdout
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("undelivered")
def test_an_exported_event_file_is_stored_as_operator_supplied_and_fulfilled(
    stack: SandboxStack, env: dict[str, str], tmp_path: Path
) -> None:
    session_id = buy(stack, {STATIC: 1}, wait=False)
    event_id = checkout_event_id(stack, session_id)
    exported = tmp_path / "event.json"  # what `stripe events retrieve evt_...` prints
    exported.write_bytes(stripe_get(stack, f"events/{event_id}").content)

    result = run(env, "replay", "--file", str(exported))

    assert result.exit_code == 0, result.output
    assert "read from the file, stored (source operator)" in result.stdout
    record = stack.ledger.events.get(event_id)
    assert record is not None and (record.source, record.signature) == ("operator", None)
    assert stack.ledger.events.body(event_id) == exported.read_bytes()
    assert settle(stack, session_id).status == "done"


def test_a_file_that_is_not_an_event_of_our_mode_is_a_bad_argument(
    env: dict[str, str], tmp_path: Path
) -> None:
    live = tmp_path / "live.json"
    live.write_text(
        json.dumps(
            {
                "id": "evt_live_1",
                "object": "event",
                "type": "checkout.session.completed",
                "created": 1_700_000_000,
                "livemode": True,
                "data": {"object": {"id": "cs_live_1", "object": "checkout.session"}},
            }
        )
    )
    garbage = tmp_path / "garbage.json"
    garbage.write_text("<html>not json</html>")

    for path, problem in ((live, "live-mode event"), (garbage, "is not JSON")):
        result = run(env, "replay", "--file", str(path))
        assert result.exit_code == 2, result.output
        assert "--file" in result.stderr and problem in result.stderr


def test_a_session_resumes_at_the_step_that_died_without_redoing_earlier_ones(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    # ComputeStacks answers 503 to the user creation once; one try per step: dead.
    stack.sandbox(
        "computestacks", "faults", {"method": "POST", "path": "/api/admin/users", "status": 503}
    )
    session_id = buy(stack, {STATIC: 1})
    dead = settle(stack, session_id)
    assert (dead.status, dead.step) == ("dead", "ensure_cs_user")
    earlier = {s.step: s for s in stack.ledger.onboardings.steps(session_id)}

    result = run(env, "replay", "--session", session_id)

    assert result.exit_code == 0, result.output
    assert "was dead at ensure_cs_user); runs from ensure_cs_user" in result.stdout
    onboarding = settle(stack, session_id)
    assert onboarding.status == "done", onboarding.last_error
    after = {s.step: s for s in stack.ledger.onboardings.steps(session_id)}
    for step in ("fetch_session", "resolve_plan", "ensure_stripe_customer"):
        assert after[step] == earlier[step]  # checkpoints reused, not redone
    assert len(cs_orders_of(stack, onboarding.cs_user_id)) == 1


@pytest.mark.parametrize(
    "built_before_failure", [None, 1], ids=["failed-at-the-end", "failed-after-one-service"]
)
def test_from_step_dry_run_changes_nothing_then_the_replay_places_a_new_order(
    stack: SandboxStack, env: dict[str, str], built_before_failure: int | None
) -> None:
    with failing_orders(stack, built_before_failure=built_before_failure):
        session_id = buy(stack, {WORDPRESS: 1})
        dead = settle(stack, session_id)
    assert (dead.status, dead.step) == ("dead", "await_project")
    [failed_order] = stack.ledger.onboardings.orders(session_id)
    # The failed order left its project, with the services built before the failure.
    [leftover] = projects_of(stack, dead.cs_user_id)
    assert leftover["state"] == "alert" and failed_order.leftover == leftover["id"]
    built = 2 if built_before_failure is None else built_before_failure
    assert len(services_of(stack, leftover["id"])) == built
    assert f"it left project #{leftover['id']} " in (dead.last_error or "")
    assert f"with {built} service(s)" in (dead.last_error or "")
    before = world(stack)

    dry = run(env, "replay", "--session", session_id, "--from-step", "place_order", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert world(stack) == before
    lines = dry.stdout
    assert "dead at await_project: a replay queues it to run from place_order" in lines
    assert f"first deletes the project(s) failed orders left: #{leftover['id']}" in lines
    assert "✓ fetch_session           done, kept" in lines
    assert '"payment_status": "paid"' in lines  # the recorded result is shown
    assert "↻ place_order             done, would re-run" in lines
    assert "→ await_project           would run" in lines
    assert "→ link_back               would run" in lines
    assert (
        f"would call: ComputeStacks DELETE /api/projects/{leftover['id']} (project "
        f'"Ada Lovelace\'s WordPress 1", {built} service(s), left by failed order '
        f"{failed_order.order_id}; deleted before ordering again if it is still there in "
        "state alert)"
    ) in lines
    assert f"ComputeStacks GET /api/admin/users/{dead.cs_user_id}/projects" in lines
    assert lines.index(f"DELETE /api/projects/{leftover['id']}") < lines.index(
        "ComputeStacks POST /api/orders as the customer"
    )
    assert f"ComputeStacks POST /api/admin/users/{dead.cs_user_id}/api_credentials" in lines
    assert "ComputeStacks POST /api/orders as the customer for unit 1" in lines
    assert f"{failed_order.order_id} failed project -  -> abandoned" in lines
    assert lines.rstrip().endswith("dry run: nothing was changed")

    result = run(env, "replay", "--session", session_id, "--from-step", "place_order")

    assert result.exit_code == 0, result.output
    assert f"abandoned, placed anew: {failed_order.order_id}" in result.stdout
    assert f"deleted before ordering: #{leftover['id']} (order {failed_order.order_id})" in (
        result.stdout
    )
    onboarding = settle(stack, session_id)
    assert onboarding.status == "done", onboarding.last_error
    [order] = stack.ledger.onboardings.orders(session_id)
    assert order.order_id != failed_order.order_id and order.project_id
    statuses = sorted(str(o["status"]) for o in cs_orders_of(stack, onboarding.cs_user_id))
    assert statuses == ["completed", "failed"]
    # The leftover is gone (being deleted); the customer has the new order's project only.
    assert [p["state"] for p in projects_of(stack, None) if p["id"] == leftover["id"]] in (
        [],
        ["deleting"],
    )
    live = [p["id"] for p in projects_of(stack, onboarding.cs_user_id) if p["state"] != "deleting"]
    assert live == [order.project_id]
    abandoned = stack.ledger.onboardings.orders(session_id, abandoned=True)
    assert [(o.order_id, o.status, o.left_project_id) for o in abandoned] == [
        (failed_order.order_id, "leftover_deleted", leftover["id"]),
        (order.order_id, "completed", None),
    ]
    placed = {s.step: s.result for s in stack.ledger.onboardings.steps(session_id)}["place_order"]
    assert placed["leftovers_deleted"] == [
        {
            "order_id": failed_order.order_id,
            "project_id": leftover["id"],
            "project_name": "Ada Lovelace's WordPress 1",
        }
    ]
    customer = stack.stripe.v1.customers.retrieve(onboarding.customer_id or "")
    assert customer.metadata["computestacks_project_ids"] == str(order.project_id)
    assert stack.ledger.onboardings.projects_of_customer(onboarding.customer_id or "") == [
        order.project_id
    ]


def test_a_leftover_someone_already_deleted_is_recorded_not_deleted_again(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    with failing_orders(stack):
        session_id = buy(stack, {STATIC: 1})
        dead = settle(stack, session_id)
    [failed_order] = stack.ledger.onboardings.orders(session_id)
    assert failed_order.leftover is not None
    stack.cs_admin.delete_project(failed_order.leftover)  # an operator was quicker
    # Used up by any DELETE of a project, and harmless to the tests after this one.
    tripwire = {"method": "DELETE", "path": "/api/projects/", "delay": 0.001}
    armed = stack.sandbox("computestacks", "faults", tripwire)["fault"]["id"]

    result = run(env, "replay", "--session", session_id, "--from-step", "place_order")

    assert result.exit_code == 0, result.output
    onboarding = settle(stack, session_id)
    assert onboarding.status == "done", onboarding.last_error
    faults = stack.http.get(f"{stack.cs_url}/_sandbox/faults", timeout=30).json()["faults"]
    assert armed in [f["id"] for f in faults]  # no DELETE was sent
    [abandoned] = [
        o
        for o in stack.ledger.onboardings.orders(session_id, abandoned=True)
        if o.order_id == failed_order.order_id
    ]
    assert (abandoned.status, abandoned.leftover) == ("leftover_deleted", None)
    assert dead.cs_user_id == onboarding.cs_user_id


def test_a_leftover_another_order_has_built_on_since_is_never_deleted(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    with failing_orders(stack):
        session_id = buy(stack, {STATIC: 1})
        dead = settle(stack, session_id)
    [failed_order] = stack.ledger.onboardings.orders(session_id)
    leftover = failed_order.leftover
    assert leftover is not None and dead.cs_user_id is not None
    # Someone (the customer, say) orders into the failed order's project, which completes.
    credential = stack.cs_admin.create_api_credential(dead.cs_user_id, "by hand")
    into = {"project_id": leftover, "project_name": "by hand", "location_id": 1}
    container = {"image_variant_id": 1020, "name": "nginx", "resources": {"product_id": 10}}
    placed = stack.http.post(
        f"{stack.cs_url}/api/orders",
        json={"order": {**into, "containers": [container]}},
        auth=(credential.username, credential.password),
        timeout=30,
    )
    assert placed.status_code == 201, placed.text
    deadline = time.monotonic() + 10
    while {p["id"]: p["state"] for p in projects_of(stack, None)}[leftover] != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    result = run(env, "replay", "--session", session_id, "--from-step", "place_order")

    assert result.exit_code == 0, result.output
    onboarding = settle(stack, session_id)
    assert onboarding.status == "done", onboarding.last_error
    assert {p["id"]: p["state"] for p in projects_of(stack, None)}[leftover] == "ok"  # kept
    assert f"project #{leftover}, left by failed order {failed_order.order_id}, is 'ok' now: " in (
        onboarding.note or ""
    )
    [order] = stack.ledger.onboardings.orders(session_id)
    assert order.project_id not in (None, leftover)
    assert stack.ledger.onboardings.projects_of_customer(onboarding.customer_id or "") == [
        order.project_id
    ]


def projects_of(stack: SandboxStack, user_id: int | None) -> list[dict[str, object]]:
    """The simulator's projects (of one user, or all with None), as its state shows them."""
    return [p for p in stack.cs_state()["projects"] if user_id is None or p["owner"] == user_id]


def services_of(stack: SandboxStack, project_id: object) -> list[dict[str, object]]:
    return [s for s in stack.cs_state()["services"] if s["project"] == project_id]


def test_a_session_without_an_onboarding_is_checked_with_stripe_first(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    result = run(env, "replay", "--session", "cs_test_typo")

    assert result.exit_code == 1
    assert "no onboarding, and Stripe retrieve checkout session cs_test_typo" in result.stdout
    assert stack.ledger.onboardings.get("cs_test_typo") is None


def test_a_session_a_worker_is_running_is_refused(stack: SandboxStack, env: dict[str, str]) -> None:
    stack.ledger.onboardings.start("cs_test_busy", livemode=False, source="test")
    assert stack.ledger.onboardings.claim("cs_test_busy", "host:42:other", 3600)

    result = run(env, "replay", "--session", "cs_test_busy", "--from-step", "fetch_session")

    assert result.exit_code == 1
    assert "a worker (host:42:other) is running it now" in result.stdout
    onboarding = stack.ledger.onboardings.get("cs_test_busy")
    assert onboarding is not None and onboarding.lease_owner == "host:42:other"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "give EVENT_ID..., --file PATH or --session cs_..., one of them"),
        (["evt_1", "--session", "cs_1"], "one of them"),
        (["evt_1", "--from-step", "place_order"], "--from-step goes with --session"),
        (["--session", "cs_1", "--from-stripe"], "--from-stripe goes with EVENT_ID"),
        (["--session", "sub_1"], "a Checkout Session id starts with cs_"),
        (["--session", "cs_1", "--from-step", "bake"], "'bake' is not one of"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    env: dict[str, str], args: list[str], problem: str
) -> None:
    result = run(env, "replay", *args)

    assert result.exit_code == 2
    assert problem in result.stderr


def test_a_replay_from_place_order_waits_for_an_order_that_may_still_complete(
    stack: SandboxStack, env: dict[str, str]
) -> None:
    stack.sandbox("computestacks", "orders", {"pending_seconds": 8})  # this order's plan
    try:
        session_id = buy(stack, {STATIC: 1})
        waiting = settle(stack, session_id, statuses=("waiting",))
    finally:
        stack.sandbox("computestacks", "orders", {"pending_seconds": 0.1})
    [order] = stack.ledger.onboardings.orders(session_id)

    result = run(env, "replay", "--session", session_id, "--from-step", "place_order")

    assert result.exit_code == 1
    assert f"order {order.order_id} is still pending in ComputeStacks" in result.output
    assert stack.ledger.onboardings.orders(session_id) == [order]  # not abandoned
    assert stack.ledger.onboardings.get(session_id) == waiting  # untouched
    onboarding = settle(stack, session_id)
    assert onboarding.status == "done", onboarding.last_error
    assert [o["id"] for o in stack.cs_state()["orders"] if o["owner"] == onboarding.cs_user_id] == [
        order.order_id
    ]


@pytest.mark.parametrize(("pending", "processing"), [(0.4, 0.4), (0.0, 0.8), (0.8, 0.0)], ids=str)
def test_replays_from_place_order_at_every_moment_leave_one_project_per_unit(
    tmp_path: Path, pending: float, processing: float
) -> None:
    with open_shop(tmp_path) as shop:
        shop.sandbox(
            "computestacks",
            "orders",
            {"pending_seconds": pending, "processing_seconds": processing},
        )

        def order_state(order_id: str) -> tuple[str, int | None] | None:
            try:
                order = shop.cs_admin.get_admin_order(order_id)
            except ComputeStacksNotFound:
                return None
            return str(order.status), order.project_id

        session_id = shop.checkout({WORDPRESS: 2}, email="ada@example.com")
        shop.pay(session_id, name="Ada Lovelace", email="ada@example.com")
        seen, answers = set(), set()
        until = time.monotonic() + 3  # an operator replaying every 20 ms, whatever happens
        while time.monotonic() < until:
            found = shop.ledger.onboardings.get(session_id)
            seen.add(found.status if found else "absent")
            report = replay_session(
                shop.ledger,
                shop.worker.doorbell,
                session_id,
                from_step="place_order",
                livemode=lambda: False,
                order_state=order_state,
            )
            answers.add(report.items[0].ok)
            time.sleep(0.02)
        onboarding = shop.wait_for(session_id, timeout=60)

        assert onboarding.status == "done", onboarding.last_error
        orders = shop.ledger.onboardings.orders(session_id)
        assert sorted(o.unit for o in orders) == [1, 2]
        state = shop.cs_state()
        live = sorted(p["id"] for p in state["projects"] if p["state"] != "deleting")
        assert live == sorted(o.project_id for o in orders if o.project_id)  # one per unit
        completed = [o["id"] for o in state["orders"] if o["status"] == "completed"]
        assert sorted(completed) == sorted(o.order_id for o in orders)
        assert "waiting" in seen and answers == {True, False}  # replayed and refused
