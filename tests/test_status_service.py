"""The buyer's status page and ``onboardings show`` follow the money: a purchase
stopped for non-payment says so and where to pay (Stripe's hosted page of the
open invoice), a terminated one says it ended, neither offers a sign-in, and
one-click sign-in is only for a purchase whose onboarding created the account.

End to end on the sandbox stack over real HTTP (the Stripe stand-in's
``/_sandbox/subscriptions/{id}/...`` play non-payment, payment and
cancellation), with a headless Chromium where the page is looked at; the
decisions themselves are checked without I/O at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from csonboard.computestacks import NewUser
from csonboard.ledger import Onboarding, StepRecord
from csonboard.ledger.lifecycle import LifecycleAction, SubscriptionFacts
from csonboard.ledger.power import StoppedService
from csonboard.lifecycle.state import service_state
from csonboard.sandbox.stack import SandboxStack, sandbox_stack
from csonboard_webhooks.status.progress import describe, one_click_allowed
from operator_support import cli_env, run
from shop_support import settle as settle_customer
from status_browser import chromium, eventually, is_shown, page_text

STATIC = "price_sandbox_static_monthly"
STATIC_ONCE = "price_sandbox_static_once"
KEY = "status-service-test-key-0123456789"
SUPPORT = "help@nimbus.example"
SECOND = 1 / 86400  # in days
SSO = "POST /api/admin/users/{id}/user_sso"


@contextmanager
def stack_for(tmp_path: Path, **env: str) -> Iterator[SandboxStack]:
    with sandbox_stack(
        tmp_path / "data",
        CSONBOARD_SECRET_KEY=KEY,
        CSONBOARD_STATUS_SUPPORT_EMAIL=SUPPORT,
        CSONBOARD_ONBOARDING_POLL_SECONDS="0.1",
        CSONBOARD_WORKER_BACKOFF_SECONDS="0.2",
        **env,
    ) as stack:
        stack.sandbox(
            "computestacks", "orders", {"pending_seconds": 0.1, "processing_seconds": 0.1}
        )
        stack.sandbox("computestacks", "services", {"power_seconds": 0.1})
        yield stack


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxStack]:
    with stack_for(tmp_path) as stack:
        yield stack


FAST_TIMERS = """
(function () {
  var setTimeout = window.setTimeout;
  window.setTimeout = function (callback, delay) {
    return setTimeout(callback, (delay || 0) / 100);
  };
})();
"""
"""Time in the page's timers passes 100 times faster: its once-a-minute look
comes every 0.6 s, so a test sees the script update the page in place."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium whose pages' timers run 100 times faster."""
    with chromium() as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAST_TIMERS})
        yield driver


def buy(
    shop: SandboxStack, price: str = STATIC, mode: str = "subscription", email: str | None = None
) -> Onboarding:
    email = email or "ada@example.com"
    session_id = shop.checkout({price: 1}, mode=mode, email=email)
    shop.pay(session_id, name="Ada Lovelace", email=email)
    onboarding = shop.wait_for(session_id)
    assert onboarding.status == "done", onboarding.last_error
    settle(shop, onboarding)
    return onboarding


def settle(shop: SandboxStack, onboarding: Onboarding) -> None:
    """Wait until Stripe delivered everything and the purchase's customer is at rest."""
    settle_customer(shop, onboarding.customer_id or "")


def stripe_does(shop: SandboxStack, onboarding: Onboarding, helper: str, **body: Any) -> None:
    """The Stripe stand-in changes the purchase's subscription and says so."""
    shop.sandbox("stripe", f"subscriptions/{onboarding.subscription_id}/{helper}", body)
    settle(shop, onboarding)


@dataclass
class Buyer:
    """A browser-like HTTP client on one purchase's status page (it keeps the
    page's cookie, as the buyer's browser does)."""

    shop: SandboxStack
    path: str
    http: requests.Session

    @classmethod
    def of(cls, shop: SandboxStack, onboarding: Onboarding) -> Buyer:
        http = requests.Session()
        page = http.get(
            f"{shop.receiver_url}/welcome",
            params={"session_id": onboarding.session_id},
            timeout=30,
        )
        assert page.status_code == 200, page.text
        return cls(shop, urlsplit(page.url).path, http)

    def page(self) -> str:
        answer = self.http.get(f"{self.shop.receiver_url}{self.path}", timeout=30)
        assert answer.status_code == 200
        return answer.text

    def json(self) -> dict[str, Any]:
        answer = self.http.get(f"{self.shop.receiver_url}{self.path}.json", timeout=30)
        assert answer.status_code == 200
        data: dict[str, Any] = answer.json()
        return data

    def press(self) -> requests.Response:
        """ "Open your control panel", with the form of a freshly loaded page."""
        html = self.page()
        marker = 'name="form_token" value="'
        start = html.index(marker) + len(marker)
        form = {"form_token": html[start : html.index('"', start)]}
        return self.http.post(
            f"{self.shop.receiver_url}{self.path}/open",
            data=form,
            headers={"Sec-Fetch-Site": "same-origin"},
            allow_redirects=False,
            timeout=30,
        )


