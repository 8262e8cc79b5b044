"""The buyer's status page: Checkout's success_url, the signed status link, the
page in a real headless Chromium for every state, and "Open your control
panel" (CSRF, its time window, its rate limit).

Everything runs on the sandbox stack over real HTTP (``csonboard.sandbox``).
Where time matters, a receiver app is built on the stack's ledger with an
injected clock. Set STATUS_PAGE_SCREENSHOT=path to keep the screenshot of the
ready page (docs/status-page.png is made that way).
"""

from __future__ import annotations

import os
import shutil
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from conftest import make_settings
from csonboard.errors import ConfigError
from csonboard.ledger import Onboarding, StepRecord
from csonboard.queue import Doorbell, open_doorbell
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from csonboard.settings import load_settings
from csonboard_webhooks import create_app
from csonboard_webhooks.status.links import Links
from csonboard_webhooks.status.progress import describe
from status_browser import chromium, eventually, is_shown, page_text, stage_words

STATIC = "price_sandbox_static_monthly"
UNMAPPED = "price_sandbox_unmapped"
KEY = "status-page-test-key-0123456789"
SUPPORT = "help@nimbus.example"
READY_WORDS = {
    "Payment confirmed": "Done",
    "Account created": "Done",
    "Project ordered": "Done",
    "Project ready": "Done",
}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with sandbox_stack(
        tmp_path / "data",
        CSONBOARD_SECRET_KEY=KEY,
        CSONBOARD_STATUS_BRAND_NAME="Nimbus Hosting",
        CSONBOARD_STATUS_SUPPORT_EMAIL=SUPPORT,
        CSONBOARD_STATUS_REFRESH_SECONDS="2",
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
    ) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.2, "processing_seconds": 0.2}
        )
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


