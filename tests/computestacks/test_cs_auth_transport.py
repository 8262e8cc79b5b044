"""Auth and transport (Basic auth and its lockout, API versions, pagination,
throttling, 404 shapes): the client against the simulator over real HTTP, with
hand-made requests where the exact wire matters."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from computestacks.cs_support import ADMIN_PASSWORD, ADMIN_USERNAME, Customer, FakeClock, Sim
from csonboard.computestacks import ComputeStacksClient, NewUser
from csonboard.errors import (
    ComputeStacksAuthError,
    ComputeStacksNotFound,
    ComputeStacksValidationError,
)
from csonboard.sandbox.catalog import load_catalog
from csonboard.sandbox.computestacks import create_app
from csonboard.sandbox.server import start_in_thread

NOT_AUTHORIZED = {"errors": ["Not Authorized"]}


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


FOUR_HOURS = 4 * 3600


def test_basic_auth_accepts_only_issued_pairs(sim: Sim, customer: Customer) -> None:
    assert customer.client.list_products()
    wrong = customer.client.as_user(customer.username, "not-the-password")
    with pytest.raises(ComputeStacksAuthError):
        wrong.list_products()
    unknown = sim.raw("GET", "/api/products", auth=("nobody", "nothing"))
    assert (unknown.status_code, unknown.json()) == (401, NOT_AUTHORIZED)
    # The user's login email and password are not an API credential.
    login = sim.raw("GET", "/api/products", auth=("customer@example.com", "whatever1"))
    assert login.status_code == 401


def test_admin_api_refuses_non_admins_and_anonymous_with_401_never_403(
    sim: Sim, customer: Customer
) -> None:
    with pytest.raises(ComputeStacksAuthError):
        customer.client.get_user(customer.user.id)
    as_customer = sim.raw("GET", "/api/admin/users", auth=(customer.username, customer.password))
    anonymous = sim.raw("GET", "/api/admin/users", auth=None)
    for response in (as_customer, anonymous):
        assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)


def test_user_api_without_basic_auth_is_an_empty_oauth_401(sim: Sim) -> None:
    response = sim.raw("GET", "/api/products", auth=None)
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def _fail_five_times(customer: Customer) -> None:
    wrong = customer.client.as_user(customer.username, "wrong")
    for _ in range(5):
        with pytest.raises(ComputeStacksAuthError):
            wrong.list_products()


def test_the_try_after_five_bad_passwords_locks_every_credential_whatever_its_password(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``User::ApiCredential#valid_password?`` (``app/models/user/api_credential.rb``)
    over Devise 4.9.3's lockable (``maximum_attempts`` 5, ``unlock_in`` 4
    hours, ``config/initializers/devise.rb``): five wrong passwords only count;
    the next try, even with the right password, finds the count at five and
    locks the user (``lock_access!``), every credential it owns."""
    second = admin.create_api_credential(customer.user.id, "second")
    other = customer.client.as_user(second.username, second.password)
    _fail_five_times(customer)
    state = sim.user_state(customer.user.id)
    assert (state["failed_attempts"], state["locked_at"]) == (5, None)
    with pytest.raises(ComputeStacksAuthError):
        customer.client.list_products()  # the right password
    state = sim.user_state(customer.user.id)
    assert (state["locked"], state["locked_at"], state["failed_attempts"]) == (True, clock(), 5)
    shown = admin.get_user(customer.user.id)
    raw = sim.raw("GET", f"/api/admin/users/{shown.id}").json()["user"]
    assert (raw["locked_at"], raw["failed_attempts"]) == ("2023-11-14T22:13:20.000Z", 5)
    for locked_out in (customer.client, other):
        with pytest.raises(ComputeStacksAuthError):
            locked_out.list_products()
    # Tries while locked are refused without being counted.
    assert sim.user_state(customer.user.id)["failed_attempts"] == 5


