"""Users and labels (create, lookup, ``merge_labels``, currency and locale,
suspension), the user JSON of each admin view, API credentials, and the admin
user update, delete and SSO calls."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
import requests

from computestacks.cs_support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    Customer,
    FakeClock,
    Sim,
    make_customer,
    place_wordpress,
)
from csonboard.computestacks import ComputeStacksClient, NewUser, OrderStatus, UserUpdate
from csonboard.errors import (
    ComputeStacksAuthError,
    ComputeStacksNotFound,
    ComputeStacksProtocolError,
    ComputeStacksValidationError,
)
from csonboard.sandbox.catalog import load_catalog
from csonboard.sandbox.computestacks import create_app
from csonboard.sandbox.server import start_in_thread


def _create(sim: Sim, user: object) -> Any:
    return sim.raw("POST", "/api/admin/users", json={"user": user} if user is not None else {})


def _new(email: str = "ada@example.com", **fields: Any) -> NewUser:
    return NewUser(fname="Ada", lname="Lovelace", email=email, **fields)


def test_create_requires_the_user_root(sim: Sim) -> None:
    for body in ({}, {"fname": "Ada", "lname": "L", "email": "a@example.com"}, {"user": {}}):
        response = sim.raw("POST", "/api/admin/users", json=body)
        assert (response.status_code, response.json()) == (
            422,
            {"errors": ["Missing User Object"]},
        )
    assert len(sim.state()["users"]) == 1


def test_create_requires_fname_lname_and_email(admin: ComputeStacksClient) -> None:
    with pytest.raises(ComputeStacksValidationError) as caught:
        admin.create_user(NewUser(fname=" ", lname="", email=""))
    assert caught.value.errors == [
        "Fname can't be blank",
        "Lname can't be blank",
        "Email can't be blank",
    ]


def test_email_is_normalised_and_unique(sim: Sim, admin: ComputeStacksClient) -> None:
    user = admin.create_user(_new("  Ada.Lovelace@Example.COM "))
    assert user.email == "ada.lovelace@example.com"
    with pytest.raises(ComputeStacksValidationError) as caught:
        admin.create_user(_new("ADA.LOVELACE@example.com"))
    assert caught.value.errors == ["Email has already been taken", "Email has already been taken"]
    assert [u["email"] for u in sim.state()["users"]].count("ada.lovelace@example.com") == 1


@pytest.mark.parametrize("email", ["no-at-sign", "two words@example.com", "a@b@"])
def test_email_format_is_checked(admin: ComputeStacksClient, email: str) -> None:
    with pytest.raises(ComputeStacksValidationError) as caught:
        admin.create_user(_new(email))
    assert caught.value.errors == ["Email is invalid"]


def test_password_is_optional_checked_and_never_echoed(sim: Sim) -> None:
    without = _create(sim, {"fname": "A", "lname": "B", "email": "a@example.com"})
    assert without.status_code == 201
    given = _create(
        sim, {"fname": "A", "lname": "B", "email": "b@example.com", "password": "correct-horse"}
    )
    assert given.status_code == 201
    assert "correct-horse" not in given.text
    assert "password" not in given.json()["user"]
    short = _create(
        sim, {"fname": "A", "lname": "B", "email": "c@example.com", "password": "short"}
    )
    assert short.json() == {"errors": ["Password is too short (minimum is 8 characters)"]}
    mismatch = _create(
        sim,
        {
            "fname": "A",
            "lname": "B",
            "email": "d@example.com",
            "password": "correct-horse",
            "password_confirmation": "battery-staple",
        },
    )
    assert mismatch.json() == {"errors": ["Password confirmation doesn't match Password"]}
    assert "correct-horse" not in sim.session.get(f"{sim.url}/_sandbox/state").text


def test_create_answers_201_with_the_user_root(sim: Sim) -> None:
    response = _create(sim, {"fname": "A", "lname": "B", "email": "a@example.com"})
    assert response.status_code == 201
    user = response.json()["user"]
    assert {"id", "email", "labels", "auth_token", "user_group_id", "currency"} <= set(user)
    assert not {"phone", "locale", "bypass_billing", "user_group"} & set(user)


def test_the_list_endpoint_has_no_search(sim: Sim, admin: ComputeStacksClient) -> None:
    admin.create_user(_new("a@example.com", external_id="cus_a"))
    admin.create_user(_new("b@example.com", external_id="cus_b"))
    for query in ("?email=a@example.com", "?external_id=cus_a", "?q=a"):
        response = sim.raw("GET", "/api/admin/users" + query)
        assert len(response.json()["users"]) == 3


def test_lookup_by_external_id_and_by_base64_email(admin: ComputeStacksClient) -> None:
    ada = admin.create_user(_new(external_id="cus_ada"))
    assert admin.find_user_by_external_id("cus_ada") == ada
    assert admin.find_user_by_email("ADA@example.com") == ada
    assert admin.get_user(ada.id) == ada
    assert admin.find_user_by_external_id("cus_nobody") is None


def test_email_keys_with_slash_and_plus_survive_routing(admin: ComputeStacksClient) -> None:
    assert "/" in base64.b64encode(b"ab?de~@example.com").decode()
    odd = admin.create_user(_new("ab?de~@example.com"))
    assert admin.find_user_by_email("ab?de~@example.com") == odd


def test_external_id_is_not_unique(admin: ComputeStacksClient) -> None:
    first = admin.create_user(_new("a@example.com", external_id="shared"))
    second = admin.create_user(_new("b@example.com", external_id="shared"))
    found = admin.find_user_by_external_id("shared")
    assert found is not None and found.id in {first.id, second.id}


def test_ids_with_a_dot_cannot_be_looked_up(sim: Sim, admin: ComputeStacksClient) -> None:
    admin.create_user(_new(external_id="cus.1"))
    response = sim.raw("GET", "/api/admin/users/cus.1?find_by_external_id=true")
    assert response.status_code == 404
    with pytest.raises(ValueError, match="external_id"):
        admin.find_user_by_external_id("cus.1")


def test_lookup_by_whmcs_label(sim: Sim, admin: ComputeStacksClient) -> None:
    user = admin.create_user(_new(merge_labels={"whmcs": {"service_id": 41, "client_id": 7}}))
    by_service = sim.raw("GET", "/api/admin/users/41?find_by_label=whmcs_service_id")
    by_client = sim.raw("GET", "/api/admin/users/7?find_by_label=whmcs_client_id")
    assert by_service.json()["user"]["id"] == by_client.json()["user"]["id"] == user.id


def test_merge_labels_is_a_shallow_object_merge_storing_nulls(
    sim: Sim, admin: ComputeStacksClient
) -> None:
    user = admin.create_user(
        _new(merge_labels={"stripe": {"customer": "cus_1", "price": "p"}, "kind": "customer"})
    )
    updated = admin.update_user(user.id, UserUpdate(merge_labels={"stripe": {"customer": "cus_2"}}))
    assert updated.labels == {"stripe": {"customer": "cus_2"}, "kind": "customer"}
    nulled = admin.update_user(user.id, UserUpdate(merge_labels={"kind": None, "n": 1}))
    assert nulled.labels == {"stripe": {"customer": "cus_2"}, "kind": None, "n": 1}
    as_array = sim.raw(
        "PATCH", f"/api/admin/users/{user.id}", json={"user": {"merge_labels": [{"x": "y"}]}}
    )
    assert as_array.status_code == 200
    assert as_array.json()["user"]["labels"] == nulled.labels


def test_labels_outside_merge_labels_are_dropped(sim: Sim) -> None:
    response = sim.raw(
        "POST",
        "/api/admin/users",
        json={"user": {"fname": "A", "lname": "B", "email": "a@example.com", "labels": {"x": 1}}},
    )
    assert response.json()["user"]["labels"] == {}


@pytest.mark.parametrize(
    ("sent", "stored"), [("EUR", "EUR"), ("eur", "USD"), ("JPY", "USD"), (None, "USD")]
)
def test_unknown_currency_is_silently_replaced_before_upcasing(
    admin: ComputeStacksClient, sent: str | None, stored: str
) -> None:
    assert admin.create_user(_new(currency=sent)).currency == stored


@pytest.mark.parametrize(("sent", "stored"), [("de", "de"), ("xx", "en"), (None, "en")])
def test_locale_defaults_to_en(
    sim: Sim, admin: ComputeStacksClient, sent: str | None, stored: str
) -> None:
    user = admin.create_user(_new(locale=sent))
    assert sim.user_state(user.id)["locale"] == stored


@pytest.mark.parametrize(
    ("sent", "confirmed"),
    [(True, True), ("false", True), ("yes", True), (False, False), ("", False)],
)
def test_skip_email_confirm_uses_ruby_truthiness(sim: Sim, sent: object, confirmed: bool) -> None:
    body = {"fname": "A", "lname": "B", "email": "a@example.com", "skip_email_confirm": sent}
    user_id = _create(sim, body).json()["user"]["id"]
    assert sim.user_state(user_id)["confirmed"] is confirmed


def test_user_group_unknown_is_refused_known_is_kept(admin: ComputeStacksClient) -> None:
    assert admin.create_user(_new("a@example.com")).user_group_id == 1
    assert admin.create_user(_new("b@example.com", user_group_id=2)).user_group_id == 2
    with pytest.raises(ComputeStacksValidationError) as caught:
        admin.create_user(_new("c@example.com", user_group_id=99))
    assert caught.value.errors == ["User group must exist"]


def test_suspension_is_202_empty_object_and_flips_active(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    user_id = customer.user.id
    response = sim.raw("POST", f"/api/admin/users/{user_id}/suspension")
    assert (response.status_code, response.json()) == (202, {})
    assert admin.get_user(user_id).active is False
    admin.suspend_user(user_id)
    assert admin.get_user(user_id).active is False
    admin.unsuspend_user(user_id)
    assert admin.get_user(user_id).active is True


def _running(client: ComputeStacksClient, project_id: int) -> list[tuple[str, str | None]]:
    return [
        (c.req_state, c.current_state)
        for s in client.list_project_services(project_id)
        for c in client.list_service_containers(s.id)
    ]


def _site(customer: Customer, clock: FakeClock) -> int:
    placed = place_wordpress(customer.client)
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    return project_id


@pytest.mark.parametrize("how", ["suspension", "patch"])
def test_suspension_only_flips_active_and_stops_nothing(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock, how: str
) -> None:
    """``Api::Admin::Users::SuspensionController#create`` (and a PATCH with
    ``active`` false, through the same ``after_update`` callback) runs
    ``UserServices::ToggleActiveService``
    (``app/services/user_services/toggle_active_service.rb``), whose
    ``suspend_user!`` builds a ``PowerCycleContainerService`` per container and
    never calls ``perform``; with the group billing suspended users (the
    default) no subscription is paused either. The services keep running."""
    project_id = _site(customer, clock)
    if how == "suspension":
        admin.suspend_user(customer.user.id)
    else:
        response = sim.raw(
            "PATCH", f"/api/admin/users/{customer.user.id}", json={"user": {"active": False}}
        )
        assert response.json()["user"]["active"] is False
    assert admin.get_user(customer.user.id).active is False
    clock.advance(7 * 24 * 3600)
    assert _running(admin, project_id) == [("running", "online"), ("running", "online")]
    assert [c["state"] for c in sim.state()["containers"]] == ["online", "online"]


def test_lifting_a_suspension_starts_nothing_either(
    admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``ToggleActiveService#activate_user!`` builds a start per container and
    never performs it: what was stopped stays stopped."""
    project_id = _site(customer, clock)
    wordpress, _ = admin.list_project_services(project_id)
    admin.power(wordpress.id, "stop")
    clock.advance(1)
    admin.suspend_user(customer.user.id)
    admin.unsuspend_user(customer.user.id)
    clock.advance(3600)
    assert admin.get_user(customer.user.id).active is True
    assert _running(admin, project_id) == [("stopped", "offline"), ("running", "online")]


