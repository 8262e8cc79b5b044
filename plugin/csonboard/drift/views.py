"""What Stripe and ComputeStacks have, as a drift check reads it.

Two ways to read the same things:

- :class:`Survey`: the whole installation in a few hundred paged requests
  (every user, project and service of ComputeStacks; every subscription and
  customer of the Stripe account), for a pass over all customers. It only
  finds *candidates*: the lists are read over minutes while the world moves,
  ComputeStacks pages lists sorted by non-unique keys (a user's name, a
  service's label) so a row can be missed, and a service's ``current_state``
  only hints whether it runs.
- :class:`Lookup`: one customer, read now, row by row (their user, projects,
  services and each service's containers when it matters). Everything
  reported and everything repaired is decided on a Lookup.

Both answer the same questions, so one set of rules (``drift.rules``) runs on
either. Failure policy: reads raise what the clients raise (outages are
transient errors; the pass is retried).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from csonboard.computestacks import ComputeStacksClient, Container, Project, Service, User
from csonboard.errors import ComputeStacksNotFound
from csonboard.stripe_api import StripeGateway, Subscription

SURVEY_PAGE = 200
"""Rows per ComputeStacks page when surveying: the server has no maximum, but
it renders every service in full (``?all=true``), so pages stay moderate."""
RUNS = "online"
"""A service's ``current_state`` when it is healthy and a container is asked to run."""
IDLE = "inactive"
"""Its ``current_state`` when no container is asked to run."""


class View(Protocol):
    """The questions the rules ask."""

    def customer_exists(self, customer_id: str) -> bool: ...

    def subscription(self, subscription_id: str) -> Subscription | None: ...

    def user(self, customer_id: str, user_id: int | None) -> User | None:
        """The customer's user: the one csonboard recorded (``user_id``), else
        the one whose external_id is the customer."""
        ...

    def projects(self, user_id: int) -> Sequence[Project]: ...

    def services(self, project_id: int) -> Sequence[Service]: ...

    def running(self, service: Service) -> bool | None:
        """Whether a container of the service is asked to run; None when this
        view cannot tell (the rules then treat it as a candidate)."""
        ...


@dataclass
class Survey:
    """The whole installation, read once (see the module)."""

    customers: set[str]
    subscriptions: dict[str, Subscription]
    users: dict[str, User]
    """By ``external_id``; the lowest id when several share one."""
    users_by_id: dict[int, User]
    projects_of: dict[int, list[Project]]
    services_of: dict[int, list[Service]]
    missed: dict[str, int] = field(default_factory=dict)
    """Rows ComputeStacks counted (``Total``) but paging did not return, per list."""

    @classmethod
    def read(
        cls,
        cs: ComputeStacksClient,
        stripe: StripeGateway,
        keep: Callable[[], None] = lambda: None,
    ) -> Survey:
        """Read both sides; ``keep`` is called between the lists (to renew a lease)."""
        users = cs.list_all_users(per_page=SURVEY_PAGE)
        keep()
        projects = cs.list_all_projects(per_page=SURVEY_PAGE)
        keep()
        services = cs.list_all_services(per_page=SURVEY_PAGE)
        keep()
        by_external: dict[str, User] = {}
        for user in sorted(users.rows, key=lambda u: u.id):
            if user.external_id:
                by_external.setdefault(user.external_id, user)
        projects_of: dict[int, list[Project]] = defaultdict(list)
        for project in projects.rows:
            if project.user_id is not None:
                projects_of[project.user_id].append(project)
        services_of: dict[int, list[Service]] = defaultdict(list)
        for service in services.rows:
            if service.project_id is not None:
                services_of[service.project_id].append(service)
        missed = {
            name: listing.missed
            for name, listing in (("users", users), ("projects", projects), ("services", services))
            if listing.missed
        }
        customers = stripe.live_customer_ids()
        keep()
        subscriptions = {s.id: s for s in stripe.all_subscriptions()}
        keep()
        return cls(
            customers=customers,
            subscriptions=subscriptions,
            users=by_external,
            users_by_id={u.id: u for u in users.rows},
            projects_of=dict(projects_of),
            services_of=dict(services_of),
            missed=missed,
        )

    def external_ids(self) -> set[str]:
        """Every ``external_id`` that names a Stripe customer's id."""
        return {key for key in self.users if key.startswith("cus_")}

    def customer_exists(self, customer_id: str) -> bool:
        return customer_id in self.customers

    def subscription(self, subscription_id: str) -> Subscription | None:
        return self.subscriptions.get(subscription_id)

    def user(self, customer_id: str, user_id: int | None) -> User | None:
        if user_id is not None:
            return self.users_by_id.get(user_id)
        return self.users.get(customer_id)

    def projects(self, user_id: int) -> Sequence[Project]:
        return self.projects_of.get(user_id, [])

    def services(self, project_id: int) -> Sequence[Service]:
        return self.services_of.get(project_id, [])

    def running(self, service: Service) -> bool | None:
        if service.current_state == RUNS:
            return True
        if service.current_state == IDLE:
            return False
        return None  # working, alert, unhealthy...: only its containers tell


@dataclass
class Lookup:
    """One customer, read now (see the module); each answer is read once."""

    cs: ComputeStacksClient
    stripe: StripeGateway
    _subscriptions: dict[str, Subscription | None] = field(default_factory=dict)
    _users: dict[str, User | None] = field(default_factory=dict)
    _projects: dict[int, tuple[Project, ...]] = field(default_factory=dict)
    _services: dict[int, tuple[Service, ...]] = field(default_factory=dict)
    _running: dict[int, bool] = field(default_factory=dict)

    def customer_exists(self, customer_id: str) -> bool:
        found = self.stripe.customer(customer_id)
        return found is not None and not found.deleted

    def subscription(self, subscription_id: str) -> Subscription | None:
        if subscription_id not in self._subscriptions:
            found = self.stripe.subscription_if_exists(subscription_id)
            self._subscriptions[subscription_id] = found
        return self._subscriptions[subscription_id]

    def user(self, customer_id: str, user_id: int | None) -> User | None:
        key = f"#{user_id}" if user_id is not None else customer_id
        if key not in self._users:
            found: User | None = None
            if user_id is None:
                found = self.cs.find_user_by_external_id(customer_id)
            else:
                with contextlib.suppress(ComputeStacksNotFound):  # deleted by hand
                    found = self.cs.get_user(user_id)
            self._users[key] = found
        return self._users[key]

    def projects(self, user_id: int) -> Sequence[Project]:
        if user_id not in self._projects:
            found: tuple[Project, ...] = ()
            with contextlib.suppress(ComputeStacksNotFound):  # the user is gone
                found = self.cs.list_user_projects(user_id)
            self._projects[user_id] = found
        return self._projects[user_id]

    def services(self, project_id: int) -> Sequence[Service]:
        if project_id not in self._services:
            found: tuple[Service, ...] = ()
            with contextlib.suppress(ComputeStacksNotFound):  # the project is gone
                found = self.cs.list_project_services(project_id)
            self._services[project_id] = found
        return self._services[project_id]

    def running(self, service: Service) -> bool:
        if service.id not in self._running:
            containers: tuple[Container, ...] = ()
            with contextlib.suppress(ComputeStacksNotFound):  # the service is gone
                containers = self.cs.list_service_containers(service.id)
            self._running[service.id] = any(c.req_state == "running" for c in containers)
        return self._running[service.id]
