"""Container services of a project and resizing them (controller 6171b1d, 9.3.1:
``GET /api/projects/{id}/services``, ``app/controllers/api/projects/services_controller.rb``
with ``app/views/api/container_services/_service.rabl``;
``POST /api/container_services/{id}/resize``), against the simulator over real
HTTP, and the client's parsing and retry policy against scripted answers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from computestacks.cs_support import (
    MARIADB,
    WORDPRESS,
    Customer,
    FakeClock,
    Reply,
    Scripted,
    Sim,
    make_customer,
)
from csonboard.computestacks import ComputeStacksClient, NewOrder, OrderContainer, Service
from csonboard.errors import (
    ComputeStacksNotFound,
    ComputeStacksProtocolError,
    ComputeStacksValidationError,
)

EDGE = OrderContainer(1021, 12, "edge")
"""Nginx on its non-default variant with the Large product."""

SERVICE_KEYS = {
    "id", "name", "label", "default_domain", "public_ip", "command", "is_load_balancer",
    "has_domain_management", "current_state", "auto_scale", "auto_scale_horizontal",
    "auto_scale_max", "labels", "created_at", "updated_at", "region", "availability_zone",
    "project", "image", "package", "has_sftp", "ingress_rules", "product_id", "bastions",
    "domains", "deployed_containers", "help", "links",
}  # fmt: skip
PACKAGE_KEYS = {
    "label", "cpu", "memory", "storage", "bandwidth", "local_disk", "backup", "memory_swap",
    "memory_swappiness",
}  # fmt: skip


def _project(customer: Customer, clock: FakeClock, *containers: OrderContainer) -> int:
    """Place an order of ``containers`` (WordPress with MariaDB by default) in
    Amsterdam, let it complete, and return its project id."""
    order = NewOrder("site", containers or (WORDPRESS, MARIADB), location_id=1)
    placed = customer.client.create_order(order)
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    return project_id


def _auth(customer: Customer) -> tuple[str, str]:
    return (customer.username, customer.password)


def _resize(sim: Sim, customer: Customer, service_id: int, body: object) -> Any:
    return sim.raw(
        "POST", f"/api/container_services/{service_id}/resize", auth=_auth(customer), json=body
    )


def _products(client: ComputeStacksClient, project_id: int) -> list[int | None]:
    return [s.product_id for s in client.list_project_services(project_id)]


# -- listing -------------------------------------------------------------------------------


def test_a_completed_order_makes_one_service_per_container_with_its_image_variant_and_product(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``ContainerServiceProvisioner#init_service!``: the label is the one
    ordered, the name is generated (``NamesGenerator.name(project.id)``: an
    adjective, a surname and the project's id), so the two differ."""
    project_id = _project(customer, clock, WORDPRESS, MARIADB, EDGE)
    services = customer.client.list_project_services(project_id)
    rows = [(s.label, s.project_id, s.image_id, s.variant_id, s.product_id) for s in services]
    assert rows == [
        ("wordpress", project_id, 100, 1000, 10),
        ("database", project_id, 101, 1010, 11),
        ("edge", project_id, 102, 1021, 12),
    ]
    for service in services:
        assert re.fullmatch(rf"[a-z]+-[a-z]+{project_id}", service.name), service.name
    assert sim.state()["services"] == [
        {
            "id": s.id,
            "project": project_id,
            "label": s.label,
            "image": s.image_id,
            "variant": s.variant_id,
            "product": s.product_id,
            "resizing_to": None,
        }
        for s in services
    ]


