"""What the plan-catalog checks (:mod:`.catalog_check`, :mod:`.usage_check`)
share: the :class:`Problem` they report, how they list what exists, and how a
refused ComputeStacks admin credential becomes a ConfigError."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from csonboard.errors import ComputeStacksAuthError, ConfigError


@dataclass(frozen=True)
class Problem:
    key: str
    """The catalog key at fault, e.g. ``plans.wordpress.containers[0].product_id``."""
    message: str
    warning: bool = False
    """True: could not be verified, or is allowed but likely a mistake; reported,
    but not counted as a problem."""

    def __str__(self) -> str:
        return f"{'warning: ' if self.warning else ''}{self.key}: {self.message}"


def some(names: Iterable[str], limit: int = 12) -> str:
    """A readable list of at most ``limit`` names, "none" when empty."""
    shown = list(names)
    if not shown:
        return "none"
    more = f", ... ({len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


@contextmanager
def admin_credential() -> Iterator[None]:
    """ComputeStacks refusing the admin credential, as the ConfigError naming it."""
    try:
        yield
    except ComputeStacksAuthError as exc:
        raise ConfigError(
            "cs.admin_username",
            f"ComputeStacks refused the admin credential ({exc}); check "
            "CSONBOARD_CS_ADMIN_USERNAME and CSONBOARD_CS_ADMIN_PASSWORD before trying again",
        ) from exc
