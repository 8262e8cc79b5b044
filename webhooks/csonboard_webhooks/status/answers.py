"""What the status views share: finding the onboarding behind a link, what to
tell the buyer about it, and the plain message pages (404, 410, 503, ...)."""

from __future__ import annotations

from flask import Response, current_app, make_response, render_template

from csonboard.ledger import Onboarding
from csonboard.settings import StatusSettings
from csonboard_webhooks.status.pages import StatusPages, status_pages
from csonboard_webhooks.status.progress import Progress, describe, sign_in_open

SETTINGS_EXTENSION = "csonboard_status_settings"
COOKIE = "csonboard_form"
"""The nonce cookie the page sets and its form token is bound to."""


def pages_or_none() -> StatusPages | None:
    """The app's status pages; None when switched off (no secret key)."""
    return status_pages()


def status_settings() -> StatusSettings:
    found: StatusSettings = current_app.extensions[SETTINGS_EXTENSION]
    return found


def progress_of(pages: StatusPages, onboarding: Onboarding) -> Progress:
    return describe(
        onboarding,
        pages.ledger.onboardings.steps(onboarding.session_id),
        support=pages.support,
        refresh_seconds=pages.settings.refresh_seconds,
    )


def onboarding_of(pages: StatusPages, token: str) -> tuple[Onboarding, Progress] | Response:
    """The onboarding a status link names, with its progress; or the page to
    answer instead (410 expired, 404 not ours, altered, or unknown)."""
    check = pages.links.read_status_token(token)
    if check.outcome == "expired":
        return message(
            410,
            "This link has expired",
            f"Status links work for {pages.settings.token_days:g} days. If you need help "
            f"with your order, {pages.support}.",
        )
    onboarding = pages.ledger.onboardings.get(check.session_id) if check.outcome == "ok" else None
    if onboarding is None:
        return message(
            404,
            "This link is not valid",
            f"Check that you copied all of it. If you need help with your order, {pages.support}.",
        )
    return onboarding, progress_of(pages, onboarding)


def sign_in_state(pages: StatusPages, progress: Progress) -> str:
    """``open``, ``expired`` (ready, but past the window) or ``not_ready``."""
    if progress.state != "ready":
        return "not_ready"
    if sign_in_open(progress, pages.clock(), pages.settings.sso_window_hours):
        return "open"
    return "expired"


def not_found() -> Response:
    pages = pages_or_none()
    support = pages.support if pages else "contact us"
    return message(
        404,
        "We could not find this purchase",
        f"Check the address, or {support}.",
    )


def switched_off() -> Response:
    return message(
        503,
        "Thank you for your purchase",
        "The order status page is not available here. We are setting up your service and "
        "will be in touch.",
    )


def message(
    status: int,
    headline: str,
    text: str,
    *,
    link: str | None = None,
    link_text: str | None = None,
    refresh: int | None = None,
) -> Response:
    return make_response(
        render_template(
            "status/message.html",
            headline=headline,
            message=text,
            link=link,
            link_text=link_text,
            refresh=refresh,
        ),
        status,
    )
