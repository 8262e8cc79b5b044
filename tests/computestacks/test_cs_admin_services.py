"""Every container service of the installation through the admin API, as
controller 9.3.1 serves it (``app/controllers/api/admin/container_services_controller.rb``:
``index`` and ``show``, rendered by ``app/views/api/admin/container_services/index.rabl``
and ``show.rabl``, the owner by ``app/views/api/admin/users/_short.rabl``),
against the simulator over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from computestacks.cs_support import Customer, FakeClock, Sim, make_customer
from csonboard.computestacks import ComputeStacksClient, NewOrder, OrderContainer

PATH = "/api/admin/container_services"
SHORT_KEYS = {
    "id", "name", "label", "override_autoremove", "created_at", "updated_at", "project", "user",
}  # fmt: skip


def _order(customer: Customer, clock: FakeClock, *labels: str, name: str = "site") -> int:
    """A completed order of one Nginx service per label; its project's id."""
    containers = tuple(OrderContainer(1021, 12, label) for label in labels)
    placed = customer.client.create_order(NewOrder(name, containers, location_id=1))
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    return project_id


def _rows(sim: Sim, query: str = "", **kwargs: Any) -> list[dict[str, Any]]:
    response = sim.raw("GET", PATH + query, **kwargs)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["container_services"]
    return rows


def _user_api_rows(sim: Sim, customer: Customer, project_id: int) -> dict[int, dict[str, Any]]:
    response = sim.raw(
        "GET",
        f"/api/projects/{project_id}/services",
        auth=(customer.username, customer.password),
    )
    return {row["id"]: row for row in response.json()["container_services"]}


