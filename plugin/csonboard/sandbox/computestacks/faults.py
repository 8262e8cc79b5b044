"""Fault injection for the simulator's ``/api`` calls. Plain Python, no Flask.

A :class:`Fault` matches calls by method and path and applies to the next
``count`` of them:

- ``delay``: sleep that long first (real time: a delay longer than the
  client's timeout is a timeout; the server still does the work afterwards,
  as a real one would).
- ``hold``: ``"before"`` keeps the request open before its effect,
  ``"after"`` after its effect but before the answer, until released or
  ``hold_timeout`` passes, so a test can kill the caller mid-call.
- ``status``: answer with this status instead of the real answer. Without
  ``effect`` nothing happens on the server; with ``effect`` (or
  ``hold: "after"``) the call takes effect and only the answer is lost.
"""

from __future__ import annotations

import fnmatch
import itertools
import threading
from dataclasses import dataclass, field
from typing import Literal

Hold = Literal["before", "after"] | None


@dataclass
class Fault:
    """A rule failing the next ``count`` matching calls (see module doc)."""

    method: str = "*"
    path: str = "/api"
    status: int | None = None
    count: int = 1
    delay: float = 0.0
    hold: Hold = None
    hold_timeout: float = 30.0
    effect: bool = False
    reset_after: float | None = None
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        """True for this method (or any, with ``*``) and a path under ``path``,
        or matching it as a glob when it contains ``*``."""
        if self.method not in ("*", method.upper()):
            return False
        if "*" in self.path:
            return fnmatch.fnmatchcase(path, self.path)
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")

    @property
    def takes_effect(self) -> bool:
        """Whether the real handler runs before the faulty answer."""
        return self.effect or self.hold == "after" or self.status is None

    def describe(self) -> dict[str, object]:
        """This rule as JSON."""
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "count": self.count,
            "delay": self.delay,
            "hold": self.hold or False,
            "hold_timeout": self.hold_timeout,
            "effect": self.effect,
        }


@dataclass
class _Held:
    id: int
    method: str
    path: str
    stage: str
    released: threading.Event = field(default_factory=threading.Event)


class Faults:
    """The active fault rules, the added latency and the requests being held."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._rules: list[Fault] = []
        self._held: dict[int, _Held] = {}
        self.latency = 0.0
        self.api_calls = 0
        """/api requests served so far (benchmarks read it from /state)."""

    def count_call(self) -> None:
        with self._lock:
            self.api_calls += 1

    def add(self, fault: Fault) -> Fault:
        """Arm a rule; rules are tried in the order they were added."""
        with self._lock:
            fault.id = next(self._ids)
            self._rules.append(fault)
        return fault

    def rules(self) -> list[Fault]:
        """The armed rules with their remaining counts."""
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str) -> Fault | None:
        """The first rule matching this call, using up one of its count."""
        with self._lock:
            for fault in self._rules:
                if fault.matches(method, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._rules.remove(fault)
                    return fault
        return None

    def hold(self, method: str, path: str, stage: str, timeout: float) -> None:
        """Block the calling request until released or ``timeout`` passes."""
        with self._lock:
            held = _Held(next(self._ids), method, path, stage)
            self._held[held.id] = held
        try:
            held.released.wait(timeout)
        finally:
            with self._lock:
                self._held.pop(held.id, None)

    def held(self) -> list[dict[str, object]]:
        """The requests currently held."""
        with self._lock:
            return [
                {"id": h.id, "method": h.method, "path": h.path, "stage": h.stage}
                for h in self._held.values()
            ]

    def release(self, held_id: int | None = None) -> int:
        """Let one held request (or all, with None) go on; returns how many."""
        with self._lock:
            chosen = [h for h in self._held.values() if held_id in (None, h.id)]
        for held in chosen:
            held.released.set()
        return len(chosen)

    def reset(self) -> None:
        """Disarm every rule, drop latency, release every held request."""
        with self._lock:
            self._rules.clear()
            self.latency = 0.0
        self.release()
