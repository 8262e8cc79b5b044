"""The ``csonboard`` command: the composition root that wires the pieces together.

Exit status: 0 on success; 1 when the requested work failed;
2 on bad usage or configuration. Expected failures print one line, never a
traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from csonboard.cli import (
    db,
    demo,
    drift,
    events,
    lifecycle,
    onboardings,
    plans,
    reconcile,
    refund,
    replay,
    retry,
    sandbox,
    serve,
    stripe,
    usage,
    worker,
)
from csonboard.cli.context import Context
from csonboard.errors import ConfigError, CsonboardError
from csonboard.logs import configure_logging


class _Group(click.Group):
    """Turns csonboard's errors into one line and the right exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"csonboard: configuration error: {exc}", err=True)
            ctx.exit(2)
        except CsonboardError as exc:
            click.echo(f"csonboard: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (TOML). Default: $CSONBOARD_CONFIG, else built-in defaults.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Overrides log_format.")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    help="Overrides log_level.",
)
@click.version_option(package_name="csonboard")
@click.pass_context
def main(
    ctx: click.Context, config: Path | None, log_format: str | None, log_level: str | None
) -> None:
    """csonboard: paid Stripe Checkouts become ComputeStacks projects, exactly once."""
    ctx.obj = Context(config=config, log_format=log_format, log_level=log_level)
    configure_logging("json" if log_format == "json" else "text", log_level or "INFO")


for _module in (
    demo,
    serve,
    worker,
    replay,
    retry,
    reconcile,
    drift,
    refund,
    events,
    onboardings,
    lifecycle,
    plans,
    stripe,
    usage,
    sandbox,
    db,
):
    main.add_command(_module.command)
