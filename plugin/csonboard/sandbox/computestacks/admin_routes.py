"""The admin API, ``/api/admin/...``: users, their API credentials, suspension,
SSO and projects, a user's billing usage rows, project, container service,
admin image, order and product reads, as the controller's
``app/controllers/api/admin/`` serves them (``users_controller.rb`` and
``users/``, ``subscriptions/billing_usages_controller.rb``,
``projects_controller.rb``, ``container_services_controller.rb``,
``container_images_controller.rb``, ``orders_controller.rb``,
``products_controller.rb``).

Every route needs Basic auth by an admin's credential; anything else is
``401 {"errors":["Not Authorized"]}``, never 403.

Lists sorted by a key that is not unique (users by name, container services
by label) page their ties unstably, as PostgreSQL does: see
:func:`~.wire.tie_unstable`. Lists sorted by a practically unique key
(projects by ``created_at``) keep one order.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from flask import Blueprint, Response, jsonify, request

from csonboard.sandbox.computestacks import accounts, billing, render
from csonboard.sandbox.computestacks.auth import require_admin
from csonboard.sandbox.computestacks.records import ProjectRecord, ServiceRecord, UserRecord
from csonboard.sandbox.computestacks.state import World
from csonboard.sandbox.computestacks.wire import (
    bad_request,
    empty,
    errors,
    listed,
    listed_records,
    not_found,
    paginate,
    rails_param_given,
    refused,
    root,
    ruby_to_i,
    tie_unstable,
    unknown_call,
    world,
)

admin = Blueprint("cs_admin", __name__, url_prefix="/api/admin")
admin.before_request(require_admin)


def _resolve(w: World, key: str) -> UserRecord | None:
    """The user a ``{key}`` segment names. Rails' ``:id`` stops at a dot (the
    rest is a format suffix), so only the part before it is looked up; a
    ``%2F`` inside the segment survives routing (see app.keep_encoded_slashes)."""
    return accounts.find_user(w, key.partition(".")[0], request.args)


def _include_usage() -> bool:
    """``@include_usage = params[:include] == 'balance'``."""
    return request.args.get("include") == "balance"


@admin.get("/users")
def list_users() -> Response:
    """All users, sorted by name, as ``index.v51.rabl`` renders them (less than
    a show: no phone, company name, run rate or counts); there are no search
    parameters at all, only ``?include=balance``.

    ``users_controller.rb#index`` pages ``User.sorted`` (``app/models/user.rb``:
    ``lower(lname), lower(fname)``), which has no unique tiebreaker: users of
    the same name come in an order that differs between pages, so paging
    can show one twice and another never (:func:`~.wire.tie_unstable`)."""
    usage = _include_usage()
    with world() as w:
        users = tie_unstable(
            w.users.values(), key=lambda u: (u.lname.lower(), u.fname.lower()), ident=_id
        )
        return listed_records(
            "users", users, lambda u: render.listed_user(w, u, include_usage=usage)
        )


def _id(record: UserRecord | ServiceRecord) -> int:
    return record.id


@admin.post("/users")
def create_user() -> Response | tuple[dict[str, object], int]:
    """201 ``{"user": ...}``; 422 "Missing User Object" without the root."""
    params = accounts.permit_user(root("user"))
    if params is None:
        return errors(422, ["Missing User Object"])
    with world() as w:
        user = accounts.create_user(w, params)
        if not isinstance(user, UserRecord):
            return refused(user)
        return render.created_user(w, user, secrets.token_urlsafe(24)), 201


@admin.get("/users/<key>")
def show_user(key: str) -> Response | dict[str, object]:
    """The user, or 404 with an empty body; ``?include=balance`` adds
    ``unprocessed_usage``."""
    with world() as w:
        user = _resolve(w, key)
        return render.shown_user(w, user, include_usage=_include_usage()) if user else not_found()


@admin.route("/users/<key>", methods=["PATCH", "PUT"])
def update_user(key: str) -> Response | dict[str, object]:
    """200 with the show JSON; 400 (not the envelope) without the root. An
    ``active`` false suspends exactly as the suspension call does (the same
    ``after_update`` callback): nothing is stopped."""
    params = accounts.permit_user(root("user"))
    with world() as w:
        user = _resolve(w, key)
        if user is None:
            return not_found()
        if params is None:
            return bad_request()
        refusal = accounts.update_user(w, user, params)
        return refused(refusal) if refusal else render.shown_user(w, user)


@admin.delete("/users/<key>")
def delete_user(key: str) -> Response:
    """204; credentials and projects go with the user."""
    with world() as w:
        user = _resolve(w, key)
        if user is None:
            return not_found()
        w.delete_user(user)
    return empty(204)


@admin.route("/users/<key>/suspension", methods=["POST", "DELETE"])
def suspension(key: str) -> Response | tuple[dict[str, object], int]:
    """202 ``{}``; POST suspends (``active=false``), DELETE lifts it.

    That is all it does (``suspension_controller.rb``, then
    ``UserServices::ToggleActiveService``, which builds a stop per container
    and never performs it, and pauses no subscription while the user's group
    bills suspended users, as a group does by default): the user's services
    keep running and billing, and its credentials keep authenticating."""
    with world() as w:
        user = _resolve(w, key)
        if user is None:
            return not_found()
        user.active = request.method == "DELETE"
        user.updated_at = w.clock()
    return {}, 202


@admin.post("/users/<key>/api_credentials")
def create_credential(key: str) -> Response | tuple[dict[str, object], int]:
    """201 with the only copy of the password; 400 without the root."""
    body = root("api_credential")
    with world() as w:
        user = _resolve(w, key)
        if user is None:
            return not_found()
        if not isinstance(body, dict) or not body:
            return bad_request()
        name = accounts.cast_text(body.get("name")) or ""
        cred, password = accounts.issue_credential(w, user, name)
        pair = {"id": cred.id, "username": cred.username, "password": password}
    return {"api_credential": pair}, 201


@admin.delete("/users/<key>/api_credentials/<int:credential_id>")
def delete_credential(key: str, credential_id: int) -> Response:
    """200 with an empty body; 404 empty for an unknown pair."""
    with world() as w:
        user = _resolve(w, key)
        cred = w.credentials.get(credential_id)
        if user is None or cred is None or cred.user_id != user.id:
            return not_found()
        del w.credentials[cred.id]
    return empty(200)


@admin.post("/users/<key>/user_sso")
def user_sso(key: str) -> Response | tuple[dict[str, object], int]:
    """201 ``{username, token, expires}``; the token is good for one minute."""
    with world() as w:
        user = _resolve(w, key)
        if user is None:
            return not_found()
        expires = render.iso(w.clock() + 60)
        body: dict[str, object] = {
            "username": user.email,
            "token": secrets.token_urlsafe(24),
            "expires": expires,
        }
    return body, 201


@admin.get("/users/<key>/projects")
def user_projects(key: str) -> Response:
    """``projects#index`` with ``user_id``: every project of the user (those
    being deleted and those a failed order left too), newest first,
    paginated. An unknown user is ``404 {"errors":["Unknown user."]}``; an id
    that casts to 0 (``"abc"``) lists every user's projects, as the
    controller's ``params[:user_id].to_i.zero?`` does. Rails' ``:user_id``
    segment stops at a dot, so a dotted key matches no route."""
    if "." in key:
        return unknown_call()
    with world() as w:
        user_id = ruby_to_i(key)
        if user_id == 0:
            projects = list(w.projects.values())
        elif user_id not in w.users:
            return errors(404, ["Unknown user."])
        else:
            projects = w.user_projects(user_id)
        rows = [render.project(w, p, admin=True) for p in _newest_first(projects)]
    return listed("projects", rows)


@admin.get("/projects")
def list_projects() -> Response:
    """``GET /api/admin/projects``: every project (or, with ``?user_id=``,
    that user's, as above), newest first, paginated."""
    raw = request.args.get("user_id")
    if raw and ruby_to_i(raw) != 0:
        return user_projects(raw)
    with world() as w:
        rows = [render.project(w, p, admin=True) for p in _newest_first(w.projects.values())]
    return listed("projects", rows)


@admin.get("/projects/<key>")
def show_project(key: str) -> Response | dict[str, object]:
    """``{"project": {...}}`` for any project, whoever owns it, those being
    deleted too; an unknown id is 404 with an empty body."""
    with world() as w:
        project = w.projects.get(ruby_to_i(key.partition(".")[0]))
        return {"project": render.project(w, project, admin=True)} if project else not_found()


def _newest_first(projects: Iterable[ProjectRecord]) -> list[ProjectRecord]:
    """``Deployment.sorted``: ``created_at`` descending (ties by id, newest first)."""
    return sorted(projects, key=lambda p: (p.created_at, p.id), reverse=True)


@admin.get("/users/<key>/billing_usages")
def user_billing_usages(key: str) -> Response:
    """``{"billing_usages": [...]}``: the rows of the user's subscriptions,
    newest ``created_at`` first, paginated (``page``/``per_page``, 30 by
    default, no maximum; the only parameters read). An unknown user is
    ``404 {"errors":["Unknown User"]}`` (``subscriptions/base_controller.rb``).

    The id is looked up as ActiveRecord casts it (``"12abc"`` finds user 12);
    there are no lookup flags here. Rails' ``:user_id`` segment stops at a
    dot, so a dotted key matches no route.
    """
    if "." in key:
        return unknown_call()
    with world() as w:
        user = w.users.get(ruby_to_i(key))
        if user is None:
            return errors(404, ["Unknown User"])
        chunk, headers = paginate(w.user_usages(user.id))
        response = jsonify({"billing_usages": [render.billing_usage(w, r) for r in chunk]})
    response.headers.update(headers)
    return response


@admin.get("/container_services")
def list_container_services() -> Response:
    """``{"container_services": [...]}``: every container service of every
    project (those being deleted too), paginated, as
    ``app/controllers/api/admin/container_services_controller.rb#index``
    serves ``Deployment::ContainerService.all.sorted`` through
    ``app/views/api/admin/container_services/index.rabl``.

    The template checks ``params[:all]`` for truthiness: any value given,
    ``all=false`` and ``all=0`` included, renders each service in full
    (:func:`.render.admin_service`); see :func:`~.wire.rails_param_given`.

    ``sorted`` is ``order(:label)`` (``app/models/deployment/container_service.rb``)
    and labels are not unique: services of one label come in an order that
    differs between pages, so paging can show one twice and another never
    (:func:`~.wire.tie_unstable`)."""
    full = rails_param_given("all")
    with world() as w:
        services = tie_unstable(w.services.values(), key=lambda s: s.label, ident=_id)
        return listed_records(
            "container_services", services, lambda s: render.admin_service(w, s, full=full)
        )


@admin.get("/container_services/<key>")
def show_container_service(key: str) -> Response | dict[str, object]:
    """``{"container_service": {...}}`` (``show.rabl``: the service in full),
    whoever owns it; ``Deployment::ContainerService.find_by id:``, then
    ``api_obj_missing`` without a message: an unknown id is 404 with an empty
    body. The id is cast as ActiveRecord casts it (``"12abc"`` is 12); Rails'
    ``:id`` stops at a dot (the rest is a format suffix)."""
    with world() as w:
        found = w.services.get(ruby_to_i(key.partition(".")[0]))
        if found is None:
            return not_found()
        return {"container_service": render.admin_service(w, found, full=True)}


@admin.get("/container_images/<int:image_id>")
def show_image(image_id: int) -> Response | dict[str, object]:
    """The image with ``container_image_image_variants``."""
    with world() as w:
        image = w.catalog.images.get(image_id)
        return render.admin_image(w, image) if image else not_found()


@admin.get("/orders")
def list_orders() -> Response:
    """Every order, newest first, as a bare array of ``{"order": {...}}``."""
    with world() as w:
        orders = sorted(w.orders.values(), key=lambda o: o.created_at, reverse=True)
        rows = [render.admin_order_row(w, o) for o in orders]
    return listed(None, rows)


@admin.get("/orders/<order_id>")
def show_order(order_id: str) -> Response:
    """Any order, with ``deployment`` where the user API says ``project``."""
    with world() as w:
        order = w.orders.get(order_id)
        return jsonify(render.order(w, order, admin=True)) if order else not_found()


@admin.get("/products")
def list_products() -> Response:
    """``{"products": [...]}``: every product, packages and resource products
    alike (``Product.all.order(:created_at)``), paginated like the other
    lists, each as ``app/views/api/admin/products/_product.rabl`` renders it.
    Packages and resource products are rows of one table whose ids follow
    creation, and the seed creates them in id order, so creation order is id
    order."""
    with world() as w:
        every: list[billing.Product] = [*w.catalog.products.values(), *w.catalog.resources.values()]
        products = sorted(every, key=lambda p: p.id)
        rows = [render.admin_product(p) for p in products]
    return listed("products", rows)


@admin.get("/products/<key>")
def show_product(key: str) -> Response | dict[str, object]:
    """``{"product": {...}}``; an unknown id is 404 with an empty body
    (``load_product``: ``Product.find_by(id:)``, then ``api_obj_missing``
    without a message, i.e. ``head :not_found``). The id is cast as
    ActiveRecord casts it (``"20abc"`` is product 20); Rails' ``:id`` stops
    at a dot (the rest is a format suffix)."""
    with world() as w:
        product = billing.find_product(w, ruby_to_i(key.partition(".")[0]))
        return {"product": render.admin_product(product)} if product else not_found()
