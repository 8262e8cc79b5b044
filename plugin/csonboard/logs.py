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


def configure_logging(log_format: Literal["text", "json"] = "text", level: str = "INFO") -> None:
    """Send csonboard's (and gunicorn's, huey's) logs to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
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
