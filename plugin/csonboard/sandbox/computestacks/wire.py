"""HTTP helpers shared by the simulator's routes: the response shapes of the
real controller (its ``app/controllers/concerns/api_response.rb`` and
``api_missing_route.rb``), pagination (``config/initializers/api_paginate.rb``),
and access to the world."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from flask import Response, abort, current_app, g, jsonify, request

from csonboard.sandbox.computestacks.faults import Faults
from csonboard.sandbox.computestacks.records import Refusal, UserRecord
from csonboard.sandbox.computestacks.state import World

EXTENSION = "csonboard.computestacks_simulator"
DEFAULT_PER_PAGE = 30

T = TypeVar("T")


@dataclass(frozen=True)
class Simulator:
    """What one simulator app holds: its world and its faults."""

    world: World
    faults: Faults


def simulator() -> Simulator:
    """The simulator of the current app."""
    sim = current_app.extensions[EXTENSION]
    assert isinstance(sim, Simulator)
    return sim


@contextmanager
def world() -> Iterator[World]:
    """The world, locked and brought up to the clock, for one request's work."""
    w = simulator().world
    with w.lock:
        w.advance()
        yield w


def current_user(w: World) -> UserRecord:
    """The authenticated caller (set by the auth hook); 401 if it vanished since."""
    user = w.users.get(g.user_id)
    if user is None:
        abort(not_authorized())
    return user


# -- response shapes ------------------------------------------------------------------


def errors(status: int, messages: list[object]) -> Response:
    """The API's error envelope ``{"errors": [...]}``."""
    response = jsonify({"errors": messages})
    response.status_code = status
    return response


def refused(refusal: Refusal) -> Response:
    """A :class:`Refusal` as its response."""
    return errors(refusal.status, refusal.errors)


def not_authorized() -> Response:
    """Bad Basic credentials, or a non-admin on the admin API."""
    return errors(401, ["Not Authorized"])


def empty(status: int) -> Response:
    """A response without a body (``head :not_found``, 204, credential delete)."""
    return Response(b"", status=status, content_type="application/json")


def not_found() -> Response:
    """A missing or invisible record: 404 with an empty body."""
    return empty(404)


def unknown_call() -> Response:
    """The ``/api`` catch-all."""
    return errors(404, ["Unknown API Call. Please check the documentation."])


def page_not_found() -> Response:
    """The web app's 404 page: what a routed-but-unimplemented action gets."""
    html = "<html><body><h1>The page you were looking for doesn't exist.</h1></body></html>"
    return Response(html, status=404, content_type="text/html; charset=utf-8")


def bad_request() -> Response:
    """Rails' ParameterMissing outside a rescue: 400, not the API envelope."""
    return Response("Bad Request", status=400, content_type="text/html; charset=utf-8")


def json_body() -> object:
    """The JSON request body (None when empty); malformed JSON is a 400, as in Rails."""
    if not request.get_data():
        return None
    data = request.get_json(force=True, silent=True)
    if data is None:
        abort(bad_request())
    return data


def root(key: str) -> object:
    """``body[key]`` of a JSON object body, else None."""
    body = json_body()
    return body.get(key) if isinstance(body, dict) else None


# -- pagination ---------------------------------------------------------------------------


def paginate(rows: Sequence[T]) -> tuple[Sequence[T], dict[str, str]]:
    """The requested page of ``rows`` and its ``Total``/``Per-Page``/``Link``
    headers (api-pagination: first/prev when past page 1, next/last before the end)."""
    per_page = _positive(request.args.get("per_page"), DEFAULT_PER_PAGE)
    page = _positive(request.args.get("page"), 1)
    last = max(1, math.ceil(len(rows) / per_page))
    links = []
    if page > 1:
        links += [_link(1, per_page, "first"), _link(min(page - 1, last), per_page, "prev")]
    if page < last:
        links += [_link(page + 1, per_page, "next"), _link(last, per_page, "last")]
    headers = {"Total": str(len(rows)), "Per-Page": str(per_page)}
    if links:
        headers["Link"] = ", ".join(links)
    return rows[(page - 1) * per_page : page * per_page], headers


def _positive(raw: str | None, default: int) -> int:
    return int(raw) if raw is not None and raw.isdigit() and int(raw) > 0 else default


def _link(page: int, per_page: int, rel: str) -> str:
    args = request.args.to_dict()
    args.update(page=str(page), per_page=str(per_page))
    return f'<{request.base_url}?{urlencode(args)}>; rel="{rel}"'


def listed(key: str | None, rows: Sequence[object]) -> Response:
    """A paginated list under ``key`` (a bare array when ``key`` is None)."""
    chunk, headers = paginate(rows)
    response = jsonify({key: list(chunk)} if key else list(chunk))
    response.headers.update(headers)
    return response
