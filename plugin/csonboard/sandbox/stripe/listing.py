"""Stripe's list endpoints: cursor pagination and the ``created`` range filter.

Lists are newest first. ``starting_after`` and ``ending_before`` are object ids
and are positioned in the whole ordered collection, not in the filtered page,
so a cursor taken from one filtered page stays valid for the next, as on Stripe.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from csonboard.sandbox.stripe.errors import invalid, no_such
from csonboard.sandbox.stripe.forms import as_dict, as_int, as_str, check_known, sub
from csonboard.sandbox.stripe.shapes import list_object
from csonboard.sandbox.stripe.state import Json, Store

PAGE_PARAMS = ("limit", "starting_after", "ending_before", "expand")
"""Parameters every list endpoint takes."""

_RANGE_OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
}


def range_filter(value: Any, param: str) -> Callable[[int], bool]:
    """A predicate for ``created=<t>`` or ``created[gte]=<t>&created[lt]=<t>`` ..."""
    if isinstance(value, str):
        exact = as_int(value, param)
        return lambda t: t == exact
    bounds = as_dict(value, param)
    check_known(bounds, _RANGE_OPS, param)
    checks = [(_RANGE_OPS[op], as_int(b, sub(param, op))) for op, b in bounds.items()]
    return lambda t: all(op(t, bound) for op, bound in checks)


def paginate(
    ordered: list[Json],
    params: Mapping[str, Any],
    *,
    url: str,
    label: str,
    keep: Callable[[Json], bool] = lambda _obj: True,
) -> Json:
    """One page of ``ordered`` (newest first) as a list object.

    ``keep`` applies the endpoint's filters. ``label`` names the object in the
    "No such ..." error for an unknown cursor. ``limit`` is 1..100 (default 10).
    """
    limit = as_int(params["limit"], "limit", minimum=1, maximum=100) if "limit" in params else 10
    after = params.get("starting_after")
    before = params.get("ending_before")
    if after and before:
        raise invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            "ending_before",
        )
    if before:
        newer = ordered[: _position(ordered, before, "ending_before", label)]
        matches = [obj for obj in newer if keep(obj)]
        page = matches[-limit:]
        return list_object(page, url, has_more=len(matches) > len(page))
    start = _position(ordered, after, "starting_after", label) + 1 if after else 0
    matches = []
    for obj in ordered[start:]:
        if keep(obj):
            matches.append(obj)
            if len(matches) > limit:
                break
    return list_object(matches[:limit], url, has_more=len(matches) > limit)


def _position(ordered: list[Json], cursor: Any, param: str, label: str) -> int:
    cursor_id = as_str(cursor, param)
    for index, obj in enumerate(ordered):
        if obj["id"] == cursor_id:
            return index
    raise no_such(label, cursor_id, param=param, status=400)


def field_equals(name: str, value: object) -> Callable[[Json], bool]:
    """A filter keeping objects whose ``name`` field equals ``value``."""
    return lambda obj: bool(obj[name] == value)


def list_of_payments(store: Store, params: Mapping[str, Any], kind: str, url: str) -> Json:
    """A list of what happened to payments (refunds, disputes, early fraud
    warnings): newest first, by ``charge``, ``payment_intent`` and ``created``."""
    check_known(params, (*PAGE_PARAMS, "charge", "created", "payment_intent"))
    checks: list[Callable[[Json], bool]] = []
    for name in ("charge", "payment_intent"):
        if name in params:
            checks.append(field_equals(name, as_str(params[name], name)))
    if "created" in params:
        created = range_filter(params["created"], "created")
        checks.append(lambda o: created(o["created"]))
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first(kind),
                params,
                url=url,
                label=kind,
                keep=lambda o: all(check(o) for check in checks),
            )
        )
