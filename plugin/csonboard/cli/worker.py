"""``csonboard worker``: consume the queue and do the work."""

from __future__ import annotations

import click

from csonboard.cli.context import Context, pass_context
from csonboard.runtime import build_worker, migrate_when_ready


@click.command("worker")
@click.option("--threads", type=click.IntRange(1, 256), help="Overrides worker.threads.")
@click.option("--burst", is_flag=True, help="Process everything due now, then exit.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending ledger migrations first.")
@pass_context
def command(ctx: Context, threads: int | None, burst: bool, no_migrate: bool) -> None:
    """Run onboarding work from the queue until stopped (SIGINT/SIGTERM)."""
    settings = ctx.settings
    if threads:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"threads": threads})}
        )
    worker = build_worker(settings)
    if not no_migrate:
        migrate_when_ready(worker.ledger)
    if burst:
        handled = worker.run_burst()
        click.echo(f"handled {handled} message(s); nothing more is due")
        return
    worker.run_forever()
