"""What the status views share: finding the onboarding behind a link, what to
tell the buyer about it, and the plain message pages (404, 410, 503, ...)."""

from __future__ import annotations

import logging

from flask import Response, current_app, make_response, render_template

from csonboard.errors import CsonboardError
from csonboard.ledger import Onboarding
from csonboard.ledger.access import AccessKind
from csonboard.lifecycle.state import ServiceState, purchase_state
from csonboard.settings import StatusSettings
from csonboard_webhooks.status.pages import StatusPages, status_pages
from csonboard_webhooks.status.progress import (
    NOT_PAYABLE,
    READY_STEP,
    Progress,
    describe,
    sign_in_open,
)

log = logging.getLogger(__name__)

SETTINGS_EXTENSION = "csonboard_status_settings"
COOKIE = "csonboard_form"
"""The nonce cookie the page sets and its form token is bound to."""


def pages_or_none() -> StatusPages | None:
    """The app's status pages; None when switched off (no secret key)."""
    return status_pages()


def status_settings() -> StatusSettings:
    found: StatusSettings = current_app.extensions[SETTINGS_EXTENSION]
    return found


def record_access(pages: StatusPages, session_id: str, kind: AccessKind) -> None:
    """Note that the buyer opened a delivered purchase's page or signed in from
    it (dispute evidence); a ledger that cannot take it now costs the buyer
    nothing: logged, not raised."""
    try:
        pages.ledger.access.record(session_id, kind)
    except CsonboardError as exc:
        log.warning("status page: could not record a %s: %s", kind, exc)


def progress_of(pages: StatusPages, onboarding: Onboarding, *, pay_link: bool = True) -> Progress:
    """What the buyer is told. Once the project is ready, the purchase's service
    state is read from the ledger; for one stopped for non-payment (not
    cancelled) and with ``pay_link``, Stripe is asked once for the open
    invoice's page (:func:`pay_url_of`)."""
    steps = pages.ledger.onboardings.steps(onboarding.session_id)
    service: ServiceState | None = None
    pay_url: str | None = None
    if any(s.step == READY_STEP and s.status == "done" for s in steps):
        service = purchase_state(pages.ledger, onboarding, retention_days=pages.retention_days)
        if pay_link and service.state == "stopped" and service.cause not in NOT_PAYABLE:
            pay_url = pay_url_of(pages, service)
    return describe(
        onboarding,
        steps,
        support=pages.support,
        refresh_seconds=pages.settings.refresh_seconds,
        service=service,
        pay_url=pay_url,
    )


def pay_url_of(pages: StatusPages, service: ServiceState) -> str | None:
    """Stripe's hosted page of the subscription's open invoice, or None: no
    subscription, no open invoice, too many lookups this minute, or Stripe not
    answering (the page then says whom to ask instead)."""
    if service.subscription_id is None:
        return None
    if pages.invoice_lookups.hit("stripe") is not None:
        log.warning("status page: too many open-invoice lookups; the page goes without the link")
        return None
    try:
        return pages.stripe.open_invoice_url(service.subscription_id)
    except CsonboardError as exc:
        log.warning(
            "status page: cannot read the open invoice of %s from Stripe: %s",
            service.subscription_id,
            exc,
        )
        return None


def onboarding_of(
    pages: StatusPages, token: str, *, pay_link: bool = True
) -> tuple[Onboarding, Progress] | Response:
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
    return onboarding, progress_of(pages, onboarding, pay_link=pay_link)


def sign_in_state(pages: StatusPages, progress: Progress) -> str:
    """What the page offers for getting into the control panel:

    - ``open``: the "Open your control panel" button;
    - ``expired``: ready, past the sign-in window: sign in at the control panel;
    - ``password``: ready, but one-click sign-in is never offered for this
      purchase (its onboarding did not create the account): sign in with the
      account's password, or reset it by e-mail;
    - ``not_in_service``: the purchase is stopped or terminated: nothing;
    - ``not_ready``: not ready yet: nothing.
    """
    if progress.state in ("stopped", "terminated"):
        return "not_in_service"
    if progress.state != "ready":
        return "not_ready"
    if not progress.one_click:
        return "password"
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
