"""The client's bulk reads of the whole installation (every user, project and
container service through the admin API, as a :class:`Listing` that counts
what paging missed) and its pacing, against the simulator over real HTTP and
against scripted answers."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from computestacks.cs_support import (
    SCRIPTED_URL,
    T0,
    Customer,
    FakeClock,
    Reply,
    Scripted,
    ScriptedAdapter,
    Sim,
    make_customer,
)
from csonboard.computestacks import (
    ComputeStacksClient,
    Listing,
    NewOrder,
    NewUser,
    OrderContainer,
    Project,
    Service,
)
from csonboard.errors import ComputeStacksAuthError

EDGE = OrderContainer(1021, 12, "edge")
USER_ROW = {"id": 7, "email": "a@example.com", "fname": "A", "lname": "B", "active": True}


def _site(customer: Customer, clock: FakeClock, *containers: OrderContainer) -> int:
    placed = customer.client.create_order(NewOrder("site", containers, location_id=1))
    clock.advance(5)
    project_id = customer.client.get_order(placed.id).project_id
    assert project_id is not None
    return project_id


def _page(key: str, ids: list[int], *, total: int | None, more: bool) -> Reply:
    rows: list[dict[str, Any]] = [{**USER_ROW, "id": i} for i in ids]
    headers = {"Link": f'<{SCRIPTED_URL}/api/admin/users?page=9>; rel="next"'} if more else {}
    if total is not None:
        headers["Total"] = str(total)
    return Reply(200, {key: rows}, headers=headers)


# -- against the simulator -----------------------------------------------------------------


def test_every_user_is_read_from_the_index_as_a_show_reads_it(
    sim: Sim, admin: ComputeStacksClient, customer: Customer
) -> None:
    """The index rows (``index.v51.rabl``: ``user_group {id, name}``, no
    ``user_group_id``, no phone or counts) parse into the same users as a show."""
    admin.create_user(NewUser(fname="Bo", lname="Zed", email="bo@example.com", external_id="x"))
    listing = admin.list_all_users()
    assert (listing.total, listing.missed) == (3, 0)
    assert sorted(u.id for u in listing.rows) == [1, 2, 3]
    for user in listing.rows:
        assert user == admin.get_user(user.id)
        assert user.user_group_id == 1


def test_every_project_comes_with_its_owner_and_creation_time(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    other = make_customer(admin, "other@example.com", external_id="cus_other")
    mine = _site(customer, clock, EDGE)
    theirs = _site(other, clock, EDGE)
    listing = admin.list_all_projects()
    assert (listing.total, listing.missed) == (2, 0)
    by_id = {p.id: p for p in listing.rows}
    assert [p.id for p in listing.rows] == [theirs, mine]  # newest first
    assert (by_id[theirs].user_id, by_id[theirs].user_external_id) == (other.user.id, "cus_other")
    assert (by_id[mine].user_id, by_id[mine].user_external_id) == (customer.user.id, None)
    # The order is processed 1 s after it is placed (the simulator's default plan).
    assert by_id[mine].created_at == datetime.fromtimestamp(T0 + 1, UTC)
    # The user API has no owner; otherwise the same project.
    (own,) = customer.client.list_projects()
    assert own == replace(by_id[mine], user_id=None, user_external_id=None)
    assert own.created_at is not None


def test_every_service_comes_in_full_with_its_state_and_owner(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    project_id = _site(customer, clock, EDGE, OrderContainer(1010, 11, "blog"))
    listing = admin.list_all_services()
    assert (listing.total, listing.missed) == (2, 0)
    assert [s.label for s in listing.rows] == ["blog", "edge"]
    for service in listing.rows:
        assert (service.user_id, service.project_id) == (customer.user.id, project_id)
        assert service.current_state == "online"
        assert service.image_id is not None and service.variant_id is not None
    user_api = {s.id: s for s in customer.client.list_project_services(project_id)}
    for service in listing.rows:
        assert user_api[service.id] == replace(service, user_id=None, user_external_id=None)


def test_a_bulk_read_is_admin_only_and_retried_when_transient(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, sleeps: list[float]
) -> None:
    with pytest.raises(ComputeStacksAuthError):
        customer.client.list_all_services()
    sim.fault(method="GET", path="/api/admin/container_services", status=503, count=1)
    assert admin.list_all_services() == Listing((), 0)
    assert len(sleeps) == 1


def test_ties_lost_between_pages_are_read_again_in_one_page(
    sim: Sim, admin: ComputeStacksClient, customer: Customer, clock: FakeClock
) -> None:
    """Services of one label page unstably (see ``test_cs_tie_order.py``), so
    small pages leave some on no page; the client then reads the list once
    more as a single page larger than ``Total``, which misses none."""
    sim.control("POST", "orders", {"max_containers": None})
    _site(customer, clock, *(EDGE,) * 12)
    every = {s.id for s in admin.list_all_services(per_page=500).rows}
    assert len(every) == 12
    for _ in range(3):  # the tie order differs from read to read
        paged = admin.list_all_services(per_page=5)
        assert ({s.id for s in paged.rows}, paged.total, paged.missed) == (every, 12, 0)


# -- against scripted answers --------------------------------------------------------------


def test_bulk_reads_send_their_query_and_page_size(scripted: Scripted) -> None:
    client, net = scripted(
        Reply(200, {"users": []}),
        Reply(200, {"projects": []}),
        Reply(200, {"container_services": []}),
        Reply(200, {"container_services": []}),
    )
    client.list_all_users()
    client.list_all_projects(per_page=1000)
    client.list_all_services()
    client.list_all_services(per_page=250)
    assert [s.url.removeprefix(SCRIPTED_URL) for s in net.sent] == [
        "/api/admin/users?page=1&per_page=100",
        "/api/admin/projects?page=1&per_page=1000",
        "/api/admin/container_services?all=true&page=1&per_page=100",
        "/api/admin/container_services?all=true&page=1&per_page=250",
    ]


@pytest.mark.parametrize("per_page", [0, -1])
def test_a_page_size_below_one_is_refused_unsent(scripted: Scripted, per_page: int) -> None:
    client, net = scripted()
    for read in (client.list_all_users, client.list_all_projects, client.list_all_services):
        with pytest.raises(ValueError, match="per_page"):
            read(per_page=per_page)
    assert net.sent == []


def test_a_page_of_repeats_inside_total_does_not_end_the_walk(scripted: Scripted) -> None:
    """Ties may bring a whole page of rows already read; with ``Total`` still
    ahead, the pages after it are read; ``Total`` comes from the last page."""
    client, net = scripted(
        _page("users", [1, 2], total=5, more=True),
        _page("users", [2, 1], total=5, more=True),
        _page("users", [5], total=4, more=False),
        _page("users", [1, 2, 3, 5], total=4, more=False),
        page_size=2,
    )
    listing = client.list_all_users()
    assert [u.id for u in listing.rows] == [1, 2, 3, 5]
    assert (listing.total, listing.missed) == (4, 0)
    # One row was on no page: the list was read again as one page of 104.
    assert [s.url.removeprefix(SCRIPTED_URL) for s in net.sent][-1] == (
        "/api/admin/users?page=1&per_page=104"
    )


def test_past_total_or_without_it_a_page_of_repeats_ends_the_walk(scripted: Scripted) -> None:
    """A server that ignores ``page`` cannot loop the client."""
    same = _page("users", [1, 2], total=4, more=True)
    client, net = scripted(same, same, same, page_size=2)
    listing = client.list_all_users()
    # Two pages, then the one-page read, which gives the same two rows: the
    # server ignores ``per_page`` too, and the two missing rows are counted.
    assert ([u.id for u in listing.rows], listing.total, listing.missed) == ([1, 2], 4, 2)
    assert len(net.sent) == 3
    bare = _page("users", [1], total=None, more=True)
    client, net = scripted(bare, bare, bare)
    listing = client.list_all_users()
    assert (listing.total, listing.missed, len(net.sent)) == (None, 0, 2)


def test_missed_counts_what_total_promised_and_paging_did_not_bring() -> None:
    project = Project(1, "p", "ok")
    assert Listing((project,), 3).missed == 2
    assert Listing((project,), 1).missed == 0
    assert Listing((project, replace(project, id=2)), 1).missed == 0
    assert Listing((), None).missed == 0


def test_models_keep_their_positional_constructors() -> None:
    project = Project(1, "p", "ok")
    assert (project.created_at, project.user_id, project.user_external_id) == (None, None, None)
    service = Service(5, "n", "l", 1, 100, 1000, 10)
    assert (service.current_state, service.user_id, service.user_external_id) == (None, None, None)


# -- pacing --------------------------------------------------------------------------------


class Monotonic:
    """A monotonic clock that moves only when slept on or told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class TimedAdapter(ScriptedAdapter):
    """Scripted answers, noting the monotonic time each request is sent at."""

    def __init__(self, clock: Monotonic, *script: Reply | Exception) -> None:
        super().__init__(*script)
        self.clock = clock
        self.times: list[float] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self.times.append(self.clock())
        return super().send(request, **kwargs)


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


