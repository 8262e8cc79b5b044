"""Container service power and containers (controller 9.3.1:
``PUT /api/container_services/{id}/power/{action}``,
``app/controllers/api/container_services/power_controller.rb`` through
``app/services/power_cycle_container_service.rb``; ``GET
/api/container_services/{id}/containers``,
``app/controllers/api/container_services/containers_controller.rb`` with
``app/views/api/containers/_container.rabl``), against the simulator over real
HTTP, and the client's calls, parsing and retry policy against scripted answers."""

from __future__ import annotations

from typing import Any

import pytest

from computestacks.cs_support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    MARIADB,
    WORDPRESS,
    Customer,
    FakeClock,
    Reply,
    Scripted,
    Sim,
    make_customer,
)
from csonboard.computestacks import POWER_ACTIONS, ComputeStacksClient, Container, NewOrder
from csonboard.errors import (
    ComputeStacksNotFound,
    ComputeStacksProtocolError,
    ComputeStacksUnavailable,
)
from csonboard.metrics.instruments import endpoint_template

CONTAINER_KEYS = {
    "id", "name", "req_state", "stats", "current_state", "local_ip", "public_ip", "created_at",
    "updated_at", "region", "availability_zone", "ingress_rules", "on_latest_image", "links",
}  # fmt: skip
UNKNOWN_ACTION = {
    "errors": ["Unknown action.", "Available actions are: start, stop, restart, rebuild"]
}


def _auth(customer: Customer) -> tuple[str, str]:
    return (customer.username, customer.password)


def _services(customer: Customer, clock: FakeClock) -> list[int]:
    """WordPress with MariaDB, completed; the ids of its two services."""
    placed = customer.client.create_order(NewOrder("site", (WORDPRESS, MARIADB), location_id=1))
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    return [s.id for s in customer.client.list_project_services(project_id)]


def _power(sim: Sim, customer: Customer, service_id: int, action: str, method: str = "PUT") -> Any:
    path = f"/api/container_services/{service_id}/power/{action}"
    return sim.raw(method, path, auth=_auth(customer))


def _states(client: ComputeStacksClient, service_id: int) -> list[tuple[str, str | None]]:
    return [(c.req_state, c.current_state) for c in client.list_service_containers(service_id)]


def _service_state(sim: Sim, customer: Customer, service_id: int) -> str:
    for service in sim.state()["services"]:
        if service["id"] == service_id:
            project = service["project"]
    rows = sim.raw("GET", f"/api/projects/{project}/services", auth=_auth(customer)).json()
    return str(
        next(s["current_state"] for s in rows["container_services"] if s["id"] == service_id)
    )


# -- the simulator ------------------------------------------------------------------------