class Clock:
    """A settable clock for a receiver app: real time plus ``offset``."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def app_on(
    shop: SandboxStack,
    clock: Clock,
    *,
    keys: str = KEY,
    doorbell: Doorbell | None = None,
    **status: Any,
) -> FlaskClient:
    """A receiver on the stack's ledger and sandboxes with ``clock``, signing
    with ``keys`` (CSONBOARD_SECRET_KEY's format) and ``status`` settings
    changed; on ``doorbell``'s queue if given, else the stack's."""
    settings = shop.settings.model_copy(
        update={
            "secret_key": SecretStr(keys),
            "status": shop.settings.status.model_copy(update=status),
        }
    )
    bell = doorbell or shop.worker.doorbell
    app = create_app(settings, ledger=shop.ledger, doorbell=bell, clock=clock)
    return app.test_client()


def buy(
    shop: SandboxStack,
    prices: dict[str, int] | None = None,
    mode: str = "subscription",
    **payment: Any,
) -> str:
    session_id = shop.checkout(prices or {STATIC: 1}, mode=mode, email="ada@example.com")
    shop.pay(session_id, name="Ada Lovelace", email="ada@example.com", **payment)
    return session_id


def status_path(client: FlaskClient, session_id: str) -> str:
    answer = client.get(f"/welcome?session_id={session_id}")
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    assert location.startswith("/status/")
    return location


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- in the browser -----------------------------------------------------------------------


def test_a_buyer_pays_watches_the_service_come_up_and_opens_the_control_panel(
    shop: SandboxStack, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    # Slow enough that the page is seen before the project is ready.
    shop.sandbox("computestacks", "orders", {"pending_seconds": 3, "processing_seconds": 1})
    session_id = shop.checkout({STATIC: 1}, email="ada@example.com")

    # The stand-in's hosted Checkout page sends the buyer to success_url.
    browser.get(f"{shop.stripe_url}/_sandbox/pay/{session_id}")
    browser.find_element(By.NAME, "email").send_keys("ada@example.com")
    browser.find_element(By.CSS_SELECTOR, "button[value=pay]").click()
    eventually(lambda: "/status/" in browser.current_url, what="the status page")

    assert session_id not in browser.current_url  # the link carries a token instead
    assert page_text(browser, ".brand__name") == "Nimbus Hosting"
    eventually(
        lambda: page_text(browser, "#headline") == "We are setting up your service",
        what="the in-progress page",
    )
    assert "Not started yet" in stage_words(browser).values() or is_shown(browser, "#open-panel")
    browser.execute_script("window.notReloaded = true;")

    eventually(
        lambda: page_text(browser, "#headline") == "Your service is ready",
        timeout=40,
        what="the ready page",
    )
    # The script updated the page in place: no reload wiped the marker.
    assert browser.execute_script("return window.notReloaded === true;")
    assert stage_words(browser) == READY_WORDS
    assert is_shown(browser, "#open-panel")
    assert not is_shown(browser, "#refresh")  # nothing more will change
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
    summary = browser.find_element(By.ID, "summary")
    assert summary.get_attribute("aria-live") == "polite"

    shot = browser.get_screenshot_as_png()
    width, height = png_size(shot)
    assert width >= 800 and height >= 800
    assert len(shot) > 15_000  # a rendered page, not a blank one
    (tmp_path / "status-page.png").write_bytes(shot)
    if os.environ.get("STATUS_PAGE_SCREENSHOT"):
        shutil.copy(tmp_path / "status-page.png", os.environ["STATUS_PAGE_SCREENSHOT"])

    browser.find_element(By.CSS_SELECTOR, "#open-panel button").click()
    eventually(lambda: browser.current_url.startswith(shop.cs_url), what="the control panel")
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query["username"] == ["ada@example.com"]
    assert len(query["token"][0]) >= 16


def test_without_javascript_the_page_reloads_itself_until_the_service_is_ready(
    shop: SandboxStack,
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    shop.stop_worker()
    session_id = buy(shop)
    with chromium(javascript=False) as browser:
        browser.get(f"{shop.receiver_url}/welcome?session_id={session_id}")
        assert "/status/" in browser.current_url
        assert page_text(browser, "#headline") == "We are setting up your service"
        assert stage_words(browser)["Payment confirmed"] == "In progress"
        assert is_shown(browser, "#refresh")  # a link to reload by hand, too
        first_heading = browser.find_element(By.ID, "headline")

        shop.working.set()  # the worker comes back
        eventually(
            lambda: page_text(browser, "#headline") == "Your service is ready",
            timeout=40,
            what="the ready page",
        )
        with pytest.raises(StaleElementReferenceException):
            _ = first_heading.text  # the page was reloaded, not updated by a script
        assert stage_words(browser) == READY_WORDS
        assert is_shown(browser, "#open-panel")


def _awaiting_payment(shop: SandboxStack) -> str:
    session_id = buy(shop, payment_status="unpaid")
    shop.wait_for(session_id, statuses=("awaiting_payment",))
    return session_id


def _dead(shop: SandboxStack) -> str:
    session_id = buy(shop, {UNMAPPED: 1}, mode="payment")
    assert shop.wait_for(session_id).status == "dead"
    return session_id


def _closed(shop: SandboxStack) -> str:
    session_id = _awaiting_payment(shop)
    shop.sandbox("stripe", f"checkout/sessions/{session_id}/async_payment", {"succeeded": False})
    assert shop.wait_for(session_id).status == "closed"
    return session_id


def _retrying(shop: SandboxStack) -> str:
    # ComputeStacks answers 500 to user lookups for the rest of the test.
    shop.sandbox(
        "computestacks",
        "faults",
        {"method": "GET", "path": "/api/admin/users/", "status": 500, "count": 10_000},
    )
    session_id = buy(shop)
    shop.wait_for(session_id, statuses=("failed",))
    return session_id


@pytest.mark.parametrize(
    ("make", "headline", "says", "stages"),
    [
        (
            _awaiting_payment,
            "Payment not confirmed yet",
            "as soon as the payment is confirmed",
            {"Payment confirmed": "Waiting for your payment", "Account created": "Not started yet"},
        ),
        (
            _retrying,
            "This is taking a little longer",
            "We are retrying automatically",
            {"Payment confirmed": "Done", "Account created": "Retrying"},
        ),
        (
            _dead,
            "We could not finish setting up your service",
            f"Our team has been alerted and will finish it or contact you. You do not need to "
            f"pay again. If you have questions, write to {SUPPORT}.",
            {"Payment confirmed": "Done", "Account created": "Needs our attention"},
        ),
        (
            _closed,
            "This purchase was not completed",
            f"nothing was set up. If you were charged, write to {SUPPORT}.",
            {"Payment confirmed": "Not completed", "Project ready": "Not started yet"},
        ),
    ],
    ids=["awaiting_payment", "retrying", "dead", "closed"],
)
def test_every_state_says_plainly_what_happens_next(
    shop: SandboxStack,
    browser: Any,
    tmp_path: Path,
    make: Any,
    headline: str,
    says: str,
    stages: dict[str, str],
) -> None:
    session_id = make(shop)

    browser.get(f"{shop.receiver_url}/welcome?session_id={session_id}")

    eventually(lambda: page_text(browser, "#headline") == headline, what=headline)
    assert says in page_text(browser, "#message")
    shown = stage_words(browser)
    assert {label: shown[label] for label in stages} == stages
    assert not is_shown(browser, "#open-panel")
    assert SUPPORT in page_text(browser, "footer")
    png_size(browser.get_screenshot_as_png())


# -- /welcome ---------------------------------------------------------------------------------


def test_welcome_starts_fulfilment_itself_when_the_webhook_is_late(shop: SandboxStack) -> None:
    shop.sandbox("stripe", "webhooks", {"paused": True})
    session_id = buy(shop)
    assert shop.ledger.onboardings.get(session_id) is None  # no webhook, no onboarding

    answer = requests.get(
        f"{shop.receiver_url}/welcome", params={"session_id": session_id}, timeout=30
    )

    assert answer.status_code == 200 and answer.url.startswith(f"{shop.receiver_url}/status/")
    assert answer.history[0].status_code == 303
    assert answer.history[0].headers["Referrer-Policy"] == "no-referrer"
    started = shop.ledger.onboardings.get(session_id)
    assert started is not None and started.source == "status page"
    assert shop.wait_for(session_id).status == "done"

    # The late webhook changes nothing: one onboarding, one user, one order.
    shop.sandbox("stripe", "webhooks", {"paused": False})
    shop.sandbox("stripe", "deliveries/wait", {"timeout": 10})
    with shop.burst:
        shop.worker.run_burst()
    state = shop.cs_state()
    assert len([u for u in state["users"] if not u["is_admin"]]) == 1
    assert len(state["orders"]) == 1
    assert shop.ledger.onboardings.get(session_id).source == "status page"  # type: ignore[union-attr]


def test_welcome_refuses_unknown_unfinished_and_old_sessions(shop: SandboxStack) -> None:
    clock = Clock()
    client = app_on(shop, clock)

    assert client.get("/welcome?session_id=cs_test_doesnotexist").status_code == 404
    assert client.get("/welcome?session_id=../../etc").status_code == 404
    unpaid = shop.checkout({STATIC: 1}, email="ada@example.com")  # never completed
    answer = client.get(f"/welcome?session_id={unpaid}")
    assert answer.status_code == 200 and "This checkout is not complete" in answer.text
    assert shop.ledger.onboardings.get(unpaid) is None

    session_id = buy(shop)
    shop.wait_for(session_id)
    status_path(client, session_id)
    clock.offset = timedelta(minutes=61)  # past status.welcome_minutes
    late = client.get(f"/welcome?session_id={session_id}")
    assert late.status_code == 410
    assert "This link has expired" in late.text


# -- the status link ----------------------------------------------------------------------------


def test_expired_and_tampered_status_links_are_refused(shop: SandboxStack) -> None:
    clock = Clock()
    client = app_on(shop, clock)
    session_id = buy(shop)
    shop.wait_for(session_id)
    path = status_path(client, session_id)
    token = path.removeprefix("/status/")

    assert client.get(path).status_code == 200
    assert client.get(f"{path}.json").get_json()["state"] == "ready"
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:20], "x" * 40, f"{token}x"):
        answer = client.get(f"/status/{bad}")
        assert answer.status_code == 404, bad
        assert "This link is not valid" in answer.text
    # The right session signed with another key, or for another purpose, is not ours.
    other_key = Links(["another-key-0123456789abcdef"], token_days=7, clock=clock)
    assert client.get(f"/status/{other_key.status_token(session_id)}").status_code == 404
    ours = Links([KEY], token_days=7, clock=clock)
    form_token = ours.form_token(session_id, "nonce")
    assert client.get(f"/status/{form_token}").status_code == 404

    clock.offset = timedelta(days=7, seconds=-5)
    assert client.get(path).status_code == 200
    clock.offset = timedelta(days=7, seconds=5)
    expired = client.get(path)
    assert expired.status_code == 410
    assert "This link has expired" in expired.text
    assert client.get(f"{path}.json").status_code == 410


def test_a_rotated_key_still_opens_links_it_signed(shop: SandboxStack) -> None:
    clock = Clock()
    session_id = buy(shop)
    shop.wait_for(session_id)
    old_path = status_path(app_on(shop, clock), session_id)

    rotated = app_on(shop, clock, keys=f"new-key-0123456789abcdef,{KEY}")
    retired = app_on(shop, clock, keys="new-key-0123456789abcdef")

    assert rotated.get(old_path).status_code == 200
    new_path = status_path(rotated, session_id)
    assert new_path != old_path and retired.get(new_path).status_code == 200
    assert retired.get(old_path).status_code == 404


def test_the_page_hides_the_session_id_and_keeps_the_link_out_of_referers(
    shop: SandboxStack,
) -> None:
    client = app_on(shop, Clock())
    session_id = buy(shop)
    shop.wait_for(session_id)
    path = status_path(client, session_id)

    page = client.get(path)

    assert session_id not in path and session_id not in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"  # browsers without frame-ancestors
    assert f"form-action 'self' {shop.cs_url}" in page.headers["Content-Security-Policy"]
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/status/" in cookie


# -- "Open your control panel" ----------------------------------------------------------------


def _form_token(page_html: str) -> str:
    marker = 'name="form_token" value="'
    start = page_html.index(marker) + len(marker)
    return page_html[start : page_html.index('"', start)]


def test_a_form_cookie_with_odd_characters_never_gets_a_5xx(shop: SandboxStack) -> None:
    session_id = buy(shop)
    shop.wait_for(session_id)
    client = app_on(shop, Clock())
    path = status_path(client, session_id)
    client.set_cookie("csonboard_form", "été")
    form = {"form_token": _form_token(client.get(path).text)}

    answer = client.post(f"{path}/open", data=form)

    assert answer.status_code < 500, answer.text


def test_a_form_cookie_csonboard_did_not_set_is_never_adopted(shop: SandboxStack) -> None:
    session_id = buy(shop)
    shop.wait_for(session_id)
    client = app_on(shop, Clock())
    path = status_path(client, session_id)
    # Someone who can set cookies for this site (a sibling subdomain) plants a
    # nonce they know, to pair it with a form token they obtain.
    client.set_cookie("csonboard_form", "planted-nonce", path="/status/")

    page = client.get(path)

    given = page.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    assert given != "planted-nonce"
    again = client.get(path)  # the browser now holds csonboard's own: kept
    assert again.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1] == given


def test_a_sign_in_needs_the_pages_form_token_and_cookie(shop: SandboxStack) -> None:
    session_id = buy(shop)
    shop.wait_for(session_id)
    base = shop.receiver_url
    browser_like = requests.Session()
    page = browser_like.get(f"{base}/welcome", params={"session_id": session_id}, timeout=30)
    path = urlsplit(page.url).path
    token = _form_token(page.text)

    def press(session: requests.Session, form: dict[str, str], **headers: str) -> Any:
        return session.post(
            f"{base}{path}/open", data=form, headers=headers, allow_redirects=False, timeout=30
        )

    before = _logins(base)

    # No form token; a token from no page; the right token without the cookie
    # (a post from another site carries no SameSite=Strict cookie); a browser
    # saying the post came from another site.
    assert press(browser_like, {}).status_code == 403
    assert press(browser_like, {"form_token": "forged"}).status_code == 403
    assert press(requests.Session(), {"form_token": token}).status_code == 403
    cross = press(browser_like, {"form_token": token}, **{"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    # An older browser sends no Sec-Fetch-Site, but always an Origin on a POST.
    elsewhere = press(browser_like, {"form_token": token}, Origin="https://evil.example")
    assert elsewhere.status_code == 403

    signed_in = press(browser_like, {"form_token": token}, **{"Sec-Fetch-Site": "same-origin"})
    assert signed_in.status_code == 303
    target = urlsplit(signed_in.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == shop.cs_url
    assert parse_qs(target.query)["username"] == ["ada@example.com"]
    assert signed_in.headers["Cache-Control"] == "no-store"
    after = _logins(base)
    assert after["refused"] - before["refused"] == 5
    assert after["issued"] - before["issued"] == 1


def _logins(base: str) -> dict[str, float]:
    """csonboard_status_page_logins_total by outcome, from the receiver's /metrics."""
    text = requests.get(f"{base}/metrics", timeout=30).text
    counts = {"refused": 0.0, "issued": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "csonboard_status_page_logins_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


def test_a_sign_in_is_refused_before_ready_and_outside_its_window(shop: SandboxStack) -> None:
    clock = Clock()
    client = app_on(shop, clock)
    shop.stop_worker()
    session_id = buy(shop)
    path = status_path(client, session_id)  # starts the onboarding; nobody works on it yet
    form = {"form_token": _form_token(client.get(path).text)}
    early = client.post(f"{path}/open", data=form)
    assert early.status_code == 409 and "not ready yet" in early.text

    shop.working.set()
    shop.wait_for(session_id)
    [ready] = [s for s in shop.ledger.onboardings.steps(session_id) if s.step == "await_project"]
    assert ready.finished_at is not None
    since_ready = datetime.now(UTC) - ready.finished_at

    clock.offset = timedelta(hours=23, minutes=59) - since_ready
    assert client.get(f"{path}.json").get_json()["sign_in"] == "open"
    stale = client.post(f"{path}/open", data=form)  # that page was open for a day
    assert stale.status_code == 403 and "open for too long" in stale.text
    form = {"form_token": _form_token(client.get(path).text)}  # the buyer reloads
    assert client.post(f"{path}/open", data=form).status_code == 303

    clock.offset = timedelta(hours=24, minutes=1) - since_ready
    assert client.get(f"{path}.json").get_json()["sign_in"] == "expired"
    page = client.get(path).text
    assert 'id="open-panel" class="panel" aria-labelledby="open-heading" hidden' in page
    assert 'id="sign-in-note" class="note">' in page  # shown: how to sign in instead
    late = client.post(f"{path}/open", data={"form_token": _form_token(page)})
    assert late.status_code == 403
    assert "One-click sign-in is no longer offered" in late.text


def test_sign_ins_are_rate_limited_per_link(shop: SandboxStack) -> None:
    clock = Clock()
    client = app_on(shop, clock, sso_per_hour=2)
    session_id = buy(shop)
    shop.wait_for(session_id)
    path = status_path(client, session_id)
    form = {"form_token": _form_token(client.get(path).text)}

    assert [client.post(f"{path}/open", data=form).status_code for _ in range(2)] == [303, 303]
    limited = client.post(f"{path}/open", data=form)
    assert limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 3601
    # Another link to the same purchase shares the limit.
    clock.offset = timedelta(seconds=2)
    other = status_path(client, session_id)
    assert other != path
    assert client.post(f"{other}/open", data=form).status_code == 429

    clock.offset = timedelta(hours=1, seconds=1)
    assert client.post(f"{path}/open", data=form).status_code == 303


def test_with_a_redis_queue_receiver_processes_share_the_sign_in_limit(
    shop: SandboxStack, redis_server: str
) -> None:
    clock = Clock()
    on_redis = shop.settings.model_copy(
        update={"queue_url": redis_server, "queue_name": f"t{uuid.uuid4().hex[:10]}"}
    )
    bells = [open_doorbell(on_redis), open_doorbell(on_redis)]
    try:
        first, second = (app_on(shop, clock, doorbell=bell, sso_per_hour=2) for bell in bells)
        session_id = buy(shop)
        shop.wait_for(session_id)
        path = status_path(first, session_id)
        # Each browser gets its own form (bound to its own cookie).
        form1, form2 = ({"form_token": _form_token(c.get(path).text)} for c in (first, second))

        assert first.post(f"{path}/open", data=form1).status_code == 303
        assert second.post(f"{path}/open", data=form2).status_code == 303
        limited = first.post(f"{path}/open", data=form1)
        assert limited.status_code == 429
        assert 3500 < int(limited.headers["Retry-After"]) <= 3601
        assert second.post(f"{path}/open", data=form2).status_code == 429

        clock.offset = timedelta(hours=1, seconds=1)
        assert second.post(f"{path}/open", data=form2).status_code == 303
    finally:
        for bell in bells:
            bell.close()


def test_a_redis_outage_does_not_lock_buyers_out_of_signing_in(
    shop: SandboxStack, caplog: pytest.LogCaptureFixture
) -> None:
    down = shop.settings.model_copy(update={"queue_url": "redis://127.0.0.1:9/0"})
    bell = open_doorbell(down)
    try:
        client = app_on(shop, Clock(), doorbell=bell, sso_per_hour=1)
        session_id = buy(shop)
        shop.wait_for(session_id)
        path = status_path(client, session_id)
        form = {"form_token": _form_token(client.get(path).text)}

        answers = [client.post(f"{path}/open", data=form).status_code for _ in range(2)]

        assert answers == [303, 303]  # the limit is a guard: unchecked, it lets buyers in
        assert "rate limit not checked (ConnectionError)" in caplog.text
    finally:
        bell.close()


# -- switched off, settings -----------------------------------------------------------------


def test_without_a_secret_key_the_pages_say_they_are_off(tmp_path: Path) -> None:
    client = create_app(make_settings(tmp_path)).test_client()
    answer = client.get("/welcome?session_id=cs_test_abc")
    assert answer.status_code == 503
    assert "Thank you for your purchase" in answer.text


def test_a_ledger_outage_shows_a_page_that_tries_again(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        CSONBOARD_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
        CSONBOARD_SECRET_KEY=KEY,
        CSONBOARD_STRIPE_API_KEY="sk_test_unused",
        CSONBOARD_CS_URL="http://127.0.0.1:9",
        CSONBOARD_CS_ADMIN_USERNAME="admin",
        CSONBOARD_CS_ADMIN_PASSWORD="unused",
    )
    clock = Clock()
    client = create_app(settings, clock=clock).test_client()
    token = Links([KEY], token_days=7, clock=clock).status_token("cs_test_somebody")

    page = client.get(f"/status/{token}")
    assert page.status_code == 503
    assert "This page is not available just now" in page.text
    assert '<meta http-equiv="refresh" content="30">' in page.text
    data = client.get(f"/status/{token}.json")
    assert data.status_code == 503 and data.get_json()["refresh_seconds"] == 30


def test_a_brand_colour_too_light_for_text_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match=r"contrast with white is 1\.51"):
        load_settings(None, {"CSONBOARD_STATUS_BRAND_COLOR": "#ffcc00"})
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_settings(None, {"CSONBOARD_SECRET_KEY": "short"}).secret_keys()


# -- what each state says (no I/O) ------------------------------------------------------------

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _onboarding(status: str) -> Onboarding:
    return Onboarding(
        session_id="cs_test_x",
        status=status,
        livemode=False,
        step=None,
        customer_id=None,
        subscription_id=None,
        cs_user_id=None,
        note=None,
        last_error=None,
        next_attempt_at=None,
        deadline_at=None,
        lease_owner=None,
        lease_expires_at=None,
        source="test",
        created_at=NOW,
        updated_at=NOW,
        finished_at=None,
    )


def _steps(*done: str, failed: str | None = None) -> list[StepRecord]:
    records = [StepRecord(s, "done", {}, 1, None, NOW, NOW) for s in done]
    if failed:
        records.append(StepRecord(failed, "failed", {}, 2, "HTTP 500", NOW, None))
    return records


@pytest.mark.parametrize(
    ("status", "steps", "state", "stage_states", "refresh"),
    [
        ("pending", [], "in_progress", ["current", "not_started", "not_started", "not_started"], 5),
        (
            "waiting",
            _steps("fetch_session", "resolve_plan", "ensure_stripe_customer", "ensure_cs_user"),
            "in_progress",
            ["done", "done", "current", "not_started"],
            5,
        ),
        (
            "failed",
            _steps("fetch_session", failed="ensure_cs_user"),
            "retrying",
            ["done", "retrying", "not_started", "not_started"],
            5,
        ),
        (
            "stuck",
            _steps("fetch_session", "ensure_cs_user", "place_order", failed="await_project"),
            "failed",
            ["done", "done", "done", "failed"],
            30,
        ),
        ("awaiting_payment", [], "awaiting_payment", ["waiting", *["not_started"] * 3], 30),
        ("closed", [], "closed", ["stopped", *["not_started"] * 3], None),
        (
            # Ready although the last step (ids written back to Stripe) is still retrying.
            "failed",
            _steps("fetch_session", "ensure_cs_user", "place_order", "await_project"),
            "ready",
            ["done"] * 4,
            None,
        ),
    ],
)
def test_the_stages_follow_the_checkpointed_steps(
    status: str,
    steps: list[StepRecord],
    state: str,
    stage_states: list[str],
    refresh: int | None,
) -> None:
    progress = describe(_onboarding(status), steps, support="write to x@y.z", refresh_seconds=5)

    assert progress.state == state
    assert [stage.state for stage in progress.stages] == stage_states
    assert all(stage.words for stage in progress.stages)  # never told by colour alone
    assert progress.refresh_seconds == refresh
    assert (progress.ready_at is not None) == (state == "ready")


@pytest.mark.parametrize(
    ("payment_status", "says"),
    [("paid", "we have refunded your payment in full"), ("no_payment_required", "Nothing was")],
)
def test_a_refunded_purchase_says_whether_money_goes_back(payment_status: str, says: str) -> None:
    session = StepRecord(
        "fetch_session", "done", {"payment_status": payment_status}, 1, None, NOW, NOW
    )

    progress = describe(
        _onboarding("refunded"), [session], support="write to x@y.z", refresh_seconds=5
    )

    assert progress.state == "refunded"
    assert says in progress.message


def test_a_refund_that_failed_tells_the_buyer_a_person_is_on_it() -> None:
    progress = describe(
        _onboarding("refund_failed"), [], support="write to x@y.z", refresh_seconds=5
    )

    assert progress.state == "failed"
    assert "Our team has been alerted" in progress.message
    assert "refunded" not in progress.message


def test_welcome_caps_its_stripe_lookups_for_sessions_it_does_not_know(
    shop: SandboxStack,
) -> None:
    client = app_on(shop, Clock())
    answers = [client.get(f"/welcome?session_id=cs_test_madeup{n}").status_code for n in range(61)]
    assert answers == [404] * 60 + [503]
    # A purchase the ledger knows needs no lookup and still gets through.
    session_id = buy(shop)
    shop.wait_for(session_id)
    status_path(client, session_id)
