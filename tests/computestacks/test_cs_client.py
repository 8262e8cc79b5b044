"""The client on its own, against scripted HTTP answers: headers and timeouts,
error mapping of every status, retries and backoff, parsing, and secrecy."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
import requests

from computestacks.cs_support import T0, Reply, Scripted
from csonboard.computestacks import (
    ApiCredential,
    NewOrder,
    NewUser,
    OrderContainer,
    OrderStatus,
    SsoToken,
    UserUpdate,
)
from csonboard.errors import (
    ComputeStacksAuthError,
    ComputeStacksError,
    ComputeStacksNotFound,
    ComputeStacksProtocolError,
    ComputeStacksRateLimited,
    ComputeStacksUnavailable,
    ComputeStacksValidationError,
    ConfigError,
    PermanentError,
    TransientError,
)

USER = {"id": 7, "email": "a@example.com", "fname": "A", "lname": "B", "active": True}
ORDER = {"id": "6f1c", "status": "pending", "created_at": "2024-05-01T10:00:00.000Z"}
PROJECT_PAGE = {"projects": [{"id": 1, "name": "p1"}]}
SERVER_ERROR = Reply(500, {"errors": ["boom"]})


def test_every_call_sends_json_headers_basic_auth_and_a_timeout(scripted: Scripted) -> None:
    client, net = scripted(Reply(200, {"user": USER}), Reply(200, PROJECT_PAGE), timeout=3.5)
    client.get_user(7)
    client.list_projects()
    expected_auth = "Basic " + base64.b64encode(b"api-user:api-Pa55word").decode()
    for sent in net.sent:
        assert sent.headers["Accept"] == "application/json"
        assert sent.headers["Content-Type"] == "application/json"
        assert sent.headers["Authorization"] == expected_auth
        assert sent.timeout == 3.5


def test_api_version_is_sent_only_when_configured(scripted: Scripted) -> None:
    client, net = scripted(Reply(200, {"user": USER}), api_version=65)
    client.get_user(7)
    assert net.sent[0].headers["Accept"] == "application/json; api_version=65"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ComputeStacksProtocolError),
        (401, ComputeStacksAuthError),
        (403, ComputeStacksProtocolError),
        (404, ComputeStacksNotFound),
        (406, ComputeStacksProtocolError),
        (422, ComputeStacksValidationError),
        (429, ComputeStacksRateLimited),
        (500, ComputeStacksUnavailable),
        (502, ComputeStacksUnavailable),
        (503, ComputeStacksUnavailable),
    ],
)
def test_each_status_maps_to_its_error(
    scripted: Scripted, status: int, error: type[ComputeStacksError]
) -> None:
    client, _ = scripted(Reply(status, {"errors": ["x"]}), attempts=1)
    with pytest.raises(error) as caught:
        client.get_user(7)
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.method == "GET"
    assert caught.value.path == "/api/admin/users/7"


def test_transient_and_permanent_errors_are_told_apart_by_type() -> None:
    assert issubclass(ComputeStacksUnavailable, TransientError)
    assert issubclass(ComputeStacksRateLimited, TransientError)
    for permanent in (
        ComputeStacksAuthError,
        ComputeStacksNotFound,
        ComputeStacksValidationError,
        ComputeStacksProtocolError,
    ):
        assert issubclass(permanent, PermanentError)


@pytest.mark.parametrize("errors", [["Email has already been taken", 1000, None], []])
def test_validation_error_carries_errors_exactly_as_sent(
    scripted: Scripted, errors: list[object]
) -> None:
    client, _ = scripted(Reply(422, {"errors": errors}))
    with pytest.raises(ComputeStacksValidationError) as caught:
        client.create_user(NewUser(fname="A", lname="B", email="a@example.com"))
    assert caught.value.errors == errors


def test_422_without_an_errors_list_is_a_protocol_error(scripted: Scripted) -> None:
    client, _ = scripted(Reply(422, raw="<html>oops</html>"))
    with pytest.raises(ComputeStacksProtocolError, match="422"):
        client.get_user(7)


def test_429_retry_after_comes_from_ratelimit_reset(scripted: Scripted) -> None:
    reset = {"RateLimit-Reset": str(int(T0) + 42), "RateLimit-Remaining": "0"}
    client, _ = scripted(Reply(429, raw="Throttled\n", headers=reset), attempts=1)
    with pytest.raises(ComputeStacksRateLimited) as caught:
        client.get_user(7)
    assert caught.value.retry_after == 42.0


def test_429_without_reset_has_no_retry_after(scripted: Scripted) -> None:
    client, _ = scripted(Reply(429, raw="Throttled\n"), attempts=1)
    with pytest.raises(ComputeStacksRateLimited) as caught:
        client.get_user(7)
    assert caught.value.retry_after is None


def test_idempotent_calls_retry_with_exponential_backoff_and_jitter(
    scripted: Scripted, sleeps: list[float]
) -> None:
    client, net = scripted(
        SERVER_ERROR,
        Reply(502, raw="<html>bad gateway</html>"),
        Reply(200, {"user": USER}),
        attempts=3,
        backoff=0.5,
        jitter=lambda: 0.5,
    )
    assert client.get_user(7).id == 7
    assert len(net.sent) == 3
    assert sleeps == [0.75, 1.5]


def test_retries_stop_after_the_last_attempt(scripted: Scripted, sleeps: list[float]) -> None:
    client, net = scripted(SERVER_ERROR, SERVER_ERROR, SERVER_ERROR, attempts=3)
    with pytest.raises(ComputeStacksUnavailable, match="boom"):
        client.delete_project(3)
    assert len(net.sent) == 3
    assert len(sleeps) == 2


def test_429_waits_for_the_reset_when_longer_than_the_backoff(
    scripted: Scripted, sleeps: list[float]
) -> None:
    reset = {"RateLimit-Reset": str(int(T0) + 12)}
    client, _ = scripted(Reply(429, raw="Throttled\n", headers=reset), Reply(200, PROJECT_PAGE))
    client.list_user_projects(7)
    assert sleeps == [12.0]


def test_429_with_a_reset_beyond_max_wait_is_raised_at_once(
    scripted: Scripted, sleeps: list[float]
) -> None:
    reset = {"RateLimit-Reset": str(int(T0) + 300)}
    client, net = scripted(Reply(429, raw="Throttled\n", headers=reset), max_wait=30.0)
    with pytest.raises(ComputeStacksRateLimited) as caught:
        client.get_user(7)
    assert caught.value.retry_after == 300.0
    assert len(net.sent) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.update_user(7, UserUpdate(fname="X")),
        lambda c: c.suspend_user(7),
        lambda c: c.unsuspend_user(7),
        lambda c: c.delete_api_credential(7, 1),
        lambda c: c.delete_user(7),
    ],
    ids=["patch", "suspend", "unsuspend", "delete-credential", "delete-user"],
)
def test_patch_delete_and_suspension_are_retried(scripted: Scripted, call: object) -> None:
    client, net = scripted(SERVER_ERROR, Reply(200, {"user": USER}))
    call(client)  # type: ignore[operator]
    assert len(net.sent) == 2


CREATES = {
    "user": lambda c: c.create_user(NewUser(fname="A", lname="B", email="a@example.com")),
    "credential": lambda c: c.create_api_credential(7, "csonboard"),
    "order": lambda c: c.create_order(NewOrder("p", (OrderContainer(1000, 10, "wp"),))),
    "sso": lambda c: c.create_sso_token(7),
}


@pytest.mark.parametrize("call", CREATES.values(), ids=CREATES.keys())
@pytest.mark.parametrize(
    "failure",
    [SERVER_ERROR, requests.ReadTimeout("slow"), requests.ConnectionError("refused")],
    ids=["500", "timeout", "connection"],
)
def test_creates_are_never_retried(
    scripted: Scripted, sleeps: list[float], call: object, failure: object
) -> None:
    client, net = scripted(failure, attempts=5)
    with pytest.raises(ComputeStacksUnavailable):
        call(client)  # type: ignore[operator]
    assert len(net.sent) == 1
    assert sleeps == []


def test_401_is_never_retried(scripted: Scripted) -> None:
    client, net = scripted(Reply(401, {"errors": ["Not Authorized"]}), attempts=5)
    with pytest.raises(ComputeStacksAuthError):
        client.get_user(7)
    assert len(net.sent) == 1


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectTimeout("c"), requests.ReadTimeout("r"), requests.ConnectionError("x")],
)
def test_network_failures_are_unavailable_and_keep_their_cause(
    scripted: Scripted, failure: Exception
) -> None:
    client, _ = scripted(failure, attempts=1)
    with pytest.raises(ComputeStacksUnavailable) as caught:
        client.get_user(7)
    assert caught.value.__cause__ is failure


def test_other_requests_failures_are_protocol_errors(scripted: Scripted) -> None:
    client, _ = scripted(requests.TooManyRedirects("loop"), attempts=3)
    with pytest.raises(ComputeStacksProtocolError):
        client.get_user(7)


def test_an_empty_body_where_json_is_promised_is_a_protocol_error(scripted: Scripted) -> None:
    """No web server's page either: something answered, but not as promised. (A body
    that is not JSON at all names cs.url: see test_cs_misdirected.py.)"""
    client, _ = scripted(Reply(200, raw="", headers={"Content-Type": "text/html"}))
    with pytest.raises(ComputeStacksProtocolError, match=r"not JSON \(empty body, text/html\)"):
        client.get_user(7)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": {**USER, "id": None}}, "user.id"),
        ({"user": {**USER, "email": 5}}, "user.email"),
        ({"user": {**USER, "active": "yes"}}, "user.active"),
        ({"users": [USER]}, "user"),
        ([USER], "body"),
    ],
)
def test_missing_or_mistyped_fields_name_the_call_and_field(
    scripted: Scripted, body: object, field: str
) -> None:
    client, _ = scripted(Reply(200, body))
    with pytest.raises(ComputeStacksProtocolError) as caught:
        client.get_user(7)
    assert "GET /api/admin/users/7" in str(caught.value)
    assert field in str(caught.value)


def test_unknown_order_status_is_a_protocol_error(scripted: Scripted) -> None:
    client, _ = scripted(Reply(200, {"order": {**ORDER, "status": "exploded"}}))
    with pytest.raises(ComputeStacksProtocolError, match="exploded"):
        client.get_order("6f1c")


def test_extra_fields_are_ignored_and_numbers_may_be_strings(scripted: Scripted) -> None:
    row = {
        "id": "10",
        "name": "Small",
        "price": "5.0",
        "term": "month",
        "cpu": 2,
        "memory": 1024,
        "storage": 10,
        "bandwidth": 1000,
        "region": 1,
        "ipaddr": "ignored",
    }
    client, _ = scripted(Reply(200, {"products": [row, {**row, "cpu": "0.5", "price": 2}]}))
    first, second = client.list_products()
    assert (first.id, first.price, first.cpu) == (10, Decimal("5.0"), Decimal(2))
    assert (second.price, second.cpu) == (Decimal(2), Decimal("0.5"))


def test_order_reads_project_or_deployment(scripted: Scripted) -> None:
    done = {**ORDER, "status": "completed", "location": {"id": 1, "name": "Amsterdam"}}
    client, _ = scripted(
        Reply(200, {"order": {**done, "project": {"id": 5, "name": "site"}}}),
        Reply(200, {"order": {**done, "deployment": {"id": 5, "name": "site"}, "user": USER}}),
    )
    user_view, admin_view = client.get_order("6f1c"), client.get_admin_order("6f1c")
    assert user_view.project_id == admin_view.project_id == 5
    assert user_view.status is OrderStatus.COMPLETED and user_view.status.is_final
    assert (user_view.location_id, admin_view.user_id) == (1, 7)


IMAGE = {"id": 100, "label": "WordPress", "min_cpu": "1.0", "min_memory": 512}
VARIANTS = [
    {"id": 1001, "label": "php8.3", "is_default": False},
    {"id": 1000, "label": "php8.2", "is_default": True},
]


@pytest.mark.parametrize(
    ("extra", "variant_ids"),
    [
        ({"container_image_image_variants": VARIANTS}, [1001, 1000]),
        ({"image_variants": VARIANTS}, [1001, 1000]),
        ({"image_variants": {"id": 100, "label": "WordPress"}}, []),
        ({}, []),
    ],
    ids=["admin-list", "user-list", "user-regressed-object", "absent"],
)
def test_image_variants_are_read_in_either_shape(
    scripted: Scripted, extra: dict[str, object], variant_ids: list[int]
) -> None:
    client, _ = scripted(Reply(200, {"container_image": {**IMAGE, **extra}}))
    image = client.get_image(100)
    assert [v.id for v in image.variants] == variant_ids


def test_default_variant_id_prefers_the_marked_default(scripted: Scripted) -> None:
    body = {"container_image": {**IMAGE, "container_image_image_variants": VARIANTS}}
    client, net = scripted(Reply(200, body))
    assert client.default_variant_id(100) == 1000
    assert net.sent[0].url.endswith("/api/admin/container_images/100")


def test_default_variant_id_without_variants_is_a_protocol_error(scripted: Scripted) -> None:
    client, _ = scripted(Reply(200, {"container_image": IMAGE}))
    with pytest.raises(ComputeStacksProtocolError, match="no variants"):
        client.default_variant_id(100)


def test_pagination_follows_next_links_to_the_end(scripted: Scripted) -> None:
    def page(ids: list[int], more: bool) -> Reply:
        link = {"Link": '<http://cs.test/api/projects?page=9>; rel="next"'} if more else {}
        return Reply(200, {"projects": [{"id": i, "name": f"p{i}"} for i in ids]}, headers=link)

    # Page 2 repeats id 2: a row inserted meanwhile pushed it down a page.
    client, net = scripted(page([1, 2], True), page([2, 3], True), page([4], False), page_size=2)
    assert [p.id for p in client.list_projects()] == [1, 2, 3, 4]
    assert [s.url.split("?")[1] for s in net.sent] == [
        "page=1&per_page=2",
        "page=2&per_page=2",
        "page=3&per_page=2",
    ]


def test_pagination_stops_when_a_page_adds_nothing_new(scripted: Scripted) -> None:
    link = {"Link": '<http://cs.test/api/projects?page=2>; rel="next"'}
    same = Reply(200, PROJECT_PAGE, headers=link)
    client, net = scripted(same, same, same)
    assert [p.id for p in client.list_projects()] == [1]
    assert len(net.sent) == 2


def test_find_by_email_sends_url_encoded_base64_of_the_lowercased_email(
    scripted: Scripted,
) -> None:
    client, net = scripted(Reply(404), Reply(404))
    assert client.find_user_by_email(" AB?de~@Example.com ") is None
    assert client.find_user_by_external_id("cus_123") is None
    key = base64.b64encode(b"ab?de~@example.com").decode()
    assert "/" in key and "+" in key  # the characters that need encoding
    encoded = key.replace("/", "%2F").replace("=", "%3D").replace("+", "%2B")
    assert net.sent[0].url == f"http://cs.test/api/admin/users/{encoded}?find_by_email=true"
    assert net.sent[1].url == "http://cs.test/api/admin/users/cus_123?find_by_external_id=true"


@pytest.mark.parametrize("external_id", ["", "cus.1", "a/b"])
def test_unroutable_external_ids_are_refused_before_sending(
    scripted: Scripted, external_id: str
) -> None:
    client, net = scripted()
    with pytest.raises(ValueError, match="external_id"):
        client.find_user_by_external_id(external_id)
    with pytest.raises(ValueError, match="email"):
        client.find_user_by_email("  ")
    assert net.sent == []


def test_request_bodies_have_the_documented_shape(scripted: Scripted) -> None:
    client, net = scripted(
        Reply(201, {"user": USER}),
        Reply(200, {"user": USER}),
        Reply(201, {"order": {"id": "u-1", "redirect_url": None, "load_balancer_ip": None}}),
    )
    client.create_user(
        NewUser(fname="A", lname="B", email="a@example.com", merge_labels={"stripe": {"id": 1}})
    )
    client.update_user(7, UserUpdate(merge_labels={"stripe": None}))
    container = OrderContainer(1000, 10, "wp", {"title": "T"}, ("a.example",))
    client.create_order(NewOrder("site", (container,), location_id=1))
    assert net.sent[0].body == {
        "user": {
            "fname": "A",
            "lname": "B",
            "email": "a@example.com",
            "skip_email_confirm": True,
            "merge_labels": {"stripe": {"id": 1}},
        }
    }
    assert net.sent[1].body == {"user": {"merge_labels": {"stripe": None}}}
    assert net.sent[2].body == {
        "order": {
            "project_name": "site",
            "location_id": 1,
            "containers": [
                {
                    "image_variant_id": 1000,
                    "name": "wp",
                    "resources": {"product_id": 10},
                    "params": [{"key": "title", "value": "T"}],
                    "domains": ["a.example"],
                }
            ],
        }
    }


def test_no_secret_reaches_an_error_message_or_a_repr(scripted: Scripted) -> None:
    secret = "api-Pa55word"
    header = base64.b64encode(f"api-user:{secret}".encode()).decode()
    failures: list[Reply | Exception] = [
        Reply(401, {"errors": ["Not Authorized"]}),
        Reply(500, {"errors": ["boom"]}),
        Reply(422, {"errors": ["Password is too short"]}),
        Reply(200, raw="not json"),
        requests.ConnectionError(f"Authorization: Basic {header}"),
    ]
    client, _ = scripted(*failures, attempts=1)
    messages = []
    for _ in failures:
        with pytest.raises((ComputeStacksError, ConfigError)) as caught:
            client.create_user(NewUser(fname="A", lname="B", email="a@b.c", password="hunter2222"))
        messages.append(str(caught.value) + repr(caught.value))
    shown = [
        repr(ApiCredential(1, "user", secret)),
        str(ApiCredential(1, "user", secret)),
        repr(SsoToken("a@b.c", secret)),
        repr(NewUser(fname="A", lname="B", email="a@b.c", password=secret)),
        repr(OrderContainer(1000, 10, "wp", {"wp_password": secret})),
        repr(client),
    ]
    for text in messages + shown:
        for leaked in (secret, header, "hunter2222"):
            assert leaked not in text
