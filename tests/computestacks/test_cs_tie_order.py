"""Lists sorted by a key that is not unique page their ties unstably, as on
PostgreSQL: the users index (``app/controllers/api/admin/users_controller.rb#index``,
``User.sorted`` of ``app/models/user.rb``: ``lower(lname), lower(fname)``) and
the container services index (``app/controllers/api/admin/container_services_controller.rb#index``,
``Deployment::ContainerService.sorted`` of
``app/models/deployment/container_service.rb``: ``order(:label)``).

Each page is its own ``ORDER BY ... LIMIT ... OFFSET`` with no unique
tiebreaker, so the order of tied rows may differ between pages: paging, a
client can get a row twice and another never, while ``Total`` (a ``COUNT``)
is right. The simulator orders ties by a hash of the row's id and the page's
``offset + limit``, so these tests are deterministic."""

from __future__ import annotations

from collections import Counter
from typing import Any

from computestacks.cs_support import Customer, FakeClock, Sim
from csonboard.computestacks import ComputeStacksClient, NewOrder, NewUser, OrderContainer


def _walk(
    sim: Sim, path: str, key: str, per_page: int, **params: Any
) -> tuple[list[int], set[str]]:
    """The ids of every page, in order, and the ``Total`` headers seen."""
    ids: list[int] = []
    totals: set[str] = set()
    page = 1
    while True:
        response = sim.raw("GET", path, params={**params, "page": page, "per_page": per_page})
        rows = response.json()[key]
        ids += [r["id"] for r in rows]
        totals.add(response.headers["Total"])
        if "next" not in response.links:
            return ids, totals
        page += 1


def test_users_of_one_name_may_come_twice_or_never_across_pages(
    sim: Sim, admin: ComputeStacksClient
) -> None:
    """``users_controller.rb#index`` pages ``User.sorted``
    (``app/models/user.rb``): twelve users of one lower-cased name."""
    for i in range(12):
        # Case differs, the lower-cased sort key does not: all twelve tie.
        fname, lname = ("Sam", "Same") if i % 2 else ("sam", "SAME")
        admin.create_user(NewUser(fname=fname, lname=lname, email=f"sam{i}@example.com"))
    admin.create_user(NewUser(fname="Ada", lname="Lovelace", email="ada@example.com"))
    everyone = sorted(u["id"] for u in sim.state()["users"])
    ids, totals = _walk(sim, "/api/admin/users", "users", per_page=5)
    assert totals == {"14"}
    assert len(ids) == 14
    assert Counter(ids) != Counter(everyone)
    assert set(everyone) - set(ids), "a tied user was never listed"
    # Untied rows keep their place: "Admin" and "Lovelace" sort before "Same".
    assert ids[:2] == [1, everyone[-1]]
    # The same page asked twice answers the same.
    again = sim.raw("GET", "/api/admin/users", params={"page": 2, "per_page": 5}).json()["users"]
    assert [u["id"] for u in again] == ids[5:10]
    # One page holding every row cannot lose one.
    whole, _ = _walk(sim, "/api/admin/users", "users", per_page=100)
    assert sorted(whole) == everyone


def test_services_of_one_label_may_come_twice_or_never_across_pages(
    sim: Sim, customer: Customer, clock: FakeClock
) -> None:
    """``container_services_controller.rb#index`` pages
    ``Deployment::ContainerService.all.sorted``
    (``app/models/deployment/container_service.rb``): twelve services
    labelled ``edge``, with and without ``all``."""
    sim.control("POST", "orders", {"max_containers": None})
    edge = OrderContainer(1021, 12, "edge")
    order = NewOrder("site", (*(edge,) * 12, OrderContainer(1021, 12, "api")), location_id=1)
    customer.client.create_order(order)
    clock.advance(5)
    every = sorted(s["id"] for s in sim.state()["services"])
    path, key = "/api/admin/container_services", "container_services"
    for params in ({}, {"all": "true"}):
        ids, totals = _walk(sim, path, key, per_page=5, **params)
        assert totals == {"13"}
        assert len(ids) == 13
        assert Counter(ids) != Counter(every)
        assert set(every) - set(ids), "a tied service was never listed"
        # "api" sorts before every "edge", whatever the page window.
        assert ids[0] == every[-1]
    single, _ = _walk(sim, path, key, per_page=13)
    assert sorted(single) == every
