"""HTTP helpers shared by the simulator's routes: the response shapes of the
real controller (its ``app/controllers/concerns/api_response.rb`` and
``api_missing_route.rb``), pagination (``config/initializers/api_paginate.rb``),
and access to the world."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote_plus, unquote_plus

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

_RUBY_INTEGER = re.compile(r"\s*([+-]?\d+(?:_\d+)*)")


def ruby_to_i(raw: str | None) -> int:
    """Ruby's ``String#to_i``: the leading integer ("12abc" is 12, " 3" is 3),
    else 0; None (a missing parameter, ``nil.to_i``) is 0."""
    match = _RUBY_INTEGER.match(raw) if raw is not None else None
    return int(match.group(1).replace("_", "")) if match else 0


def paginate(rows: Sequence[T]) -> tuple[Sequence[T], dict[str, str]]:
    """The requested page of ``rows`` and its headers, as api-pagination 5.0.0
    (``lib/rails/pagination.rb``, ``lib/api-pagination.rb``) writes them over
    will_paginate 4.

    ``page`` and ``per_page`` are read with ``to_i``; a ``per_page`` that is
    missing or not positive is 30 and there is no maximum; a ``page`` below 1
    is 1. A page past the end is empty. ``Total`` counts every row,
    ``Per-Page`` is the size used, no ``Page`` header is sent. ``Link`` has
    ``first`` and ``prev`` (the page before, even past the end) after page 1,
    then ``last`` and ``next`` before the last page, in that order; each URL
    is the request's own query with ``page`` replaced, sorted and escaped as
    Rails' ``to_query`` does (a ``per_page`` not sent is not added).
    """
    page, per_page = page_window()
    total_pages = max(1, math.ceil(len(rows) / per_page))
    pages: dict[str, int] = {}
    if page > 1:
        pages.update(first=1, prev=page - 1)
    if page < total_pages:
        pages.update(last=total_pages, next=page + 1)
    headers = {"Per-Page": str(per_page), "Total": str(len(rows))}
    if pages:
        headers["Link"] = ", ".join(_link(number, rel) for rel, number in pages.items())
    offset = (page - 1) * per_page
    return rows[offset : offset + per_page], headers


def page_window() -> tuple[int, int]:
    """``(page, per_page)`` of the request, read as :func:`paginate` reads them."""
    per_page = ruby_to_i(_param("per_page"))
    if per_page <= 0:
        per_page = DEFAULT_PER_PAGE
    return max(ruby_to_i(_param("page")), 1), per_page


def tie_unstable(rows: Iterable[T], key: Callable[[T], Any], ident: Callable[[T], int]) -> list[T]:
    """``rows`` sorted by ``key``, rows whose keys tie in an order that depends
    on the request's page window, as PostgreSQL returns them.

    The controller pages ``ORDER BY <key>`` with ``LIMIT per_page OFFSET
    (page - 1) * per_page`` and no unique tiebreaker. PostgreSQL promises no
    order among ties, and the order it does produce changes with the plan:
    a bounded (top-N) heap sort keeps ``LIMIT + OFFSET`` rows, so which of
    the tied rows land in that window, and in what order, depends on the
    window. Two pages of the same list are two different sorts: a row tied
    across a page boundary can come on both pages or on neither, while
    ``Total`` (a separate ``COUNT``) is right. The simulator orders ties by a
    hash of (row id, ``offset + limit``): the same request always answers
    the same, different pages disagree.
    """
    page, per_page = page_window()
    bound = page * per_page
    return sorted(rows, key=lambda row: (key(row), _tie_rank(ident(row), bound)))


def _tie_rank(row_id: int, bound: int) -> bytes:
    return hashlib.blake2b(f"{row_id}:{bound}".encode(), digest_size=8).digest()


def rails_param_given(name: str) -> bool:
    """Whether ``params[name]`` is truthy in Ruby, for a parameter of the query.

    Any value is: ``"false"``, ``"0"`` and the empty string (``?all=``) too,
    and ``name[]=...`` or ``name[k]=...`` (an array or a hash). Only a
    parameter that is absent, or whose last occurrence has no ``=`` at all,
    is not: Rack 2 and Rack 3.0 read ``?all`` as nil (Rack 3.1 reads it as
    an empty string, which would count; the release pins no Rack version,
    and the simulator keeps the reading Rails has long had). The last
    occurrence of a repeated name wins. Parameters of a request body
    (Rails merges a JSON body into ``params``) are not looked at.
    """
    given = False
    for pair in request.query_string.decode("latin-1").split("&"):
        raw_name, equals, _ = pair.partition("=")
        full = unquote_plus(raw_name)
        if full.split("[", 1)[0] != name:
            continue
        given = bool(equals) or full != name
    return given


def _param(name: str) -> str | None:
    """A query parameter as Rack reads it: the last of repeated values."""
    values = request.args.getlist(name)
    return values[-1] if values else None


def _link(page: int, rel: str) -> str:
    params = {key: values[-1] for key, values in request.args.lists()}
    params["page"] = str(page)
    query = "&".join(sorted(f"{quote_plus(k)}={quote_plus(v)}" for k, v in params.items()))
    return f'<{request.base_url}?{query}>; rel="{rel}"'


def listed(key: str | None, rows: Sequence[object]) -> Response:
    """A paginated list under ``key`` (a bare array when ``key`` is None)."""
    chunk, headers = paginate(rows)
    response = jsonify({key: list(chunk)} if key else list(chunk))
    response.headers.update(headers)
    return response


def listed_records(
    key: str, records: Sequence[T], render: Callable[[T], dict[str, object]]
) -> Response:
    """A paginated list under ``key`` of the requested page of ``records``,
    each rendered by ``render`` (only that page's are rendered)."""
    chunk, headers = paginate(records)
    response = jsonify({key: [render(r) for r in chunk]})
    response.headers.update(headers)
    return response