def _timed(
    monotonic: Monotonic, *script: Reply | Exception
) -> tuple[ComputeStacksClient, TimedAdapter]:
    adapter = TimedAdapter(monotonic, *script)
    session = requests.Session()
    session.mount(SCRIPTED_URL, adapter)
    client = ComputeStacksClient(
        SCRIPTED_URL,
        session,
        username="api-user",
        password="api-Pa55word",
        sleep=monotonic.sleep,
        jitter=lambda: 0.0,
        backoff=0.5,
        monotonic=monotonic,
        page_size=2,
    )
    return client, adapter


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


def test_a_paced_client_spaces_every_request_pages_and_retries_included(
    monotonic: Monotonic,
) -> None:
    client, net = _timed(
        monotonic,
        _page("users", [1, 2], total=5, more=True),
        Reply(500, {"errors": ["boom"]}),
        _page("users", [3, 4], total=5, more=True),
        _page("users", [5], total=5, more=False),
    )
    paced = client.paced(requests_per_minute=30)  # one request every 2 s
    assert [u.id for u in paced.list_all_users().rows] == [1, 2, 3, 4, 5]
    assert _gaps(net.times) == [2.0, 2.0, 2.0]
    # The retry's 0.5 s backoff counted towards its 2 s.
    assert monotonic.sleeps == [2.0, 0.5, 1.5, 2.0]


