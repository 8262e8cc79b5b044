"""The user API, ``/api/...``, acting as the credential's owner: the catalog,
orders, projects and container services, as the controller's
``app/controllers/api/`` serves them (``products_controller.rb``,
``locations_controller.rb``, ``container_images_controller.rb``,
``orders_controller.rb``, ``projects_controller.rb``,
``projects/services_controller.rb``, ``container_services/resize_controller.rb``,
``container_services/power_controller.rb``,
``container_services/containers_controller.rb``) and ``GET /api/version``
(``application_controller.rb``). Orders are visible to their owner only;
projects to their owner while not being deleted and to any admin; services to
their project's owner and to any admin."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from csonboard.sandbox.computestacks import ordering, render, services
from csonboard.sandbox.computestacks.auth import require_user
from csonboard.sandbox.computestacks.records import OrderRecord
from csonboard.sandbox.computestacks.versions import DEPRECATED_VERSIONS, LATEST_VERSION
from csonboard.sandbox.computestacks.wire import (
    bad_request,
    current_user,
    errors,
    listed,
    not_found,
    refused,
    root,
    ruby_to_i,
    unknown_call,
    world,
)

user_api = Blueprint("cs_user", __name__, url_prefix="/api")
user_api.before_request(require_user)

SERVER_VERSION = "9.3.1"
"""The controller's ``VERSION`` file at release 9.3.1."""


@user_api.get("/version")
def version() -> dict[str, object]:
    """The server version and the API versions it serves, as
    ``Api::ApplicationController#version`` computes them:
    ``api_latest_version`` is the first two parts of the version joined
    (``93``), not the newest API version VersionCake serves (80), and the
    available versions are the deprecated then the supported ones."""
    major, minor = SERVER_VERSION.split(".")[:2]
    return {
        "version": SERVER_VERSION,
        "api_latest_version": int(major + minor),
        "api_available_versions": [*sorted(DEPRECATED_VERSIONS), LATEST_VERSION],
    }


@user_api.get("/products")
def products() -> dict[str, object]:
    """Not paginated: one row per package product of the caller's plan x
    region (``User#package_list``; resource products such as bandwidth are
    in the plan but never listed)."""
    with world() as w:
        return {"products": render.product_rows(w, current_user(w))}


@user_api.get("/locations")
def locations() -> Response:
    """Every location, including ones the caller's group may not order in."""
    with world() as w:
        rows = [render.location(loc) for _, loc in sorted(w.catalog.locations.items())]
    return listed("locations", rows)


@user_api.get("/locations/<int:location_id>")
def show_location(location_id: int) -> Response | dict[str, object]:
    """One location, or 404 empty."""
    with world() as w:
        loc = w.catalog.locations.get(location_id)
        return {"location": render.location(loc)} if loc else not_found()


@user_api.get("/container_images")
def images() -> Response:
    """Every (system) image, paginated."""
    with world() as w:
        rows = [
            render.user_image(w, image)["container_image"]
            for _, image in sorted(w.catalog.images.items())
        ]
    return listed("container_images", rows)


@user_api.get("/container_images/<int:image_id>")
def show_image(image_id: int) -> Response | dict[str, object]:
    """One image, with ``image_variants`` in the regressed single-object shape."""
    with world() as w:
        image = w.catalog.images.get(image_id)
        return render.user_image(w, image) if image else not_found()


@user_api.post("/orders")
def create_order() -> Response | tuple[dict[str, object], int]:
    """201 ``{order:{id, redirect_url: null, load_balancer_ip}}``, already pending."""
    params = ordering.permit_order(root("order"))
    if params is None:
        return errors(500, ["param is missing or the value is empty: order"])
    with world() as w:
        placed = ordering.place_order(w, current_user(w), params)
        if not isinstance(placed, OrderRecord):
            return refused(placed)
        body = {"id": placed.id, "redirect_url": None, "load_balancer_ip": placed.load_balancer_ip}
    return {"order": body}, 201


@user_api.get("/orders")
def list_orders() -> Response:
    """The caller's orders, newest first."""
    with world() as w:
        user = current_user(w)
        mine = [o for o in w.orders.values() if o.user_id == user.id]
        mine.sort(key=lambda o: o.created_at, reverse=True)
        rows = [render.order_row(w, o) for o in mine]
    return listed("orders", rows)


