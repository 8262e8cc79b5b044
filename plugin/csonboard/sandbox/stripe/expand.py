"""The ``expand[]`` parameter: replace ids in a response with the objects they name.

Paths are dotted (``customer``, ``line_items``, ``data.subscription``,
``latest_invoice.customer``) and at most four levels deep, as on Stripe. A
field holding the id of a stored object can be expanded; a null field stays
null. ``line_items`` on a Checkout Session or a Payment Link, ``refunds`` on a
charge and ``payments`` on an invoice are *includable*: absent from the object
unless expanded, and then the first page (10 items) of the list with
``has_more``, like every expanded list on Stripe.
"""

from __future__ import annotations

import copy
from typing import Any

from csonboard.sandbox.stripe.errors import invalid
from csonboard.sandbox.stripe.shapes import list_object
from csonboard.sandbox.stripe.state import Json, Store

_MAX_DEPTH = 4
_EXPANDED_LIST_SIZE = 10
_LINE_ITEMS_URLS = {
    "checkout.session": "/v1/checkout/sessions/{}/line_items",
    "payment_link": "/v1/payment_links/{}/line_items",
}
"""Objects with includable ``line_items``, and where their list lives."""
_INCLUDABLE = {
    ("charge", "refunds"): ("refund", "charge", "/v1/charges/{}/refunds"),
    ("invoice", "payments"): ("invoice_payment", "invoice", "/v1/invoice_payments?invoice={}"),
}
"""Other includable lists: (object, field) -> (kind listed, its field naming the
object, the list's url). Stripe leaves them out unless expanded."""


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


def line_items_page(store: Store, obj: Json, limit: int) -> Json:
    """The first ``limit`` line items of a session or payment link as a list object."""
    items = store.line_items.get(obj["id"], [])
    return list_object(
        copy.deepcopy(items[:limit]),
        _LINE_ITEMS_URLS[obj["object"]].format(obj["id"]),
        has_more=len(items) > limit,
    )


def _included(store: Store, obj: Json, field: str) -> Json:
    """The first page of an includable list of ``obj``, newest first."""
    kind, owner, url = _INCLUDABLE[(str(obj["object"]), field)]
    items = [o for o in store.newest_first(kind) if o[owner] == obj["id"]]
    return list_object(
        copy.deepcopy(items[:_EXPANDED_LIST_SIZE]),
        url.format(obj["id"]),
        has_more=len(items) > _EXPANDED_LIST_SIZE,
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
    if node.get("object") in _LINE_ITEMS_URLS and head == "line_items":
        node[head] = line_items_page(store, node, _EXPANDED_LIST_SIZE)
    elif (node.get("object"), head) in _INCLUDABLE:
        node[head] = _included(store, node, head)
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
