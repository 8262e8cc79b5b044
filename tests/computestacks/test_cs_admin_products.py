"""Admin product reads (controller 9.3.1: ``GET /api/admin/products`` and
``GET /api/admin/products/{id}``, ``app/controllers/api/admin/products_controller.rb``
with ``app/views/api/admin/products/index.rabl``, ``show.rabl`` and
``_product.rabl``): every product of any kind, in creation order, paginated;
one product; an unknown id; admins only; and the client's parsing and paging."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from computestacks.cs_support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    Customer,
    Reply,
    Scripted,
    Sim,
)
from csonboard.computestacks import AdminProduct, ComputeStacksClient
from csonboard.errors import ComputeStacksProtocolError
from csonboard.metrics.instruments import endpoint_template

PRODUCT_KEYS = {"id", "label", "resource_kind", "unit", "unit_type", "external_id", "group"}
PACKAGE_KEYS = {
    "id", "cpu", "memory", "storage", "bandwidth", "local_disk", "memory_swap",
    "memory_swappiness", "backup",
}  # fmt: skip
EVERY_PRODUCT = [10, 11, 12, 13, 20, 21]
"""The bundled catalog's packages (Small, Medium, Large, Tiny) and resource
products (Bandwidth, Storage), in the order the seed creates them."""


def _listed(sim: Sim, **params: Any) -> Any:
    return sim.raw("GET", "/api/admin/products", params=params)


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


# -- the simulator ------------------------------------------------------------------------


def test_every_product_is_listed_in_creation_order_as_the_partial_renders_it(sim: Sim) -> None:
    """``index``: ``paginate Product.all.order(:created_at)`` rendered by
    ``index.rabl`` (``object false``, a ``products`` node of ``_product.rabl``
    partials, which rabl renders without a root): packages and resource
    products alike, whatever billing plan holds them (Tiny is in no default
    plan). ``_product.rabl`` sends neither ``kind`` nor the times its doc
    comment lists; ``child package`` leaves the key out for a product
    without a package."""
    response = _listed(sim)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"products"}
    rows = body["products"]
    assert _ids(rows) == EVERY_PRODUCT
    assert (response.headers["Total"], response.headers["Per-Page"]) == ("6", "30")
    assert "Link" not in response.headers
    packages = [row for row in rows if "package" in row]
    assert _ids(packages) == [10, 11, 12, 13]
    for row in packages:
        assert set(row) == PRODUCT_KEYS | {"package"}
        assert set(row["package"]) == PACKAGE_KEYS
        assert (row["resource_kind"], row["unit"], row["unit_type"]) == (None, 1, None)
    small = rows[0]
    assert (small["label"], small["package"]["cpu"], small["package"]["memory"]) == (
        "Small", "1.0", 1024,
    )  # fmt: skip
    bandwidth, storage = rows[4:]
    assert bandwidth == {
        "id": 20,
        "label": "Bandwidth",
        "resource_kind": "bandwidth",
        "unit": 1,
        "unit_type": "GB",
        "external_id": None,
        "group": None,
    }
    assert (storage["label"], storage["resource_kind"], storage["unit_type"]) == (
        "Storage", "storage", "GB",
    )  # fmt: skip


def test_products_are_paginated_like_the_other_lists(sim: Sim) -> None:
    """``paginate`` of api-pagination 5.0.0 (``lib/rails/pagination.rb``) as
    ``config/initializers/api_paginate.rb`` sets it up: ``page`` and
    ``per_page``, ``Total`` and ``Per-Page``, ``Link`` rels."""
    first = _listed(sim, per_page=4)
    second = _listed(sim, per_page=4, page=2)

    assert _ids(first.json()["products"]) == [10, 11, 12, 13]
    assert _ids(second.json()["products"]) == [20, 21]
    assert (first.headers["Total"], first.headers["Per-Page"]) == ("6", "4")
    links = {rel: parse_qs(urlsplit(link["url"]).query) for rel, link in first.links.items()}
    assert links == {
        "last": {"page": ["2"], "per_page": ["4"]},
        "next": {"page": ["2"], "per_page": ["4"]},
    }
    assert list(second.links) == ["first", "prev"]
    past = _listed(sim, page=3)
    assert (past.status_code, past.json()) == (200, {"products": []})


def test_one_product_is_shown_under_product_and_an_unknown_id_is_an_empty_404(
    sim: Sim,
) -> None:
    """``show`` (``show.rabl``: a ``product`` node of the same partial) after
    ``load_product``: ``Product.find_by(id: params[:id])``, then
    ``api_obj_missing`` without a message (``app/controllers/concerns/api_response.rb``:
    ``head :not_found``). ActiveRecord casts the id as ``to_i`` does, so
    ``20abc`` is product 20; Rails' ``:id`` stops at a dot (a format suffix)."""
    listed = {row["id"]: row for row in _listed(sim).json()["products"]}

    for product_id in EVERY_PRODUCT:
        response = sim.raw("GET", f"/api/admin/products/{product_id}")
        assert response.status_code == 200
        assert response.json() == {"product": listed[product_id]}
    for key in ("20abc", "20.json"):
        assert sim.raw("GET", f"/api/admin/products/{key}").json()["product"]["id"] == 20
    for key in (999, 0, "abc", 14):
        response = sim.raw("GET", f"/api/admin/products/{key}")
        assert (response.status_code, response.content) == (404, b"")