def test_orders_make_services_whose_containers_run(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """A completed order's containers are built and running
    (``DeployProjectService`` builds every container asked to run)."""
    for service_id in _services(customer, clock):
        assert _states(customer.client, service_id) == [("running", "online")]
        assert _service_state(sim, customer, service_id) == "online"


def test_stop_is_202_empty_then_stopping_then_offline_and_stays_stopped(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``PowerController#update`` answers ``202 {}`` once a
    ``PowerCycleContainerService`` was performed per container; the stop
    itself runs in the background (``StopWorker``, ``stop!`` sets
    ``req_state``): the container is ``stopping`` (its stop event is active)
    and the service ``working``, then ``offline`` and ``inactive``, until
    something starts it."""
    wordpress, database = _services(customer, clock)
    response = _power(sim, customer, wordpress, "stop")
    assert (response.status_code, response.json()) == (202, {})
    assert _states(customer.client, wordpress) == [("stopped", "stopping")]
    assert _service_state(sim, customer, wordpress) == "working"
    clock.advance(1)
    assert _states(customer.client, wordpress) == [("stopped", "offline")]
    assert _service_state(sim, customer, wordpress) == "inactive"
    clock.advance(30 * 24 * 3600)
    assert _states(customer.client, wordpress) == [("stopped", "offline")]
    assert _states(customer.client, database) == [("running", "online")]
    start = _power(sim, customer, wordpress, "start")
    assert (start.status_code, start.json()) == (202, {})
    assert _states(customer.client, wordpress) == [("running", "starting")]
    clock.advance(1)
    assert _states(customer.client, wordpress) == [("running", "online")]
    assert _service_state(sim, customer, wordpress) == "online"


def test_restart_and_rebuild_leave_the_service_running_even_from_stopped(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``restart!`` sets ``req_state`` running; a rebuild stops and deletes
    the container (``req_state`` stopped meanwhile) and provisions it anew
    started (``RebuildWorker`` without ``keep_prev_state``). Both count as
    starting (``Events::CodeState.start_codes``)."""
    wordpress, database = _services(customer, clock)
    customer.client.power(wordpress, "stop")
    customer.client.power(database, "stop")
    clock.advance(1)
    customer.client.power(wordpress, "restart")
    customer.client.power(database, "rebuild")
    assert _states(customer.client, wordpress) == [("running", "starting")]
    assert _states(customer.client, database) == [("stopped", "starting")]
    clock.advance(1)
    assert _states(customer.client, wordpress) == [("running", "online")]
    assert _states(customer.client, database) == [("running", "online")]


def test_an_action_while_one_runs_is_cancelled_but_still_answered_202(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``PowerCycleContainerService#in_progress?``: a container with an active
    start or stop event cancels the new event ("Action already in
    progress"), and the controller answers 202 all the same."""
    sim.control("POST", "services", {"power_seconds": 10})
    wordpress, _ = _services(customer, clock)
    customer.client.power(wordpress, "stop")
    clock.advance(5)
    started = _power(sim, customer, wordpress, "start")
    assert (started.status_code, started.json()) == (202, {})
    assert _states(customer.client, wordpress) == [("stopped", "stopping")]
    clock.advance(5)
    assert _states(customer.client, wordpress) == [("stopped", "offline")]


def test_power_is_ignored_while_the_order_still_processes(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """While the order job runs, its provisioning event (a start code) is
    active on the new containers, so a power action is cancelled."""
    sim.control("POST", "orders", {"processing_seconds": 10})
    placed = customer.client.create_order(NewOrder("site", (WORDPRESS, MARIADB), location_id=1))
    clock.advance(2)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    wordpress, _ = (s.id for s in customer.client.list_project_services(project_id))
    assert _states(customer.client, wordpress) == [("running", "offline")]
    customer.client.power(wordpress, "stop")
    clock.advance(10)
    assert _states(customer.client, wordpress) == [("running", "online")]


def test_power_seconds_0_finishes_at_once(sim: Sim, customer: Customer, clock: FakeClock) -> None:
    settings = sim.control("POST", "services", {"power_seconds": 0})
    assert settings == {"resize_seconds": 0.0, "power_seconds": 0.0}
    wordpress, _ = _services(customer, clock)
    customer.client.power(wordpress, "stop")
    assert _states(customer.client, wordpress) == [("stopped", "offline")]
    assert sim.state()["settings"]["power_seconds"] == 0.0


def test_patch_is_the_same_update(sim: Sim, customer: Customer, clock: FakeClock) -> None:
    """``resources :power`` routes both PATCH and PUT to ``update``; ``:id``
    (the action) stops at a dot, the rest being a format."""
    wordpress, database = _services(customer, clock)
    response = _power(sim, customer, wordpress, "stop", method="PATCH")
    assert (response.status_code, response.json()) == (202, {})
    dotted = _power(sim, customer, database, "stop.json")
    assert (dotted.status_code, dotted.json()) == (202, {})
    clock.advance(1)
    assert _states(customer.client, wordpress) == [("stopped", "offline")]
    assert _states(customer.client, database) == [("stopped", "offline")]


def test_an_unknown_action_is_422_with_the_controllers_messages(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``api_obj_error(["Unknown action.", "Available actions are: ..."])``,
    after the service was found."""
    wordpress, _ = _services(customer, clock)
    for action in ("pause", "START", "build"):
        response = _power(sim, customer, wordpress, action)
        assert (response.status_code, response.json()) == (422, UNKNOWN_ACTION)
    assert _states(customer.client, wordpress) == [("running", "online")]


def test_an_invisible_service_is_404_empty_before_the_action_is_read(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``load_service``: ``Deployment::ContainerService.find_for``
    (``app/models/concerns/authorization/container_service.rb``) lets the
    project's owner and any admin see a service; anyone else, and an
    unknown id, gets ``head :not_found``, whatever the action."""
    wordpress, _ = _services(customer, clock)
    stranger = make_customer(admin, "stranger@example.com")
    for service_id, who in ((wordpress, stranger), (999, customer)):
        for action in ("stop", "pause"):
            response = _power(sim, who, service_id, action)
            assert (response.status_code, response.content) == (404, b"")
        listing = sim.raw(
            "GET", f"/api/container_services/{service_id}/containers", auth=_auth(who)
        )
        assert (listing.status_code, listing.content) == (404, b"")
        with pytest.raises(ComputeStacksNotFound):
            who.client.power(service_id, "stop")
        with pytest.raises(ComputeStacksNotFound):
            who.client.list_service_containers(service_id)
    assert _states(customer.client, wordpress) == [("running", "online")]
    admin.power(wordpress, "stop")
    clock.advance(1)
    assert _states(admin, wordpress) == [("stopped", "offline")]


def test_the_owner_may_still_power_a_service_of_a_project_being_deleted(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``ContainerService#can_view?`` lets the owner in before it looks at the
    project's ``deleting`` status (``Deployment#can_view?`` does not)."""
    sim.control("POST", "projects", {"deleting_seconds": 30})
    wordpress, _ = _services(customer, clock)
    (project,) = customer.client.list_projects()
    customer.client.delete_project(project.id)
    customer.client.power(wordpress, "stop")
    assert _states(customer.client, wordpress) == [("stopped", "stopping")]


def test_containers_render_the_controller_partial_unpaginated(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``index.rabl`` of ``_container.rabl`` partials, by name, not paginated.
    Its ``deployment_id: :project_id`` and ``service_id:
    :container_service_id`` attributes name no method of
    ``Deployment::Container``, and rabl leaves those out."""
    wordpress, _ = _services(customer, clock)
    (project,) = customer.client.list_projects()
    response = sim.raw(
        "GET", f"/api/container_services/{wordpress}/containers", auth=_auth(customer)
    )
    assert response.status_code == 200
    assert "Total" not in response.headers and "Link" not in response.headers
    body = response.json()
    assert set(body) == {"containers"}
    (raw,) = body["containers"]
    assert set(raw) == CONTAINER_KEYS
    assert (raw["req_state"], raw["current_state"]) == ("running", "online")
    assert raw["stats"] == {"cpu": 0.0, "mem": 0.0}
    assert raw["region"] == {"id": 1, "name": "Amsterdam"}
    assert raw["availability_zone"]["id"] in (1, 2)
    assert (raw["ingress_rules"], raw["on_latest_image"]) == ([], True)
    (service,) = (s for s in customer.client.list_project_services(project.id) if s.id == wordpress)
    assert raw["name"] == f"{service.name}-{raw['id']}"
    assert raw["links"] == {
        "container_service": f"/api/container_services/{wordpress}",
        "logs": f"/api/containers/{raw['id']}/logs",
        "project": f"/api/projects/{project.id}",
    }
    assert customer.client.list_service_containers(wordpress) == (
        Container(
            id=raw["id"],
            name=raw["name"],
            service_id=wordpress,
            req_state="running",
            current_state="online",
        ),
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/container_services/1/power"),
        ("POST", "/api/container_services/1/power"),
        ("GET", "/api/container_services/1/power/stop"),
        ("DELETE", "/api/container_services/1/power/stop"),
        ("POST", "/api/container_services/1/containers"),
        ("GET", "/api/container_services/1/containers/1"),
        ("DELETE", "/api/container_services/1/containers/1"),
    ],
)
def test_routed_but_missing_power_and_container_actions_are_html_404s(
    sim: Sim, method: str, path: str
) -> None:
    """``resources :power`` and ``resources :containers`` route every action,
    but only ``update`` and ``index`` exist."""
    response = sim.raw(method, path, auth=None)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


# -- the client alone ----------------------------------------------------------------------

CONTAINER = {"id": 9, "name": "calm-hopper3-9", "req_state": "running", "current_state": "online"}


def test_power_puts_to_the_action_path(scripted: Scripted) -> None:
    client, net = scripted(*(Reply(202, {}) for _ in POWER_ACTIONS))
    for action in POWER_ACTIONS:
        client.power(5, action)
    assert [(s.method, s.url, s.body) for s in net.sent] == [
        ("PUT", f"http://cs.test/api/container_services/5/power/{a}", None) for a in POWER_ACTIONS
    ]
    assert endpoint_template("PUT", "/api/container_services/5/power/stop") == (
        "PUT /api/container_services/{id}/power/stop"
    )
    assert endpoint_template("GET", "/api/container_services/5/containers") == (
        "GET /api/container_services/{id}/containers"
    )


def test_an_unknown_action_is_refused_before_sending(scripted: Scripted) -> None:
    client, net = scripted()
    for action in ("pause", "Stop", ""):
        with pytest.raises(ValueError, match="start, stop, restart, rebuild"):
            client.power(5, action)
    assert net.sent == []


@pytest.mark.parametrize("action", ["start", "stop"])
def test_start_and_stop_are_retried_when_transient(
    scripted: Scripted, sleeps: list[float], action: str
) -> None:
    client, net = scripted(Reply(502, {"errors": ["boom"]}), Reply(202, {}))
    client.power(5, action)
    assert len(net.sent) == 2 and len(sleeps) == 1


@pytest.mark.parametrize("action", ["restart", "rebuild"])
def test_restart_and_rebuild_are_sent_once(scripted: Scripted, action: str) -> None:
    client, net = scripted(Reply(502, {"errors": ["boom"]}))
    with pytest.raises(ComputeStacksUnavailable):
        client.power(5, action)
    assert len(net.sent) == 1


def test_a_lost_stop_answer_is_retried_and_ends_stopped(
    sim: Sim, customer: Customer, clock: FakeClock, sleeps: list[float]
) -> None:
    wordpress, _ = _services(customer, clock)
    sim.fault(method="PUT", path="/api/container_services/*", status=502, effect=True)
    customer.client.power(wordpress, "stop")
    assert len(sleeps) == 1
    clock.advance(1)
    assert _states(customer.client, wordpress) == [("stopped", "offline")]


def test_containers_are_parsed_with_the_service_asked_about(scripted: Scripted) -> None:
    extra = {**CONTAINER, "surprise": [1], "id": "9", "current_state": ""}
    client, net = scripted(Reply(200, {"containers": [extra]}))
    assert client.list_service_containers(5) == (
        Container(
            id=9, name="calm-hopper3-9", service_id=5, req_state="running", current_state=None
        ),
    )
    assert net.sent[0].url == "http://cs.test/api/container_services/5/containers"


@pytest.mark.parametrize(
    ("container", "field"),
    [
        ({**CONTAINER, "id": None}, "containers[0].id"),
        ({k: v for k, v in CONTAINER.items() if k != "name"}, "containers[0].name"),
        ({**CONTAINER, "req_state": None}, "containers[0].req_state"),
        ({**CONTAINER, "current_state": ["online"]}, "containers[0].current_state"),
    ],
)
def test_container_parsing_is_strict_on_required_fields(
    scripted: Scripted, container: dict[str, object], field: str
) -> None:
    client, _ = scripted(Reply(200, {"containers": [container]}))
    with pytest.raises(ComputeStacksProtocolError) as caught:
        client.list_service_containers(5)
    assert "GET /api/container_services/5/containers" in str(caught.value)
    assert field in str(caught.value)


def test_a_container_listing_without_containers_is_a_protocol_error(scripted: Scripted) -> None:
    client, _ = scripted(Reply(200, {"container": CONTAINER}))
    with pytest.raises(ComputeStacksProtocolError, match="containers"):
        client.list_service_containers(5)


def test_admins_see_every_services_containers(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    wordpress, _ = _services(customer, clock)
    admin = ComputeStacksClient(
        sim.url, sim.session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD
    )
    assert admin.list_service_containers(wordpress) == customer.client.list_service_containers(
        wordpress
    )
