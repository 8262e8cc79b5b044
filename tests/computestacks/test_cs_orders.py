"""Orders: strong params and validation, the 201 answer,
asynchronous progress on the injected clock (the project made as processing
starts, left behind by a failure: controller 9.3.1,
``app/services/process_order_service.rb``), visibility, no idempotency."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from computestacks.cs_support import (
    MARIADB,
    WORDPRESS,
    Customer,
    FakeClock,
    Sim,
    make_customer,
    place_wordpress,
    wordpress_order,
)
from csonboard.computestacks import (
    ComputeStacksClient,
    NewOrder,
    OrderContainer,
    OrderStatus,
)
from csonboard.errors import (
    ComputeStacksNotFound,
    ComputeStacksUnavailable,
    ComputeStacksValidationError,
)

NGINX = OrderContainer(1020, 10, "web")


def _post(sim: Sim, customer: Customer, order: object) -> Any:
    return sim.raw(
        "POST", "/api/orders", auth=(customer.username, customer.password), json={"order": order}
    )


def _refusal(customer: Customer, order: NewOrder) -> list[object]:
    with pytest.raises(ComputeStacksValidationError) as caught:
        customer.client.create_order(order)
    return caught.value.errors


def test_image_id_is_dropped_so_the_order_is_an_invalid_image(sim: Sim, customer: Customer) -> None:
    container = {"image_id": 100, "name": "wp", "resources": {"product_id": 10}}
    response = _post(
        sim, customer, {"project_name": "p", "location_id": 1, "containers": [container]}
    )
    assert response.status_code == 422
    assert response.json() == {"errors": ["Invalid image. Image Variant ID:  | wp."]}
    assert sim.state()["orders"] == []


def test_project_name_is_always_required(customer: Customer) -> None:
    assert _refusal(customer, NewOrder("", (NGINX,), location_id=1)) == ["Missing project name"]
    assert _refusal(customer, NewOrder("p", (), location_id=1)) == ["Missing containers"]


@pytest.mark.parametrize(
    ("product_id", "message"),
    [
        (99, "Unknown package: 99"),
        (13, "Invalid package: 13"),
    ],
)
def test_products_must_exist_and_be_in_the_billing_plan(
    customer: Customer, product_id: int, message: str
) -> None:
    order = NewOrder("p", (OrderContainer(1020, product_id, "web"),), location_id=1)
    assert _refusal(customer, order) == [message]


def test_products_must_fit_the_image_minimums(admin: ComputeStacksClient) -> None:
    reseller = make_customer(admin, "reseller@example.com", user_group_id=2)
    order = NewOrder("p", (OrderContainer(1010, 13, "db"),), location_id=1)
    (message,) = _refusal(reseller, order)
    assert isinstance(message, str)
    assert message.startswith("Package Tiny (resellers only) not suitable for the image MariaDB.")


def test_missing_product_selection_is_refused(sim: Sim, customer: Customer) -> None:
    response = _post(
        sim, customer, {"project_name": "p", "containers": [{"image_variant_id": 1020}]}
    )
    assert response.json() == {"errors": ["Missing package selection for Nginx"]}


def test_products_must_be_sold_in_a_region_of_the_location(
    admin: ComputeStacksClient,
) -> None:
    reseller = make_customer(admin, "reseller@example.com", user_group_id=2)
    large_in_toronto = NewOrder("p", (OrderContainer(1020, 12, "web"),), location_id=2)
    with pytest.raises(ComputeStacksUnavailable) as caught:
        reseller.client.create_order(large_in_toronto)
    assert caught.value.status == 500


def test_required_dependencies_must_be_ordered_together(customer: Customer) -> None:
    errors = _refusal(customer, NewOrder("p", (WORDPRESS,), location_id=1))
    assert errors == ["Missing required dependent services. Have [100], Need [101]", 1000]
    placed = customer.client.create_order(NewOrder("p", (WORDPRESS, MARIADB), location_id=1))
    assert placed.id


def test_domains_already_in_use_are_refused(customer: Customer) -> None:
    web = OrderContainer(1020, 10, "web", domains=("shop.example", "shop.example"))
    assert _refusal(customer, NewOrder("p", (web,), location_id=1)) == [
        "Domain shop.example already in use."
    ]
    first = OrderContainer(1020, 10, "web", domains=("www.example",))
    customer.client.create_order(NewOrder("p", (first,), location_id=1))
    assert _refusal(customer, NewOrder("q", (first,), location_id=1)) == [
        "Domain www.example already in use."
    ]


def test_over_quota_is_422_with_an_empty_list(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    sim.control("POST", "orders", {"max_containers": 3})
    place_wordpress(customer.client)
    clock.advance(5)
    assert _refusal(customer, wordpress_order("second")) == []
    single = NewOrder("third", (NGINX,), location_id=1)
    assert customer.client.create_order(single).id


def test_unpermitted_keys_vanish(sim: Sim, customer: Customer) -> None:
    container = {**NGINX.to_body(), "qty": 5, "source": "clone-me"}
    order = {"project_name": "p", "location_id": 1, "region_id": 3, "containers": [container]}
    response = _post(sim, customer, order)
    assert response.status_code == 201
    shown = sim.raw("GET", f"/api/admin/orders/{response.json()['order']['id']}").json()
    data = shown["order"]["order_data"]
    assert data["region_id"] in (1, 2)  # region 3 is Toronto: the request's region_id was dropped
    (raw_container,) = data["raw_order"]
    assert (raw_container["qty"], raw_container["source"]) == (1, None)


def test_a_location_outside_the_users_group_is_a_500(sim: Sim, customer: Customer) -> None:
    toronto = NewOrder("p", (NGINX,), location_id=2)
    with pytest.raises(ComputeStacksUnavailable) as caught:
        customer.client.create_order(toronto)
    assert caught.value.status == 500
    response = _post(
        sim, customer, {"project_name": "p", "location_id": 2, "containers": [NGINX.to_body()]}
    )
    assert response.status_code == 500
    assert isinstance(response.json()["errors"][0], str)
    assert sim.state()["orders"] == []


def test_missing_order_root_is_a_500(sim: Sim, customer: Customer) -> None:
    response = sim.raw(
        "POST", "/api/orders", auth=(customer.username, customer.password), json={"x": 1}
    )
    assert response.status_code == 500
    assert "errors" in response.json()


def test_create_answers_201_while_already_pending(sim: Sim, customer: Customer) -> None:
    response = _post(
        sim,
        customer,
        {
            "project_name": "site",
            "location_id": 1,
            "containers": [c.to_body() for c in (WORDPRESS, MARIADB)],
        },
    )
    assert response.status_code == 201
    body = response.json()["order"]
    assert set(body) == {"id", "redirect_url", "load_balancer_ip"}
    assert body["redirect_url"] is None
    assert body["load_balancer_ip"] == "203.0.113.10"
    assert len(body["id"]) == 36
    assert customer.client.get_order(body["id"]).status is OrderStatus.PENDING


def test_orders_go_pending_processing_completed_and_link_the_project_as_processing_starts(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``ProcessOrderService#perform``: ``processing!`` then ``init_project!``,
    which saves the project and the order's link to it before any service
    is provisioned, so a processing order already names its project, which
    is ``working`` (its provisioning event runs) until the order completes."""
    sim.control("POST", "orders", {"pending_seconds": 2, "processing_seconds": 3})
    placed = place_wordpress(customer.client, "blog")
    seen = []
    for _ in range(6):
        order = customer.client.get_order(placed.id)
        projects = [(p.id, p.current_state) for p in customer.client.list_projects()]
        seen.append((order.status.value, order.project_id, projects))
        clock.advance(1)
    project_id = seen[-1][1]
    assert project_id is not None
    assert seen == [
        ("pending", None, []),
        ("pending", None, []),
        ("processing", project_id, [(project_id, "working")]),
        ("processing", project_id, [(project_id, "working")]),
        ("processing", project_id, [(project_id, "working")]),
        ("completed", project_id, [(project_id, "ok")]),
    ]
    order = customer.client.get_order(placed.id)
    assert (order.project_name, order.location_id) == ("blog", 1)


