"""Users and labels (create, lookup, ``merge_labels``, currency and locale,
suspension), API credentials, and the admin user update, delete and SSO calls."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from computestacks.cs_support import Customer, FakeClock, Sim, make_customer, place_wordpress
from csonboard.computestacks import ComputeStacksClient, NewUser, OrderStatus, UserUpdate
from csonboard.errors import (
    ComputeStacksAuthError,
    ComputeStacksNotFound,
    ComputeStacksProtocolError,
    ComputeStacksValidationError,
)


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


def test_suspended_users_authenticate_but_their_orders_fail(
    admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    admin.suspend_user(customer.user.id)
    assert customer.client.list_products()
    placed = place_wordpress(customer.client)
    assert customer.client.get_order(placed.id).status is OrderStatus.PENDING
    clock.advance(10)
    order = customer.client.get_order(placed.id)
    assert order.status is OrderStatus.FAILED
    assert order.project_id is None


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
    admin.delete_user(customer.user.id)
    assert admin.find_user_by_email(customer.user.email) is None
    with pytest.raises(ComputeStacksNotFound):
        admin.delete_user(customer.user.id)


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
