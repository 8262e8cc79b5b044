"""``csonboard serve``: the webhook receiver under gunicorn, plus a worker.

``serve --no-worker`` runs gunicorn in this process. Plain ``serve`` supervises
two children -- ``serve --no-worker`` and ``worker`` -- rather than running the
worker inside gunicorn's master, because the master reaps every child process
it has and would take the worker's exit status from under its supervisor. A
worker that dies is restarted; if the receiver dies, serve stops.

Metrics: every process ``serve`` starts (gunicorn's workers, the worker)
counts into one multiprocess directory, ``<data_dir>/metrics`` unless
``PROMETHEUS_MULTIPROC_DIR`` says otherwise, emptied at start; the receiver's
``/metrics`` adds them up (``csonboard.metrics``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click
from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer
from gunicorn.glogging import Logger as GunicornLogger

from csonboard.cli.context import Context, pass_context
from csonboard.errors import ConfigError, CsonboardError
from csonboard.ledger import Ledger
from csonboard.metrics.collector import MULTIPROC_ENV, prepare_multiprocess_dir
from csonboard.runtime import build_services, computestacks_admin, migrate_when_ready
from csonboard.settings import ReceiverSettings, Settings
from csonboard.stripe_api import StripeGateway

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", help="Overrides receiver.host.")
@click.option("--port", type=click.IntRange(0, 65535), help="Overrides receiver.port.")
@click.option("--workers", type=click.IntRange(1, 64), help="Overrides receiver.workers.")
@click.option("--no-worker", is_flag=True, help="Receive only; run `csonboard worker` elsewhere.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending ledger migrations first.")
@pass_context
def command(
    ctx: Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    no_worker: bool,
    no_migrate: bool,
) -> None:
    """Receive Stripe webhooks (POST /webhooks/stripe) and, unless --no-worker,
    process them in a worker process."""
    settings = ctx.settings
    # Fail here, with exit status 2, rather than in every gunicorn worker.
    settings.webhook_secrets()
    _ = settings.livemode
    if settings.secret_keys():  # the status page is on: it calls Stripe and ComputeStacks
        StripeGateway.from_settings(settings)
        computestacks_admin(settings)
    if not no_worker:
        build_services(settings)  # the worker's settings and catalog, checked here too
    receiver = settings.receiver.model_copy(
        update={
            k: v
            for k, v in {"host": host, "port": port, "workers": workers}.items()
            if v is not None
        }
    )
    _check_free(receiver.host, receiver.port)
    if not no_migrate:
        ledger = Ledger.open(settings.ledger_url)
        try:
            migrate_when_ready(ledger)
        finally:
            ledger.close()
    base = [sys.executable, "-m", "csonboard", *ctx.global_args()]
    serve_args = ["--host", receiver.host, "--port", str(receiver.port)]
    serve_args += ["--workers", str(receiver.workers)]
    receiver_argv = [*base, "serve", "--no-worker", "--no-migrate", *serve_args]
    fresh_metrics = _share_metrics_dir(settings)
    if no_worker:
        if fresh_metrics:
            # prometheus_client picks its storage when first imported, which
            # this process has done already: start again with the directory set.
            os.execv(receiver_argv[0], receiver_argv)  # noqa: S606 -- our own command
        _run_gunicorn(settings, bind=f"{receiver.host}:{receiver.port}", receiver=receiver)
        return
    code = _supervise(
        receiver_argv=receiver_argv,
        # Its metrics reach /metrics through the shared directory; a port of
        # its own would count them twice.
        worker_argv=[*base, "worker", "--no-migrate", "--metrics-port", "0"],
    )
    if code:
        raise CsonboardError(f"the receiver stopped with exit status {code}")


def _check_free(host: str, port: int) -> None:
    """ConfigError (one line, exit 2) when ``host:port`` cannot be listened
    on, rather than gunicorn's retries and a dozen error lines."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError("receiver.host", f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                "receiver.port",
                f"cannot listen on {host}:{port}: {exc.strerror} "
                "(another process has it; choose another with --port)",
            ) from None


def _share_metrics_dir(settings: Settings) -> bool:
    """Make sure this process's children count their metrics in one
    multiprocess directory, so that the receiver's ``/metrics`` adds up every
    gunicorn worker and the worker process. Unless ``PROMETHEUS_MULTIPROC_DIR``
    is set already (by the operator, or by a parent ``serve``), it becomes
    ``<data_dir>/metrics``, emptied first: counts restart with the service, as
    Prometheus expects. Returns True when it set the directory just now."""
    if os.environ.get(MULTIPROC_ENV):
        Path(os.environ[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)
        return False
    path = (settings.data_dir / "metrics").resolve()
    prepare_multiprocess_dir(path)
    os.environ[MULTIPROC_ENV] = str(path)
    return True


def _supervise(receiver_argv: list[str], worker_argv: list[str]) -> int:
    """Run both children until the receiver exits or we are told to stop.
    Returns the receiver's exit status (0 after SIGINT/SIGTERM)."""
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    receiver = subprocess.Popen(receiver_argv)  # noqa: S603 -- our own command
    worker = subprocess.Popen(worker_argv)  # noqa: S603
    try:
        while not stopping and receiver.poll() is None:
            if worker.poll() is not None:
                log.error("worker exited with status %s; restarting it", worker.returncode)
                time.sleep(1)
                worker = subprocess.Popen(worker_argv)  # noqa: S603
            time.sleep(0.2)
    finally:
        for child in (receiver, worker):
            if child.poll() is None:
                child.terminate()
        for child in (receiver, worker):
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else (receiver.returncode or 0)


def _run_gunicorn(settings: Settings, *, bind: str, receiver: ReceiverSettings) -> None:
    def load() -> Any:
        from csonboard_webhooks import create_app

        return create_app(settings)

    run_gunicorn(load, bind=bind, workers=receiver.workers, threads=receiver.threads)


def run_gunicorn(load: Callable[[], Any], *, bind: str, workers: int, threads: int) -> None:
    """Serve the WSGI app ``load`` builds, with the options ``serve`` uses (the
    ack-path benchmark serves its baseline with them too). ``load`` runs in each
    gunicorn worker after the fork, so no connection is shared between processes."""
    try:
        _Gunicorn(load, bind=bind, workers=workers, threads=threads).run()
    except HaltServer as exc:
        raise CsonboardError(f"the receiver could not start: {exc.reason}") from None


class _RootLogger(GunicornLogger):  # type: ignore[misc]
    """Gunicorn's error log through our handlers, so --log-format json covers it."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """Gunicorn driven from code."""

    def __init__(self, load: Callable[[], Any], *, bind: str, workers: int, threads: int) -> None:
        self._load = load
        self._options: dict[str, object] = {
            "bind": bind,
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "timeout": 30,
            "graceful_timeout": 10,
            "logger_class": _RootLogger,
            # gunicorn 24+ opens a control socket in $HOME by default; we do not use it.
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self._load()