def test_a_suspended_users_credentials_still_work_even_to_start_its_services(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``auth_request!`` (``app/controllers/concerns/api_auth.rb``) finds the
    credential with ActiveRecord's own ``find_by_username`` (the model's
    filtering one is an instance method) and never looks at ``active``; the
    power controller does not either."""
    project_id = _site(customer, clock)
    admin.suspend_user(customer.user.id)
    assert customer.client.list_products()
    assert [p.id for p in customer.client.list_projects()] == [project_id]
    wordpress, _ = customer.client.list_project_services(project_id)
    customer.client.power(wordpress.id, "stop")
    clock.advance(1)
    customer.client.power(wordpress.id, "start")
    clock.advance(1)
    assert _running(customer.client, project_id) == [("running", "online"), ("running", "online")]


def test_suspended_users_authenticate_but_their_orders_fail(
    admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``ProcessOrderService#valid?`` (``app/services/process_order_service.rb``)
    re-reads the user when the job starts: a suspended one's order is set
    ``cancelled``, then ``fail_process!`` sets it ``failed``, before
    ``init_project!``: no project. Placing it is not refused."""
    admin.suspend_user(customer.user.id)
    assert customer.client.list_products()
    placed = place_wordpress(customer.client)
    assert customer.client.get_order(placed.id).status is OrderStatus.PENDING
    clock.advance(10)
    order = customer.client.get_order(placed.id)
    assert order.status is OrderStatus.FAILED
    assert order.project_id is None
    assert customer.client.list_projects() == ()


