"""``GET /metrics``: Prometheus text, for every process and from the ledger.

What it holds is assembled by :func:`csonboard.metrics.collector.scrape_registry`:
the counters and histograms of every process writing to the multiprocess
directory (all gunicorn workers and the worker process under ``csonboard
serve``), plus gauges read from the ledger and the queue at scrape time. It
answers 200 even when the ledger is down (``csonboard_ledger_up 0``).
Counts and timings only: no ids, no customer data. Restrict who can reach it
at the proxy if those numbers are private to you.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest

from csonboard.metrics.collector import scrape_registry
from csonboard_webhooks.state import Receiver

blueprint = Blueprint("metrics", __name__)

_EXTENSION = "csonboard_metrics"
# The classic text format every Prometheus reads (generate_latest writes it).
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def install_metrics(app: Flask, state: Receiver) -> None:
    """Serve ``/metrics`` from ``app``, reading the ledger and queue of ``state``."""
    app.extensions[_EXTENSION] = scrape_registry(state.ledger, state.doorbell, state.clock)
    app.register_blueprint(blueprint)


@blueprint.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = current_app.extensions[_EXTENSION]
    return Response(generate_latest(registry), content_type=_CONTENT_TYPE)
