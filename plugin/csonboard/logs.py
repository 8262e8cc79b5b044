"""Logging: one line per thing that happened, as text or as JSON objects.

Callers pass structured fields with ``extra={...}`` (event_id, event_type,
session_id, ...). The text format appends them as ``key=value``; the JSON format
(python-json-logger) emits them as keys. What is logged is chosen by the
callers, who never pass secrets or raw bodies; this module adds no redaction
magic that could give a false sense of safety.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

_STANDARD = {*RESERVED_ATTRS, "taskName", "message", "asctime"}


class TextFormatter(logging.Formatter):
    """``2026-11-27 05:00:00,000 INFO csonboard.worker event processed event_id=evt_1``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep tracebacks below the fields
        pairs = " ".join(f"{key}={_quoted(value)}" for key, value in fields.items())
        return f"{head} {pairs}{newline}{rest}"


def _quoted(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' ="\n') else text


class QuietOutages(logging.Filter):
    """Huey's consumer logs a whole traceback for every failed poll of its
    queue: hundreds of lines a second while Redis is down. Its records with
    a traceback become one line naming the error, each message at most once
    per ``interval`` seconds (the worker's own sweep keeps work moving)."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._last: dict[tuple[str, object], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("huey") or not record.exc_info:
            return True
        key = (record.name, record.msg)
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            self._last[key] = now
        error = record.exc_info[1]
        reason = " ".join(str(error).split()) or type(error).__name__
        record.msg = (
            f"{record.getMessage()}: {type(error).__name__}: {reason} "
            f"(not repeated for {self._interval:g} s)"
        )
        record.args, record.exc_info, record.exc_text = None, None, None
        return True


def configure_logging(log_format: Literal["text", "json"] = "text", level: str = "INFO") -> None:
    """Send csonboard's (and gunicorn's, huey's) logs to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(QuietOutages())
    handler.setFormatter(
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=False)
        if log_format == "json"
        else TextFormatter()
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # These log every task, migration step, API call or request at INFO; ours
    # already say what happened.
    for noisy in ("huey", "alembic", "stripe", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
