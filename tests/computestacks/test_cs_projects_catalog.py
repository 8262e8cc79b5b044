"""Projects and their teardown (delete answers 202, then the project is
``deleting``, hidden, and later gone; admins may delete any project) and the
catalog the client reads: products repeated per region with decimal strings,
all locations, images with their settings, dependencies and variants."""

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
