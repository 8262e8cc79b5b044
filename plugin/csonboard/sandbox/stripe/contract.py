"""The stand-in checked against Stripe's own description of its API.

stripe-python is generated from Stripe's OpenAPI spec for the API version it
pins, and it keeps that description as type annotations on its resource
classes (``stripe.checkout.Session``, ``stripe.Subscription``...). This module
reads those annotations at run time and checks a JSON object against them:

- every field the library types as required (not ``Optional``) is present and
  not null;
- enumerations (``Literal[...]``, also the ``Union[Literal[...], str]`` the
  library uses to stay open to new values) hold one of the listed values;
- scalars have their JSON type (``int`` is not a bool, ``Decimal`` is a decimal
  string), lists and nested objects are checked all the way down;
- ``object`` names the class it is checked against, and no field appears that
  the library does not know (a misspelt or stale field is a shape Stripe does
  not send).

The class for an object comes from its own ``object`` field through the
library's registry, so expanded fields, list items and an event's
``data.object`` are checked as the objects they are. Nothing here is a
hand-written schema: when stripe-python is upgraded, the contract moves with it.
A deleted object (``"deleted": true``) is checked as Stripe sends one: its id,
``object`` and ``deleted`` only. An event rendered in another API version than
the library's (a test replaying an old shape) has its envelope checked, not its
snapshot: the library describes only its own version. A v2 event is checked
against the class the library has for its ``type``; for a type it has no class
for, only the envelope common to all v2 events.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import sys
import threading
import types
import typing
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

import stripe
from stripe._error_object import ErrorObject
from stripe._list_object import ListObject
from stripe._object_classes import get_object_class
from stripe._stripe_object import StripeObject, UntypedStripeObject
from stripe.events._event_classes import get_v2_event_class

_MISSING = object()


@dataclass(frozen=True)
class Violation:
    """One way an object differs from the library's types.

    ``where`` is the object's ``object`` name and id, ``path`` the field path
    inside it (``items.data[0].price.recurring``)."""

    where: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.path or '(the object)'}: {self.problem}"


def check_object(obj: object, *, api_mode: Literal["V1", "V2"] = "V1") -> list[Violation]:
    """Every violation in ``obj``, an API object as JSON (``"object"`` names its
    class); a list envelope's items and an event's ``data.object`` included."""
    walker = _Walker(api_mode)
    walker.value(obj, StripeObject, "")
    return walker.found


def check_error(envelope: object) -> list[Violation]:
    """Every violation in an error answer: ``{"error": {...}}`` checked against
    the library's ``ErrorObject``."""
    walker = _Walker("V1")
    if not isinstance(envelope, dict) or set(envelope) != {"error"}:
        return [Violation("error", "", 'an error answer is exactly {"error": {...}}')]
    walker.where = "error"
    walker.fields(envelope["error"], ErrorObject, "error")
    return walker.found


@dataclass
class ContractLog:
    """What a stand-in served, checked: counts by object name, and violations.

    Thread-safe; one per stand-in account. ``on_violation`` is called once per
    violation (the stand-in logs it at ERROR).
    """

    checked: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    on_violation: typing.Callable[[Violation], None] | None = None

    def check_body(self, body: bytes, *, status: int, api_mode: Literal["V1", "V2"]) -> None:
        """Check one JSON answer (an object, a list or, for 4xx/5xx, an error)."""
        try:
            data = json.loads(body)
        except ValueError:
            self._record([Violation("answer", "", "the body is not JSON")], ())
            return
        if status >= 400:
            self._record(check_error(data), ("error",))
            return
        self._record(check_object(data, api_mode=api_mode), _object_names(data))

    def check(self, obj: Mapping[str, Any], *, api_mode: Literal["V1", "V2"] = "V1") -> None:
        """Check one object made outside a request (an event being published)."""
        self._record(check_object(obj, api_mode=api_mode), _object_names(obj))

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "checked": dict(sorted(self.checked.items())),
                "violations": [str(v) for v in self.violations],
            }

    def clear(self) -> None:
        with self.lock:
            self.checked.clear()
            self.violations.clear()

    def _record(self, found: list[Violation], names: Iterator[str] | tuple[str, ...]) -> None:
        with self.lock:
            self.checked.update(names)
            self.violations.extend(found)
        if self.on_violation is not None:
            for violation in found:
                self.on_violation(violation)