def test_only_admins_may_read_products(sim: Sim, customer: Customer) -> None:
    """``ensure_admin!`` of ``app/controllers/api/admin/application_controller.rb``:
    401 ``Not Authorized`` for a non-admin or no credential, before the
    product is looked up (``load_product`` is a later ``before_action``)."""
    for auth in ((customer.username, customer.password), None):
        for path in ("/api/admin/products", "/api/admin/products/20", "/api/admin/products/999"):
            response = sim.raw("GET", path, auth=auth)
            assert (response.status_code, response.json()) == (
                401, {"errors": ["Not Authorized"]},
            )  # fmt: skip


# -- the client ----------------------------------------------------------------------------


def test_the_client_reads_every_product_across_pages(sim: Sim) -> None:
    """Every page of ``index`` (``next`` until the last), read into
    :class:`AdminProduct`; a package is a product with a ``package``."""
    small_pages = ComputeStacksClient(
        sim.url, sim.session, username=ADMIN_USERNAME, password=ADMIN_PASSWORD, page_size=4
    )

    products = small_pages.list_admin_products()

    assert [p.id for p in products] == EVERY_PRODUCT
    assert products[0] == AdminProduct(
        id=10,
        label="Small",
        resource_kind=None,
        unit=1,
        unit_type=None,
        group=None,
        is_package=True,
    )
    assert products[4] == AdminProduct(
        id=20,
        label="Bandwidth",
        resource_kind="bandwidth",
        unit=1,
        unit_type="GB",
        group=None,
        is_package=False,
    )
    assert [p.resource_kind for p in products if not p.is_package] == ["bandwidth", "storage"]
    assert endpoint_template("GET", "/api/admin/products") == "GET /api/admin/products"


def test_nulls_are_none_and_a_product_of_another_kind_is_no_package(scripted: Scripted) -> None:
    """Columns ``_product.rabl`` sends that may be null (``db/schema.rb``:
    ``unit``, ``unit_type``, ``resource_kind``, ``group``, ``external_id``),
    and an image or add-on product: no ``package``, and no ``kind`` to say more."""
    image = {"id": 30, "label": "Premium image", "resource_kind": None, "unit": None,
             "unit_type": None, "external_id": None, "group": "extras"}  # fmt: skip
    client, net = scripted(Reply(200, {"products": [image]}, headers={"Total": "1"}))

    (product,) = client.list_admin_products()

    assert product == AdminProduct(30, "Premium image", None, None, None, "extras", False)
    assert [s.url.split("?")[1] for s in net.sent] == ["page=1&per_page=100"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "twenty"}, "products[1].id must be an integer"),
        ({"label": None}, "products[1].label must be a string"),
        ({"unit": "one"}, "products[1].unit must be an integer"),
        ({"resource_kind": ["bandwidth"]}, "products[1].resource_kind must be a string"),
        ({"group": {}}, "products[1].group must be a string"),
        ({"package": "yes"}, "products[1].package must be an object"),
    ],
)
def test_a_malformed_product_is_a_protocol_error_naming_the_field(
    scripted: Scripted, change: dict[str, Any], field: str
) -> None:
    """Fields typed as ``_product.rabl`` renders them; anything else is a
    protocol error naming the call and the field, never the body."""
    good = {"id": 20, "label": "Bandwidth", "resource_kind": "bandwidth", "unit": 1,
            "unit_type": "GB", "external_id": None, "group": None}  # fmt: skip
    client, _ = scripted(Reply(200, {"products": [good, {**good, "id": 21, **change}]}))

    with pytest.raises(ComputeStacksProtocolError, match=re.escape(field)) as caught:
        client.list_admin_products()
    assert "GET /api/admin/products" in str(caught.value)