def minted(shop: SandboxStack) -> float:
    """ComputeStacks sign-in tokens asked for so far (user_sso calls), from /metrics."""
    text = requests.get(f"{shop.receiver_url}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "csonboard_computestacks_request_duration_seconds_count"
        and sample.labels.get("endpoint") == SSO
    )


def open_invoice_page(shop: SandboxStack, onboarding: Onboarding) -> str:
    """The hosted page of the subscription's open invoice, as Stripe has it."""
    [invoice] = shop.stripe.v1.invoices.list(
        {"subscription": onboarding.subscription_id or "", "status": "open"}
    ).data
    assert invoice.hosted_invoice_url
    return invoice.hosted_invoice_url


def refused_without_a_sign_in(shop: SandboxStack, buyer: Buyer, status: int) -> str:
    before = minted(shop)
    answer = buyer.press()
    assert answer.status_code == status, answer.text
    assert "Location" not in answer.headers
    assert "token=" not in answer.text
    assert minted(shop) == before
    return answer.text


def in_order(listed: list[Any], *wanted: Any) -> bool:
    """Whether ``wanted`` appear in ``listed`` in this order (others may come between)."""
    rest = iter(listed)
    return all(item in rest for item in wanted)


def show(shop: SandboxStack, onboarding: Onboarding, *json_flag: str) -> str:
    result = run(cli_env(shop.settings), "onboardings", "show", onboarding.session_id, *json_flag)
    assert result.exit_code == 0, result.output
    return result.stdout


# -- stopped for non-payment, then paid -------------------------------------------------------


def test_an_unpaid_purchase_says_paused_links_the_invoice_and_signs_nobody_in_until_paid(
    shop: SandboxStack, browser: Any
) -> None:
    onboarding = buy(shop)
    buyer = Buyer.of(shop, onboarding)
    assert buyer.json()["sign_in"] == "open"

    # A renewal fails (past due, within the grace period: still in service) ...
    stripe_does(shop, onboarding, "renew", paid=False)
    assert buyer.json()["state"] == "ready"
    # ... and Stripe gives up retrying: the purchase is stopped at once.
    stripe_does(shop, onboarding, "status", status="unpaid")
    invoice_page = open_invoice_page(shop, onboarding)
    assert invoice_page.startswith("https://")

    data = buyer.json()
    assert data["state"] == "stopped"
    assert data["headline"] == "Your service is paused"
    assert "did not go through after several tries" in data["message"]
    assert "Pay the open invoice" in data["message"]
    assert data["pay_url"] == invoice_page
    assert data["sign_in"] == "not_in_service"
    assert data["refresh_seconds"] == 60  # looks again, slowly, so a payment shows
    assert [s["words"] for s in data["stages"]] == ["Done"] * 4

    browser.get(f"{shop.receiver_url}{buyer.path}")
    browser.execute_script("window.notReloaded = true;")
    assert page_text(browser, "#headline") == "Your service is paused"
    assert "so we have stopped your service" in page_text(browser, "#message")
    assert is_shown(browser, "#pay")
    link = browser.find_element("css selector", "#pay-link")
    assert link.text == "Pay the open invoice"
    assert link.get_attribute("href") == invoice_page
    assert not is_shown(browser, "#open-panel")
    assert not is_shown(browser, "#sign-in-note")
    assert is_shown(browser, "#refresh")

    text = refused_without_a_sign_in(shop, buyer, 409)
    assert "Your service is paused" in text

    # The operator's view of the same purchase.
    shown = show(shop, onboarding)
    assert "service:          stopped (unpaid) since " in shown
    assert "services csonboard holds stopped:" in shown
    settled = json.loads(show(shop, onboarding, "--json"))
    assert settled["service"]["state"] == "stopped"
    assert settled["service"]["cause"] == "unpaid"
    [held] = settled["stopped_services"]
    assert held["status"] == "stopped"
    listed = [(a["action"], a["status"]) for a in settled["lifecycle"]]
    assert in_order(listed, ("stop", "done"), ("suspend", "done"))
    assert ("stop", "cancelled") in listed  # the grace period's stop, overtaken by unpaid

    # The buyer pays the open invoice: the service starts, the button is back,
    # on the page left open (its script looked again; nothing reloaded it).
    stripe_does(shop, onboarding, "pay")
    data = buyer.json()
    assert (data["state"], data["sign_in"], data["pay_url"]) == ("ready", "open", None)
    eventually(lambda: page_text(browser, "#headline") == "Your service is ready")
    assert browser.execute_script("return window.notReloaded === true;")
    assert is_shown(browser, "#open-panel")
    assert not is_shown(browser, "#pay")
    assert not is_shown(browser, "#refresh")  # nothing more will change
    before = minted(shop)
    assert buyer.press().status_code == 303
    assert minted(shop) == before + 1

    after = json.loads(show(shop, onboarding, "--json"))
    assert after["service"]["state"] == "in_service"
    assert after["stopped_services"] == []
    listed = [(a["action"], a["status"], a["subscription_id"]) for a in after["lifecycle"]]
    sub = onboarding.subscription_id
    assert in_order(
        listed,
        ("stop", "done", sub),
        ("suspend", "done", None),
        ("start", "done", sub),
        ("unsuspend", "done", None),
    )
    assert not any(status == "scheduled" for _, status, _ in listed)
    text_view = show(shop, onboarding)
    assert f"lifecycle ({sub} and the user of {onboarding.customer_id}):" in text_view
    assert "start       done           purchase  paid again: started services" in text_view
    assert "suspend     done           user      no purchase in service" in text_view
    assert "service:          in service" in text_view
    contract = shop.http.get(f"{shop.stripe_url}/_sandbox/contract", timeout=30).json()
    assert contract["violations"] == []
    assert contract["checked"].get("invoice", 0) > 0