def _object_names(data: object) -> Iterator[str]:
    """The ``object`` names of ``data`` and of every object nested in it."""
    if isinstance(data, dict):
        name = data.get("object")
        if isinstance(name, str):
            yield name
        for value in data.values():
            yield from _object_names(value)
    elif isinstance(data, list):
        for item in data:
            yield from _object_names(item)


class _Walker:
    """Walks one JSON value along the library's annotations, collecting violations."""

    def __init__(self, api_mode: Literal["V1", "V2"]) -> None:
        self.api_mode = api_mode
        self.found: list[Violation] = []
        self.where = ""

    def problem(self, path: str, text: str) -> None:
        self.found.append(Violation(self.where, path, text))

    def value(self, value: Any, hint: Any, path: str) -> None:
        """Check ``value`` against the annotation ``hint``."""
        origin = get_origin(hint)
        args = get_args(hint)
        if hint is Any:
            return
        if origin in (Union, types.UnionType):
            self.union(value, args, path)
        elif origin is Literal:
            if value not in args:
                self.problem(path, f"{value!r} is not one of {_shown(args)}")
        elif value is None:
            self.problem(path, "null, but the library types it as required")
        elif origin is list:
            if not isinstance(value, list):
                self.problem(path, f"expected a list, got {_kind(value)}")
                return
            for index, item in enumerate(value):
                self.value(item, args[0], f"{path}[{index}]")
        elif origin is dict:
            if not isinstance(value, dict):
                self.problem(path, f"expected a hash, got {_kind(value)}")
                return
            for key, item in value.items():
                self.value(item, args[1], f"{path}.{key}")
        elif isinstance(origin, type) and issubclass(origin, ListObject):
            self.list_object(value, args[0] if args else StripeObject, path)
        elif isinstance(hint, type) and issubclass(hint, UntypedStripeObject):
            self.stripe_object(value, StripeObject, path)
        elif isinstance(hint, type) and issubclass(hint, StripeObject):
            self.stripe_object(value, hint, path)
        elif isinstance(origin, type) and issubclass(origin, UntypedStripeObject):
            self.stripe_object(value, StripeObject, path)
        else:
            self.scalar(value, hint, path)

    def union(self, value: Any, args: tuple[Any, ...], path: str) -> None:
        options = [a for a in args if a is not type(None)]
        if value is None:
            if len(options) < len(args):
                return
            self.problem(path, "null, but the library types it as required")
            return
        if len(options) == 1:
            self.value(value, options[0], path)
            return
        literals = [a for a in options if get_origin(a) is Literal]
        if literals:  # an enum, open (``| str``) only to stay forward-compatible
            allowed = tuple(v for lit in literals for v in get_args(lit))
            if value not in allowed:
                self.problem(path, f"{value!r} is not one of {_shown(allowed)}")
            return
        if isinstance(value, str) and str in options:  # an id where an object may be
            return
        objects = [a for a in options if a is not str]
        if len(objects) == 1:
            self.value(value, objects[0], path)
        elif objects:  # several object types: the value's own ``object`` decides
            self.stripe_object(value, StripeObject, path)
        else:
            self.problem(path, f"expected a string, got {_kind(value)}")

    def list_object(self, value: Any, item_hint: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.problem(path, f"expected a list object, got {_kind(value)}")
            return
        if not path:
            self.where = f"list {value.get('url', '')}".strip()
        self.fields(value, ListObject, path, known_only=False)
        if value.get("object") != "list":
            self.problem(f"{path}.object", f"{value.get('object')!r} is not 'list'")
        for index, item in enumerate(value.get("data") or []):
            self.value(item, item_hint, f"{_join(path, 'data')}[{index}]")

    def stripe_object(self, value: Any, cls: type[StripeObject], path: str) -> None:
        """An object: by its own ``object`` field when it has one the library knows."""
        if not isinstance(value, dict):
            self.problem(path, f"expected an object, got {_kind(value)}")
            return
        name = value.get("object")
        if not path:
            self.where = f"{name or cls.__name__} {value.get('id', '')}".strip()
        if isinstance(name, str):
            known = _resource_class(self.api_mode, name)
            if known is ListObject:
                self.list_object(value, StripeObject, path)
                return
            if known is not None:
                if cls not in (StripeObject, known) and not issubclass(known, cls):
                    self.problem(path, f"object {name!r} where the library expects {cls.__name__}")
                cls = known
        if cls is StripeObject:
            if isinstance(name, str) and not path.endswith("previous_attributes"):
                self.problem(path, f"object {name!r} is not one the library knows")
            return  # untyped: any hash
        if name == "event" and value.get("api_version") != stripe.api_version:
            value = {**value, "data": {**(value.get("data") or {}), "object": {}}}
        if name == "v2.core.event" and self.api_mode == "V2":
            typed = get_v2_event_class(str(value.get("type")))
            if typed is StripeObject:  # a type the library has no class for yet:
                # its envelope is checked; its data cannot be.
                value = {k: v for k, v in value.items() if k not in ("data", "related_object")}
            else:
                cls = typed
        if value.get("deleted") is True:
            self.deleted(value, path)
        else:
            self.fields(value, cls, path)

    def deleted(self, value: dict[str, Any], path: str) -> None:
        extra = sorted(set(value) - {"id", "object", "deleted"})
        if extra:
            self.problem(path, f"a deleted object carries only id, object, deleted; also {extra}")
        if not isinstance(value.get("id"), str):
            self.problem(_join(path, "id"), "a deleted object keeps its id")

    def fields(
        self, value: Any, cls: type[StripeObject], path: str, *, known_only: bool = True
    ) -> None:
        if not isinstance(value, dict):
            self.problem(path, f"expected an object, got {_kind(value)}")
            return
        hints = _field_hints(typing.cast(type, cls))  # classes hash; mypy cannot tell
        for name, hint in hints.items():
            sub = _join(path, name)
            if name not in value:
                if not _optional(hint):
                    self.problem(sub, "missing, but the library types it as required")
                continue
            self.value(value[name], hint, sub)
        if known_only:
            for name in sorted(set(value) - set(hints)):
                self.problem(_join(path, name), f"not a field of {cls.__qualname__}")

    def scalar(self, value: Any, hint: Any, path: str) -> None:
        if hint is bool:
            ok = isinstance(value, bool)
        elif hint is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif hint is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif hint is str:
            ok = isinstance(value, str)
        elif hint is Decimal:
            ok = isinstance(value, str) and _is_decimal(value)
        else:
            return  # a type this checker does not know: accepted, not guessed at
        if not ok:
            self.problem(path, f"expected {getattr(hint, '__name__', hint)}, got {_kind(value)}")


# -- reading the library ------------------------------------------------------------


@cache
def _resource_class(api_mode: Literal["V1", "V2"], name: str) -> type[StripeObject] | None:
    cls = get_object_class(api_mode, name)
    return None if cls is StripeObject else cls


@cache
def _field_hints(cls: type) -> dict[str, Any]:
    """The JSON fields of ``cls`` and their annotations, forward references resolved.

    Names the library imports only for type checking (``if TYPE_CHECKING:``)
    are imported here, so ``ExpandableField["Customer"]`` resolves.
    """
    namespace: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        if module is not None and klass.__module__.startswith("stripe"):
            namespace.update(vars(module))
            namespace.update(_type_checking_names(klass.__module__))
    hints = typing.get_type_hints(cls, globalns=namespace, localns=dict(vars(cls)))
    renamed = getattr(cls, "_field_remappings", {})
    return {
        renamed.get(name, name): hint
        for name, hint in hints.items()
        if not name.startswith("_") and get_origin(hint) is not ClassVar
    }


@cache
def _type_checking_names(module_name: str) -> dict[str, Any]:
    """What ``module_name`` imports under ``if TYPE_CHECKING:`` (request
    parameter types excepted: no field is typed with them)."""
    module = sys.modules[module_name]
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    names: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)):
            continue
        for statement in node.body:
            if not isinstance(statement, ast.ImportFrom) or not statement.module:
                continue
            if statement.module.startswith("stripe.params"):
                continue
            imported = importlib.import_module(statement.module)
            for alias in statement.names:
                names[alias.asname or alias.name] = getattr(imported, alias.name)
    return names


def _optional(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def _is_decimal(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _shown(values: tuple[Any, ...]) -> str:
    return ", ".join(repr(v) for v in values)
