"""Stripe's bracketed form encoding, decoded into nested dicts and lists, and read safely.

The official library sends every parameter as flat ``key=value`` pairs, in the
query string for GET and as ``application/x-www-form-urlencoded`` for POST:
``metadata[k]=v``, ``line_items[0][price]=price_1``, ``expand[0]=line_items``,
``created[gte]=1700000000``. Other clients (curl, older libraries) write arrays
as ``expand[]=line_items``. :func:`decode` turns both into nested data; indexed
arrays stay dicts keyed by digit strings until an endpoint reads them with
:func:`as_list`, because only the endpoint knows whether ``metadata[0]`` is an
array element or a metadata key called "0".

Every value is a string, as on the wire. The ``as_*`` readers convert and
validate, raising :class:`ApiError` with the parameter's full bracketed name,
which is what Stripe puts in ``error.param``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from csonboard.sandbox.stripe.errors import invalid, missing, unknown_param

Params = dict[str, Any]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode(pairs: Iterable[tuple[str, str]]) -> Params:
    """Nest flat form pairs by their bracketed keys.

    ``a[b][c]=1`` becomes ``{"a": {"b": {"c": "1"}}}``; a trailing ``[]`` appends
    to a list. A key that is both a scalar and a hash (``metadata=`` and
    ``metadata[k]=v``) is refused with a 400, as are malformed keys.
    """
    root: Params = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _insert(root, path, value, key)
    return root


def _insert(root: Params, path: list[str], value: str, key: str) -> None:
    node: Any = root
    for depth, segment in enumerate(path):
        last = depth == len(path) - 1
        if segment == "":
            # Only a trailing "[]" is meaningful; "a[][b]" has no agreed meaning.
            if not last or not isinstance(node, list):
                raise invalid(f"Invalid array parameter: {key}", key)
            node.append(value)
            return
        if not isinstance(node, dict):
            raise invalid(f"Invalid parameter: {key}", key)
        if last:
            if segment in node:
                raise invalid(f"Parameter {key} was given more than once", key)
            node[segment] = value
            return
        child_is_list = path[depth + 1] == ""
        existing = node.get(segment)
        if existing is None:
            existing = [] if child_is_list else {}
            node[segment] = existing
        elif isinstance(existing, str) or isinstance(existing, list) != child_is_list:
            raise invalid(f"Parameter {key} mixes a value with a hash or array", key)
        node = existing


def sub(param: str, key: str | int) -> str:
    """The bracketed name of ``key`` inside ``param``: ``sub("line_items", 0)``."""
    return f"{param}[{key}]"


def check_known(params: Mapping[str, Any], allowed: Collection[str], prefix: str = "") -> None:
    """Refuse any key of ``params`` not in ``allowed`` (Stripe's ``parameter_unknown``)."""
    for key in params:
        if key not in allowed:
            raise unknown_param(sub(prefix, key) if prefix else key)


def as_str(value: Any, param: str, *, max_length: int = 5000) -> str:
    """A string parameter; hashes and arrays are refused."""
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {param} must be a string", param)
    if len(value) > max_length:
        raise invalid(f"Invalid string: {param} must be at most {max_length} characters", param)
    return value


def as_opt_str(params: Mapping[str, Any], name: str, prefix: str = "") -> str | None:
    """``params[name]`` as a string, or None when absent; ``""`` also means None."""
    if name not in params:
        return None
    value = as_str(params[name], sub(prefix, name) if prefix else name)
    return value or None


def require(params: Mapping[str, Any], name: str, prefix: str = "") -> Any:
    """``params[name]``, or Stripe's "Missing required param" 400."""
    param = sub(prefix, name) if prefix else name
    if name not in params or params[name] == "":
        raise missing(param)
    return params[name]


def as_int(
    value: Any, param: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """A decimal integer within the given bounds."""
    text = as_str(value, param)
    if not re.fullmatch(r"-?\d+", text):
        raise invalid(f"Invalid integer: {text}", param)
    number = int(text)
    if minimum is not None and number < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param)
    if maximum is not None and number > maximum:
        raise invalid(f"This value must be less than or equal to {maximum}.", param)
    return number


def as_bool(value: Any, param: str) -> bool:
    """``true`` or ``false``, as the library encodes Python booleans."""
    text = as_str(value, param)
    if text not in ("true", "false"):
        raise invalid(f"Invalid boolean: {text}", param)
    return text == "true"


def as_enum(value: Any, param: str, choices: Collection[str]) -> str:
    """One of ``choices``; the message lists them like Stripe does."""
    text = as_str(value, param)
    if text not in choices:
        options = sorted(choices)
        listed = ", ".join(options[:-1]) + f", or {options[-1]}" if len(options) > 1 else options[0]
        raise invalid(f"Invalid {param}: must be one of {listed}", param)
    return text


def as_dict(value: Any, param: str) -> Params:
    """A hash parameter (``param[key]=...``)."""
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {param} must be a hash", param)
    return value


def as_list(value: Any, param: str) -> list[Any]:
    """An array parameter, written either ``param[0]=`` ... or ``param[]=`` ...

    Indexed elements are returned in index order; gaps are allowed, as the
    library never makes them and Stripe does not complain about them.
    """
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    raise invalid(f"Invalid array: {param} must be an array", param)


def as_str_list(value: Any, param: str) -> list[str]:
    """An array of strings."""
    return [as_str(item, sub(param, i)) for i, item in enumerate(as_list(value, param))]


def as_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """A metadata hash as sent: values may be ``""`` (meaning "delete this key").

    Stripe's limits are enforced: at most 50 keys, keys up to 40 characters
    without square brackets, values up to 500 characters.
    """
    entries = as_dict(value, param)
    if len(entries) > 50:
        raise invalid("Invalid metadata: metadata can have up to 50 keys", param)
    result: dict[str, str] = {}
    for key, item in entries.items():
        if len(key) > 40:
            raise invalid(
                f"Invalid metadata: keys can be up to 40 characters long ({key!r})", sub(param, key)
            )
        result[key] = as_str(item, sub(param, key), max_length=500)
    return result


def merge_metadata(
    current: dict[str, str], raw: Any
) -> tuple[dict[str, str], dict[str, str | None]]:
    """The metadata after an update sending ``raw``, and the old values of the keys it
    changes (None for keys that did not exist): Stripe's merge rules, where keys
    not sent are kept, ``""`` deletes a key and ``metadata=""`` clears them all."""
    if raw == "":
        return {}, dict(current)
    merged = dict(current)
    old: dict[str, str | None] = {}
    for key, value in as_metadata(raw).items():
        if value == "":
            if key in merged:
                old[key] = merged.pop(key)
        elif merged.get(key) != value:
            old[key] = merged.get(key)
            merged[key] = value
    if len(merged) > 50:
        raise invalid("Invalid metadata: metadata can have up to 50 keys", "metadata")
    return merged, old