def test_without_stripe_the_page_still_says_what_to_do(shop: SandboxStack, browser: Any) -> None:
    onboarding = buy(shop)
    stripe_does(shop, onboarding, "renew", paid=False)
    stripe_does(shop, onboarding, "status", status="unpaid")
    buyer = Buyer.of(shop, onboarding)
    assert buyer.json()["pay_url"]
    # Stripe answers 500 to every invoice read from now on.
    shop.sandbox("stripe", "faults", {"path": "/v1/invoices", "status": 500, "count": 100})

    data = buyer.json()

    assert data["state"] == "stopped"
    assert data["pay_url"] is None
    assert f"To pay and start it again, write to {SUPPORT}." in data["message"]
    page = buyer.page()
    assert 'id="pay" class="pay" hidden' in page
    assert "Pay the open invoice" not in data["message"]

    # Stripe answers again: the page left open shows the link on its next look.
    browser.get(f"{shop.receiver_url}{buyer.path}")
    assert not is_shown(browser, "#pay")
    assert SUPPORT in page_text(browser, "#message")
    shop.http.delete(f"{shop.stripe_url}/_sandbox/faults", timeout=30).raise_for_status()
    eventually(lambda: is_shown(browser, "#pay"), what="the pay link")
    link = browser.find_element("css selector", "#pay-link")
    assert link.get_attribute("href") == open_invoice_page(shop, onboarding)
    assert "Pay the open invoice and it starts again" in page_text(browser, "#message")


def test_a_paused_subscription_pauses_the_page_until_it_is_resumed(shop: SandboxStack) -> None:
    onboarding = buy(shop)
    buyer = Buyer.of(shop, onboarding)

    stripe_does(shop, onboarding, "pause")
    data = buyer.json()
    assert (data["state"], data["headline"]) == ("stopped", "Your service is paused")
    assert "Your subscription is paused" in data["message"]
    assert data["pay_url"] is None  # nothing is owed
    refused_without_a_sign_in(shop, buyer, 409)

    stripe_does(shop, onboarding, "resume")
    assert buyer.json()["sign_in"] == "open"


# -- cancelled, then terminated ---------------------------------------------------------------


