"""``csonboard db upgrade``."""

from __future__ import annotations

import click

from csonboard.cli.context import Context, pass_context
from csonboard.ledger import Ledger


@click.group("db")
def command() -> None:
    """The ledger's database."""


@command.command()
@pass_context
def upgrade(ctx: Context) -> None:
    """Apply pending migrations to the ledger (safe to run at any time)."""
    ledger = Ledger.open(ctx.settings.ledger_url)
    try:
        applied = ledger.upgrade()
    finally:
        ledger.close()
    click.echo(f"applied {', '.join(applied)}" if applied else "the ledger is up to date")
