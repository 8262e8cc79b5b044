"""The buyer's pages.

- ``GET /welcome?session_id=cs_...``: Checkout's ``success_url``. Finds the
  session's onboarding -- or, when the webhook has not arrived yet, asks Stripe
  and, if the checkout is complete, starts the onboarding and rings the queue
  (the work itself is the worker's) -- then 303 to ``/status/<token>``. Only
  within ``status.welcome_minutes`` of the onboarding's start: after that a
  session id alone opens nothing.
- ``GET /status/<token>``: the page (HTML; works without JavaScript).
- ``GET /status/<token>.json``: the same content for the page's script.
- ``POST /status/<token>/open``: "Open your control panel" (:mod:`.sign_in`).
- ``GET /status-theme.css``: the brand colour.

Answers: 404 for a token that is not ours or altered, 410 for an expired one,
403 for a refused sign-in, 409 for a sign-in before the project is ready or
while the purchase is stopped or terminated, 429 past the rate limit, 503
when the ledger, Stripe or ComputeStacks cannot be reached or the pages are
switched off. Stripe is read only for sessions the ledger does not know (at
most ``STRIPE_LOOKUPS_PER_MINUTE`` times a minute per process) and for the
open invoice of a purchase stopped for non-payment (once per page view, at
most ``INVOICE_LOOKUPS_PER_MINUTE`` times a minute); nothing here does
onboarding work.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for

from csonboard.errors import CsonboardError, QueueUnavailable, StripeRefused, StripeUnavailable
from csonboard_webhooks.status import sign_in
from csonboard_webhooks.status.answers import (
    COOKIE,
    message,
    not_found,
    onboarding_of,
    pages_or_none,
    progress_of,
    record_access,
    sign_in_state,
    status_settings,
    switched_off,
)
from csonboard_webhooks.status.pages import StatusPages
from csonboard_webhooks.status.progress import DELIVERED

log = logging.getLogger(__name__)

blueprint = Blueprint(
    "status",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/status-assets",
)

_SESSION_ID = re.compile(r"cs_(test|live)_[A-Za-z0-9]{1,200}")


# -- /welcome ------------------------------------------------------------------------


@blueprint.get("/welcome")
def welcome() -> Response:
    pages = pages_or_none()
    if pages is None:
        return switched_off()
    session_id = request.args.get("session_id", "")
    if not _SESSION_ID.fullmatch(session_id):
        return not_found()
    onboarding = pages.ledger.onboardings.get(session_id)
    if onboarding is None:
        answer = _start_from_stripe(pages, session_id)
        if answer is not None:
            return answer
    elif pages.clock() - onboarding.created_at > timedelta(minutes=pages.settings.welcome_minutes):
        return message(
            410,
            "This link has expired",
            "For your security, this address only shows your order's status shortly after "
            "you pay. Use the status page link you were given then, or "
            f"{pages.support}.",
        )
    token = pages.links.status_token(session_id)
    return redirect(url_for("status.page", token=token), 303)  # type: ignore[return-value]


def _start_from_stripe(pages: StatusPages, session_id: str) -> Response | None:
    """The webhook has not arrived (or not yet been stored): ask Stripe. A
    complete checkout gets its onboarding now; None means "go on to the status
    page", anything else is the answer to give instead."""
    if pages.stripe_lookups.hit("stripe") is not None:
        log.warning("status page: too many Stripe lookups from /welcome; asking to retry")
        return message(
            503,
            "We could not check your purchase just now",
            "Many people are checking at once. This page tries again by itself.",
            refresh=15,
        )
    try:
        session = pages.stripe.checkout_session(session_id)
    except StripeRefused:
        return not_found()
    except StripeUnavailable as exc:
        log.warning("status page: cannot check session %s with Stripe: %s", session_id, exc)
        return message(
            503,
            "We could not check your purchase just now",
            "Our payment provider did not answer. This page tries again by itself.",
            refresh=15,
        )
    if session.livemode != pages.livemode:
        return not_found()
    if session.status == "open":
        return message(
            200,
            "This checkout is not complete",
            "We have no payment for this checkout yet. If you have just paid, wait a moment "
            "and reload this page.",
        )
    if session.status == "expired":
        return message(
            200,
            "This purchase was not completed",
            f"The checkout expired, so nothing was set up. If you were charged, {pages.support}.",
        )
    created = pages.ledger.onboardings.start(
        session_id, livemode=session.livemode, source="status page"
    )
    if created:
        # Stripe's advice: fulfil from the success page too, in case the
        # webhook is late. The worker does the work; we only ring for it.
        log.info("onboarding started from the status page", extra={"session_id": session_id})
    try:
        pages.doorbell.ring("onboarding", session_id)
    except QueueUnavailable as exc:
        log.warning("could not ring for onboarding %s (the sweep will): %s", session_id, exc)
    return None