def test_time_spent_elsewhere_counts_and_the_unpaced_client_never_waits(
    monotonic: Monotonic,
) -> None:
    reply = Reply(200, {"user": USER_ROW})
    client, net = _timed(monotonic, *(reply,) * 7)
    paced = client.paced(6)  # one request every 10 s
    paced.get_user(7)
    monotonic.now += 4  # the caller's own work
    paced.get_user(7)
    assert monotonic.sleeps == [6.0]
    client.get_user(7)
    client.get_user(7)
    assert monotonic.sleeps == [6.0]
    # A credential switched to from a paced client shares its spacing.
    paced.as_user("someone", "else-Pa55word").get_user(7)
    assert monotonic.sleeps == [6.0, 10.0]
    assert net.sent[-1].headers["Authorization"] != net.sent[0].headers["Authorization"]
    assert _gaps([net.times[i] for i in (0, 1, 4)]) == [10.0, 10.0]
    # Pacing a paced client replaces its rate: one request a second.
    faster = paced.paced(60)
    faster.get_user(7)
    faster.get_user(7)
    assert monotonic.sleeps == [6.0, 10.0, 1.0]


@pytest.mark.parametrize("rate", [0, -5, math.inf, math.nan])
def test_a_pace_must_be_positive_and_finite(scripted: Scripted, rate: float) -> None:
    client, _ = scripted()
    with pytest.raises(ValueError, match="requests_per_minute"):
        client.paced(rate)