def test_without_all_each_row_has_only_the_short_fields(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``index.rabl`` without ``params[:all]``: ``id``, ``name``, ``label``,
    ``override_autoremove`` (``db/schema.rb``: false by default), the times,
    ``project {id, name}`` (``child deployment: :project``) and the owner as
    ``users/_short.rabl`` renders it (``User#full_name`` is
    ``"#{fname} #{lname}"``)."""
    project_id = _order(customer, clock, "edge")
    (row,) = _rows(sim)
    assert set(row) == SHORT_KEYS
    (full,) = _user_api_rows(sim, customer, project_id).values()
    assert {k: row[k] for k in ("id", "name", "label", "created_at", "updated_at")} == {
        k: full[k] for k in ("id", "name", "label", "created_at", "updated_at")
    }
    assert row["override_autoremove"] is False
    assert row["project"] == {"id": project_id, "name": "site"}
    assert row["user"] == {
        "id": customer.user.id,
        "full_name": "Ada Lovelace",
        "email": customer.user.email,
        "external_id": None,
        "labels": {},
    }


@pytest.mark.parametrize("query", ["?all=true", "?all=false", "?all=0", "?all=", "?all[]=1"])
def test_any_all_parameter_renders_the_whole_service_with_its_owner(
    sim: Sim, customer: Customer, clock: FakeClock, query: str
) -> None:
    """``index.rabl`` tests ``params[:all]`` for Ruby truthiness, so any value
    given (``false``, ``0``, the empty string, an array) extends ``show.rabl``:
    the user API's ``api/container_services/_service.rabl`` partial, plus
    ``override_autoremove``, ``project`` and the owner."""
    project_id = _order(customer, clock, "web", "db")
    user_api = _user_api_rows(sim, customer, project_id)
    rows = _rows(sim, query)
    assert [r["label"] for r in rows] == ["db", "web"]
    for row in rows:
        partial = user_api[row["id"]]
        assert set(row) == set(partial) | {"override_autoremove", "user"}
        assert {k: row[k] for k in partial} == partial
        assert row["override_autoremove"] is False
        assert row["user"]["id"] == customer.user.id


@pytest.mark.parametrize("query", ["", "?all", "?everything=true"])
def test_an_absent_or_valueless_all_renders_short_rows(
    sim: Sim, customer: Customer, clock: FakeClock, query: str
) -> None:
    """``?all`` without ``=`` is nil to Rails' query parser, so falsy in
    ``index.rabl``'s ``if params[:all]``."""
    _order(customer, clock, "edge")
    (row,) = _rows(sim, query)
    assert set(row) == SHORT_KEYS


def test_services_of_every_user_are_listed_by_label(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``container_services_controller.rb#index`` lists
    ``Deployment::ContainerService.all.sorted``: every service of every
    project, those of a project being deleted too (until it is removed),
    ordered by label (``order(:label)`` in
    ``app/models/deployment/container_service.rb``), not by project, owner
    or id."""
    other = make_customer(admin, "other@example.com", external_id="cus_other")
    sim.control("POST", "projects", {"deleting_seconds": 30})
    mine = _order(customer, clock, "wordpress", "cache")
    theirs = _order(other, clock, "database", "zeta", name="shop")
    going = _order(customer, clock, "backup", name="old")
    customer.client.delete_project(going)
    rows = _rows(sim, "?all=true")
    assert [(r["label"], r["project"]["id"]) for r in rows] == [
        ("backup", going),
        ("cache", mine),
        ("database", theirs),
        ("wordpress", mine),
        ("zeta", theirs),
    ]
    owners = {r["label"]: (r["user"]["id"], r["user"]["external_id"]) for r in rows}
    assert owners["zeta"] == (other.user.id, "cus_other")
    assert owners["cache"] == (customer.user.id, None)
    clock.advance(30)
    assert "backup" not in [r["label"] for r in _rows(sim)]


def test_the_index_paginates_like_the_other_lists(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``container_services_controller.rb#index`` pages with ``paginate``
    (api-pagination over will_paginate): ``Total``, ``Per-Page`` and a
    ``Link`` whose URLs keep the request's own query (``all`` too) with
    ``page`` replaced."""
    _order(customer, clock, "a", "b", "c")
    first = sim.raw("GET", PATH, params={"all": "true", "per_page": 2})
    assert (first.headers["Total"], first.headers["Per-Page"]) == ("3", "2")
    assert [r["label"] for r in first.json()["container_services"]] == ["a", "b"]
    assert set(first.links) == {"next", "last"}
    assert first.links["next"]["url"].endswith(f"{PATH}?all=true&page=2&per_page=2")
    second = sim.raw("GET", first.links["next"]["url"].removeprefix(sim.url))
    assert [r["label"] for r in second.json()["container_services"]] == ["c"]
    assert "image" in second.json()["container_services"][0]
    assert set(second.links) == {"first", "prev"}
    default = sim.raw("GET", PATH)
    assert (default.headers["Total"], default.headers["Per-Page"]) == ("3", "30")
    assert "Link" not in default.headers
    past = sim.raw("GET", PATH, params={"page": 5})
    assert (past.json(), past.headers["Total"]) == ({"container_services": []}, "3")


def test_only_admins_may_list_or_show_services(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``Api::Admin::ApplicationController#ensure_admin!``
    (``app/controllers/api/admin/application_controller.rb``): a customer's
    credential, or none, is ``401 {"errors":["Not Authorized"]}``."""
    _order(customer, clock, "edge")
    (service_id,) = [r["id"] for r in _rows(sim)]
    for path in (PATH, f"{PATH}?all=true", f"{PATH}/{service_id}"):
        for auth in ((customer.username, customer.password), None):
            response = sim.raw("GET", path, auth=auth)
            assert (response.status_code, response.json()) == (
                401,
                {"errors": ["Not Authorized"]},
            )


def test_show_renders_the_whole_service_under_its_root(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``show``: ``Deployment::ContainerService.find_by id:`` then
    ``show.rabl`` under ``container_service`` (the model's element name), the
    same as a row of the index with ``all``. The id is cast as ActiveRecord
    casts it and stops at a dot (a format); an unknown one is
    ``api_obj_missing`` without a message (``app/controllers/concerns/api_response.rb``):
    404 with an empty body."""
    _order(customer, clock, "edge")
    (row,) = _rows(sim, "?all=true")
    for key in (str(row["id"]), f"{row['id']}abc", f"{row['id']}.json"):
        response = sim.raw("GET", f"{PATH}/{key}")
        assert (response.status_code, response.json()) == (200, {"container_service": row})
    for key in ("999", "abc", "0"):
        missing = sim.raw("GET", f"{PATH}/{key}")
        assert (missing.status_code, missing.content) == (404, b"")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("POST", ""),
        ("GET", "/new"),
        ("GET", "/{id}/edit"),
        ("PATCH", "/{id}"),
        ("PUT", "/{id}"),
        ("DELETE", "/{id}"),
    ],
)
def test_the_other_resource_routes_have_no_action(
    sim: Sim, customer: Customer, clock: FakeClock, method: str, suffix: str
) -> None:
    """``resources :container_services`` (``config/routes/api/admin.rb``)
    routes all seven actions, ``container_services_controller.rb`` has two
    (``index``, ``show``): the rest is Rails' HTML 404 page, before any
    authentication, and changes nothing."""
    _order(customer, clock, "edge")
    (service_id,) = [r["id"] for r in _rows(sim)]
    path = PATH + suffix.format(id=service_id)
    for auth in ((customer.username, customer.password), None):
        response = sim.raw(method, path, auth=auth, json={"container_service": {"label": "x"}})
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")
    assert [s["label"] for s in sim.state()["services"]] == ["edge"]
