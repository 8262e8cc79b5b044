"""API version negotiation through ``Accept``, as configured in the controller's
``config/initializers/versioncake_init.rb`` and answered by
``app/controllers/concerns/api_version.rb``.

VersionCake reads ``api_version=NN`` from the ``Accept`` header: obsolete or
unknown versions are refused, deprecated ones served with a warning header,
and a missing version means the latest.
"""

from __future__ import annotations

import re
from typing import Literal

LATEST_VERSION = 80
OBSOLETE_VERSIONS = frozenset({40, 50})
DEPRECATED_VERSIONS = frozenset({51, 52, 53, 54, 60, 61, 62, 65, 70, 71})

Verdict = Literal["current", "deprecated", "unsupported"]

_VERSION = re.compile(r"api_version=([^;,\s]*)")


def requested_version(accept: str) -> str | None:
    """The ``api_version`` parameter of ``Accept`` as sent, or None."""
    match = _VERSION.search(accept)
    return match.group(1) if match else None


def judge(version: str | None) -> Verdict:
    """How the server treats a requested version (None: the latest)."""
    if version is None:
        return "current"
    number = int(version) if version.isdigit() else None
    if number == LATEST_VERSION:
        return "current"
    if number in DEPRECATED_VERSIONS:
        return "deprecated"
    return "unsupported"


def accepts_json(accept: str | None) -> bool:
    """Whether Rails would pick JSON for this ``Accept``.

    No header means HTML to Rails, which the API controllers refuse (406).
    XML, which the real controllers also render, is not simulated.
    """
    if not accept:
        return False
    ranges = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return "application/json" in ranges or ranges == {"*/*"}
