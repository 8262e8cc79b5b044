"""Tables for people, JSON for scripts, and time arguments."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (dataclasses, datetimes, bytes handled)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), indent=2, sort_keys=False))


def short_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [
        [str(h) for h in headers],
        *([("-" if c is None else str(c)) for c in r] for r in rows),
    ]
    if len(cells) == 1:
        click.echo("(nothing matches)")
        return
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers) - 1)]
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*padded, row[-1]]).rstrip())


class When(click.ParamType[datetime, Any]):
    """A point in time: a duration back from now (``90s``, ``30m``, ``2h``, ``7d``,
    ``1w``) or an ISO 8601 time (UTC unless it says otherwise)."""

    name = "when"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        match = _DURATION.match(text)
        try:
            if match:
                amount, unit = int(match.group(1)), match.group(2)
                return datetime.now(UTC) - timedelta(**{_UNITS[unit]: amount})
            parsed = datetime.fromisoformat(text)
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)  # overflows here, not in the database
        except OverflowError:
            self.fail(f"{text!r} is too far from now", param, ctx)
        except ValueError:
            self.fail(f"{text!r} is neither a duration like 2h or 7d nor an ISO time", param, ctx)


WHEN = When()
