"""Dependency direction: the core never imports Flask or the
receiver; only the sandbox and the receiver speak HTTP as servers."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import csonboard


def core_modules() -> list[str]:
    """Every csonboard module except the sandbox (the local stand-ins)."""
    return sorted(
        info.name
        for info in pkgutil.walk_packages(csonboard.__path__, "csonboard.")
        if not info.name.startswith("csonboard.sandbox")
        and "migrations" not in info.name
        and info.name != "csonboard.__main__"
    )


def test_importing_the_core_loads_neither_flask_nor_the_receiver() -> None:
    modules = core_modules()
    assert "csonboard.ledger" in modules and "csonboard.cli" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "banned = ('flask', 'csonboard_webhooks')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in banned)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
