"""Basic auth for the simulated API, as the controller's
``app/controllers/concerns/api_auth.rb`` and
``app/controllers/api/admin/application_controller.rb`` do it.

Credentials are the issued API pairs, checked with the per-user lockout of
:func:`.accounts.authenticate`. A bad pair, or a non-admin (or nobody) on the
admin API, is ``401 {"errors":["Not Authorized"]}``; the user API without
Basic auth falls through to OAuth, which is not simulated, and answers its
empty 401. A JSON ``Accept`` is checked after auth, as Rails' ``respond_to``
runs inside the action.
"""

from __future__ import annotations

import base64
import binascii

from flask import Response, g, request

from csonboard.sandbox.computestacks import accounts
from csonboard.sandbox.computestacks.versions import accepts_json
from csonboard.sandbox.computestacks.wire import empty, not_authorized, world


def authenticate(admin_only: bool) -> Response | None:
    """None when the caller may go on (``g.user_id`` set), else the refusal."""
    header = request.headers.get("Authorization", "")
    if "Basic" not in header:
        if admin_only:
            return not_authorized()
        # The user API falls through to OAuth (not simulated): 401, empty body.
        response = empty(401)
        response.headers["WWW-Authenticate"] = (
            'Bearer realm="ComputeStacks", error="invalid_token", '
            'error_description="The access token is invalid"'
        )
        return response
    pair = basic_pair(header)
    with world() as w:
        user = accounts.authenticate(w, *pair) if pair else None
        if user is None or (admin_only and not user.is_admin):
            return not_authorized()
        g.user_id = user.id
    if not accepts_json(request.headers.get("Accept")):
        return Response(
            "Unknown format (only JSON and XML are served)", status=406, content_type="text/plain"
        )
    return None


def require_admin() -> Response | None:
    """``before_request`` hook of the admin API."""
    return authenticate(admin_only=True)


def require_user() -> Response | None:
    """``before_request`` hook of the user API."""
    return authenticate(admin_only=False)


def basic_pair(header: str) -> tuple[str, str] | None:
    """(username, password) of a Basic header; anything containing "Basic"
    counts as Basic, as in the controller."""
    token = header.split("Basic", 1)[1].strip()
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None
