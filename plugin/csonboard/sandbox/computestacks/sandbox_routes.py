"""Test controls under ``/_sandbox/`` (no auth, JSON in and out).

Bad input is ``400 {"error": "..."}`` naming the field (``422`` for a
billing usage row naming an unknown user or product). These routes are not
part of ComputeStacks; nothing under ``/api`` is affected by their shape.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import NoReturn

from flask import Blueprint, Response, abort, jsonify

from csonboard.sandbox.computestacks import accounts, billing, render
from csonboard.sandbox.computestacks.faults import Fault, Hold
from csonboard.sandbox.computestacks.records import Outcome
from csonboard.sandbox.computestacks.wire import json_body, simulator, world

sandbox = Blueprint("cs_sandbox", __name__, url_prefix="/_sandbox")

_OUTCOMES: dict[str, Outcome] = {"complete": "complete", "fail": "fail", "stuck": "stuck"}
_HOLDS: dict[object, Hold] = {False: None, None: None, "before": "before", "after": "after"}


def _invalid(problem: str) -> NoReturn:
    response = jsonify({"error": problem})
    response.status_code = 400
    abort(response)


def _body() -> dict[str, object]:
    body = json_body()
    if body is None:
        return {}
    if not isinstance(body, dict):
        _invalid("body must be a JSON object")
    return body


def _number(body: dict[str, object], key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        _invalid(f"{key} must be a number >= 0")
    return float(value)


def _optional_count(body: dict[str, object], key: str, default: int | None) -> int | None:
    value = body.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        _invalid(f"{key} must be an integer >= 0 or null")
    return value


def _count(body: dict[str, object]) -> int:
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        _invalid("count must be an integer >= 1")
    return count


@sandbox.post("/faults")
def add_fault() -> tuple[dict[str, object], int]:
    """Arm a fault: {"method", "path", "status", "count", "delay", "hold",
    "hold_timeout", "effect", "reset_after"} (see ``faults.Fault``)."""
    body = _body()
    status = body.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        _invalid("status must be an HTTP error status (400-599) or null")
    if body.get("hold", False) not in _HOLDS:
        _invalid('hold must be false, "before" or "after"')
    method, path = body.get("method", "*"), body.get("path", "/api")
    if not isinstance(method, str) or not isinstance(path, str) or not path.startswith("/api"):
        _invalid("method must be a string and path must start with /api")
    reset_after = body.get("reset_after")
    fault = Fault(
        method=method.upper(),
        path=path,
        status=status,
        count=_count(body),
        delay=_number(body, "delay", 0.0),
        hold=_HOLDS[body.get("hold", False)],
        hold_timeout=_number(body, "hold_timeout", 30.0),
        effect=body.get("effect") is True,
        reset_after=_number(body, "reset_after", 0.0) if reset_after is not None else None,
    )
    return {"fault": simulator().faults.add(fault).describe()}, 201


@sandbox.get("/faults")
def list_faults() -> dict[str, object]:
    """The armed faults with their remaining counts."""
    return {"faults": [f.describe() for f in simulator().faults.rules()]}


@sandbox.post("/latency")
def set_latency() -> dict[str, object]:
    """{"seconds": x}: added before every /api call."""
    seconds = _number(_body(), "seconds", 0.0)
    simulator().faults.latency = seconds
    return {"seconds": seconds}


@sandbox.post("/orders")
def configure_orders() -> dict[str, object]:
    """{"pending_seconds", "processing_seconds", "outcome": "complete"|"fail"|"stuck",
    "built_before_failure": n|null, "max_containers": n|null}: how orders
    placed from now on progress, and the per-user container quota. Omitted
    keys keep their value.

    A failing order leaves its project, made when processing started, with
    the services made before the failure: all of them with
    ``built_before_failure`` null (the default: a failure in the order job's
    ``finalize!``), else that many (a failure provisioning the next one)."""
    body = _body()
    outcome = body.get("outcome")
    if outcome is not None and outcome not in _OUTCOMES:
        _invalid('outcome must be "complete", "fail" or "stuck"')
    with world() as w:
        w.plan = replace(
            w.plan,
            pending_seconds=_number(body, "pending_seconds", w.plan.pending_seconds),
            processing_seconds=_number(body, "processing_seconds", w.plan.processing_seconds),
            outcome=_OUTCOMES[str(outcome)] if outcome is not None else w.plan.outcome,
            built_before_failure=_optional_count(
                body, "built_before_failure", w.plan.built_before_failure
            ),
        )
        w.max_containers = _optional_count(body, "max_containers", w.max_containers)
        return {**asdict(w.plan), "max_containers": w.max_containers}


@sandbox.post("/projects")
def configure_projects() -> dict[str, object]:
    """{"deleting_seconds": x}: how long a deleted project stays ``deleting``."""
    with world() as w:
        w.deleting_seconds = _number(_body(), "deleting_seconds", w.deleting_seconds)
        return {"deleting_seconds": w.deleting_seconds}


@sandbox.post("/services")
def configure_services() -> dict[str, object]:
    """{"resize_seconds": x, "power_seconds": y}: how long an accepted resize
    takes before the service has its new product (0, the default, changes it
    at once), and how long a power action keeps a container ``starting`` or
    ``stopping`` (1 by default; 0 finishes it at once). Omitted keys keep
    their value."""
    body = _body()
    with world() as w:
        w.resize_seconds = _number(body, "resize_seconds", w.resize_seconds)
        w.power_seconds = _number(body, "power_seconds", w.power_seconds)
        return {"resize_seconds": w.resize_seconds, "power_seconds": w.power_seconds}


@sandbox.post("/unlock")
def unlock_user() -> dict[str, object]:
    """{"user_id": n}: end the user's API lockout (Devise's ``unlock_access!``),
    as following the unlock e-mail would; the lock does not end by itself
    (see :func:`.accounts.authenticate`)."""
    user_id = _optional_count(_body(), "user_id", None)
    with world() as w:
        user = w.users.get(user_id or -1)
        if user is None:
            _invalid("user_id must name a user")
        accounts.unlock(user)
        return {"user_id": user.id, "unlocked": True}


@sandbox.post("/billing_usages")
def add_billing_usages() -> tuple[dict[str, object], int]:
    """Add billing usage rows, as the controller's collector would have made
    them (see :mod:`.billing` for rate, total and ``processed``).

    One row: {"user_id", "qty", "product_id", "qty_total", "period_start",
    "period_end"} (all but the first two optional: the seeded bandwidth
    product, ``qty_total`` = ``qty``, the 3 hours ending now; times are epoch
    seconds or ISO 8601 with an offset) answers 201 ``{"billing_usage": row}``
    in the admin API's shape. Many: {"rows": [...]} answers 201 ``{"ids":
    [...]}`` in the order given; all or none are added. Each row is made at
    the clock's now (its ``created_at``).
    """
    body = _body()
    with world() as w:
        try:
            if "rows" in body:
                rows = body["rows"]
                if set(body) != {"rows"} or not isinstance(rows, list):
                    _invalid("rows must be a list of row objects, alone in the body")
                checked = [billing.read_usage(w, r, f"rows[{i}].") for i, r in enumerate(rows)]
                return {"ids": [billing.add_usage(w, row).id for row in checked]}, 201
            made = billing.add_usage(w, billing.read_usage(w, body))
        except billing.UsageInputError as refused:
            response = jsonify({"error": refused.message})
            response.status_code = refused.status
            abort(response)
        return {"billing_usage": render.billing_usage(w, made)}, 201


@sandbox.get("/held")
def held() -> dict[str, object]:
    """Requests held open by a ``hold`` fault: [{id, method, path, stage}]."""
    return {"held": simulator().faults.held()}


@sandbox.post("/release")
def release() -> dict[str, object]:
    """{"id": n} releases one held request; no id releases all."""
    held_id = _optional_count(_body(), "id", None)
    return {"released": simulator().faults.release(held_id)}


@sandbox.get("/state")
def state() -> Response:
    """Users, orders, projects, services, containers, credential counts (never
    passwords) and the number of billing usage rows."""
    with world() as w:
        snapshot = w.snapshot()
        snapshot["settings"] = {
            **asdict(w.plan),
            "max_containers": w.max_containers,
            "deleting_seconds": w.deleting_seconds,
            "resize_seconds": w.resize_seconds,
            "power_seconds": w.power_seconds,
            "latency": simulator().faults.latency,
        }
        snapshot["api_calls"] = simulator().faults.api_calls
        return jsonify(snapshot)


@sandbox.post("/reset")
def reset() -> dict[str, object]:
    """Back to the seed: only the admin exists; faults, holds and settings cleared."""
    sim = simulator()
    sim.faults.reset()
    sim.world.reset()
    return {"reset": True}