def test_a_cancelled_purchase_is_kept_for_a_while_then_says_it_has_ended(tmp_path: Path) -> None:
    with stack_for(tmp_path, CSONBOARD_LIFECYCLE_RETENTION_DAYS=str(2 * SECOND)) as shop:
        onboarding = buy(shop)
        buyer = Buyer.of(shop, onboarding)

        shop.stripe.v1.subscriptions.cancel(onboarding.subscription_id or "")
        settle(shop, onboarding)
        data = buyer.json()
        assert (data["state"], data["headline"]) == ("stopped", "Your service is paused")
        assert "Your subscription has ended" in data["message"]
        assert "Your projects are kept until " in data["message"]
        assert data["pay_url"] is None
        refused_without_a_sign_in(shop, buyer, 409)
        stopped = json.loads(show(shop, onboarding, "--json"))
        assert stopped["service"]["cause"] == "canceled"
        assert stopped["service"]["ends_at"] is not None
        assert (stopped["lifecycle"][-1]["action"], stopped["lifecycle"][-1]["status"]) == (
            "terminate",
            "scheduled",
        )

        time.sleep(2.2)
        settle(shop, onboarding)
        data = buyer.json()
        assert data["state"] == "terminated"
        assert data["headline"] == "Your service has ended"
        assert "the projects of this purchase were deleted on " in data["message"]
        assert data["sign_in"] == "not_in_service"
        assert data["refresh_seconds"] is None  # nothing more will change
        page = buyer.page()
        assert "Your service has ended" in page
        assert 'id="open-panel" class="panel" aria-labelledby="open-heading" hidden' in page
        refused_without_a_sign_in(shop, buyer, 409)
        ended = show(shop, onboarding)
        assert "service:          terminated (canceled) since " in ended
        assert "terminate   done           purchase" in ended


# -- who gets one-click sign-in ---------------------------------------------------------------


def test_a_repeat_guest_joined_to_an_earlier_account_signs_in_with_a_password(
    shop: SandboxStack, browser: Any
) -> None:
    first = buy(shop, STATIC_ONCE, mode="payment")
    # Checkout does not verify the email: whoever types it joins that account.
    second = buy(shop, STATIC_ONCE, mode="payment")
    assert second.cs_user_id == first.cs_user_id
    assert Buyer.of(shop, first).json()["sign_in"] == "open"

    buyer = Buyer.of(shop, second)
    data = buyer.json()

    assert (data["state"], data["sign_in"]) == ("ready", "password")
    text = refused_without_a_sign_in(shop, buyer, 403)
    assert "Please sign in with your password" in text
    assert "Forgot password" in text
    browser.get(f"{shop.receiver_url}{buyer.path}")
    assert page_text(browser, "#headline") == "Your service is ready"
    assert not is_shown(browser, "#open-panel")
    assert is_shown(browser, "#password-note")
    assert "email address and password" in page_text(browser, "#password-note")
    assert shop.cs_url in page_text(browser, "#password-note")


def test_an_adopted_account_signs_in_with_a_password(tmp_path: Path) -> None:
    with stack_for(tmp_path, CSONBOARD_ONBOARDING_ON_EMAIL_CONFLICT="adopt") as shop:
        existing = shop.cs_admin.create_user(
            NewUser(fname="Ada", lname="Byron", email="ada@example.com")
        )
        onboarding = buy(shop)
        assert onboarding.cs_user_id == existing.id
        buyer = Buyer.of(shop, onboarding)

        assert buyer.json()["sign_in"] == "password"
        text = refused_without_a_sign_in(shop, buyer, 403)
        assert "Please sign in with your password" in text


# -- the decisions, without I/O ---------------------------------------------------------------

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _facts(status: str, *, stop: bool, terminated: bool = False) -> SubscriptionFacts:
    return SubscriptionFacts(
        subscription_id="sub_1",
        customer_id="cus_1",
        stripe_status=status,
        price_ids=("price_1",),
        past_due_since=None,
        wants_suspension=stop,
        reason=f"because {status}",
        terminated_at=NOW if terminated else None,
        ours=True,
        last_event_at=NOW,
    )


def _held(minutes_ago: int) -> StoppedService:
    at = NOW - timedelta(minutes=minutes_ago)
    return StoppedService(7, "cus_1", "cs_test_x", 3, "stopped", "unpaid", at, at)


def _scheduled(action: str, days: int) -> LifecycleAction:
    due = NOW + timedelta(days=days)
    return LifecycleAction(1, "cus_1", "sub_1", 2, action, "scheduled", "later", due, NOW, None)