@user_api.get("/orders/<order_id>")
def show_order(order_id: str) -> Response:
    """The caller's order; anyone else's is 404 empty."""
    with world() as w:
        order = w.orders.get(order_id)
        if order is None or order.user_id != current_user(w).id:
            return not_found()
        return jsonify(render.order(w, order, admin=False))


@user_api.get("/projects")
def list_projects() -> Response:
    """The caller's projects, without those being deleted, by name
    (``sort_by_name``; ties by id). Those a failed order left are listed."""
    with world() as w:
        mine = sorted(w.live_projects(current_user(w).id), key=lambda p: (p.name, p.id))
        rows = [render.project(w, p) for p in mine]
    return listed("projects", rows)


@user_api.get("/projects/<int:project_id>")
def show_project(project_id: int) -> Response | dict[str, object]:
    """The owner's project while it is not being deleted (any, for an admin);
    else 404 empty."""
    with world() as w:
        project = w.visible_project(current_user(w), project_id)
        return {"project": render.project(w, project)} if project else not_found()


@user_api.get("/projects/<int:project_id>/services")
def project_services(project_id: int) -> Response:
    """The project's container services (load balancers excluded; the
    simulator makes none), paginated. A project not visible (as for
    :func:`show_project`) is ``404 {"errors":["Unknown project"]}``
    (``app/controllers/api/projects/base_controller.rb``)."""
    with world() as w:
        project = w.visible_project(current_user(w), project_id)
        if project is None:
            return errors(404, ["Unknown project"])
        rows = [render.service(w, s) for s in w.project_services(project.id)]
    return listed("container_services", rows)


@user_api.post("/container_services/<int:service_id>/resize")
def resize_service(service_id: int) -> Response | tuple[dict[str, object], int]:
    """202 ``{}`` whether the product changes or is already the service's;
    404 empty for a service not visible; 400 (not the envelope) without the
    ``container_service`` root; 422 for an unknown product."""
    params = services.permit_resize(root("container_service"))
    with world() as w:
        service = w.visible_service(current_user(w), service_id)
        if service is None:
            return not_found()
        if params is None:
            return bad_request()
        refusal = services.resize(w, service, params)
        if refusal is not None:
            return refused(refusal)
    return {}, 202


def _service_id(key: str) -> int | None:
    """The ``:container_service_id`` segment as ActiveRecord casts it; None
    when it holds a dot (Rails' segment stops there: no route matches)."""
    return None if "." in key else ruby_to_i(key)


@user_api.route("/container_services/<key>/power/<action>", methods=["PUT", "PATCH"])
def power_service(key: str, action: str) -> Response | tuple[dict[str, object], int]:
    """``202 {}`` once every container of the service was asked to ``start``,
    ``stop``, ``restart`` or ``rebuild`` (see :func:`.services.power`); 422
    for another action; 404 empty for a service the caller may not see,
    before the action is looked at. ``action`` stops at a dot (a format)."""
    service_id = _service_id(key)
    if service_id is None:
        return unknown_call()
    with world() as w:
        service = w.visible_service(current_user(w), service_id)
        if service is None:
            return not_found()
        refusal = services.power(w, service, action.partition(".")[0])
        if refusal is not None:
            return refused(refusal)
    return {}, 202


@user_api.get("/container_services/<key>/containers")
def service_containers(key: str) -> Response | dict[str, object]:
    """``{"containers": [...]}``: the service's containers by name, as
    ``app/views/api/containers/_container.rabl`` renders them; not
    paginated. 404 empty for a service the caller may not see."""
    service_id = _service_id(key)
    if service_id is None:
        return unknown_call()
    with world() as w:
        service = w.visible_service(current_user(w), service_id)
        if service is None:
            return not_found()
        return {"containers": [render.container(w, c) for c in w.service_containers(service.id)]}


@user_api.delete("/projects/<int:project_id>")
def delete_project(project_id: int) -> Response | tuple[dict[str, object], int]:
    """202 ``{}``: the project is marked deleting, hidden, and removed later.
    Its owner can no longer see it, so the owner's second delete is 404
    empty; an admin's is 202 again."""
    with world() as w:
        project = w.visible_project(current_user(w), project_id)
        if project is None:
            return not_found()
        w.start_deleting(project)
    return {}, 202
