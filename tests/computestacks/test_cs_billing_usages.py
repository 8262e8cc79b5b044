"""Billing usage rows (controller 9.3.1: ``GET /api/admin/users/{id}/billing_usages``,
``app/controllers/api/admin/subscriptions/billing_usages_controller.rb``): the
row's shape, order and pagination, errors, the simulator's ``POST
/_sandbox/billing_usages`` seeding, resource products in the catalog, and the
client's parsing and paging, against the simulator and scripted answers."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from computestacks.cs_support import (
    T0,
    Customer,
    FakeClock,
    Reply,
    Scripted,
    Sim,
    make_customer,
    place_wordpress,
)
from csonboard.computestacks import BillingUsage, ComputeStacksClient, NewOrder, OrderContainer
from csonboard.errors import (
    ComputeStacksNotFound,
    ComputeStacksProtocolError,
    ComputeStacksValidationError,
    ConfigError,
)
from csonboard.metrics.instruments import endpoint_template
from csonboard.sandbox.catalog import load_catalog
from csonboard.sandbox.computestacks import create_app

ROW_KEYS = {
    "id", "period_start", "period_end", "external_id", "rate", "rate_period", "qty",
    "qty_total", "total", "processed", "processed_on", "created_at", "updated_at",
    "subscription_product", "user",
}  # fmt: skip
SUBSCRIPTION_PRODUCT_KEYS = {
    "id", "external_id", "start_on", "active", "phase_type", "created_at", "updated_at",
    "product",
}  # fmt: skip
PRODUCT_KEYS = {"id", "label", "resource_kind", "unit", "unit_type", "external_id", "group"}
PACKAGE_KEYS = {
    "id", "cpu", "memory", "storage", "bandwidth", "local_disk", "memory_swap",
    "memory_swappiness", "backup",
}  # fmt: skip
USER_KEYS = {"id", "full_name", "email", "external_id", "labels"}
TIME = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
AT_T0 = "2023-11-14T22:13:20.000Z"
"""``T0`` as the controller renders a time."""
THREE_HOURS_BEFORE_T0 = "2023-11-14T19:13:20.000Z"
BANDWIDTH, STORAGE, SMALL, TINY = 20, 21, 10, 13


def _path(user_id: int | str) -> str:
    return f"/api/admin/users/{user_id}/billing_usages"


def _seed(sim: Sim, **row: Any) -> dict[str, Any]:
    """Add one row through the test controls; the row as answered."""
    answer: dict[str, Any] = sim.control("POST", "billing_usages", row)["billing_usage"]
    return answer


def _seed_many(sim: Sim, rows: list[dict[str, Any]]) -> list[int]:
    ids: list[int] = sim.control("POST", "billing_usages", {"rows": rows})["ids"]
    return ids


def _refusal(sim: Sim, body: object) -> tuple[int, Any]:
    response = sim.session.post(f"{sim.url}/_sandbox/billing_usages", json=body, timeout=10)
    return response.status_code, response.json()


def _listed(sim: Sim, user_id: int | str, **params: Any) -> requests.Response:
    return sim.raw("GET", _path(user_id), params=params)


def _ids(response: requests.Response) -> list[int]:
    return [row["id"] for row in response.json()["billing_usages"]]


def _links(response: requests.Response) -> dict[str, dict[str, list[str]]]:
    return {rel: parse_qs(urlsplit(link["url"]).query) for rel, link in response.links.items()}


# -- the simulator: a row ----------------------------------------------------------------


def test_a_row_has_every_field_with_string_decimals_and_utc_millisecond_times(
    sim: Sim, customer: Customer
) -> None:
    """``app/views/api/admin/subscriptions/billing_usages/index.rabl`` and
    ``show.rabl``, with the partials ``api/admin/products/_product.rabl`` and
    ``api/admin/users/_short.rabl``: decimal columns as strings (Oj compat and
    ``BigDecimal#as_json``), times in UTC with milliseconds, and a resource
    product without a ``package`` key (rabl's ``child`` skips nil)."""
    answered = _seed(sim, user_id=customer.user.id, qty=12.5)

    response = _listed(sim, customer.user.id)

    assert response.status_code == 200
    assert set(response.json()) == {"billing_usages"}
    (row,) = response.json()["billing_usages"]
    assert row == answered
    assert set(row) == ROW_KEYS
    assert isinstance(row["id"], int)
    assert (row["period_start"], row["period_end"]) == (THREE_HOURS_BEFORE_T0, AT_T0)
    assert (row["created_at"], row["updated_at"]) == (AT_T0, AT_T0)
    # Bandwidth: 0.05 per GB in a monthly (730 h) term, aggregated, so not prorated.
    assert (row["qty"], row["qty_total"], row["rate"], row["total"]) == (
        "12.5", "12.5", "0.05", "0.625",
    )  # fmt: skip
    assert row["rate_period"] == 730
    assert (row["processed"], row["processed_on"], row["external_id"]) == (False, None, None)
    sub = row["subscription_product"]
    assert set(sub) == SUBSCRIPTION_PRODUCT_KEYS
    assert (sub["active"], sub["phase_type"], sub["external_id"]) == (True, "final", None)
    assert all(TIME.match(sub[k]) for k in ("start_on", "created_at", "updated_at"))
    assert sub["product"] == {
        "id": BANDWIDTH,
        "label": "Bandwidth",
        "resource_kind": "bandwidth",
        "unit": 1,
        "unit_type": "GB",
        "external_id": None,
        "group": None,
    }
    assert row["user"] == {
        "id": customer.user.id,
        "full_name": "Ada Lovelace",
        "email": "customer@example.com",
        "external_id": None,
        "labels": {},
    }
    assert set(row["user"]) == USER_KEYS


def test_a_package_row_carries_the_package_and_others_are_prorated_by_the_hour(
    sim: Sim, customer: Customer
) -> None:
    """``app/views/api/admin/products/_product.rabl`` (``child package``), and
    ``SubscriptionProduct#generate_usage!`` with
    ``BillingResourcePrice#prorated_total`` (``app/models/subscription_product.rb``,
    ``app/models/billing_resource_price.rb``): price per hour of its term,
    times fractional hours, times qty, rounded to 8 places."""
    # 2 h 10 min: 2.17 hours for a monthly price (2 places), 2.1667 for an hourly one (4).
    since = T0 - 7800
    package = _seed(sim, user_id=customer.user.id, qty=1, product_id=SMALL, period_start=since)
    storage = _seed(
        sim,
        user_id=customer.user.id,
        qty="3",
        qty_total="13",
        product_id=STORAGE,
        period_start=since,
    )

    product = package["subscription_product"]["product"]
    assert set(product) == PRODUCT_KEYS | {"package"}
    assert set(product["package"]) == PACKAGE_KEYS
    assert (product["label"], product["resource_kind"], product["unit_type"]) == (
        "Small", None, None,
    )  # fmt: skip
    assert (product["package"]["cpu"], product["package"]["memory"]) == ("1.0", 1024)
    # 5.0 a month (730 h) for 2.17 hours of one package.
    assert (package["rate"], package["rate_period"], package["total"]) == ("5.0", 730, "0.01486301")
    # Storage: 0.00015 per GB-hour, 3 billable GB of 13, 2.1667 hours.
    assert (storage["qty"], storage["qty_total"]) == ("3.0", "13.0")
    assert (storage["rate"], storage["rate_period"], storage["total"]) == (
        "0.00015", 1, "0.00097502",
    )  # fmt: skip
    assert set(storage["subscription_product"]["product"]) == PRODUCT_KEYS


def test_zero_totals_are_processed_at_once_bypass_billing_rows_are_not(
    sim: Sim, admin: ComputeStacksClient
) -> None:
    """``SubscriptionProduct#generate_usage!`` (``app/models/subscription_product.rb``):
    a row whose total is zero is created ``processed`` with ``processed_on``;
    any other row, also one of a ``bypass_billing`` user, starts unprocessed
    (``AggregateUsageService`` flips those only at month end). A product
    outside the user's billing plan has no price: rate and total 0."""
    bypass = make_customer(admin, "bypass@example.com", bypass_billing=True)
    billed = _seed(sim, user_id=bypass.user.id, qty=2)
    nothing = _seed(sim, user_id=bypass.user.id, qty=0)
    unpriced = _seed(sim, user_id=bypass.user.id, qty=1, product_id=TINY)

    assert (billed["total"], billed["processed"], billed["processed_on"]) == ("0.1", False, None)
    assert (nothing["total"], nothing["processed"], nothing["processed_on"]) == (
        "0.0", True, AT_T0,
    )  # fmt: skip
    assert (unpriced["rate"], unpriced["total"], unpriced["processed"]) == ("0.0", "0.0", True)


def test_rows_are_listed_newest_created_first_and_only_the_users_own(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """``BillingUsage``'s ``default_scope { order(created_at: :desc) }``
    (``app/models/billing_usage.rb``) and ``User#billing_usages``, ``through:
    :subscriptions`` (``app/models/concerns/users/billing_datum.rb``), whose
    ``has_many :subscriptions, dependent: :destroy`` takes them with the user."""
    other = make_customer(admin, "other@example.com")
    first = _seed(sim, user_id=customer.user.id, qty=1)["id"]
    clock.advance(60)
    second, same_time = _seed_many(sim, [{"user_id": customer.user.id, "qty": q} for q in (2, 3)])
    _seed(sim, user_id=other.user.id, qty=4)
    clock.advance(-30)
    between = _seed(sim, user_id=customer.user.id, qty=5)["id"]

    assert _ids(_listed(sim, customer.user.id)) == [same_time, second, between, first]
    assert len(_ids(_listed(sim, other.user.id))) == 1
    # Subscriptions go with their user (`dependent: :destroy`), usage rows with them.
    admin.delete_user(other.user.id)
    assert sim.state()["billing_usages"] == 4
    assert _ids(_listed(sim, customer.user.id)) == [same_time, second, between, first]


def test_pagination_headers_defaults_and_a_page_past_the_end(sim: Sim, customer: Customer) -> None:
    """api-pagination 5.0.0 over will_paginate 4 (``lib/rails/pagination.rb``,
    ``lib/api-pagination.rb``) as ``config/initializers/api_paginate.rb`` sets
    it up: 30 per page by default, ``per_page`` read with ``to_i`` and no
    maximum, ``Total`` and ``Per-Page`` headers, ``Link`` rels first, prev,
    last, next with only ``page`` replaced in the request's own query."""
    _seed_many(sim, [{"user_id": customer.user.id, "qty": i} for i in range(35)])

    first = _listed(sim, customer.user.id)
    assert (first.headers["Total"], first.headers["Per-Page"]) == ("35", "30")
    assert "Page" not in first.headers
    assert len(_ids(first)) == 30
    base = f"{sim.url}{_path(customer.user.id)}"
    assert first.headers["Link"] == f'<{base}?page=2>; rel="last", <{base}?page=2>; rel="next"'

    second = _listed(sim, customer.user.id, page=2)
    assert len(_ids(second)) == 5
    assert _ids(first) + _ids(second) == sorted(_ids(first) + _ids(second), reverse=True)
    assert second.headers["Link"] == f'<{base}?page=1>; rel="first", <{base}?page=1>; rel="prev"'

    middle = _listed(sim, customer.user.id, per_page=10, page=2, zeta="z")
    assert list(_links(middle)) == ["first", "prev", "last", "next"]
    assert _links(middle)["last"] == {"page": ["4"], "per_page": ["10"], "zeta": ["z"]}
    assert "?page=4&per_page=10&zeta=z>" in middle.headers["Link"]

    past = _listed(sim, customer.user.id, page=9)
    assert (past.status_code, past.json()) == (200, {"billing_usages": []})
    assert _links(past) == {"first": {"page": ["1"]}, "prev": {"page": ["8"]}}

    for per_page, used in (("0", 30), ("-5", 30), ("abc", 30), ("10abc", 10), ("1000", 1000)):
        response = _listed(sim, customer.user.id, per_page=per_page)
        assert response.headers["Per-Page"] == str(used)
        assert len(_ids(response)) == min(used, 35)
    assert _ids(_listed(sim, customer.user.id, page=0)) == _ids(first)
    assert "Link" not in _listed(sim, customer.user.id, per_page=35).headers


def test_an_unknown_user_is_404_unknown_user(sim: Sim, customer: Customer) -> None:
    """``app/controllers/api/admin/subscriptions/base_controller.rb``
    (``User.find_by(id:)``, then ``api_obj_missing(["Unknown User"])`` of
    ``app/controllers/concerns/api_response.rb``). ActiveRecord casts the id
    as ``to_i`` does, so ``"2abc"`` is user 2; a user without rows has an
    empty list."""
    for key in (999, "abc", 0):
        response = _listed(sim, key)
        assert (response.status_code, response.json()) == (404, {"errors": ["Unknown User"]})
    empty = _listed(sim, customer.user.id)
    assert (empty.status_code, empty.json(), empty.headers["Total"]) == (
        200, {"billing_usages": []}, "0",
    )  # fmt: skip
    assert "Link" not in empty.headers
    _seed(sim, user_id=customer.user.id, qty=1)
    assert len(_ids(_listed(sim, f"{customer.user.id}abc"))) == 1


def test_only_admins_may_list_usage(sim: Sim, customer: Customer) -> None:
    """``ensure_admin!`` of ``app/controllers/api/admin/application_controller.rb``
    with ``app/controllers/concerns/api_auth.rb``: 401 ``Not Authorized`` for
    a non-admin or no credential, before the user is looked up."""
    _seed(sim, user_id=customer.user.id, qty=1)
    for auth in ((customer.username, customer.password), None):
        for key in (customer.user.id, 999):
            response = sim.raw("GET", _path(key), auth=auth)
            assert (response.status_code, response.json()) == (
                401, {"errors": ["Not Authorized"]},
            )  # fmt: skip


# -- the simulator: seeding and the catalog ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"qty": 1}, 400, "user_id must be an integer"),
        ({"user_id": True, "qty": 1}, 400, "user_id must be an integer"),
        ({"user_id": 999, "qty": 1}, 422, "user_id: there is no user 999"),
        ({"user_id": "{user}"}, 400, "qty is required"),
        ({"user_id": "{user}", "qty": "lots"}, 400, "qty must be a number"),
        ({"user_id": "{user}", "qty": -1}, 400, "qty must be >= 0"),
        ({"user_id": "{user}", "qty": 1, "product_id": 999}, 422, "product_id: there is no"),
        ({"user_id": "{user}", "qty": 1, "product_id": "20"}, 400, "product_id must be an"),
        ({"user_id": "{user}", "qty": 1, "quantity": 1}, 400, "quantity is not a known key"),
        (
            {"user_id": "{user}", "qty": 1, "period_end": "2024-05-15T12:20:00"},
            400,
            "period_end must be epoch seconds or an ISO-8601 time with an offset",
        ),
        (
            {"user_id": "{user}", "qty": 1, "period_start": T0 + 1, "period_end": T0},
            400,
            "period_start must not be after period_end",
        ),
        ([{"user_id": 1, "qty": 1}], 400, "body must be a JSON object"),
        ({"rows": {"user_id": 1}}, 400, "rows must be a list"),
        ({"rows": [{"user_id": "{user}", "qty": 1}, {"qty": 1}]}, 400, "rows[1].user_id must"),
        ({"rows": [{"user_id": "{user}", "qty": 1}, 7]}, 400, "rows[1] must be a JSON object"),
    ],
)
def test_the_seeding_route_refuses_bad_rows_naming_the_field(
    sim: Sim, customer: Customer, body: Any, status: int, problem: str
) -> None:
    """The simulator's own ``POST /_sandbox/billing_usages``: 400 for a
    malformed field, 422 for an unknown user or product, each naming the
    field; nothing is added, not even the good rows of a refused batch."""
    refused = _refusal(sim, _with_user(body, customer.user.id))

    assert refused[0] == status
    assert problem in refused[1]["error"]
    assert _ids(_listed(sim, customer.user.id)) == []


def test_seeding_takes_times_as_iso_or_epoch_and_defaults_qty_total(
    sim: Sim, customer: Customer
) -> None:
    """The seeding route's times and defaults, rendered as
    ``app/views/api/admin/subscriptions/billing_usages/show.rabl`` renders
    them (UTC, milliseconds, ``qty_total`` the full quantity)."""
    row = _seed(
        sim,
        user_id=customer.user.id,
        qty="0.5",
        period_start="2024-05-15T09:20:01.412+00:00",
        period_end=1715775600.518,
    )
    assert (row["period_start"], row["period_end"]) == (
        "2024-05-15T09:20:01.412Z", "2024-05-15T12:20:00.518Z",
    )  # fmt: skip
    assert (row["qty"], row["qty_total"]) == ("0.5", "0.5")


def test_bulk_seeding_answers_ids_in_order_for_many_users(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    """The seeding route's ``{"rows": [...]}``: one request for many users'
    rows (a benchmark seeds 10,000 users, as
    ``app/services/billing_usage_services/collect_usage_service.rb`` writes
    rows for every container at once), ids increasing in the order given (a
    bigserial, ``db/schema.rb``), each row listed under its own user."""
    users = [customer.user.id] + [
        make_customer(admin, f"user{i}@example.com").user.id for i in range(4)
    ]
    rows = [{"user_id": u, "qty": n} for n in range(2500) for u in users]

    started = time.monotonic()
    ids = _seed_many(sim, rows)
    assert time.monotonic() - started < 20

    assert len(ids) == 12_500 and ids == sorted(ids) and len(set(ids)) == len(ids)
    for user_id in users:
        listed = _listed(sim, user_id, per_page=5000)
        assert listed.headers["Total"] == "2500"
        mine = {i for i, row in zip(ids, rows, strict=True) if row["user_id"] == user_id}
        assert set(_ids(listed)) | set(_ids(_listed(sim, user_id, per_page=5000, page=2))) == mine


def test_resource_products_are_neither_listed_nor_orderable_nor_resizable(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``GET /api/products`` lists packages only (``User#package_list`` in
    ``app/models/concerns/users/billing_datum.rb``, ``app/models/concerns/region_price_guide.rb``);
    an order naming a resource product of the plan is refused by
    ``app/services/build_order_service.rb`` ("Product is missing package
    config data"), a resize by ``api/container_services/resize_controller.rb``."""
    assert {p.id for p in customer.client.list_products()} == {10, 11, 12}
    order = NewOrder("site", (OrderContainer(1020, BANDWIDTH, "edge"),), location_id=1)
    with pytest.raises(ComputeStacksValidationError) as caught:
        customer.client.create_order(order)
    assert caught.value.errors == ["Product is missing package config data: Bandwidth"]
    placed = place_wordpress(customer.client)
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    service = customer.client.list_project_services(project_id)[0]
    with pytest.raises(ComputeStacksValidationError) as caught:
        customer.client.resize_service(service.id, STORAGE)
    assert caught.value.errors == [f"Missing package id: {STORAGE}"]


# -- the client ------------------------------------------------------------------------------


def test_the_client_reads_rows_as_plain_values(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    """Rows as ``show.rabl`` renders them, read into :class:`BillingUsage`:
    decimal strings as Decimal, times as UTC datetimes."""
    _seed(sim, user_id=customer.user.id, qty=12.5, qty_total="1036.5")
    _seed(sim, user_id=customer.user.id, qty=0, product_id=STORAGE)

    storage, bandwidth = admin.billing_usages(customer.user.id)

    assert bandwidth == BillingUsage(
        id=1,
        period_start=datetime(2023, 11, 14, 19, 13, 20, tzinfo=UTC),
        period_end=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        qty=Decimal("12.5"),
        qty_total=Decimal("1036.5"),
        rate=Decimal("0.05"),
        rate_period=730,
        total=Decimal("0.625"),
        processed=False,
        processed_on=None,
        created_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        external_id=None,
        subscription_product_id=1,
        product_id=BANDWIDTH,
        product_label="Bandwidth",
        resource_kind="bandwidth",
        unit_type="GB",
        user_id=customer.user.id,
        user_external_id=None,
    )
    assert (storage.resource_kind, storage.processed, storage.total) == (
        "storage",
        True,
        Decimal(0),
    )
    assert storage.processed_on == storage.created_at
    with pytest.raises(ComputeStacksNotFound):
        admin.billing_usages(999)
    assert endpoint_template("GET", _path(7)) == "GET /api/admin/users/{id}/billing_usages"


def test_the_client_pages_to_the_end_newest_first(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """Pagination as api-pagination 5.0.0 writes it (``lib/rails/pagination.rb``:
    ``next`` until the last page), followed to the end."""
    for _ in range(7):
        _seed(sim, user_id=customer.user.id, qty=1)
        clock.advance(1)
    pages = _count_pages(sim)

    rows = admin.billing_usages(customer.user.id, per_page=2)

    assert [r.id for r in rows] == [7, 6, 5, 4, 3, 2, 1]
    assert pages == ["page=1&per_page=2", "page=2&per_page=2", "page=3&per_page=2",
                     "page=4&per_page=2"]  # fmt: skip


@pytest.mark.parametrize("inserted", [1, 2])
def test_rows_made_while_paging_are_neither_missed_nor_read_twice(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock, inserted: int
) -> None:
    """``default_scope { order(created_at: :desc) }`` (``app/models/billing_usage.rb``)
    with ``OFFSET`` paging and no tiebreaker: rows made between page reads
    push older rows onto later pages, to be read again (2 rows push a whole
    page of 2 down, so page 2 brings nothing new and the walk must go on)."""
    for _ in range(6):
        _seed(sim, user_id=customer.user.id, qty=1)
        clock.advance(1)
    before = _ids(_listed(sim, customer.user.id))

    def insert(query: str) -> None:
        if query.startswith("page=1&"):
            rows = [{"user_id": customer.user.id, "qty": 2}] * inserted
            made = requests.post(
                f"{sim.url}/_sandbox/billing_usages", json={"rows": rows}, timeout=10
            )
            assert made.status_code == 201

    pages = _count_pages(sim, insert)
    rows = admin.billing_usages(customer.user.id, per_page=2)

    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(before)
    assert pages == [f"page={n}&per_page=2" for n in (1, 2, 3, 4)]


def test_rows_deleted_while_paging_are_not_skipped(scripted: Scripted) -> None:
    """``OFFSET`` paging (``lib/rails/pagination.rb``) when rows vanish between
    page reads (the admin ``DELETE`` of ``billing_usages_controller.rb``, or
    ``dependent: :destroy`` from the subscription product): older rows move
    up past the page boundary; a lower ``Total`` sends the client back."""
    client, net = scripted(
        _page([6, 5], total=6, more=True),
        _page([2, 1], total=4, more=False),  # 6 and 5 were deleted: 4 and 3 moved to page 1
        _page([4, 3], total=4, more=True),
        _page([2, 1], total=4, more=False),
    )

    rows = client.billing_usages(7, per_page=2)

    assert [r.id for r in rows] == [6, 5, 4, 3, 2, 1]
    assert [s.url.split("?")[1] for s in net.sent] == [
        "page=1&per_page=2", "page=2&per_page=2", "page=1&per_page=2", "page=2&per_page=2",
    ]  # fmt: skip


def test_stop_ends_the_walk_after_the_page_it_is_satisfied_with(scripted: Scripted) -> None:
    """The controller has no filter parameters (``billing_usages_controller.rb``
    reads only ``page`` and ``per_page``), so a sync stops reading once a
    page reaches its watermark."""
    mark = datetime(2024, 5, 15, 9, 0, tzinfo=UTC)
    seen: list[list[int]] = []

    def older_than_mark(page: Sequence[BillingUsage]) -> bool:
        seen.append([r.id for r in page])
        return any(r.created_at <= mark for r in page)

    client, net = scripted(
        _page([9, 8], total=9, more=True, hour=12),
        _page([7, 6], total=9, more=True, hour=8),
        _page([5, 4], total=9, more=True, hour=4),
        page_size=2,
    )

    rows = client.billing_usages(7, stop=older_than_mark)

    assert [r.id for r in rows] == [9, 8, 7, 6]
    assert seen == [[9, 8], [7, 6]]
    assert len(net.sent) == 2


def test_a_server_ignoring_page_cannot_loop_the_client(scripted: Scripted) -> None:
    """``Total`` as api-pagination sends it (``lib/rails/pagination.rb``): a
    page adding nothing new once past it ends the walk."""
    same = _page([2, 1], total=4, more=True)
    client, net = scripted(same, same, same, same, same)
    assert [r.id for r in client.billing_usages(7, per_page=2)] == [2, 1]
    assert len(net.sent) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"qty": "lots"}, "billing_usages[1].qty must be a decimal number"),
        ({"total": None}, "billing_usages[1].total must be a decimal number"),
        ({"processed": "false"}, "billing_usages[1].processed must be a boolean"),
        ({"rate_period": "month"}, "billing_usages[1].rate_period must be an integer"),
        ({"period_end": "2024-05-15T12:20:00.518"}, "billing_usages[1].period_end must be"),
        ({"created_at": "yesterday"}, "billing_usages[1].created_at must be an ISO-8601"),
        ({"subscription_product": None}, "billing_usages[1].subscription_product must be"),
        ({"user": {"id": "x"}}, "billing_usages[1].user.id must be an integer"),
    ],
)
def test_a_malformed_row_is_a_protocol_error_naming_the_field(
    scripted: Scripted, change: dict[str, Any], field: str
) -> None:
    """Fields typed as ``show.rabl`` renders them; anything else is a
    protocol error naming the call and the field, never the body."""
    bad = {**_row(2), **change}
    client, _ = scripted(Reply(200, {"billing_usages": [_row(3), bad]}, headers={"Total": "2"}))
    with pytest.raises(ComputeStacksProtocolError, match=re.escape(field)) as caught:
        client.billing_usages(7)
    assert "GET /api/admin/users/7/billing_usages" in str(caught.value)


def test_rows_without_product_or_user_read_as_none(scripted: Scripted) -> None:
    """Rabl's ``child`` leaves out the key of a missing record (rabl
    ``builder.rb``), so ``product`` and ``user`` may be absent."""
    row = _row(1)
    del row["user"], row["subscription_product"]["product"]
    client, _ = scripted(Reply(200, {"billing_usages": [row]}))
    (usage,) = client.billing_usages(7)
    assert (usage.product_id, usage.product_label, usage.user_id) == (None, None, None)


def test_transient_errors_are_retried_and_per_page_must_be_positive(scripted: Scripted) -> None:
    """``billing_usages_controller.rb``'s ``index`` is a GET without side
    effects: retried like the client's other reads, with ``page`` and
    ``per_page`` (the client's page size by default)."""
    client, net = scripted(Reply(503, raw="busy"), _page([1], total=1, more=False))
    assert [r.id for r in client.billing_usages(7)] == [1]
    assert [s.url.split("?")[1] for s in net.sent] == ["page=1&per_page=100"] * 2
    with pytest.raises(ValueError, match="per_page"):
        client.billing_usages(7, per_page=0)


# -- helpers ---------------------------------------------------------------------------------


def _count_pages(sim: Sim, then: Callable[[str], None] | None = None) -> list[str]:
    """The queries of the billing usage pages read through the test's session
    from now on; ``then`` runs with each query once its page is answered and
    before the client reads the next."""
    pages: list[str] = []

    def hook(response: requests.Response, *_: Any, **__: Any) -> None:
        if "/api/admin/users/" in response.url and "/billing_usages?" in response.url:
            query = response.url.split("?", 1)[1]
            pages.append(query)
            if then is not None:
                then(query)

    sim.session.hooks["response"].append(hook)
    return pages


def _with_user(value: object, user_id: int) -> Any:
    """``value`` with every ``"{user}"`` replaced by ``user_id``."""
    if value == "{user}":
        return user_id
    if isinstance(value, dict):
        return {k: _with_user(v, user_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_user(v, user_id) for v in value]
    return value


def _row(row_id: int, hour: int = 12) -> dict[str, Any]:
    at = f"2024-05-15T{hour:02}:20:00.530Z"
    return {
        "id": row_id,
        "period_start": f"2024-05-15T{hour - 3 if hour >= 3 else 0:02}:20:01.412Z",
        "period_end": at,
        "external_id": None,
        "rate": "0.05",
        "rate_period": 730,
        "qty": "1.0",
        "qty_total": "1.0",
        "total": "0.05",
        "processed": False,
        "processed_on": None,
        "created_at": at,
        "updated_at": at,
        "subscription_product": {
            "id": 311,
            "external_id": None,
            "start_on": "2024-05-01T08:00:00.000Z",
            "active": True,
            "phase_type": "final",
            "created_at": "2024-05-01T08:00:00.101Z",
            "updated_at": "2024-05-01T08:00:00.120Z",
            "product": {
                "id": 20,
                "label": "Bandwidth",
                "resource_kind": "bandwidth",
                "unit": 1,
                "unit_type": "GB",
                "external_id": None,
                "group": None,
            },
        },
        "user": {
            "id": 7,
            "full_name": "Jane Doe",
            "email": "jane@example.com",
            "external_id": "cust-7",
            "labels": {},
        },
    }


def _page(ids: list[int], *, total: int, more: bool, hour: int = 12) -> Reply:
    headers = {"Total": str(total), "Per-Page": "2"}
    if more:
        headers["Link"] = '<http://cs.test/api/admin/users/7/billing_usages?page=9>; rel="next"'
    return Reply(200, {"billing_usages": [_row(i, hour) for i in ids]}, headers=headers)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"resource_kind": "disk"}, "computestacks.resource_products[0].resource_kind"),
        ({"unit": 0}, "computestacks.resource_products[0].unit"),
        ({"unit_type": " "}, "computestacks.resource_products[0].unit_type"),
        ({"id": 10}, "computestacks.resource_products"),
    ],
)
def test_a_malformed_resource_product_seed_names_the_key(change: dict[str, Any], key: str) -> None:
    """The seed keeps what ``app/models/product.rb`` validates for a resource
    (a known ``resource_kind``, ``unit`` above 0, a ``unit_type``) and one id
    space for packages and resources (one ``products`` table)."""
    catalog = load_catalog()
    resource = {**catalog["computestacks"]["resource_products"][0], **change}
    catalog["computestacks"]["resource_products"] = [resource]
    with pytest.raises(ConfigError) as caught:
        create_app(catalog, admin_username="a", admin_password="b")
    assert caught.value.key == key
