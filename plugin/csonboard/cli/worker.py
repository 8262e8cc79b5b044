"""``csonboard worker``: consume the queue and do the work.

With ``worker.metrics_port`` (or ``--metrics-port``) it also serves its own
Prometheus metrics -- step and ComputeStacks timings -- for a worker on a
machine without a receiver whose ``/metrics`` would cover it.
"""

from __future__ import annotations

import click

from csonboard.cli.context import Context, pass_context
from csonboard.errors import ConfigError
from csonboard.metrics.collector import serve_process_metrics
from csonboard.runtime import build_worker, migrate_when_ready


@click.command("worker")
@click.option("--threads", type=click.IntRange(1, 256), help="Overrides worker.threads.")
@click.option("--burst", is_flag=True, help="Process everything due now, then exit.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending ledger migrations first.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Overrides worker.metrics_port (0: no metrics server).",
)
@pass_context
def command(
    ctx: Context, threads: int | None, burst: bool, no_migrate: bool, metrics_port: int | None
) -> None:
    """Run onboarding work from the queue until stopped (SIGINT/SIGTERM)."""
    settings = ctx.settings
    if threads:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"threads": threads})}
        )
    worker = build_worker(settings)
    port = settings.worker.metrics_port if metrics_port is None else metrics_port
    if port and not burst:
        try:
            serve_process_metrics(settings.worker.metrics_host, port)
        except OSError as exc:
            raise ConfigError(
                "worker.metrics_port",
                f"cannot serve metrics on {settings.worker.metrics_host}:{port}: {exc.strerror}",
            ) from None
    if not no_migrate:
        # A daemon waits for a database that is restarting; a burst reports at once.
        migrate_when_ready(worker.ledger, patience=0 if burst else 120)
    if burst:
        handled = worker.run_burst()
        click.echo(f"handled {handled} message(s); nothing more is due")
        return
    worker.run_forever()
