"""HTTP plumbing shared by the ``/v1`` and ``/_sandbox`` routes: JSON bodies and errors."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from csonboard.sandbox.stripe.errors import ApiError

JSON_MIMETYPE = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as pretty-printed JSON, the way Stripe formats its answers."""
    text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return Response(text, status=status, mimetype=JSON_MIMETYPE, headers=headers)


def error_response(error: ApiError) -> Response:
    """Stripe's error envelope with the error's status and headers."""
    return json_response(error.envelope(), error.status, error.headers)


def unrecognized_url() -> Response:
    """Stripe's answer to a path or method it does not serve under ``/v1``."""
    return error_response(
        ApiError(
            404,
            f"Unrecognized request URL ({request.method}: {request.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )
    )
