"""The ComputeStacks simulator as a Flask app: the behaviour of the real
controller (``ComputeStacks/controller``, release 9.3.1) that csonboard relies on.

Request pipeline for ``/api`` paths, in order: injected latency and faults
(they stand for the network and the proxy, so they come first) -> API
version from ``Accept`` (422 + ``API-Version-Supported: false``) -> Basic
auth and the admin check (401) -> ``Accept`` must allow JSON (406) -> the
route. Unknown ``/api`` paths get the "Unknown API Call" envelope; routed
actions the controller lacks get the web app's HTML 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from csonboard.sandbox.catalog import load_catalog
from csonboard.sandbox.computestacks.admin_routes import admin
from csonboard.sandbox.computestacks.faults import Fault, Faults
from csonboard.sandbox.computestacks.sandbox_routes import sandbox
from csonboard.sandbox.computestacks.seed import parse_catalog
from csonboard.sandbox.computestacks.state import World
from csonboard.sandbox.computestacks.user_routes import user_api
from csonboard.sandbox.computestacks.versions import judge, requested_version
from csonboard.sandbox.computestacks.wire import (
    EXTENSION,
    Simulator,
    empty,
    errors,
    page_not_found,
    simulator,
    unknown_call,
)

_THROTTLE_WINDOW = 300


def create_app(
    catalog: Mapping[str, Any] | None = None,
    *,
    admin_username: str,
    admin_password: str,
    clock: Callable[[], float] = time.time,
    lockout: bool = True,
) -> Flask:
    """A fresh simulator seeded from ``catalog`` (the whole sandbox catalog as
    :func:`~csonboard.sandbox.catalog.load_catalog` returns it; None loads the
    bundled one), with one admin user holding the given credential pair.

    ``clock`` drives order progress, project removal, resizes, power actions,
    lockouts, SSO expiry and ``RateLimit-Reset``; ``lockout=False`` disables
    the five-strikes lock.
    Raises ConfigError when the ``computestacks`` section is malformed.
    """
    seed = parse_catalog((catalog if catalog is not None else load_catalog()).get("computestacks"))
    app = Flask(__name__)
    app.extensions[EXTENSION] = Simulator(
        world=World(
            seed,
            clock=clock,
            lockout=lockout,
            admin_username=admin_username,
            admin_password=admin_password,
        ),
        faults=Faults(),
    )
    app.before_request(_apply_faults_and_version)
    app.after_request(_finish_api_call)
    app.register_blueprint(admin)
    app.register_blueprint(user_api)
    app.register_blueprint(sandbox)
    _register_missing_actions(app)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _not_found)
    app.wsgi_app = keep_encoded_slashes(app.wsgi_app)  # type: ignore[method-assign,assignment]
    return app


def keep_encoded_slashes(wsgi_app: WSGIApplication) -> WSGIApplication:
    """Keep ``%2F`` inside a path segment, as Rails routing does.

    WSGI servers decode ``PATH_INFO`` before routing, so a Base64 email key
    containing ``/`` (sent as ``%2F``) would split the segment. When the raw
    path is known, each segment is decoded on its own, leaving ``%2F`` for
    the route to turn back into ``/``.
    """

    def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
        raw_path = raw.split("?", 1)[0]
        if raw_path.startswith("/") and "%2f" in raw_path.lower():
            segments = (
                s.replace("%2F", "%252F").replace("%2f", "%252F") for s in raw_path.split("/")
            )
            environ["PATH_INFO"] = "/".join(unquote_to_bytes(s).decode("latin-1") for s in segments)
        return wsgi_app(environ, start_response)

    return middleware


# -- request hooks -------------------------------------------------------------------------


def _apply_faults_and_version() -> Response | None:
    if not request.path.startswith("/api"):
        return None
    faults = simulator().faults
    faults.count_call()
    if faults.latency:
        time.sleep(faults.latency)
    fault = faults.take(request.method, request.path)
    g.fault = fault
    if fault is not None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.hold == "before":
            faults.hold(request.method, request.path, "before", fault.hold_timeout)
        if not fault.takes_effect:
            return _fault_response(fault)
    version = requested_version(request.headers.get("Accept", ""))
    verdict = judge(version)
    if verdict == "unsupported":
        response = errors(422, [f"You requested an unsupported version ({version})"])
        response.headers["API-Version-Supported"] = "false"
        return response
    g.deprecated = verdict == "deprecated"
    return None


def _finish_api_call(response: Response) -> Response:
    if g.get("deprecated"):
        response.headers["API-Deprecated"] = "true"
    fault: Fault | None = g.get("fault")
    if fault is None or not fault.takes_effect:
        return response
    if fault.hold == "after":
        simulator().faults.hold(request.method, request.path, "after", fault.hold_timeout)
    return response if fault.status is None else _fault_response(fault)


def _fault_response(fault: Fault) -> Response:
    status = fault.status or 500
    if status == 429:
        now = simulator().world.clock()
        if fault.reset_after is not None:
            reset = now + fault.reset_after
        else:
            reset = (now // _THROTTLE_WINDOW + 1) * _THROTTLE_WINDOW
        response = Response("Throttled\n", status=429, content_type="text/plain")
        response.headers.update(
            {
                "RateLimit-Limit": "2500",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(int(reset)),
            }
        )
        return response
    if status == 404:
        return empty(404)
    if status >= 500 and status != 500:
        html = f"<html><body><h1>{status} (sandbox fault)</h1></body></html>"
        return Response(html, status=status, content_type="text/html")
    return errors(status, ["sandbox fault"])


# -- what is not there --------------------------------------------------------------------


def _not_found(exc: HTTPException) -> Response:
    if request.path.startswith("/api"):
        return unknown_call()
    return page_not_found()


def _register_missing_actions(app: Flask) -> None:
    """Routes the controller declares without actions: Rails answers its HTML
    404 page before any auth runs."""
    missing = [
        ("/api/admin/users/<key>/api_credentials", "GET"),
        ("/api/admin/users/<key>/api_credentials/<int:credential_id>", "GET"),
        ("/api/admin/orders", "POST"),
        ("/api/admin/projects/<int:project_id>", "DELETE"),
        # `resources :container_services`: only `index` and `show` exist.
        ("/api/admin/container_services", "POST"),
        ("/api/admin/container_services/new", "GET"),
        ("/api/admin/container_services/<key>/edit", "GET"),
        ("/api/admin/container_services/<key>", "PATCH"),
        ("/api/admin/container_services/<key>", "PUT"),
        ("/api/admin/container_services/<key>", "DELETE"),
        # `resources :power` and `resources :containers` under a service: only
        # `update` and `index` exist.
        ("/api/container_services/<key>/power", "GET"),
        ("/api/container_services/<key>/power", "POST"),
        ("/api/container_services/<key>/power/<action>", "GET"),
        ("/api/container_services/<key>/power/<action>", "DELETE"),
        ("/api/container_services/<key>/containers", "POST"),
        ("/api/container_services/<key>/containers/<container_id>", "GET"),
        ("/api/container_services/<key>/containers/<container_id>", "PATCH"),
        ("/api/container_services/<key>/containers/<container_id>", "PUT"),
        ("/api/container_services/<key>/containers/<container_id>", "DELETE"),
    ]
    for i, (rule, method) in enumerate(missing):
        app.add_url_rule(
            rule, f"missing_action_{i}", _missing_action, methods=[method], strict_slashes=False
        )


def _missing_action(**_: object) -> Response:
    return page_not_found()
