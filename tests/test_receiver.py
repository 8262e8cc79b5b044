"""POST /webhooks/stripe: verify, store exactly once, ring the queue, answer."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import run_wsgi_app

from conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET, Stack, make_settings
from csonboard.errors import CsonboardError, LedgerUnavailable
from csonboard.ledger import IncomingEvent, Ledger
from csonboard.queue import Doorbell
from csonboard.settings import Settings
from csonboard.webhook import parse_event
from csonboard_webhooks import create_app
from csonboard_webhooks.intake import Intake
from stripe_events import event_body, signed_headers

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())


class Endpoint:
    """A receiver app on a real ledger and queue, with the clock fixed at NOW."""

    def __init__(self, stack: Stack, settings: Settings | None = None) -> None:
        self.ledger: Ledger = stack.ledger()
        self.doorbell: Doorbell = stack.doorbell()
        self.app: Flask = create_app(
            settings or stack.settings,
            ledger=self.ledger,
            doorbell=self.doorbell,
            clock=lambda: NOW,
        )
        self.client: FlaskClient = self.app.test_client()

    def post(self, body: str | bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = self.client.post("/webhooks/stripe", data=body, headers=headers)
        return response.status_code, response.get_json(silent=True) or {}

    def stored(self) -> int:
        return sum(self.ledger.events.counts().values())

    def rung(self, expected: int) -> int:
        """Queue depth once it reaches ``expected`` (the queue is rung just after
        the answer), or after half a second if it does not."""
        deadline = time.monotonic() + 0.5
        while (depth := self.doorbell.depth()) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return depth


@pytest.fixture
def endpoint(stack: Stack) -> Endpoint:
    return Endpoint(stack)


def test_signed_event_is_stored_verbatim_and_rings_the_queue(endpoint: Endpoint) -> None:
    obj = {"id": "cs_test_a1", "object": "checkout.session", "customer": "cus_A1"}
    body = event_body(event_id="evt_a1", obj=obj, created=STAMP)
    headers = signed_headers(body, WEBHOOK_SECRET, STAMP)

    status, answer = endpoint.post(body, headers)

    assert (status, answer) == (200, {"status": "accepted", "event": "evt_a1"})
    record = endpoint.ledger.events.get("evt_a1")
    assert record is not None
    assert (record.type, record.status, record.source) == (
        "checkout.session.completed",
        "received",
        "webhook",
    )
    assert (record.object_id, record.customer_id) == ("cs_test_a1", "cus_A1")
    assert record.signature == headers["Stripe-Signature"]
    assert record.created == NOW
    assert endpoint.ledger.events.body("evt_a1") == body.encode()
    assert endpoint.rung(1) == 1


def test_a_signed_thin_notification_is_stored_verbatim_unversioned(endpoint: Endpoint) -> None:
    """An event destination's thin notification: stored under its own id and type,
    for the worker to complete from the API; its time is RFC 3339."""
    body = json.dumps(
        {
            "id": "evt_test_thin1",
            "object": "v2.core.event",
            "type": "v1.checkout.session.completed",
            "created": NOW.isoformat().replace("+00:00", ".123Z"),
            "livemode": False,
            "context": None,
            "reason": None,
            "related_object": {
                "id": "cs_test_a1",
                "type": "checkout.session",
                "url": "/v1/checkout/sessions/cs_test_a1",
            },
        }
    )

    status, answer = endpoint.post(body, signed_headers(body, WEBHOOK_SECRET, STAMP))

    assert (status, answer) == (200, {"status": "accepted", "event": "evt_test_thin1"})
    record = endpoint.ledger.events.get("evt_test_thin1")
    assert record is not None
    assert (record.type, record.object_id, record.api_version) == (
        "v1.checkout.session.completed",
        "cs_test_a1",
        None,
    )
    assert abs((record.created - NOW).total_seconds()) < 1
    assert endpoint.ledger.events.body("evt_test_thin1") == body.encode()
    assert endpoint.rung(1) == 1


def test_a_duplicate_delivery_answers_duplicate_and_adds_no_row_or_job(endpoint: Endpoint) -> None:
    body = event_body(event_id="evt_dup", created=STAMP)
    first = endpoint.post(body, signed_headers(body, WEBHOOK_SECRET, STAMP))
    # Stripe re-signs a retry with a new timestamp; the body is the same event.
    again = endpoint.post(body, signed_headers(body, WEBHOOK_SECRET, STAMP + 60))

    assert first == (200, {"status": "accepted", "event": "evt_dup"})
    assert again == (200, {"status": "duplicate", "event": "evt_dup"})
    assert endpoint.stored() == 1
    assert endpoint.rung(1) == 1


def test_any_configured_secret_verifies_during_rotation(stack: Stack, tmp_path: Any) -> None:
    rotated = make_settings(
        tmp_path,
        **{
            **stack.env,
            "CSONBOARD_STRIPE_WEBHOOK_SECRETS": f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}",
        },
    )
    endpoint = Endpoint(stack, rotated)
    body = event_body(event_id="evt_rot", created=STAMP)

    status, _ = endpoint.post(body, signed_headers(body, OLD_WEBHOOK_SECRET, STAMP))

    assert status == 200
    assert endpoint.ledger.events.get("evt_rot") is not None


def _signed(body: str, stamp: int = STAMP, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return signed_headers(body, secret, stamp)


GOOD = event_body(event_id="evt_good", created=STAMP)
Case = Callable[[], tuple[str | bytes, dict[str, str]]]
BAD_REQUESTS: list[tuple[str, Case, int, str]] = [
    (
        "no signature header",
        lambda: (GOOD, {"Content-Type": "application/json"}),
        400,
        "missing Stripe-Signature",
    ),
    (
        "garbage header",
        lambda: (GOOD, {"Content-Type": "application/json", "Stripe-Signature": "nonsense"}),
        400,
        "Unable to extract timestamp",
    ),
    (
        "no v1 scheme",
        lambda: (
            GOOD,
            {"Content-Type": "application/json", "Stripe-Signature": f"t={STAMP},v0=abc"},
        ),
        400,
        "expected scheme v1",
    ),
    (
        "wrong secret",
        lambda: (GOOD, _signed(GOOD, secret="whsec_someone_else")),
        400,
        "No signatures found matching",
    ),
    (
        "body altered after signing",
        lambda: (GOOD.replace("evt_good", "evt_evil"), _signed(GOOD)),
        400,
        "No signatures found matching",
    ),
    (
        "a v1 signature that is not ASCII",  # the library's comparison would raise
        lambda: (
            GOOD,
            {"Content-Type": "application/json", "Stripe-Signature": f"t={STAMP},v1=\xe9\xe9"},
        ),
        400,
        "malformed Stripe-Signature header",
    ),
    ("stale timestamp", lambda: (GOOD, _signed(GOOD, STAMP - 301)), 400, "301 s old"),
    ("future timestamp", lambda: (GOOD, _signed(GOOD, STAMP + 400)), 400, "400 s in the future"),
    ("empty body", lambda: (b"", _signed("")), 400, "empty body"),
    ("invalid UTF-8", lambda: (b'{"id": "\xff\xfe"}', _signed("{}")), 400, "not valid UTF-8"),
    ("truncated JSON", lambda: (GOOD[:40], _signed(GOOD[:40])), 400, "not JSON"),
    ("not JSON", lambda: ("hello", _signed("hello")), 400, "not JSON"),
    ("a JSON array", lambda: ("[1, 2]", _signed("[1, 2]")), 400, "not a JSON object"),
    (
        "not an event",
        lambda: ('{"object": "customer"}', _signed('{"object": "customer"}')),
        400,
        "not a Stripe event",
    ),
    ("thin event without livemode", lambda: (THIN, _signed(THIN)), 400, "'livemode'"),
    (
        "thin event with a time that is not RFC 3339",
        lambda: (THIN_BAD_TIME, _signed(THIN_BAD_TIME)),
        400,
        "RFC 3339",
    ),
    (
        "live event on a test endpoint",
        lambda: (LIVE, _signed(LIVE)),
        400,
        "live-mode event sent to a test-mode endpoint",
    ),
    ("no event type", lambda: (NO_TYPE, _signed(NO_TYPE)), 400, "'type'"),
    ("created is not a time", lambda: (BAD_CREATED, _signed(BAD_CREATED)), 400, "'created'"),
    (
        "wrong content type",
        lambda: (GOOD, {**_signed(GOOD), "Content-Type": "text/plain"}),
        415,
        "application/json",
    ),
    (
        "form content type",
        lambda: ("a=b", {**_signed("a=b"), "Content-Type": "application/x-www-form-urlencoded"}),
        415,
        "application/json",
    ),
    ("over the size limit", lambda: (BIG, _signed(BIG)), 413, "limit is 1048576 bytes"),
]
THIN = json.dumps({"id": "evt_thin", "object": "v2.core.event", "type": "v1.billing.meter"})
THIN_BAD_TIME = json.dumps(
    {"id": "evt_t", "object": "v2.core.event", "type": "v1.x", "livemode": False, "created": 1}
)
LIVE = event_body(event_id="evt_live", livemode=True, created=STAMP)
NO_TYPE = json.dumps({"id": "evt_x", "object": "event", "created": STAMP, "livemode": False})
BAD_CREATED = event_body(event_id="evt_c", created=STAMP).replace(
    f'"created": {STAMP}', '"created": true'
)
BIG = event_body(event_id="evt_big", created=STAMP, padding="x" * (1024 * 1024))


@pytest.mark.parametrize(
    ("case", "status", "says"),
    [pytest.param(c, s, m, id=name) for name, c, s, m in BAD_REQUESTS],
)
def test_bad_requests_get_a_4xx_naming_the_problem_and_leave_the_ledger_alone(
    endpoint: Endpoint, case: Case, status: int, says: str
) -> None:
    body, headers = case()

    got, answer = endpoint.post(body, headers)

    assert got == status
    assert says in answer["error"]
    assert endpoint.stored() == 0
    assert endpoint.doorbell.depth() == 0


def test_unknown_routes_and_methods_answer_json(endpoint: Endpoint) -> None:
    response = endpoint.client.get("/webhooks/stripe")
    assert response.status_code == 405
    assert "error" in response.get_json()


# What an HTTP header value can carry on the wire: no control characters.
HEADER_CHARACTERS = st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.binary(max_size=2048),
    # What an HTTP header value can carry on the wire: no control characters.
    signature=st.one_of(
        st.text(HEADER_CHARACTERS, max_size=200),
        # Shaped like Stripe's, so the library's parser gets as far as comparing.
        st.builds(
            "t={},v1={}".format,
            st.integers(STAMP - 400, STAMP + 400),
            st.text(HEADER_CHARACTERS, max_size=80),
        ),
    ),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/html", ""]
    ),
)
def test_arbitrary_unsigned_input_never_gets_a_5xx_nor_reaches_the_ledger(
    endpoint: Endpoint, body: bytes, signature: str, content_type: str
) -> None:
    headers = {"Content-Type": content_type, "Stripe-Signature": signature}

    status, answer = endpoint.post(body, headers)

    assert status in (400, 413, 415), answer
    assert answer.get("error")
    assert endpoint.stored() == 0


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("id", "evt_\ud800", "printable ASCII"),  # a lone surrogate: JSON allows it
        ("id", "evt_\x00nul", "printable ASCII"),
        ("type", "checkout.session.completed\n", "printable ASCII"),
        ("created", 10**12, "Unix time"),  # the year 33658
        ("api_version", "2026-10-28.\ud800", "printable ASCII"),
        ("api_version", "2026-10-28\x00", "printable ASCII"),
        ("api_version", "2026-10-28." + "x" * 200_000, "printable ASCII"),
        ("api_version", 20261028, "printable ASCII"),
    ],
)
def test_odd_values_in_a_signed_event_get_a_400_naming_the_field(
    endpoint: Endpoint, field: str, value: object, says: str
) -> None:
    body = json.dumps({**json.loads(GOOD), field: value})

    status, answer = endpoint.post(body, _signed(body))

    assert status == 400, answer
    assert field in answer["error"] and says in answer["error"]
    assert endpoint.stored() == 0


def test_json_nested_too_deeply_gets_a_400(endpoint: Endpoint) -> None:
    body = "[" * 100_000 + "]" * 100_000

    status, answer = endpoint.post(body, _signed(body))

    assert status == 400, answer
    assert "nested too deeply" in answer["error"]


def test_a_signature_header_with_an_edited_timestamp_gets_a_400(endpoint: Endpoint) -> None:
    headers = _signed(GOOD)
    stamp, rest = headers["Stripe-Signature"].split(",", 1)
    headers["Stripe-Signature"] = f"{stamp}=x,{rest}"

    status, answer = endpoint.post(GOOD, headers)

    assert status == 400, answer
    assert endpoint.stored() == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.dictionaries(
        st.sampled_from(["id", "object", "type", "created", "livemode", "data", "api_version"]),
        json_values,
    )
)
def test_correctly_signed_but_arbitrary_json_is_stored_only_if_it_is_an_event(
    endpoint: Endpoint, fields: dict[str, Any]
) -> None:
    body = json.dumps(fields)
    before = endpoint.stored()

    status, answer = endpoint.post(body, _signed(body))

    assert status in (200, 400), answer
    assert endpoint.stored() == before + (1 if answer.get("status") == "accepted" else 0)
    if status == 200:
        assert fields["object"] in ("event", "v2.core.event") and fields["livemode"] is False


def test_readyz_is_ready_when_ledger_and_queue_answer(endpoint: Endpoint) -> None:
    response = endpoint.client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"
    assert endpoint.client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_says_what_is_not_ready(tmp_path: Any) -> None:
    settings = make_settings(tmp_path, CSONBOARD_QUEUE_URL="redis://127.0.0.1:9/0")
    app = create_app(settings)  # ledger never migrated, queue on a closed port

    response = app.test_client().get("/readyz")

    body = response.get_json()
    assert response.status_code == 503
    assert "csonboard db upgrade" in body["ledger"]
    assert body["queue"].startswith("queue unavailable")


def test_a_ledger_outage_answers_503_so_stripe_retries(tmp_path: Any) -> None:
    settings = make_settings(
        tmp_path, CSONBOARD_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none"
    )
    client = create_app(settings).test_client()
    body = event_body(created=int(datetime.now(UTC).timestamp()))

    response = client.post(
        "/webhooks/stripe", data=body, headers=signed_headers(body, WEBHOOK_SECRET)
    )

    assert response.status_code == 503
    assert "retry later" in response.get_json()["error"]


def test_a_row_the_ledger_cannot_store_fails_alone_and_its_group_is_stored(
    endpoint: Endpoint,
) -> None:
    # Past the receiver's validation nothing should fail to store; if a row
    # still does (a lone surrogate no driver can encode, here handed to the
    # intake directly), the events committed with it must not fail with it.
    intake = Intake(endpoint.ledger, endpoint.doorbell)
    good = [
        parse_event(
            event_body(event_id=f"evt_ok{n}", created=STAMP),
            livemode=False,
            signature=None,
            source="webhook",
        )
        for n in range(40)
    ]
    bad = dataclasses.replace(good[0], id="evt_bad", api_version="2026-\ud800")
    results: dict[str, object] = {}

    def store(event: IncomingEvent) -> None:
        try:
            results[event.id] = intake.store(event)
        except CsonboardError as exc:
            results[event.id] = exc

    threads = [threading.Thread(target=store, args=(e,)) for e in [*good[:20], bad, *good[20:]]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert all(results[e.id] == "accepted" for e in good), results
    assert isinstance(results["evt_bad"], LedgerUnavailable)
    assert endpoint.stored() == len(good)


def test_a_different_body_under_a_known_id_is_kept_as_a_conflict_and_said_loudly(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    first = event_body(event_id="evt_same", created=STAMP)
    other = event_body(event_id="evt_same", created=STAMP, obj={"id": "cs_test_other"})
    assert endpoint.post(first, _signed(first)) == (
        200,
        {"status": "accepted", "event": "evt_same"},
    )

    answers = [endpoint.post(other, _signed(other)) for _ in range(2)]
    again = endpoint.post(first, _signed(first))

    assert answers == [(200, {"status": "conflict", "event": "evt_same"})] * 2
    assert again == (200, {"status": "duplicate", "event": "evt_same"})
    assert endpoint.ledger.events.body("evt_same") == first.encode()  # the stored one stands
    [kept] = endpoint.ledger.events.conflicts("evt_same")  # once per distinct body
    assert kept.body == other.encode() and kept.source == "webhook"
    assert endpoint.stored() == 1 and endpoint.rung(1) == 1  # nothing new to process
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("evt_same arrived again with a different body" in r.getMessage() for r in warnings)
    scraped = endpoint.client.get("/metrics").get_data(as_text=True)
    assert 'outcome="conflict"' in scraped
    assert "csonboard_event_conflicts 1.0" in scraped  # from the ledger: survives restarts


def _post_chunked(app: Flask, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST as a server hands on a chunked request: no length, a stream that ends."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/stripe",
        "SERVER_NAME": "receiver.test",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": io.StringIO(),
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": headers["Content-Type"],
        "HTTP_STRIPE_SIGNATURE": headers["Stripe-Signature"],
    }
    answer, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), json.loads(b"".join(answer) or b"{}")


def test_a_chunked_body_over_the_limit_is_a_413_never_cut_short(endpoint: Endpoint) -> None:
    # Signed over its first MiB only, so that a cut body would verify.
    head = event_body(event_id="evt_chunked", created=STAMP, padding="x" * (1024 * 1024))
    signed_part = head.encode()[: 1024 * 1024]
    body = signed_part + b"x" * 10
    headers = signed_headers(signed_part.decode(), WEBHOOK_SECRET, STAMP)

    status, answer = _post_chunked(endpoint.app, body, headers)

    assert status == 413, answer
    assert "limit is 1048576 bytes" in answer["error"]
    small = event_body(event_id="evt_small", created=STAMP)
    assert _post_chunked(endpoint.app, small.encode(), _signed(small)) == (
        200,
        {"status": "accepted", "event": "evt_small"},
    )
    assert endpoint.stored() == 1