def test_services_are_made_as_processing_starts_and_a_failure_leaves_them(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """The provisioning loop of ``ProcessOrderService#perform`` makes the
    services (``working`` while the order's event runs) before ``finalize!``
    deploys them; ``fail_process!`` removes none of them."""
    sim.control("POST", "orders", {"pending_seconds": 2, "processing_seconds": 5})
    placed = customer.client.create_order(NewOrder("site", (WORDPRESS, MARIADB), location_id=1))
    assert sim.state()["services"] == []
    clock.advance(2)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    path = f"/api/projects/{project_id}/services"
    working = sim.raw("GET", path, auth=_auth(customer)).json()["container_services"]
    assert [(s["label"], s["current_state"]) for s in working] == [
        ("wordpress", "working"),
        ("database", "working"),
    ]
    clock.advance(5)
    done = sim.raw("GET", path, auth=_auth(customer)).json()["container_services"]
    assert [s["current_state"] for s in done] == ["online", "online"]
    sim.control("POST", "orders", {"outcome": "fail", "pending_seconds": 0})
    failed = customer.client.create_order(NewOrder("doomed", (EDGE,), location_id=1))
    clock.advance(60)
    left = customer.client.get_order(failed.id).project_id
    assert left is not None
    assert [s.label for s in customer.client.list_project_services(left)] == ["edge"]
    assert [s["label"] for s in sim.state()["services"]] == ["wordpress", "database", "edge"]


def test_services_render_the_controller_partial(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``_service.rabl``: the simulator's images have no ingress params and no
    volumes, so a service has no ingress rules, domains, default domain,
    public IP (an empty list, ``ServiceIngress#public_ip``), domain management
    or SFTP of its own; ``bastions`` lists the project's one bastion
    (``SftpProvisioner`` keeps one per project); ``auto_scale_horizontal``
    and ``auto_scale_max`` have the schema's defaults; ``current_state`` is
    ``online`` when a container is asked to run."""
    project_id = _project(customer, clock, EDGE)
    response = sim.raw("GET", f"/api/projects/{project_id}/services", auth=_auth(customer))
    assert response.status_code == 200
    (raw,) = response.json()["container_services"]
    assert set(raw) == SERVICE_KEYS
    assert raw["region"] == {"id": 1, "name": "Amsterdam"}
    assert raw["availability_zone"]["id"] in (1, 2)
    assert raw["project"] == {"id": project_id, "name": "site"}
    assert raw["is_load_balancer"] is False
    assert raw["current_state"] == "online"
    assert (raw["default_domain"], raw["public_ip"], raw["has_domain_management"]) == (
        None,
        [],
        False,
    )
    assert (raw["auto_scale_horizontal"], raw["auto_scale_max"]) == (True, "0.0")
    image = raw["image"]
    assert {k: image[k] for k in ("id", "label")} == {"id": 102, "label": "Nginx"}
    assert set(image["variant"]) == {"id", "label", "name", "path", "default", "sort"}
    assert (image["variant"]["id"], image["variant"]["default"]) == (1021, False)
    assert set(raw["package"]) == PACKAGE_KEYS
    assert (raw["package"]["label"], raw["package"]["cpu"]) == ("Large", "4.0")
    assert raw["product_id"] == 12
    assert (raw["has_sftp"], raw["ingress_rules"], raw["domains"]) == (False, [], [])
    (bastion,) = raw["bastions"]
    assert isinstance(bastion, int)
    assert raw["deployed_containers"] == 1
    assert set(raw["help"]) == {"general", "ssh", "remote", "domain"}
    base = f"/api/container_services/{raw['id']}"
    assert raw["links"] == {
        "project": f"/api/projects/{project_id}",
        "bastions": f"{base}/bastions",
        "containers": f"{base}/containers",
        "events": f"{base}/events",
        "ingress_rules": f"{base}/ingress_rules",
        "metadata": f"{base}/metadata",
        "logs": f"{base}/logs",
        "products": "/api/products",
    }


def test_services_paginate_with_total_per_page_and_link(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock, WORDPRESS, MARIADB, EDGE)
    path = f"/api/projects/{project_id}/services"
    first = sim.raw("GET", path, auth=_auth(customer), params={"per_page": 2})
    assert (first.headers["Total"], first.headers["Per-Page"]) == ("3", "2")
    assert 'rel="next"' in first.headers["Link"]
    assert len(first.json()["container_services"]) == 2
    second = sim.raw("GET", path, auth=_auth(customer), params={"per_page": 2, "page": 2})
    assert [s["label"] for s in second.json()["container_services"]] == ["edge"]
    assert 'rel="next"' not in second.headers["Link"]
    small = ComputeStacksClient(
        sim.url, sim.session, username=customer.username, password=customer.password, page_size=2
    )
    assert [s.label for s in small.list_project_services(project_id)] == [
        "wordpress", "database", "edge",
    ]  # fmt: skip


def test_an_order_into_an_existing_project_adds_its_services_there(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock)
    order = {"project_name": "site", "project_id": project_id, "containers": [EDGE.to_body()]}
    response = sim.raw("POST", "/api/orders", auth=_auth(customer), json={"order": order})
    assert response.status_code == 201
    clock.advance(5)
    services = customer.client.list_project_services(project_id)
    assert [s.label for s in services] == ["wordpress", "database", "edge"]
    assert {s.project_id for s in services} == {project_id}


def test_services_go_with_their_project_and_their_user(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    sim.control("POST", "projects", {"deleting_seconds": 30})
    deleted = _project(customer, clock)
    kept = _project(customer, clock, EDGE)
    customer.client.delete_project(deleted)
    # A project being deleted still has its services until it is removed.
    assert len(admin.list_project_services(deleted)) == 2
    clock.advance(30)
    assert [s["project"] for s in sim.state()["services"]] == [kept]
    admin.delete_project(kept)
    clock.advance(30)
    admin.delete_user(customer.user.id)
    assert sim.state()["services"] == []


# -- visibility ----------------------------------------------------------------------------


def test_unknown_project_is_404_unknown_project_and_service_404_empty(
    sim: Sim, customer: Customer
) -> None:
    """``Api::Projects::BaseController#find_deployment`` answers
    ``api_obj_missing(["Unknown project"])``; the service controllers'
    ``load_service`` a bare ``api_obj_missing``."""
    listing = sim.raw("GET", "/api/projects/999/services", auth=_auth(customer))
    assert (listing.status_code, listing.json()) == (404, {"errors": ["Unknown project"]})
    resize = _resize(sim, customer, 999, {"container_service": {"product_id": 11}})
    assert (resize.status_code, resize.content) == (404, b"")
    with pytest.raises(ComputeStacksNotFound):
        customer.client.list_project_services(999)
    with pytest.raises(ComputeStacksNotFound):
        customer.client.resize_service(999, 11)


def test_another_users_services_are_404_for_users_and_visible_to_admins(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock)
    wordpress, _ = customer.client.list_project_services(project_id)
    stranger = make_customer(admin, "stranger@example.com")
    listing = sim.raw("GET", f"/api/projects/{project_id}/services", auth=_auth(stranger))
    assert (listing.status_code, listing.json()) == (404, {"errors": ["Unknown project"]})
    resize = _resize(sim, stranger, wordpress.id, {"container_service": {"product_id": 11}})
    assert (resize.status_code, resize.content) == (404, b"")
    with pytest.raises(ComputeStacksNotFound):
        stranger.client.list_project_services(project_id)
    with pytest.raises(ComputeStacksNotFound):
        stranger.client.resize_service(wordpress.id, 11)
    assert _products(customer.client, project_id) == [10, 11]
    assert admin.list_project_services(project_id) == customer.client.list_project_services(
        project_id
    )
    admin.resize_service(wordpress.id, 12)
    assert _products(customer.client, project_id) == [12, 11]


# -- resizing ------------------------------------------------------------------------------


def test_resize_is_202_empty_object_and_the_next_listing_has_the_product(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock)
    wordpress, _ = customer.client.list_project_services(project_id)
    response = _resize(sim, customer, wordpress.id, {"container_service": {"product_id": 12}})
    assert (response.status_code, response.json()) == (202, {})
    assert _products(customer.client, project_id) == [12, 11]
    customer.client.resize_service(wordpress.id, 11)
    assert _products(customer.client, project_id) == [11, 11]
    assert [s["product"] for s in sim.state()["services"]] == [11, 11]


def test_resize_to_the_same_product_is_a_202_that_changes_nothing(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    sim.control("POST", "services", {"resize_seconds": 10})
    project_id = _project(customer, clock)
    path = f"/api/projects/{project_id}/services"
    before = sim.raw("GET", path, auth=_auth(customer)).json()
    wordpress = before["container_services"][0]
    clock.advance(1)
    response = _resize(sim, customer, wordpress["id"], {"container_service": {"product_id": 10}})
    assert (response.status_code, response.json()) == (202, {})
    after = sim.raw("GET", path, auth=_auth(customer)).json()
    assert after == before
    assert [s["resizing_to"] for s in sim.state()["services"]] == [None, None]


def test_resize_to_an_unknown_product_is_422_missing_package_id(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock)
    wordpress, _ = customer.client.list_project_services(project_id)
    response = _resize(sim, customer, wordpress.id, {"container_service": {"product_id": 99}})
    assert (response.status_code, response.json()) == (422, {"errors": ["Missing package id: 99"]})
    with pytest.raises(ComputeStacksValidationError) as caught:
        customer.client.resize_service(wordpress.id, 99)
    assert caught.value.errors == ["Missing package id: 99"]
    blank = _resize(sim, customer, wordpress.id, {"container_service": {"product_id": None}})
    assert (blank.status_code, blank.json()) == (422, {"errors": ["Missing package id: "]})
    assert _products(customer.client, project_id) == [10, 11]


def test_resize_without_the_container_service_root_is_a_plain_400(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock)
    wordpress, _ = customer.client.list_project_services(project_id)
    for body in ({"product_id": 12}, {"container_service": {}}, None):
        response = _resize(sim, customer, wordpress.id, body)
        assert response.status_code == 400
        assert not response.headers["Content-Type"].startswith("application/json")
    assert _products(customer.client, project_id) == [10, 11]


def test_resize_does_not_check_the_billing_plan(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock, EDGE)
    (edge,) = customer.client.list_project_services(project_id)
    assert 13 not in {p.id for p in customer.client.list_products()}
    customer.client.resize_service(edge.id, 13)
    assert _products(customer.client, project_id) == [13]


def test_a_suspended_users_resize_is_accepted(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    project_id = _project(customer, clock)
    wordpress, _ = customer.client.list_project_services(project_id)
    admin.suspend_user(customer.user.id)
    response = _resize(sim, customer, wordpress.id, {"container_service": {"product_id": 12}})
    assert (response.status_code, response.json()) == (202, {})
    assert _products(customer.client, project_id) == [12, 11]


def test_a_resize_with_a_delay_keeps_the_old_product_while_working(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    assert sim.control("POST", "services", {"resize_seconds": 10}) == {
        "resize_seconds": 10.0,
        "power_seconds": 1.0,
    }
    project_id = _project(customer, clock)
    wordpress, _ = customer.client.list_project_services(project_id)
    customer.client.resize_service(wordpress.id, 12)
    path = f"/api/projects/{project_id}/services"
    raw = sim.raw("GET", path, auth=_auth(customer)).json()["container_services"][0]
    assert (raw["product_id"], raw["current_state"]) == (10, "working")
    assert sim.state()["services"][0]["resizing_to"] == 12
    clock.advance(9)
    assert _products(customer.client, project_id) == [10, 11]
    clock.advance(1)
    raw = sim.raw("GET", path, auth=_auth(customer)).json()["container_services"][0]
    assert (raw["product_id"], raw["current_state"]) == (12, "online")
    assert sim.state()["settings"]["resize_seconds"] == 10.0


def test_a_resize_whose_answer_was_lost_is_retried_and_ends_at_the_same_product(
    sim: Sim, customer: Customer, clock: FakeClock, sleeps: list[float]
) -> None:
    project_id = _project(customer, clock)
    wordpress, _ = customer.client.list_project_services(project_id)
    sim.fault(method="POST", path="/api/container_services/*", status=502, effect=True)
    customer.client.resize_service(wordpress.id, 12)
    assert len(sleeps) == 1
    assert _products(customer.client, project_id) == [12, 11]


# -- the client alone ----------------------------------------------------------------------

SERVICE = {
    "id": 5,
    "name": "wordpress",
    "label": "wordpress",
    "project": {"id": 3, "name": "site"},
    "image": {"id": 100, "label": "WordPress", "variant": {"id": 1000, "label": "php8.2"}},
    "package": {},
    "product_id": 10,
}


def test_services_are_parsed_with_their_ids(scripted: Scripted) -> None:
    extra = {**SERVICE, "surprise": [1, 2], "product_id": "10", "current_state": "alert"}
    client, net = scripted(Reply(200, {"container_services": [extra]}))
    assert client.list_project_services(3) == (
        Service(
            id=5,
            name="wordpress",
            label="wordpress",
            project_id=3,
            image_id=100,
            variant_id=1000,
            product_id=10,
            current_state="alert",
        ),
    )
    assert net.sent[0].url.startswith("http://cs.test/api/projects/3/services?page=1")


def test_absent_or_null_optional_nodes_read_as_none(scripted: Scripted) -> None:
    bare = {"id": 5, "name": "n", "label": "l", "project": None, "image": {"id": 100}}
    client, _ = scripted(Reply(200, {"container_services": [bare]}))
    (service,) = client.list_project_services(3)
    assert (service.project_id, service.image_id, service.variant_id, service.product_id) == (
        None,
        100,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("service", "field"),
    [
        ({**SERVICE, "id": None}, "container_services[0].id"),
        ({k: v for k, v in SERVICE.items() if k != "name"}, "container_services[0].name"),
        ({**SERVICE, "label": 7}, "container_services[0].label"),
        ({**SERVICE, "project": {"name": "site"}}, "container_services[0].project.id"),
        ({**SERVICE, "image": {"id": "x"}}, "container_services[0].image.id"),
        (
            {**SERVICE, "image": {"id": 100, "variant": {"label": "php8.2"}}},
            "container_services[0].image.variant.id",
        ),
        ({**SERVICE, "product_id": "ten"}, "container_services[0].product_id"),
    ],
)
def test_service_parsing_is_strict_on_required_fields(
    scripted: Scripted, service: dict[str, object], field: str
) -> None:
    client, _ = scripted(Reply(200, {"container_services": [service]}))
    with pytest.raises(ComputeStacksProtocolError) as caught:
        client.list_project_services(3)
    assert "GET /api/projects/3/services" in str(caught.value)
    assert field in str(caught.value)


def test_a_listing_without_container_services_is_a_protocol_error(scripted: Scripted) -> None:
    client, _ = scripted(Reply(200, {"services": [SERVICE]}))
    with pytest.raises(ComputeStacksProtocolError, match="container_services"):
        client.list_project_services(3)


def test_listing_and_resize_are_retried_when_transient(
    scripted: Scripted, sleeps: list[float]
) -> None:
    server_error = Reply(500, {"errors": ["boom"]})
    client, net = scripted(
        server_error,
        Reply(200, {"container_services": [SERVICE]}),
        server_error,
        Reply(202, {}),
    )
    assert [s.id for s in client.list_project_services(3)] == [5]
    client.resize_service(5, 11)
    assert len(net.sent) == 4
    assert len(sleeps) == 2
    resize = net.sent[3]
    assert (resize.method, resize.url) == ("POST", "http://cs.test/api/container_services/5/resize")
    assert resize.body == {"container_service": {"product_id": 11}}


def test_a_400_to_a_resize_is_a_protocol_error(scripted: Scripted) -> None:
    client, _ = scripted(Reply(400, raw="Bad Request", headers={"Content-Type": "text/html"}))
    with pytest.raises(ComputeStacksProtocolError) as caught:
        client.resize_service(5, 11)
    assert caught.value.status == 400
