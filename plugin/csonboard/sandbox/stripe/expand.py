"""The ``expand[]`` parameter: replace ids in a response with the objects they name.

Paths are dotted (``customer``, ``line_items``, ``data.subscription``,
``latest_invoice.customer``) and at most four levels deep, as on Stripe. A
field holding the id of a stored object can be expanded; a null field stays
null. ``line_items`` on a Checkout Session is *includable*: it is absent from
the object unless expanded, and then it is the first page (10 items) of the
session's line items with ``has_more``, like every expanded list on Stripe.
"""

from __future__ import annotations

import copy
from typing import Any

from csonboard.sandbox.stripe.errors import invalid
from csonboard.sandbox.stripe.shapes import list_object
from csonboard.sandbox.stripe.state import Json, Store

_MAX_DEPTH = 4
_EXPANDED_LIST_SIZE = 10


def expand(store: Store, obj: Json, paths: list[str]) -> Json:
    """A deep copy of ``obj`` with every path in ``paths`` expanded.

    Raises a 400 naming ``expand`` for a path that is too deep or does not lead
    to an expandable field.
    """
    result = copy.deepcopy(obj)
    for path in paths:
        segments = path.split(".")
        if len(segments) > _MAX_DEPTH:
            raise invalid(
                f"You cannot expand more than {_MAX_DEPTH} levels of a property. Property: {path}",
                "expand",
            )
        _expand_at(store, result, segments, path)
    return result


def session_line_items_page(store: Store, session_id: str, limit: int) -> Json:
    """The first ``limit`` line items of a session as a list object."""
    items = store.line_items.get(session_id, [])
    return list_object(
        copy.deepcopy(items[:limit]),
        f"/v1/checkout/sessions/{session_id}/line_items",
        has_more=len(items) > limit,
    )


def _expand_at(store: Store, node: Any, segments: list[str], path: str) -> None:
    head, rest = segments[0], segments[1:]
    if isinstance(node, dict) and node.get("object") == "list" and head == "data":
        if not rest:
            raise _not_expandable(path)
        for item in node["data"]:
            _expand_at(store, item, rest, path)
        return
    if not isinstance(node, dict):
        raise _not_expandable(path)
    if node.get("object") == "checkout.session" and head == "line_items":
        node[head] = session_line_items_page(store, node["id"], _EXPANDED_LIST_SIZE)
    elif head == "id" or head not in node:
        raise _not_expandable(path)
    elif isinstance(node[head], str):
        kind = store.kind_of_id(node[head])
        if kind is None:
            raise _not_expandable(path)
        node[head] = copy.deepcopy(store.objects[kind][node[head]])
    elif node[head] is None:
        return
    if rest:
        _expand_at(store, node[head], rest, path)


def _not_expandable(path: str) -> Exception:
    return invalid(f"This property cannot be expanded ({path}).", "expand")