# -- /status/<token> -------------------------------------------------------------------------


def _opened_by_a_browser() -> bool:
    """Whether this page request is a person's browser opening the page, as
    far as can be told: a GET for a top-level document, which browsers mark
    (``Sec-Fetch-Dest: document``) and link checkers, previewers and scripts
    (HEAD requests, plain HTTP clients) do not. Only such visits are dispute
    evidence."""
    return request.method == "GET" and request.headers.get("Sec-Fetch-Dest") == "document"


@blueprint.get("/status/<token>")
def page(token: str) -> Response:
    pages = pages_or_none()
    if pages is None:
        return switched_off()
    found = onboarding_of(pages, token)
    if isinstance(found, Response):
        return found
    onboarding, progress = found
    if progress.state in DELIVERED and _opened_by_a_browser():
        record_access(pages, onboarding.session_id, "visit")
    nonce = pages.links.nonce(request.cookies.get(COOKIE))
    response = make_response(
        render_template(
            "status/page.html",
            progress=progress,
            sign_in=sign_in_state(pages, progress),
            form_token=pages.links.form_token(onboarding.session_id, nonce),
            token=token,
            control_panel=pages.control_panel,
            window_hours=pages.settings.sso_window_hours,
        )
    )
    response.set_cookie(
        COOKIE,
        nonce,
        path="/status/",
        httponly=True,
        secure=request.is_secure,
        samesite="Strict",
    )
    return response


@blueprint.get("/status/<token>.json")
def page_json(token: str) -> tuple[dict[str, Any], int]:
    pages = pages_or_none()
    if pages is None:
        return {"error": "switched off", "refresh_seconds": None}, 503
    check = pages.links.read_status_token(token)
    if check.outcome != "ok":
        return _gone_json(check.outcome)
    onboarding = pages.ledger.onboardings.get(check.session_id)
    if onboarding is None:
        return _gone_json("invalid")
    progress = progress_of(pages, onboarding)
    return {**progress.as_json(), "sign_in": sign_in_state(pages, progress)}, 200


def _gone_json(outcome: str) -> tuple[dict[str, Any], int]:
    """What the page's script shows (and stops polling on) for a bad link."""
    if outcome == "expired":
        headline, text, status = "This link has expired", "Ask us for a new one.", 410
    else:
        headline, text, status = "This link is not valid", "Check that you copied it all.", 404
    body = {"error": outcome, "headline": headline, "message": text, "refresh_seconds": None}
    return body, status


blueprint.add_url_rule(
    "/status/<token>/open", view_func=sign_in.open_control_panel, methods=["POST"]
)


# -- the theme ----------------------------------------------------------------------------


@blueprint.get("/status-theme.css")
def theme() -> Response:
    settings = status_settings()
    response = make_response(f":root {{ --brand: {settings.brand_color}; }}\n")
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# -- every answer of this blueprint ---------------------------------------------------------


@blueprint.after_request
def _protect(response: Response) -> Response:
    """The page holds a bearer link: never send it in a Referer, never cache
    it, never frame it, never run script or style from elsewhere."""
    pages = pages_or_none()
    form_targets = "'self'" + (f" {pages.control_panel_origin}" if pages else "")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self'; form-action {form_targets}; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"  # for browsers without frame-ancestors
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint not in ("status.static", "status.theme"):
        response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.context_processor
def _brand() -> dict[str, Any]:
    settings = status_settings()
    return {"brand_name": settings.brand_name, "support_email": settings.support_email}


@blueprint.errorhandler(CsonboardError)
def _unavailable(exc: CsonboardError) -> Response | tuple[dict[str, Any], int]:
    """The ledger (or another part) is down: say so, and look again soon."""
    log.warning("status page unavailable: %s", exc)
    if request.path.endswith(".json"):
        return {"error": "unavailable", "refresh_seconds": 30}, 503
    return message(
        503,
        "This page is not available just now",
        "We could not read your order's status. This page tries again by itself.",
        refresh=30,
    )