def test_a_failed_order_leaves_its_project_and_every_service_by_default(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``fail_process!`` removes nothing: the project ``init_project!`` made
    stays linked to the order and visible to the owner (``/api/projects``)
    and to admins (the user's projects, ``/api/admin/projects``), ``alert``
    (``provisioning_failed?``). The simulator's default failure is in
    ``finalize!``, after the provisioning loop made every ordered service
    (``ContainerServiceProvisioner``); before ``DeployProjectService``
    built them, so their containers are asked to run but were never built."""
    sim.control("POST", "orders", {"outcome": "fail"})
    placed = place_wordpress(customer.client)
    clock.advance(60)
    order = customer.client.get_order(placed.id)
    assert order.status is OrderStatus.FAILED
    assert order.project_id is not None
    assert admin.get_admin_order(placed.id).project_id == order.project_id
    (mine,) = customer.client.list_projects()
    assert (mine.id, mine.name, mine.current_state) == (order.project_id, "site", "alert")
    (listed,) = admin.list_user_projects(customer.user.id)
    # The admin API adds the owner, the user API does not.
    assert (mine.user_id, listed.user_id) == (None, customer.user.id)
    assert replace(listed, user_id=None) == mine
    every = sim.raw("GET", "/api/admin/projects").json()["projects"]
    assert [p["id"] for p in every] == [order.project_id]
    services = customer.client.list_project_services(order.project_id)
    assert [s.label for s in services] == ["wordpress", "database"]
    raw = sim.raw(
        "GET",
        f"/api/projects/{order.project_id}/services",
        auth=(customer.username, customer.password),
    ).json()["container_services"]
    assert [(s["current_state"], s["bastions"]) for s in raw] == [("alert", []), ("alert", [])]
    for service in services:
        (container,) = customer.client.list_service_containers(service.id)
        assert (container.req_state, container.current_state) == ("running", "offline")
    shown = admin.get_user(customer.user.id)
    counts = sim.raw("GET", f"/api/admin/users/{shown.id}").json()["user"]["services"]
    assert (counts["deployments"], counts["container_services"], counts["containers"]) == (1, 2, 2)


def test_a_failure_while_provisioning_leaves_the_services_made_before_it(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """A service whose provisioning fails is rolled back
    (``ContainerServiceProvisioner#rollback!``) and the loop stops: the
    project stays with the services made before it (``built_before_failure``
    of the test controls); with 0, the project alone."""
    assert (
        sim.control("POST", "orders", {"outcome": "fail", "built_before_failure": 1})[
            "built_before_failure"
        ]
        == 1
    )
    one = place_wordpress(customer.client, "one")
    sim.control("POST", "orders", {"built_before_failure": 0})
    none = place_wordpress(customer.client, "none")
    clock.advance(60)
    first = customer.client.get_order(one.id).project_id
    second = customer.client.get_order(none.id).project_id
    assert first is not None and second is not None
    assert [s.label for s in customer.client.list_project_services(first)] == ["wordpress"]
    assert customer.client.list_project_services(second) == ()
    assert {p.name: p.current_state for p in customer.client.list_projects()} == {
        "one": "alert",
        "none": "alert",
    }
    response = sim.session.post(f"{sim.url}/_sandbox/orders", json={"built_before_failure": -1})
    assert response.status_code == 400


def test_what_a_failed_order_left_counts_against_the_quota(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``User#can_order_containers?`` counts ``deployed_containers``: those of
    every project of the user, a failed order's included."""
    sim.control("POST", "orders", {"outcome": "fail", "max_containers": 3})
    place_wordpress(customer.client)
    clock.advance(60)
    sim.control("POST", "orders", {"outcome": "complete"})
    assert _refusal(customer, wordpress_order("second")) == []


def test_a_deleted_projects_orders_no_longer_name_it(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``Deployment has_many :orders, dependent: :nullify``: once the project
    is gone, its orders show ``project`` null."""
    sim.control("POST", "projects", {"deleting_seconds": 10})
    placed = place_wordpress(customer.client)
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    customer.client.delete_project(project_id)
    assert customer.client.get_order(placed.id).project_id == project_id
    clock.advance(10)
    order = customer.client.get_order(placed.id)
    assert (order.status, order.project_id) == (OrderStatus.COMPLETED, None)
    (row,) = sim.raw("GET", "/api/orders", auth=(customer.username, customer.password)).json()[
        "orders"
    ]
    assert row["project"] is None


def test_an_order_into_a_project_removed_meanwhile_makes_a_new_one(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``init_project!`` with the order's ``deployment`` nullified (its
    project was removed after the order was placed) builds a new project
    under the name the order recorded: the old project's own name
    (``BuildOrderService`` keeps it)."""
    sim.control("POST", "projects", {"deleting_seconds": 1})
    placed = place_wordpress(customer.client, "blog")
    clock.advance(5)
    old = customer.client.get_order(placed.id).project_id
    assert old is not None
    sim.control("POST", "orders", {"pending_seconds": 30})
    order = {"project_name": "ignored", "project_id": old, "containers": [NGINX.to_body()]}
    response = _post(sim, customer, order)
    assert response.status_code == 201
    customer.client.delete_project(old)
    clock.advance(60)
    added = customer.client.get_order(response.json()["order"]["id"])
    assert added.status is OrderStatus.COMPLETED
    assert added.project_id not in (None, old)
    assert [(p.id, p.name) for p in customer.client.list_projects()] == [(added.project_id, "blog")]


def test_a_pending_order_already_names_the_project_it_asked_for(
    sim: Sim, customer: Customer
) -> None:
    # order_data echoes the request: how a retry after a lost answer
    # recognises its own order before any project exists.
    sim.control("POST", "orders", {"outcome": "stuck"})
    placed = place_wordpress(customer.client, "blog")

    order = customer.client.get_order(placed.id)

    assert (order.status, order.project_id, order.project_name) == (
        OrderStatus.PENDING,
        None,
        "blog",
    )


def test_stuck_orders_stay_pending_forever(sim: Sim, customer: Customer, clock: FakeClock) -> None:
    sim.control("POST", "orders", {"outcome": "stuck"})
    placed = place_wordpress(customer.client)
    clock.advance(365 * 24 * 3600)
    assert customer.client.get_order(placed.id).status is OrderStatus.PENDING


def test_the_plan_applies_to_orders_placed_after_it(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    before = place_wordpress(customer.client, "before")
    sim.control("POST", "orders", {"outcome": "stuck"})
    after = place_wordpress(customer.client, "after")
    clock.advance(60)
    assert customer.client.get_order(before.id).status is OrderStatus.COMPLETED
    assert customer.client.get_order(after.id).status is OrderStatus.PENDING


def test_orders_are_visible_only_to_their_owner(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    placed = place_wordpress(customer.client)
    stranger = make_customer(admin, "stranger@example.com")
    with pytest.raises(ComputeStacksNotFound):
        stranger.client.get_order(placed.id)
    assert stranger.client.list_orders() == ()
    assert [o.id for o in customer.client.list_orders()] == [placed.id]
    response = sim.raw(
        "GET", f"/api/orders/{placed.id}", auth=(stranger.username, stranger.password)
    )
    assert (response.status_code, response.content) == (404, b"")


def test_admin_reads_use_deployment_and_the_list_is_a_bare_array(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    placed = place_wordpress(customer.client)
    clock.advance(5)
    shown = sim.raw("GET", f"/api/admin/orders/{placed.id}").json()["order"]
    assert "project" not in shown
    assert shown["deployment"]["name"] == "site"
    assert shown["user"]["id"] == customer.user.id
    order = admin.get_admin_order(placed.id)
    assert order.project_id == shown["deployment"]["id"]
    assert order.user_id == customer.user.id
    listed = sim.raw("GET", "/api/admin/orders").json()
    assert isinstance(listed, list)
    assert [row["order"]["id"] for row in listed] == [placed.id]


def test_the_users_list_is_newest_first_across_pages(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    placed = []
    for i in range(5):
        placed.append(customer.client.create_order(NewOrder(f"p{i}", (NGINX,), location_id=1)).id)
        clock.advance(1)
    small = ComputeStacksClient(
        sim.url, sim.session, username=customer.username, password=customer.password, page_size=2
    )
    assert [o.id for o in small.list_orders()] == placed[::-1]


def test_repeating_the_post_creates_another_order(sim: Sim, customer: Customer) -> None:
    first = place_wordpress(customer.client)
    second = place_wordpress(customer.client)
    assert first.id != second.id
    assert len(sim.state()["orders"]) == 2
