"""Orders: strong params and validation, the 201 answer,
asynchronous progress on the injected clock, visibility, no idempotency."""

from __future__ import annotations

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


def test_orders_go_pending_processing_completed_with_a_project(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    sim.control("POST", "orders", {"pending_seconds": 2, "processing_seconds": 3})
    placed = place_wordpress(customer.client, "blog")
    seen = []
    for _ in range(6):
        order = customer.client.get_order(placed.id)
        seen.append((order.status.value, order.project_id))
        clock.advance(1)
    assert seen == [
        ("pending", None),
        ("pending", None),
        ("processing", None),
        ("processing", None),
        ("processing", None),
        ("completed", seen[-1][1]),
    ]
    project_id = seen[-1][1]
    assert project_id is not None
    order = customer.client.get_order(placed.id)
    assert (order.project_name, order.location_id) == ("blog", 1)
    assert [p.id for p in customer.client.list_projects()] == [project_id]


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


def test_orders_can_be_made_to_fail(sim: Sim, customer: Customer, clock: FakeClock) -> None:
    sim.control("POST", "orders", {"outcome": "fail"})
    placed = place_wordpress(customer.client)
    clock.advance(60)
    assert customer.client.get_order(placed.id).status is OrderStatus.FAILED
    assert customer.client.list_projects() == ()


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