def test_each_post_mints_a_fresh_pair_and_old_ones_keep_working(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    second = admin.create_api_credential(customer.user.id, "again")
    assert second.id != customer.credential_id
    assert second.username != customer.username and second.password != customer.password
    assert len(second.password) == 40
    assert customer.client.list_products()
    assert customer.client.as_user(second.username, second.password).list_products()
    assert sim.user_state(customer.user.id)["credentials"] == 2


def test_delete_is_200_empty_and_stops_only_that_pair(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    second = admin.create_api_credential(customer.user.id, "again")
    path = f"/api/admin/users/{customer.user.id}/api_credentials/{second.id}"
    response = sim.raw("DELETE", path)
    assert (response.status_code, response.content) == (200, b"")
    with pytest.raises(ComputeStacksAuthError):
        customer.client.as_user(second.username, second.password).list_products()
    assert customer.client.list_products()
    with pytest.raises(ComputeStacksNotFound):
        admin.delete_api_credential(customer.user.id, second.id)
    admin.delete_api_credential(customer.user.id, customer.credential_id)
    assert sim.user_state(customer.user.id)["credentials"] == 0


def test_credential_create_without_root_is_a_plain_400(sim: Sim, customer: Customer) -> None:
    response = sim.raw("POST", f"/api/admin/users/{customer.user.id}/api_credentials", json={})
    assert response.status_code == 400
    assert not response.headers["Content-Type"].startswith("application/json")


def test_update_changes_only_what_is_sent(admin: ComputeStacksClient) -> None:
    user = admin.create_user(_new(external_id="cus_1", currency="EUR"))
    updated = admin.update_user(user.id, UserUpdate(fname="Augusta", email="AUGUSTA@example.com"))
    assert (updated.fname, updated.lname, updated.email) == (
        "Augusta",
        "Lovelace",
        "augusta@example.com",
    )
    assert (updated.external_id, updated.currency) == ("cus_1", "EUR")


def test_update_without_the_user_root_is_a_plain_400(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    response = sim.raw("PATCH", f"/api/admin/users/{customer.user.id}", json={"fname": "X"})
    assert response.status_code == 400
    with pytest.raises(ComputeStacksProtocolError, match="400"):
        admin.update_user(customer.user.id, UserUpdate())


def test_admin_user_delete_is_204_and_takes_the_credentials(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    other = make_customer(admin, "other@example.com")
    response = sim.raw("DELETE", f"/api/admin/users/{other.user.id}")
    assert (response.status_code, response.content) == (204, b"")
    with pytest.raises(ComputeStacksAuthError):
        other.client.list_products()
    placed = place_wordpress(customer.client)
    admin.delete_user(customer.user.id)
    assert admin.find_user_by_email(customer.user.email) is None
    with pytest.raises(ComputeStacksNotFound):
        admin.delete_user(customer.user.id)
    # User has_many :orders, dependent: :destroy (app/models/user.rb): gone too.
    with pytest.raises(ComputeStacksNotFound):
        admin.get_admin_order(placed.id)


def test_sso_token_is_201_and_valid_one_minute(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    token = admin.create_sso_token(customer.user.id)
    assert token.username == customer.user.email
    assert token.token
    assert token.expires is not None and token.expires.timestamp() == clock() + 60
    response = sim.raw("POST", f"/api/admin/users/{customer.user.id}/user_sso")
    assert response.status_code == 201
    assert set(response.json()) == {"username", "token", "expires"}


# -- the user JSON of each view -------------------------------------------------------------

BASE_KEYS = {
    "id", "fname", "lname", "email", "active", "is_admin", "api_key", "api_version",
    "external_id", "currency", "confirmed_at", "confirmation_sent_at", "last_request_at",
    "last_sign_in_at", "current_sign_in_at", "sign_in_count", "reset_password_sent_at",
    "locked_at", "failed_attempts", "address1", "address2", "city", "state", "zip", "country",
    "vat", "labels", "created_at", "updated_at", "currency_symbol", "current_sign_in_ip",
    "last_sign_in_ip",
}  # fmt: skip
CHILDREN = {"security_keys", "billing_plan", "user_group", "external_integrations"}


def test_show_has_the_billing_plan_child_and_no_billing_plan_id(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    """``app/views/api/admin/users/show.v51.rabl`` (what an unversioned call
    gets): its ``billing_plan_id`` attribute names no attribute of ``User``
    (``db/schema.rb``), and rabl leaves it out; ``billing_plan`` is the
    ``has_one :billing_plan, through: :user_group`` record. PATCH renders
    the same."""
    shown = sim.raw("GET", f"/api/admin/users/{customer.user.id}").json()["user"]
    assert set(shown) == BASE_KEYS | CHILDREN | {"phone", "company_name", "run_rate", "services"}
    assert shown["billing_plan"] == {"id": 1, "name": "Default"}
    assert shown["user_group"] == {"id": 1, "name": "Default"}
    assert (shown["security_keys"], shown["external_integrations"]) == ([], [])
    patched = sim.raw(
        "PATCH", f"/api/admin/users/{customer.user.id}", json={"user": {"fname": "Augusta"}}
    ).json()["user"]
    assert set(patched) == set(shown)


def test_create_renders_create_rabl(sim: Sim) -> None:
    """``create.rabl``: ``user_group_id`` and the SSO token, no children, no
    ``billing_plan_id``."""
    body = {"fname": "A", "lname": "B", "email": "a@example.com", "phone": "1", "company_name": "C"}
    user = _create(sim, body).json()["user"]
    assert set(user) == BASE_KEYS | {
        "company_name",
        "user_group_id",
        "auth_token",
        "auth_token_exp",
    }
    assert user["company_name"] == "C"


def test_the_index_renders_index_v51_with_less_than_a_show(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    """``index.v51.rabl``: no phone, company name, run rate or service counts
    (nor ``billing_plan_id``)."""
    rows = sim.raw("GET", "/api/admin/users").json()["users"]
    assert [r["id"] for r in rows] == [1, customer.user.id]  # "Admin" before "Lovelace"
    for row in rows:
        assert set(row) == BASE_KEYS | CHILDREN


def test_include_balance_adds_the_unprocessed_usage(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    """``@include_usage = params[:include] == 'balance'`` in ``index`` and
    ``show`` (not ``update``): ``unprocessed_usage``, the sum of the user's
    unprocessed usage rows' totals (``User#unprocessed_usage``), a decimal
    as a string."""
    path = f"/api/admin/users/{customer.user.id}"
    assert (
        sim.raw("GET", path, params={"include": "balance"}).json()["user"]["unprocessed_usage"]
        == "0.0"
    )
    sim.control("POST", "billing_usages", {"user_id": customer.user.id, "qty": "150"})
    sim.control("POST", "billing_usages", {"user_id": customer.user.id, "qty": "50"})
    shown = sim.raw("GET", path, params={"include": "balance"}).json()["user"]
    assert Decimal(shown["unprocessed_usage"]) > 0
    listed = sim.raw("GET", "/api/admin/users", params={"include": "balance"}).json()["users"]
    assert listed[1]["unprocessed_usage"] == shown["unprocessed_usage"]
    for response in (
        sim.raw("GET", path),
        sim.raw("GET", path, params={"include": "usage"}),
        sim.raw("PATCH", path, params={"include": "balance"}, json={"user": {"fname": "X"}}),
    ):
        assert "unprocessed_usage" not in response.json()["user"]
    assert "unprocessed_usage" not in sim.raw("GET", "/api/admin/users").json()["users"][0]


def test_the_billing_plan_is_a_record_of_its_own() -> None:
    """A group's ``billing_plan`` is the plan, not the group: with a catalog
    naming the plan, the user shows it beside its group."""
    catalog = load_catalog()
    default = catalog["computestacks"]["user_groups"][0]
    default.update(billing_plan_id=7, billing_plan_name="Gold plan")
    server = start_in_thread(
        create_app(catalog, admin_username=ADMIN_USERNAME, admin_password=ADMIN_PASSWORD)
    )
    try:
        with requests.Session() as session:
            admin = ComputeStacksClient(
                server.url, session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD
            )
            user = admin.create_user(_new())
            shown = session.get(
                f"{server.url}/api/admin/users/{user.id}",
                auth=(ADMIN_USERNAME, ADMIN_PASSWORD),
                headers={"Accept": "application/json"},
            ).json()["user"]
            assert shown["billing_plan"] == {"id": 7, "name": "Gold plan"}
            assert shown["user_group"] == {"id": 1, "name": "Default"}
            assert admin.get_user(user.id).user_group_id == 1
    finally:
        server.stop()


def test_the_service_counts_include_every_project(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``services`` of ``show.v51.rabl``: ``deployments.count`` (those being
    deleted too), ``deployed_containers.count``, ``container_services.count``."""
    sim.control("POST", "projects", {"deleting_seconds": 60})
    project_id = _site(customer, clock)
    customer.client.delete_project(project_id)
    counts = sim.raw("GET", f"/api/admin/users/{customer.user.id}").json()["user"]["services"]
    assert (counts["deployments"], counts["containers"], counts["container_services"]) == (1, 2, 2)
