"""Projects (controller 9.3.1: ``app/views/api/projects/show.rabl``,
``app/views/api/admin/projects/show.rabl``, ``app/controllers/api/projects_controller.rb``,
``app/controllers/api/admin/projects_controller.rb``) and their teardown
(delete answers 202, then the project is ``deleting``, hidden, and later gone;
admins may delete any project) and the catalog the client reads: products
repeated per region with decimal strings, all locations, images with their
settings, dependencies and variants."""

from __future__ import annotations

from decimal import Decimal

import pytest

from computestacks.cs_support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    Customer,
    FakeClock,
    Sim,
    make_customer,
    place_wordpress,
)
from csonboard.computestacks import ComputeStacksClient
from csonboard.errors import ComputeStacksNotFound


def _project(customer: Customer, clock: FakeClock) -> int:
    placed = place_wordpress(customer.client)
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    return project_id


def test_project_delete_is_202_then_deleting_hidden_and_later_gone(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    sim.control("POST", "projects", {"deleting_seconds": 30})
    project_id = _project(customer, clock)
    response = sim.raw(
        "DELETE", f"/api/projects/{project_id}", auth=(customer.username, customer.password)
    )
    assert (response.status_code, response.json()) == (202, {})
    assert customer.client.list_projects() == ()
    (deleting,) = admin.list_user_projects(customer.user.id)
    assert (deleting.id, deleting.current_state) == (project_id, "deleting")
    clock.advance(30)
    assert admin.list_user_projects(customer.user.id) == ()


def test_admins_may_delete_any_project_strangers_may_not(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock)
    stranger = make_customer(admin, "stranger@example.com")
    with pytest.raises(ComputeStacksNotFound):
        stranger.client.delete_project(project_id)
    assert [p.id for p in customer.client.list_projects()] == [project_id]
    admin.delete_project(project_id)
    assert customer.client.list_projects() == ()


def test_full_teardown_projects_then_user(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    _project(customer, clock)
    for project in admin.list_user_projects(customer.user.id):
        admin.delete_project(project.id)
    clock.advance(60)
    assert admin.list_user_projects(customer.user.id) == ()
    admin.delete_user(customer.user.id)
    assert [u["id"] for u in sim.state()["users"]] == [1]


PROJECT_KEYS = {
    "id", "name", "skip_ssh", "current_state", "created_at", "updated_at",
    "container_image_ids", "links", "metadata",
}  # fmt: skip


def test_projects_render_show_rabl_with_its_links(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """The user API's project has ``region`` (the location) and
    ``availability_zone``; the admin API's has the owner instead. Both link
    ``services``, ``images`` and ``bastions`` under the project, and list the
    images of its services (``container_images``) with their labels."""
    project_id = _project(customer, clock)
    path = f"/api/projects/{project_id}"
    mine = sim.raw("GET", path, auth=(customer.username, customer.password)).json()["project"]
    assert set(mine) == PROJECT_KEYS | {"region", "availability_zone"}
    assert mine["region"] == {"id": 1, "name": "Amsterdam"}
    assert mine["links"] == {
        "services": f"{path}/services",
        "container_images": f"{path}/images",
        "bastions": f"{path}/bastions",
    }
    assert (mine["current_state"], mine["container_image_ids"]) == ("ok", [100, 101])
    assert mine["metadata"]["image_names"] == ["WordPress", "MariaDB"]
    assert len(mine["metadata"]["icons"]) == 2
    (listed,) = sim.raw("GET", f"/api/admin/users/{customer.user.id}/projects").json()["projects"]
    assert set(listed) == PROJECT_KEYS | {"user"}
    assert listed["user"] == {
        "id": customer.user.id,
        "full_name": "Ada Lovelace",
        "email": customer.user.email,
        "external_id": None,
        "labels": {},
    }
    assert {k: listed[k] for k in PROJECT_KEYS} == {k: mine[k] for k in PROJECT_KEYS}
    shown = sim.raw("GET", f"/api/admin/projects/{project_id}").json()
    assert shown == {"project": listed}


def test_admin_project_lists_are_newest_first_and_the_users_by_name(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``Deployment.sorted`` (``created_at`` descending) for the admin API;
    ``sort_by_name`` for the owner's ``/api/projects``."""
    ids = {}
    for name in ("beta", "alpha", "gamma"):
        placed = place_wordpress(customer.client, name)
        clock.advance(5)
        ids[name] = customer.client.get_order(placed.id).project_id
    assert [p.name for p in customer.client.list_projects()] == ["alpha", "beta", "gamma"]
    newest_first = [ids["gamma"], ids["alpha"], ids["beta"]]
    assert [p.id for p in admin.list_user_projects(customer.user.id)] == newest_first
    every = sim.raw("GET", "/api/admin/projects").json()["projects"]
    assert [p["id"] for p in every] == newest_first
    by_user = sim.raw("GET", "/api/admin/projects", params={"user_id": customer.user.id})
    assert [p["id"] for p in by_user.json()["projects"]] == newest_first


def test_admin_project_lists_of_an_unknown_user_and_of_user_0(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``Api::Admin::ProjectsController#index``: an unknown user is
    ``api_obj_missing(["Unknown user."])``; a ``user_id`` whose ``to_i`` is 0
    lists every project."""
    project_id = _project(customer, clock)
    for path, params in (
        ("/api/admin/users/999/projects", {}),
        ("/api/admin/projects", {"user_id": "999"}),
    ):
        response = sim.raw("GET", path, params=params)
        assert (response.status_code, response.json()) == (404, {"errors": ["Unknown user."]})
    with pytest.raises(ComputeStacksNotFound):
        admin.list_user_projects(999)
    for path, params in (
        ("/api/admin/users/abc/projects", {}),
        ("/api/admin/projects", {"user_id": "abc"}),
    ):
        rows = sim.raw("GET", path, params=params).json()["projects"]
        assert [p["id"] for p in rows] == [project_id]
    missing = sim.raw("GET", "/api/admin/projects/999")
    assert (missing.status_code, missing.content) == (404, b"")


def test_a_project_being_deleted_is_gone_for_its_owner_not_for_admins(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``Deployment#can_view?`` (``app/models/concerns/authorization/deployment.rb``)
    refuses the owner a project whose status is ``deleting``; admins always
    see it. So the owner's second delete is a 404."""
    sim.control("POST", "projects", {"deleting_seconds": 30})
    project_id = _project(customer, clock)
    customer.client.delete_project(project_id)
    auth = (customer.username, customer.password)
    for method, path in (
        ("GET", f"/api/projects/{project_id}"),
        ("DELETE", f"/api/projects/{project_id}"),
    ):
        response = sim.raw(method, path, auth=auth)
        assert (response.status_code, response.content) == (404, b"")
    services = sim.raw("GET", f"/api/projects/{project_id}/services", auth=auth)
    assert (services.status_code, services.json()) == (404, {"errors": ["Unknown project"]})
    with pytest.raises(ComputeStacksNotFound):
        customer.client.delete_project(project_id)
    shown = sim.raw("GET", f"/api/projects/{project_id}").json()["project"]
    assert shown["current_state"] == "deleting"
    admin.delete_project(project_id)


def test_products_repeat_per_region_with_decimal_strings(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    rows = sim.raw("GET", "/api/products", auth=(customer.username, customer.password))
    raw = rows.json()["products"]
    assert all(isinstance(r["price"], str) and isinstance(r["cpu"], str) for r in raw)
    products = customer.client.list_products()
    # The default group's plan: Small, Medium, Large, each once per region it is sold in.
    assert [(p.id, p.region_id) for p in products] == [
        (10, 1), (10, 2), (10, 3), (11, 1), (11, 2), (11, 3), (12, 1), (12, 2),
    ]  # fmt: skip
    assert products[0].price == Decimal("5.0")
    reseller = make_customer(admin, "reseller@example.com", user_group_id=2)
    assert 13 in {p.id for p in reseller.client.list_products()}


def test_locations_list_all_but_orders_need_a_group_location(
    customer: Customer,
) -> None:
    locations = customer.client.list_locations()
    assert [(loc.id, [r.id for r in loc.regions]) for loc in locations] == [(1, [1, 2]), (2, [3])]


def test_images_carry_settings_and_dependencies_variants_come_from_admin(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    image = customer.client.get_image(100)
    assert [p.name for p in image.setting_params] == ["title", "wp_password"]
    assert image.required_containers == (101,)
    assert image.variants == ()
    raw = sim.raw("GET", "/api/container_images/100").json()["container_image"]
    assert isinstance(raw["image_variants"], dict)
    assert raw["image_variants"]["id"] == 100
    admin_image = admin.get_admin_image(100)
    assert [(v.id, v.is_default) for v in admin_image.variants] == [(1000, True), (1001, False)]
    assert admin.default_variant_id(100) == 1000
    assert admin.default_variant_id(102) == 1020
    with pytest.raises(ComputeStacksNotFound):
        admin.get_admin_image(999)


def test_every_image_is_listed_across_pages(sim: Sim) -> None:
    small_pages = ComputeStacksClient(
        sim.url, sim.session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD, page_size=2
    )

    images = small_pages.list_images()

    assert sorted(image.id for image in images) == [100, 101, 102]
    wordpress = next(image for image in images if image.id == 100)
    assert wordpress.required_containers == (101,)