def test_the_lock_does_not_end_after_its_four_hours_through_the_api(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``access_locked?`` is false once ``locked_at`` is four hours old, but
    only Devise's ``valid_for_authentication?`` (a web sign-in) or the unlock
    e-mail's link calls ``unlock_access!``; ``valid_password?`` does not, so
    the count is still five and the next API try locks the user again."""
    _fail_five_times(customer)
    with pytest.raises(ComputeStacksAuthError):
        customer.client.list_products()
    locked_at = sim.user_state(customer.user.id)["locked_at"]
    clock.advance(FOUR_HOURS - 1)
    with pytest.raises(ComputeStacksAuthError):
        customer.client.list_products()
    clock.advance(1)
    with pytest.raises(ComputeStacksAuthError):
        customer.client.list_products()
    state = sim.user_state(customer.user.id)
    assert (state["locked"], state["failed_attempts"]) == (True, 5)
    assert state["locked_at"] == locked_at + FOUR_HOURS  # locked again, for four more hours
    clock.advance(10 * FOUR_HOURS)
    with pytest.raises(ComputeStacksAuthError):
        customer.client.list_products()
    # The unlock e-mail's link (Devise's unlock_access!) ends it.
    unlocked = sim.control("POST", "unlock", {"user_id": customer.user.id})
    assert unlocked == {"user_id": customer.user.id, "unlocked": True}
    assert customer.client.list_products()
    state = sim.user_state(customer.user.id)
    assert (state["locked"], state["locked_at"], state["failed_attempts"]) == (False, None, 0)


def test_unlock_control_needs_a_user(sim: Sim) -> None:
    response = sim.session.post(f"{sim.url}/_sandbox/unlock", json={"user_id": 999})
    assert (response.status_code, response.json()) == (400, {"error": "user_id must name a user"})


def test_a_good_password_resets_the_failure_count(sim: Sim, customer: Customer) -> None:
    wrong = customer.client.as_user(customer.username, "wrong")
    for _ in range(2):
        for _ in range(4):
            with pytest.raises(ComputeStacksAuthError):
                wrong.list_products()
        assert sim.user_state(customer.user.id)["failed_attempts"] == 4
        customer.client.list_products()
        assert sim.user_state(customer.user.id)["failed_attempts"] == 0
    assert sim.user_state(customer.user.id)["locked"] is False


def test_the_client_never_retries_a_401(sim: Sim, customer: Customer) -> None:
    wrong = ComputeStacksClient(
        sim.url,
        sim.session,
        username=customer.username,
        password="wrong",
        attempts=5,
        sleep=lambda _: None,
    )
    with pytest.raises(ComputeStacksAuthError):
        wrong.list_products()
    assert sim.user_state(customer.user.id)["failed_attempts"] == 1


def test_lockout_can_be_switched_off() -> None:
    app = create_app(
        load_catalog(), admin_username=ADMIN_USERNAME, admin_password=ADMIN_PASSWORD, lockout=False
    )
    server = start_in_thread(app)
    try:
        with requests.Session() as session:
            admin = ComputeStacksClient(
                server.url, session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD
            )
            wrong = admin.as_user(ADMIN_USERNAME, "wrong")
            for _ in range(6):
                with pytest.raises(ComputeStacksAuthError):
                    wrong.get_user(1)
            assert admin.get_user(1).is_admin
    finally:
        server.stop()


def test_obsolete_and_unknown_versions_are_422_with_supported_false(sim: Sim) -> None:
    for version in ("40", "50", "81", "abc"):
        response = sim.raw(
            "GET", "/api/products", accept=f"application/json; api_version={version}"
        )
        assert response.status_code == 422
        assert response.json() == {"errors": [f"You requested an unsupported version ({version})"]}
        assert response.headers["API-Version-Supported"] == "false"
    obsolete = ComputeStacksClient(
        sim.url, sim.session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD, api_version=50
    )
    with pytest.raises(ComputeStacksValidationError, match=r"unsupported version \(50\)"):
        obsolete.list_products()


def test_deprecated_versions_are_served_with_a_warning_header(sim: Sim) -> None:
    for version in (51, 60, 65, 71):
        response = sim.raw(
            "GET", "/api/products", accept=f"application/json; api_version={version}"
        )
        assert response.status_code == 200
        assert response.headers["API-Deprecated"] == "true"
    client = ComputeStacksClient(
        sim.url, sim.session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD, api_version=60
    )
    assert client.list_products()


def test_absent_version_means_latest(sim: Sim) -> None:
    for accept in ("application/json", "application/json; api_version=80"):
        response = sim.raw("GET", "/api/products", accept=accept)
        assert response.status_code == 200
        assert "API-Deprecated" not in response.headers


def test_version_answers_9_3_1_with_latest_version_93(sim: Sim, customer: Customer) -> None:
    """``Api::ApplicationController#version`` (``app/controllers/api/application_controller.rb``):
    ``COMPUTESTACKS_VERSION`` from the ``VERSION`` file, ``api_latest_version``
    its first two parts joined as an integer (not VersionCake's 80), and the
    deprecated then supported versions of ``config/initializers/versioncake_init.rb``.
    Any credential may ask; without one it is the OAuth 401."""
    expected = {
        "version": "9.3.1",
        "api_latest_version": 93,
        "api_available_versions": [51, 52, 53, 54, 60, 61, 62, 65, 70, 71, 80],
    }
    for auth in ((ADMIN_USERNAME, ADMIN_PASSWORD), (customer.username, customer.password)):
        response = sim.raw("GET", "/api/version", auth=auth)
        assert (response.status_code, response.json()) == (200, expected)
    anonymous = sim.raw("GET", "/api/version", auth=None)
    assert (anonymous.status_code, anonymous.content) == (401, b"")


def test_non_json_accept_is_406_plain_text(sim: Sim) -> None:
    for accept in ("text/html", None):
        response = sim.raw("GET", "/api/products", accept=accept)
        assert response.status_code == 406
        assert response.headers["Content-Type"].startswith("text/plain")


def test_lists_paginate_with_total_per_page_and_link(sim: Sim, admin: ComputeStacksClient) -> None:
    for i in range(34):
        admin.create_user(NewUser(fname="F", lname=f"L{i:02}", email=f"u{i}@example.com"))
    first = sim.raw("GET", "/api/admin/users")
    assert (first.headers["Total"], first.headers["Per-Page"]) == ("35", "30")
    assert len(first.json()["users"]) == 30
    assert set(first.links) == {"next", "last"}
    # api-pagination replaces only `page` in the request's own query: no per_page was sent.
    assert _query(first.links["next"]["url"]) == {"page": ["2"]}
    middle = sim.raw("GET", "/api/admin/users?per_page=10&page=2")
    assert len(middle.json()["users"]) == 10
    assert set(middle.links) == {"first", "prev", "next", "last"}
    assert _query(middle.links["last"]["url"]) == {"page": ["4"], "per_page": ["10"]}
    assert _query(middle.links["prev"]["url"]) == {"page": ["1"], "per_page": ["10"]}
    last = sim.raw("GET", "/api/admin/users?per_page=10&page=4")
    assert len(last.json()["users"]) == 5
    assert set(last.links) == {"first", "prev"}


def test_the_client_follows_pages_to_the_end(sim: Sim, admin: ComputeStacksClient) -> None:
    small_pages = ComputeStacksClient(
        sim.url, sim.session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD, page_size=1
    )
    locations = small_pages.list_locations()
    assert [loc.name for loc in locations] == ["Amsterdam", "Toronto"]
    assert locations == admin.list_locations()


def test_throttling_is_429_plain_text_with_ratelimit_headers(sim: Sim, clock: FakeClock) -> None:
    sim.fault(method="GET", path="/api/products", status=429, reset_after=20)
    response = sim.raw("GET", "/api/products")
    assert response.status_code == 429
    assert response.text == "Throttled\n"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == str(int(clock() + 20))
    assert "Retry-After" not in response.headers


def test_the_client_waits_for_ratelimit_reset_then_succeeds(
    sim: Sim, admin: ComputeStacksClient, sleeps: list[float]
) -> None:
    sim.fault(method="GET", path="/api/products", status=429, reset_after=7)
    assert admin.list_products()
    assert sleeps == [7.0]


def test_missing_records_are_404_with_an_empty_body(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    for path in ("/api/admin/users/999", "/api/orders/no-such-order", "/api/projects/999"):
        response = sim.raw("GET", path)
        assert (response.status_code, response.content) == (404, b""), path
    with pytest.raises(ComputeStacksNotFound):
        admin.get_user(999)
    with pytest.raises(ComputeStacksNotFound):
        customer.client.get_order("no-such-order")
    assert admin.find_user_by_external_id("cus_missing") is None
    assert admin.find_user_by_email("missing@example.com") is None


def test_unknown_api_paths_get_the_unknown_api_call_envelope(sim: Sim) -> None:
    envelope = {"errors": ["Unknown API Call. Please check the documentation."]}
    # The docs' credential path, and a verb nothing routes.
    for method, path in (("POST", "/api/users/2/api_credentials"), ("PATCH", "/api/products")):
        response = sim.raw(method, path)
        assert (response.status_code, response.json()) == (404, envelope)
    outside = sim.raw("GET", "/products")
    assert outside.status_code == 404
    assert not outside.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/users/1/api_credentials"),
        ("GET", "/api/admin/users/1/api_credentials/1"),
        ("POST", "/api/admin/orders"),
        ("DELETE", "/api/admin/projects/1"),
    ],
)
def test_routed_but_missing_actions_are_non_json_404s(sim: Sim, method: str, path: str) -> None:
    response = sim.raw(method, path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