@pytest.mark.parametrize(
    ("facts", "held", "scheduled", "expected"),
    [
        (None, [], [], ("in_service", None, None, None)),
        (_facts("active", stop=False), [], [], ("in_service", None, None, None)),
        (
            _facts("past_due", stop=False),
            [],
            [_scheduled("stop", 2)],
            ("in_service", None, None, NOW + timedelta(days=2)),
        ),
        (
            _facts("unpaid", stop=True),
            [_held(5), _held(9)],
            [],
            ("stopped", "unpaid", NOW - timedelta(minutes=9), None),
        ),
        (
            _facts("canceled", stop=True),
            [_held(1)],
            [_scheduled("terminate", 30)],
            ("stopped", "canceled", NOW - timedelta(minutes=1), NOW + timedelta(days=30)),
        ),
        # A stop under way: services held stopped before the decision is saved.
        (
            _facts("past_due", stop=False),
            [_held(0)],
            [],
            ("stopped", "past_due", NOW, None),
        ),
        (
            _facts("canceled", stop=True, terminated=True),
            [],
            [],
            ("terminated", "canceled", NOW, None),
        ),
        (
            SubscriptionFacts("sub_1", "cus_1", "unpaid", None, None, True, "x", None, False, NOW),
            [],
            [],
            ("in_service", None, None, None),
        ),
    ],
    ids=[
        "one-time",
        "active",
        "in-grace",
        "unpaid",
        "cancelled",
        "stopping",
        "terminated",
        "not-followed",
    ],
)
def test_a_purchases_service_state_follows_its_subscription_and_its_stopped_services(
    facts: SubscriptionFacts | None,
    held: list[StoppedService],
    scheduled: list[LifecycleAction],
    expected: tuple[Any, ...],
) -> None:
    state = service_state("sub_1" if facts else None, facts, held, scheduled)

    assert (state.state, state.cause, state.since, state.ends_at) == expected
    assert state.stopped_services == tuple(held)


def _steps(customer: dict[str, Any], user: dict[str, Any]) -> list[StepRecord]:
    return [
        StepRecord("ensure_stripe_customer", "done", customer, 1, None, NOW, NOW),
        StepRecord("ensure_cs_user", "done", user, 1, None, NOW, NOW),
    ]


@pytest.mark.parametrize(
    ("customer", "user", "allowed"),
    [
        ({"how": "created"}, {"how": "created"}, True),
        ({"how": "session"}, {"how": "created"}, True),
        ({"how": "found"}, {"how": "created"}, True),
        ({"how": "session"}, {"how": "found"}, False),
        ({"how": "created"}, {"how": "adopted"}, False),
        ({"how": "repeat_buyer", "earlier_session": "cs_a"}, {"how": "found"}, False),
        ({"how": "repeat_buyer"}, {"how": "created"}, False),
        ({"how": "recorded", "earlier_session": "cs_a"}, {"how": "created"}, False),
    ],
)
def test_one_click_sign_in_only_for_an_account_this_purchase_created(
    customer: dict[str, Any], user: dict[str, Any], allowed: bool
) -> None:
    assert one_click_allowed(_steps(customer, user)) is allowed
    assert one_click_allowed(_steps(customer, user)[:1]) is False


def test_a_cancelled_purchase_is_never_offered_an_invoice_link() -> None:
    onboarding = Onboarding(
        "cs_test_x",
        "done",
        False,
        None,
        "cus_1",
        "sub_1",
        2,
        None,
        None,
        None,
        None,
        None,
        None,
        "test",
        NOW,
        NOW,
        NOW,
    )
    steps = [
        StepRecord("await_project", "done", {}, 1, None, NOW, NOW),
        *_steps({"how": "created"}, {"how": "created"}),
    ]
    cancelled = service_state("sub_1", _facts("canceled", stop=True), [_held(1)], [])
    unpaid = service_state("sub_1", _facts("unpaid", stop=True), [_held(1)], [])
    url = "https://invoice.stripe.com/i/acct_x/test_y"

    ended = describe(
        onboarding, steps, support="ask", refresh_seconds=5, service=cancelled, pay_url=url
    )
    owed = describe(
        onboarding, steps, support="ask", refresh_seconds=5, service=unpaid, pay_url=url
    )

    assert (ended.state, ended.pay_url) == ("stopped", None)
    assert (owed.state, owed.pay_url) == ("stopped", url)
    assert ended.one_click and owed.one_click  # about the account; in service decides too
    assert "one_click" not in owed.as_json()
