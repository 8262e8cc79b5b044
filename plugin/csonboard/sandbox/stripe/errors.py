"""Stripe's error envelope, raised anywhere in the stand-in and rendered by the routes.

Stripe answers every failure with ``{"error": {"type", "message", "code"?,
"doc_url"?, "param"?}}`` and a status the official library maps to its exception
classes (400/404 -> ``InvalidRequestError`` or ``IdempotencyError``, 401 ->
``AuthenticationError``, 429 -> ``RateLimitError``, 5xx -> ``APIError``).
``code`` and ``param`` are left out when they do not apply, as Stripe does.

``doc_url`` is Stripe's page for the code (``https://stripe.com/docs/error-codes/``
and the code with hyphens). It is sent only for codes Stripe documents (the list
stripe-python carries for ``last_payment_error.code``): the stand-in's own codes
(``parameter_unsupported``, ``resource_invalid_state``...) have no page, and a link
to none would mislead. ``request_log_url`` (a Dashboard link to the request's log)
is never sent: the stand-in has no Dashboard.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any, Literal

import stripe

DOC_URL_BASE = "https://stripe.com/docs/error-codes/"


class ApiError(Exception):
    """A request Stripe would refuse: carries the HTTP status and the envelope fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = error_type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def envelope(self) -> dict[str, Any]:
        """The JSON body Stripe sends for this error."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            if self.code in documented_codes():
                error["doc_url"] = DOC_URL_BASE + self.code.replace("_", "-")
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


@cache
def documented_codes() -> frozenset[str]:
    """The error codes Stripe documents, as stripe-python's generated types list them."""
    hint = stripe.PaymentIntent.LastPaymentError.__annotations__["code"]
    return frozenset(_literals(hint))


def _literals(hint: Any) -> set[str]:
    found: set[str] = set()
    for arg in typing.get_args(hint):
        if typing.get_origin(arg) is Literal:
            found.update(str(value) for value in typing.get_args(arg))
        else:
            found.update(_literals(arg))
    return found


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 for a parameter Stripe would reject."""
    return ApiError(
        400, message, param=param, code=code or ("parameter_invalid" if param else None)
    )


def missing(param: str) -> ApiError:
    """A 400 for a required parameter that was not sent."""
    return ApiError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> ApiError:
    """A 400 for a parameter the endpoint does not take."""
    return ApiError(
        400,
        f"Received unknown parameter: {param}",
        param=param,
        code="parameter_unknown",
    )


def no_such(label: str, object_id: str, *, param: str = "id", status: int = 404) -> ApiError:
    """A ``resource_missing`` error: 404 for the path's id, 400 when it names a body param."""
    return ApiError(status, f"No such {label}: '{object_id}'", param=param, code="resource_missing")


def wrong_state(message: str) -> ApiError:
    """A 400 for an operation the object's current state does not allow."""
    return ApiError(400, message, code="resource_invalid_state")


def unsupported(param: str) -> ApiError:
    """A 400 for a real Stripe parameter whose behaviour the sandbox does not model.

    Refusing is more honest than ignoring it: a test relying on it would pass
    here and behave differently against Stripe.
    """
    return ApiError(
        400,
        f"{param} is a Stripe parameter the csonboard Stripe sandbox does not model.",
        param=param,
        code="parameter_unsupported",
    )
