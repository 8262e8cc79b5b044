"""``csonboard stripe setup`` and ``csonboard stripe doctor`` against the Stripe
stand-in over real HTTP: setup makes exactly one endpoint with csonboard's event
types and pinned API version and prints its secret once, corrects one that is
wrong, rolls over one with another version; doctor finds each kind of problem.
The last test goes end to end: setup's secret in a real receiver, a purchase
onboarded through the endpoint setup made."""

from __future__ import annotations

import http
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from conftest import Sandboxes, base_env
from csonboard.ledger import Ledger
from csonboard.operations.stripe_setup import apply_setup, plan_setup
from csonboard.routes import HANDLED
from csonboard.sandbox.server import start_in_thread
from csonboard.sandbox.stripe import create_app, sandbox_account
from csonboard.settings import load_settings
from csonboard.stripe_api import StripeGateway
from operator_support import run
from processes import csonboard, free_port, running, wait_until_ready

KEY = "sk_test_webhook_setup"
PINNED = stripe.api_version
OLD_VERSION = "2024-06-20"
PAST = 120.0
"""The stand-in's clock runs this far behind, so its events are old enough for
doctor (which leaves out the last minute's: they may still be on their way)."""


@dataclass
class StandIn:
    url: str
    key: str
    data_dir: Path
    http: requests.Session

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "CSONBOARD_STRIPE_API_KEY": self.key,
            "CSONBOARD_STRIPE_API_BASE": self.url,
            "CSONBOARD_DATA_DIR": str(self.data_dir),
            **extra,
        }

    def api(self, method: str, path: str, **data: Any) -> Any:
        response = self.http.request(
            method,
            f"{self.url}/v1/{path}",
            data=data,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )
        assert response.ok, response.text
        return response.json()

    def endpoint(self, url: str, events: Any = HANDLED, version: str | None = PINNED) -> str:
        """An endpoint made by hand (as in the Dashboard); returns its id."""
        fields: dict[str, Any] = {"url": url, "enabled_events[]": list(events)}
        if version is not None:
            fields["api_version"] = version
        return str(self.api("POST", "webhook_endpoints", **fields)["id"])

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.url}/_sandbox/state", timeout=10).json()
        return state

    def endpoints(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.state()["objects"].get("webhook_endpoint", [])
        return found

    def buy(self) -> str:
        """A paid subscription Checkout; returns the session id once Stripe has
        tried every delivery it is going to."""
        client = stripe.StripeClient(self.key, base_addresses={"api": self.url})
        session = client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": "price_sandbox_static_monthly", "quantity": 1}],
                "customer_email": "ada@example.com",
                "success_url": "https://shop.example/thanks",
            }
        )
        self.control(f"checkout/sessions/{session.id}/complete", {"name": "Ada Lovelace"})
        assert self.control("deliveries/wait", {"timeout": 20})["idle"]
        return str(session.id)

    def control(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(f"{self.url}/_sandbox/{path}", json=body, timeout=30)
        assert response.ok, response.text
        return response.json()


@contextmanager
def serve_standin(key: str, data_dir: Path) -> Iterator[StandIn]:
    app = create_app(api_key=key, clock=lambda: time.time() - PAST, retry_schedule=(0.1,))
    server = start_in_thread(app)
    try:
        with requests.Session() as session:
            yield StandIn(server.url, key, data_dir, session)
    finally:
        sandbox_account(app).stop()
        server.stop()


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    with serve_standin(KEY, tmp_path / "data") as served:
        yield served


class Sink:
    """A webhook receiver that keeps what it is sent and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[bytes, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.received.append((body, environ.get("HTTP_STRIPE_SIGNATURE", "")))
        start_response(f"{self.status} {http.HTTPStatus(self.status).phrase}", [])
        return [b"{}"]


@contextmanager
def sink(status: int = 200) -> Iterator[tuple[str, Sink]]:
    """A receiver at ``URL/webhooks/stripe``."""
    app = Sink(status)
    server = start_in_thread(app)
    try:
        yield f"{server.url}/webhooks/stripe", app
    finally:
        server.stop()


URL = "http://127.0.0.1:9/webhooks/stripe"  # nothing listens there


def secrets_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if "whsec_" in line]


# -- setup -------------------------------------------------------------------------------


def test_setup_creates_one_endpoint_and_prints_the_secret_that_signs_its_events(
    standin: StandIn,
) -> None:
    with sink() as (url, receiver):
        made = run(standin.env(), "stripe", "setup", "--url", url)

        assert made.exit_code == 0, made.output
        [endpoint] = standin.endpoints()
        assert endpoint["url"] == url
        assert endpoint["enabled_events"] == list(HANDLED)
        assert endpoint["api_version"] == PINNED
        assert endpoint["status"] == "enabled"
        assert endpoint["metadata"] == {"csonboard": "webhook"}
        assert "csonboard" in endpoint["description"]
        [secret] = secrets_in(made.stdout)  # alone on its line, once
        assert secret.startswith("whsec_")
        assert "whsec_" not in made.stderr
        assert "shown this once" in made.stdout
        assert "CSONBOARD_STRIPE_WEBHOOK_SECRETS" in made.stdout

        standin.buy()

    assert receiver.received  # and every one is signed with the printed secret
    for body, signature in receiver.received:
        stripe.WebhookSignature.verify_header(body.decode(), signature, secret, tolerance=600)
    types = {json.loads(body)["type"] for body, _ in receiver.received}
    assert "checkout.session.completed" in types and types <= set(HANDLED)

    again = run(standin.env(), "stripe", "setup", "--url", url)

    assert again.exit_code == 0, again.output
    assert [e["id"] for e in standin.endpoints()] == [endpoint["id"]]
    assert "is up to date" in again.stdout
    assert "whsec_" not in again.output
    assert "Stripe shows it only when an endpoint is created" in again.stdout
    assert "Roll secret" in again.stdout


def test_two_setups_at_once_make_one_endpoint_and_get_the_same_secret(standin: StandIn) -> None:
    gateways = [StripeGateway(KEY, api_base=standin.url) for _ in range(2)]
    plans = [plan_setup(gateway, URL, livemode=False) for gateway in gateways]
    assert [plan.action for plan in plans] == ["create", "create"]  # both saw none
    barrier = threading.Barrier(2)

    def apply(index: int) -> Any:
        barrier.wait()
        return apply_setup(gateways[index], plans[index])

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(apply, range(2))

    [endpoint] = standin.endpoints()
    assert first.endpoint.id == second.endpoint.id == endpoint["id"]
    assert first.secret == second.secret
    assert first.secret is not None and first.secret.startswith("whsec_")


def test_an_endpoint_deleted_after_setup_is_made_anew(standin: StandIn) -> None:
    """Stripe replays a creation under the same key even after the endpoint is
    gone: setup must notice and make a real one."""
    first = run(standin.env(), "stripe", "setup", "--url", URL)
    [gone] = standin.endpoints()
    standin.api("DELETE", f"webhook_endpoints/{gone['id']}")

    second = run(standin.env(), "stripe", "setup", "--url", URL)

    assert second.exit_code == 0, second.output
    [endpoint] = standin.endpoints()
    assert endpoint["id"] != gone["id"]
    assert endpoint["id"] in second.stdout
    assert secrets_in(second.stdout) != secrets_in(first.stdout)
    assert len(secrets_in(second.stdout)) == 1


def test_wrong_event_types_are_corrected_and_no_secret_is_shown(standin: StandIn) -> None:
    endpoint_id = standin.endpoint(
        URL, ["checkout.session.completed", "customer.created", "invoice.paid"]
    )

    fixed = run(standin.env(), "stripe", "setup", "--url", URL)

    assert fixed.exit_code == 0, fixed.output
    [endpoint] = standin.endpoints()
    assert endpoint["id"] == endpoint_id
    assert endpoint["enabled_events"] == list(HANDLED)
    added = [line for line in fixed.stdout.splitlines() if "add event types" in line]
    assert added == [
        "  will add event types: "
        + ", ".join(t for t in HANDLED if t not in ("checkout.session.completed", "invoice.paid"))
    ]
    assert "  will remove event types: customer.created" in fixed.stdout
    assert f"webhook endpoint {endpoint_id} updated" in fixed.stdout
    assert "whsec_" not in fixed.output


def test_a_disabled_endpoint_is_enabled(standin: StandIn) -> None:
    endpoint_id = standin.endpoint(URL)
    standin.api("POST", f"webhook_endpoints/{endpoint_id}", disabled="true")

    fixed = run(standin.env(), "stripe", "setup", "--url", URL)

    assert fixed.exit_code == 0, fixed.output
    [endpoint] = standin.endpoints()
    assert (endpoint["id"], endpoint["status"]) == (endpoint_id, "enabled")
    assert "will enable it" in fixed.stdout
    assert "add event types" not in fixed.stdout


def test_an_endpoint_with_another_version_is_rolled_over_to_a_new_one(standin: StandIn) -> None:
    old_id = standin.endpoint(URL, version=OLD_VERSION)

    rolled = run(standin.env(), "stripe", "setup", "--url", URL)

    assert rolled.exit_code == 0, rolled.output
    endpoints = {e["id"]: e for e in standin.endpoints()}
    assert len(endpoints) == 2
    old = endpoints.pop(old_id)
    [new] = endpoints.values()
    assert (old["api_version"], old["status"]) == (OLD_VERSION, "enabled")  # left alone
    assert (new["api_version"], new["url"], new["status"]) == (PINNED, URL, "enabled")
    assert new["enabled_events"] == list(HANDLED)
    assert "Stripe cannot change an endpoint's API version" in rolled.stdout
    assert len(secrets_in(rolled.stdout)) == 1
    steps = rolled.stdout.split("Roll over without losing an event:")[1]
    assert "next to the old secret, comma-separated" in steps
    assert "restart the receivers" in steps
    assert f"disable or delete the old endpoint {old_id}" in steps
    assert "arrives twice" in steps

    standin.api("POST", f"webhook_endpoints/{new['id']}", **{"enabled_events[]": ["invoice.paid"]})
    third = run(standin.env(), "stripe", "setup", "--url", URL)

    assert third.exit_code == 0, third.output
    after = {e["id"]: e for e in standin.endpoints()}
    assert set(after) == {old_id, new["id"]}
    assert after[new["id"]]["enabled_events"] == list(HANDLED)  # the new one is kept right
    assert after[old_id] == old
    assert f"webhook endpoint {new['id']} updated" in third.stdout
    assert f"note: webhook endpoint {old_id}" in third.stdout
    assert "whsec_" not in third.output

    overlap = run(standin.env(), "stripe", "doctor")
    assert overlap.exit_code == 0, overlap.output  # the overlap is a warning, not a problem
    assert f"warning  {old_id}: still sends" in overlap.stdout
    standin.api("POST", f"webhook_endpoints/{old_id}", disabled="true")
    done = run(standin.env(), "stripe", "doctor")
    assert done.exit_code == 0, done.output
    assert f"ok       {old_id}: disabled; {new['id']} sends to" in done.stdout
    assert "warning" not in done.stdout


def test_a_dry_run_only_reads(standin: StandIn) -> None:
    before = standin.state()
    create = run(standin.env(), "stripe", "setup", "--url", URL, "--dry-run")
    assert create.exit_code == 0, create.output
    assert f"would create one ({len(HANDLED)} event types" in create.stdout
    assert create.stdout.rstrip().endswith("dry run: nothing was changed")
    assert standin.state() == before

    standin.endpoint(URL, ["checkout.session.completed"])
    standin.endpoint("https://old.example/webhooks/stripe", version=OLD_VERSION)
    before = standin.state()
    update = run(standin.env(), "stripe", "setup", "--url", URL, "--dry-run")
    roll = run(
        standin.env(),
        "stripe",
        "setup",
        "--url",
        "https://old.example/webhooks/stripe",
        "--dry-run",
    )

    assert (update.exit_code, roll.exit_code) == (0, 0), update.output + roll.output
    assert "  would add event types: checkout.session.async_payment_succeeded" in update.stdout
    assert "would create a new endpoint" in roll.stdout
    assert "whsec_" not in update.output + roll.output
    assert standin.state() == before


def test_setup_refuses_a_url_stripe_would_refuse(standin: StandIn) -> None:
    live = standin.env(CSONBOARD_STRIPE_API_KEY="sk_live_not_a_real_key")

    http_in_live = run(live, "stripe", "setup", "--url", "http://shop.example/webhooks/stripe")
    not_http = run(standin.env(), "stripe", "setup", "--url", "ftp://shop.example/webhooks/stripe")
    no_key = run({"CSONBOARD_STRIPE_MODE": "test"}, "stripe", "setup", "--url", URL)

    assert http_in_live.exit_code == 2
    assert "live-mode endpoints must use https" in http_in_live.stderr
    assert not_http.exit_code == 2
    assert "is not an http(s) URL" in not_http.stderr
    assert no_key.exit_code == 2
    assert "configuration error: stripe.api_key: required" in no_key.stderr
    assert standin.endpoints() == []


def test_setup_warns_about_a_path_that_is_not_the_receivers(standin: StandIn) -> None:
    made = run(standin.env(), "stripe", "setup", "--url", "http://127.0.0.1:9/hooks")

    assert made.exit_code == 0, made.output
    assert "warning: the path of http://127.0.0.1:9/hooks is '/hooks'" in made.stderr
    assert len(standin.endpoints()) == 1


# -- doctor ------------------------------------------------------------------------------


def problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("problem")]


def test_doctor_passes_a_good_setup_and_says_so_in_json(standin: StandIn) -> None:
    assert run(standin.env(), "stripe", "setup", "--url", URL).exit_code == 0

    checked = run(standin.env(), "stripe", "doctor")
    as_json = run(standin.env(), "stripe", "doctor", "--json")

    assert checked.exit_code == 0, checked.output
    assert problems(checked.stdout) == []
    assert "ok       key: a test-mode secret key (sk_test_...)" in checked.stdout
    assert f"is sent exactly the {len(HANDLED)} event types csonboard handles" in checked.stdout
    assert f"API version {PINNED}" in checked.stdout
    assert "no problems (1 endpoint(s), test mode)" in checked.stdout
    assert KEY not in checked.output
    assert as_json.exit_code == 0
    report = json.loads(as_json.stdout)
    assert (report["mode"], report["problems"], report["warnings"]) == ("test", 0, 0)
    [endpoint] = report["endpoints"]
    assert (endpoint["url"], endpoint["api_version"]) == (URL, PINNED)
    assert {f["level"] for f in report["findings"]} == {"ok"}
    assert {"key", endpoint["id"], "deliveries"} == {f["subject"] for f in report["findings"]}


@pytest.mark.parametrize(
    ("events", "version", "disabled", "expected"),
    [
        (HANDLED, PINNED, True, "disabled (http://127.0.0.1:9/webhooks/stripe): Stripe sends"),
        (
            [t for t in HANDLED if t not in ("invoice.paid", "invoice.payment_failed")],
            PINNED,
            False,
            "is not sent 2 event type(s) csonboard handles: invoice.paid, invoice.payment_failed",
        ),
        (["*"], PINNED, False, "is sent every event type (*): each is delivered and stored"),
        (HANDLED, OLD_VERSION, False, f"API version {OLD_VERSION}, not {PINNED}"),
        (HANDLED, None, False, "API version null: the account's default"),
    ],
    ids=["disabled", "missing-types", "every-type", "another-version", "account-default"],
)
def test_doctor_finds_each_problem_with_an_endpoint(
    standin: StandIn, events: Any, version: str | None, disabled: bool, expected: str
) -> None:
    endpoint_id = standin.endpoint(URL, events, version)
    if disabled:
        standin.api("POST", f"webhook_endpoints/{endpoint_id}", disabled="true")

    checked = run(standin.env(), "stripe", "doctor")
    as_json = run(standin.env(), "stripe", "doctor", "--json")

    assert checked.exit_code == 1, checked.output
    [problem] = problems(checked.stdout)
    assert problem.startswith(f"problem  {endpoint_id}: {expected}")
    assert "1 problem(s) with Stripe's webhooks (test mode)" in checked.stderr
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["problems"] == 1


def test_doctor_without_an_endpoint_for_csonboard_says_to_run_setup(standin: StandIn) -> None:
    standin.endpoint("https://crm.example/hook", ["customer.created"])  # not csonboard's
    standin.endpoint("https://other.example/webhooks/stripe")

    anywhere = run(standin.env(), "stripe", "doctor")
    at_url = run(standin.env(), "stripe", "doctor", "--url", URL)
    standin.api("DELETE", f"webhook_endpoints/{standin.endpoints()[0]['id']}")
    nowhere = run(standin.env(), "stripe", "doctor")

    assert anywhere.exit_code == 0, anywhere.output  # the second one is csonboard's
    assert "crm.example" not in anywhere.stdout
    assert at_url.exit_code == 1
    assert problems(at_url.stdout) == [
        f"problem  endpoints: no endpoint sends csonboard's events to {URL}; "
        f"run csonboard stripe setup --url {URL}"
    ]
    assert nowhere.exit_code == 1
    [problem] = problems(nowhere.stdout)
    assert "no endpoint sends csonboard's events; run csonboard stripe setup --url" in problem


def test_doctor_warns_about_extra_event_types_and_another_path(standin: StandIn) -> None:
    standin.endpoint("http://127.0.0.1:9/hooks", [*HANDLED, "customer.created", "payout.paid"])

    checked = run(standin.env(), "stripe", "doctor")

    assert checked.exit_code == 0, checked.output
    warnings = [line for line in checked.stdout.splitlines() if line.startswith("warning")]
    assert len(warnings) == 2
    assert "is also sent 2 type(s) csonboard ignores" in warnings[1]
    assert "customer.created, payout.paid" in warnings[1]
    assert "the path is '/hooks', not '/webhooks/stripe'" in warnings[0]


def test_doctor_reports_events_an_endpoint_has_not_acknowledged(standin: StandIn) -> None:
    with sink(500) as (url, receiver):
        assert run(standin.env(), "stripe", "setup", "--url", url).exit_code == 0
        standin.buy()
        assert receiver.received  # tried, and refused with a 500

        checked = run(standin.env(), "stripe", "doctor")

    undelivered = standin.api("GET", "events?delivery_success=false&limit=100")["data"]
    ours = [e for e in undelivered if e["type"] in HANDLED]
    oldest = min(ours, key=lambda e: (e["created"], e["id"]))
    assert checked.exit_code == 1, checked.output
    [problem] = problems(checked.stdout)
    assert problem.startswith(
        f"problem  deliveries: {len(ours)} event(s) of csonboard's types from the last 3 days "
        f"not acknowledged by some endpoint; oldest {oldest['id']} {oldest['type']} at "
    )
    assert "Stripe retries for 3 days; `csonboard reconcile` recovers purchases" in problem


def test_doctor_notes_a_restricted_key(tmp_path: Path) -> None:
    with serve_standin("rk_test_webhook_setup", tmp_path) as restricted:
        assert run(restricted.env(), "stripe", "setup", "--url", URL).exit_code == 0

        checked = run(restricted.env(), "stripe", "doctor")

    assert checked.exit_code == 0, checked.output
    assert "a test-mode restricted key (rk_test_...)" in checked.stdout
    assert "key: restricted: each command needs its permissions" in checked.stdout


def test_doctor_needs_a_key_stripe_accepts(standin: StandIn) -> None:
    no_key = run({"CSONBOARD_STRIPE_MODE": "test"}, "stripe", "doctor")
    refused = run(standin.env(CSONBOARD_STRIPE_API_KEY="sk_test_wrong"), "stripe", "doctor")

    assert no_key.exit_code == 2
    assert "configuration error: stripe.api_key: required" in no_key.stderr
    assert refused.exit_code == 2
    assert "configuration error: stripe.api_key: Stripe refused the key" in refused.stderr
    assert "Traceback" not in no_key.output + refused.output


# -- end to end --------------------------------------------------------------------------


def test_setup_then_a_purchase_is_onboarded_through_the_endpoint_it_made(
    tmp_path: Path, sandboxes: Sandboxes
) -> None:
    requests.post(
        f"{sandboxes.stripe_url}/_sandbox/webhooks", json={"url": None, "secret": None}, timeout=10
    ).raise_for_status()  # only the endpoint setup makes delivers
    env = sandboxes.env(**base_env(tmp_path))
    receiver = f"http://127.0.0.1:{(port := free_port())}"

    made = csonboard(
        "--log-level", "DEBUG", "stripe", "setup", "--url", f"{receiver}/webhooks/stripe", env=env
    )

    assert made.returncode == 0, made.stderr
    [secret] = secrets_in(made.stdout)
    assert "whsec_" not in made.stderr
    env["CSONBOARD_STRIPE_WEBHOOK_SECRETS"] = secret
    log = tmp_path / "serve.log"
    with running("serve", "--port", str(port), env=env, log=log):
        wait_until_ready(receiver)
        buyer = stripe.StripeClient(
            sandboxes.stripe_key, base_addresses={"api": sandboxes.stripe_url}
        )
        session = buyer.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": "price_sandbox_static_monthly", "quantity": 1}],
                "customer_email": "grace@example.com",
                "success_url": "https://shop.example/thanks",
            }
        )
        requests.post(
            f"{sandboxes.stripe_url}/_sandbox/checkout/sessions/{session.id}/complete",
            json={"name": "Grace Hopper"},
            timeout=10,
        ).raise_for_status()
        ledger = Ledger.open(load_settings(None, env).ledger_url)
        try:
            status = None
            deadline = time.monotonic() + 40
            while status not in ("done", "dead") and time.monotonic() < deadline:
                time.sleep(0.2)
                onboarding = ledger.onboardings.get(session.id)
                status = onboarding.status if onboarding else None
        finally:
            ledger.close()
        checked = run(env, "stripe", "doctor", "--url", f"{receiver}/webhooks/stripe")

    assert status == "done"
    assert checked.exit_code == 0, checked.output
    assert "whsec_" not in log.read_text()
    assert "whsec_" not in checked.output
