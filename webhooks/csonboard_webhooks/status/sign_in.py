"""``POST /status/<token>/open``: "Open your control panel".

Checks, in order: the status link; that the post did not come from another
site (``Sec-Fetch-Site``); the form token and the nonce cookie it is bound to
(login CSRF, docs/security.md); that the purchase is in service (409 when it
is stopped or terminated); that the project is ready (409); that this
purchase's onboarding created the ComputeStacks user, not an earlier buyer's
account joined or adopted by email (403); that it became ready within
``status.sso_window_hours`` (403); the per-purchase rate limit (429). Then
mints a one-minute ComputeStacks sign-in (admin ``user_sso``) and answers 303
to ComputeStacks. ComputeStacks not answering is a 503 page. Every refusal
mints nothing. The sign-in token is never logged.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from flask import Response, redirect, request, url_for

from csonboard.errors import ComputeStacksError
from csonboard.metrics.instruments import STATUS_LOGINS
from csonboard_webhooks.status.answers import (
    COOKIE,
    message,
    onboarding_of,
    pages_or_none,
    record_access,
    switched_off,
)
from csonboard_webhooks.status.progress import sign_in_open

log = logging.getLogger(__name__)


def _from_this_site() -> bool:
    """Whether the browser says the form was posted from this site: its
    ``Sec-Fetch-Site`` (newer browsers) and its ``Origin`` (browsers send one
    on a POST), when given, must both name this host. ``Origin: null`` is
    what a browser sends for this page's own form, whose referrer policy is
    ``no-referrer``; the form token and the SameSite cookie still stand."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin in (None, "null") or urlsplit(origin).netloc == request.host


def open_control_panel(token: str) -> Response:
    pages = pages_or_none()
    if pages is None:
        return switched_off()
    found = onboarding_of(pages, token, pay_link=False)
    if isinstance(found, Response):
        return found
    onboarding, progress = found
    back = url_for("status.page", token=token)
    # A browser says where a request came from; another site must not be able
    # to sign this browser into an account (login CSRF), whatever it posts.
    if not _from_this_site():
        log.warning("status page: sign-in refused: the request came from another site")
        return _refusal(403, "Please try again from your status page", "The request was refused.")
    form_token = request.form.get("form_token", "")
    if not pages.links.check_form_token(
        form_token, onboarding.session_id, request.cookies.get(COOKIE)
    ):
        return _refusal(
            403,
            "Please try again from your status page",
            "This page was open for too long, or the request did not come from it. Go back "
            "to your status page and press the button again.",
            back=back,
        )
    if progress.state in ("stopped", "terminated"):
        # Whatever the button's window: no sign-in for a purchase out of service.
        text = progress.message
        if progress.state == "stopped":
            text = (
                "While your service is paused, the control panel is not opened from here. "
                "Your status page says how to start it again."
            )
        return _refusal(409, progress.headline, text, back=back)
    if progress.state != "ready" or onboarding.cs_user_id is None:
        return _refusal(
            409,
            "Your service is not ready yet",
            "The button works once your project is ready.",
            back=back,
        )
    if not progress.one_click:
        log.info(
            "status page: one-click sign-in refused: this purchase did not create the account",
            extra={"session_id": onboarding.session_id},
        )
        STATUS_LOGINS.labels(outcome="refused").inc()
        return message(
            403,
            "Please sign in with your password",
            "Your purchase was added to an account that already existed, so one-click "
            f"sign-in is not offered. Sign in at {pages.control_panel} with your email "
            "address and password; if you do not know the password, use “Forgot password” "
            "there to get a new one by email.",
            link=pages.control_panel,
            link_text="Go to the control panel",
        )
    if not sign_in_open(progress, pages.clock(), pages.settings.sso_window_hours):
        STATUS_LOGINS.labels(outcome="refused").inc()
        return message(
            403,
            "One-click sign-in is no longer offered",
            f"For your security it is offered for {pages.settings.sso_window_hours:g} hours "
            f"after your service is ready. Sign in at {pages.control_panel} with your email "
            "address; if you have no password yet, use “Forgot password” there.",
            link=pages.control_panel,
            link_text="Go to the control panel",
        )
    wait = pages.sign_ins.hit(onboarding.session_id)
    if wait is not None:
        minutes = max(1, round(wait / 60))
        answer = _refusal(
            429,
            "Too many sign-ins",
            f"This link has asked for many sign-ins in the last hour. Try again in about "
            f"{minutes} minute{'s' if minutes != 1 else ''}.",
            back=back,
            outcome="rate_limited",
        )
        answer.headers["Retry-After"] = str(int(wait) + 1)
        return answer
    try:
        sso = pages.cs.create_sso_token(onboarding.cs_user_id)
    except ComputeStacksError as exc:
        log.warning(
            "status page: could not mint a sign-in: %s",
            exc,
            extra={"session_id": onboarding.session_id},
        )
        return _refusal(
            503,
            "We could not reach your control panel",
            "Please try again in a minute.",
            back=back,
            outcome="failed",
        )
    STATUS_LOGINS.labels(outcome="issued").inc()
    record_access(pages, onboarding.session_id, "sign_in")
    # Never the token itself: it signs the buyer in for a minute.
    log.info(
        "status page: control panel sign-in issued",
        extra={"session_id": onboarding.session_id, "cs_user_id": onboarding.cs_user_id},
    )
    query = urlencode({"username": sso.username, "token": sso.token})
    return redirect(f"{pages.control_panel}/?{query}", 303)  # type: ignore[return-value]


def _refusal(
    status: int, headline: str, text: str, *, back: str | None = None, outcome: str = "refused"
) -> Response:
    """A press that signs nobody in: counted by ``outcome``, explained to the buyer."""
    STATUS_LOGINS.labels(outcome=outcome).inc()
    link_text = "Back to your status page" if back else None
    return message(status, headline, text, link=back, link_text=link_text)
