"""The sandbox catalog (``catalog.toml``): the seed both stand-ins start from,
and the example plan catalog that sells it (``config/plans.example.toml``)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any


def load_catalog(path: Path | None = None) -> dict[str, Any]:
    """Read the catalog at ``path``, or the bundled one when ``path`` is None.

    Returns the parsed TOML as plain data; each stand-in reads its own section
    (``computestacks`` or ``stripe``) and validates what it needs.
    """
    if path is None:
        text = resources.files(__package__).joinpath("catalog.toml").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return tomllib.loads(text)


def example_plans() -> Path:
    """The example plan catalog: packaged in the wheel, or in a source checkout."""
    packaged = resources.files(__package__).joinpath("plans.example.toml")
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[3] / "config" / "plans.example.toml"
    if source.is_file():
        return source
    raise FileNotFoundError("plans.example.toml is neither packaged nor in a source checkout")
