"""What every command gets: the global options and lazily loaded settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import click

from csonboard.logs import configure_logging
from csonboard.settings import Settings, load_settings


@dataclass
class Context:
    """Per-invocation state. Settings load on first use, so commands that need
    none (``csonboard sandbox ...``) work without any configuration."""

    config: Path | None
    log_format: str | None
    log_level: str | None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The settings; raises ConfigError (exit 2) when they are bad."""
        if self._settings is None:
            self._settings = load_settings(self.config, os.environ)
            configure_logging(
                "json" if (self.log_format or self._settings.log_format) == "json" else "text",
                self.log_level or self._settings.log_level,
            )
        return self._settings

    def global_args(self) -> list[str]:
        """Options for a child ``csonboard`` process, so it sees the same setup."""
        args = []
        if self.config:
            args += ["--config", str(self.config)]
        if self.log_format:
            args += ["--log-format", self.log_format]
        if self.log_level:
            args += ["--log-level", self.log_level]
        return args


pass_context = click.make_pass_decorator(Context)
