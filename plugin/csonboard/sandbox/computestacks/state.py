"""The simulator's world: every record, behind one lock. Plain Python, no Flask.

Time is the injected clock. Orders, project deletions, service resizes and
power actions progress lazily: :meth:`World.advance` moves every record to
where the clock says it should be, and the HTTP layer calls it at the start of
every request under the lock. Nothing can observe the world between requests,
so this is indistinguishable from a background worker, yet deterministic and
thread-free: a test moves a fake clock and the next request sees the result.

An order follows the controller's ``ProcessOrderService``
(``app/services/process_order_service.rb``): when it starts processing, the
project is made (or the existing one taken) and linked to the order
(``init_project!``), and the ordered services are made with their containers
(asked to run, not yet built); when it completes the containers run. A failed
order removes nothing (``fail_process!``): the project stays, with the services
made before the failure (see :class:`~.records.OrderPlan`), never built.

Billing usage rows are not made by a clock-driven collector here: the test
controls add them (``POST /_sandbox/billing_usages``), and the admin API lists
them per user (:meth:`World.user_usages`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

from csonboard.sandbox.computestacks.records import (
    FINAL_STATUSES,
    ContainerRecord,
    CredentialRecord,
    OrderedContainer,
    OrderPlan,
    OrderRecord,
    PowerAction,
    ProjectRecord,
    ServiceRecord,
    SubscriptionProductRecord,
    UsageRecord,
    UserRecord,
    hash_password,
)
from csonboard.sandbox.computestacks.seed import Catalog

LOCK_SECONDS = 4 * 3600
"""How long a lock holds (Devise ``unlock_in``). Through an API credential it
does not end there: see :func:`.accounts.authenticate`."""

MAX_FAILED_ATTEMPTS = 5

_ADJECTIVES = ("brave", "calm", "eager", "gentle", "keen", "lucid", "merry", "quiet")
_SURNAMES = ("hopper", "lovelace", "noether", "curie", "turing", "johnson", "meitner")


class World:
    """All simulator state. Hold :attr:`lock` while reading or changing it."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        clock: Callable[[], float],
        lockout: bool,
        admin_username: str,
        admin_password: str,
    ) -> None:
        self.lock = threading.RLock()
        self.catalog = catalog
        self.clock = clock
        self.lockout = lockout
        self._admin = (admin_username, admin_password)
        self.reset()

    def reset(self) -> None:
        """Forget everything but the catalog and the admin credential."""
        with self.lock:
            self.users: dict[int, UserRecord] = {}
            self.credentials: dict[int, CredentialRecord] = {}
            self.orders: dict[str, OrderRecord] = {}
            self.projects: dict[int, ProjectRecord] = {}
            self.services: dict[int, ServiceRecord] = {}
            self.containers: dict[int, ContainerRecord] = {}
            # Indexes, so that a request costs the same with 10 or 10,000
            # customers: what belongs to what, and what the clock must move.
            self._projects_of: dict[int, dict[int, None]] = {}  # user -> project ids
            self._services_of: dict[int, dict[int, None]] = {}  # project -> service ids
            self._containers_of: dict[int, list[int]] = {}  # service id -> container ids
            self._open_orders: dict[str, None] = {}  # not final, in creation order
            self._deleting: dict[int, None] = {}  # project ids
            self._resizing: dict[int, None] = {}  # service ids
            self._powering: dict[int, None] = {}  # container ids
            self.subscription_products: dict[int, SubscriptionProductRecord] = {}
            self.usages: dict[int, UsageRecord] = {}
            self._subscribed: dict[tuple[int, int], SubscriptionProductRecord] = {}
            self._usages_of: dict[int, list[UsageRecord]] = {}
            self.plan = OrderPlan()
            self.deleting_seconds = 5.0
            self.resize_seconds = 0.0
            self.power_seconds = 1.0
            self.max_containers = self.catalog.max_containers
            self.started_at = self.clock()
            self._ids = {
                kind: itertools.count(1)
                for kind in (
                    "user",
                    "credential",
                    "project",
                    "service",
                    "container",
                    "sftp",
                    "subscription_product",
                    "billing_usage",
                )
            }
            self._seed_admin()

    def _seed_admin(self) -> None:
        now = self.started_at
        admin = UserRecord(
            id=self.next_id("user"),
            fname="Sandbox",
            lname="Admin",
            email="admin@sandbox.invalid",
            password_hash=hash_password(self._admin[1]),
            external_id=None,
            labels={},
            active=True,
            is_admin=True,
            currency=self.catalog.default_currency,
            locale="en",
            user_group_id=self.catalog.default_group().id,
            bypass_billing=True,
            confirmed_at=now,
            details={"country": "US"},
            created_at=now,
            updated_at=now,
        )
        self.users[admin.id] = admin
        username, password = self._admin
        self.add_credential(admin, "sandbox-admin", username=username, password=password)

    def next_id(self, kind: str) -> int:
        """The next integer id of ``kind`` (user, credential, project, service,
        container, sftp, subscription_product, billing_usage)."""
        return next(self._ids[kind])

    # -- credentials ---------------------------------------------------------------------

    def add_credential(
        self, user: UserRecord, name: str, *, username: str, password: str
    ) -> CredentialRecord:
        """Store a credential pair for ``user`` (only the password's hash is kept)."""
        record = CredentialRecord(
            id=self.next_id("credential"),
            user_id=user.id,
            name=name,
            username=username,
            password_hash=hash_password(password),
        )
        self.credentials[record.id] = record
        return record

    def credential_by_username(self, username: str) -> CredentialRecord | None:
        """The credential with this username, if any."""
        return next((c for c in self.credentials.values() if c.username == username), None)

    def delete_user(self, user: UserRecord) -> None:
        """Remove the user with its credentials, projects and their services,
        its orders, and its subscriptions' products and usage rows (each a
        ``has_many ... dependent: :destroy`` of ``User`` in
        ``app/models/user.rb``; ``safe_to_destroy?`` adds errors for an admin
        or a user with projects but does not abort, so nothing stops it)."""
        del self.users[user.id]
        for sub in [s for s in self.subscription_products.values() if s.user_id == user.id]:
            del self.subscription_products[sub.id]
            del self._subscribed[(sub.user_id, sub.product_id)]
        for row in self._usages_of.pop(user.id, []):
            del self.usages[row.id]
        for cred in [c for c in self.credentials.values() if c.user_id == user.id]:
            del self.credentials[cred.id]
        for project in self.user_projects(user.id):
            self._remove_project(project)
        self._projects_of.pop(user.id, None)
        for order in [o for o in self.orders.values() if o.user_id == user.id]:
            del self.orders[order.id]
            self._open_orders.pop(order.id, None)

    # -- time ----------------------------------------------------------------------------

    def add_order(self, order: OrderRecord) -> None:
        """Keep a newly placed order; the clock moves it from now on."""
        self.orders[order.id] = order
        if order.status not in FINAL_STATUSES:
            self._open_orders[order.id] = None

    def start_deleting(self, project: ProjectRecord) -> None:
        """Mark the project deleting: hidden from its owner now, removed
        after :attr:`deleting_seconds`."""
        if project.deleting_since is None:
            project.deleting_since = project.updated_at = self.clock()
            self._deleting[project.id] = None

    def advance(self) -> None:
        """Bring every order, deleting project, resizing service and power
        action up to the clock."""
        now = self.clock()
        for order_id in list(self._open_orders):
            self._progress(self.orders[order_id], now)
        self._remove_deleted_projects(now)
        for service_id in list(self._resizing):
            service = self.services[service_id]
            if service.resize_due is not None and now >= service.resize_due:
                self._finish_resize(service, service.resize_due)
        for container_id in list(self._powering):
            container = self.containers[container_id]
            if container.due is not None and now >= container.due:
                self._finish_power(container, container.due)

    def _remove_deleted_projects(self, now: float) -> None:
        """Remove the projects whose deletion finished by ``now``."""
        for project_id in list(self._deleting):
            project = self.projects[project_id]
            since = project.deleting_since
            if since is not None and now - since >= self.deleting_seconds:
                self._remove_project(project)

    def _remove_project(self, project: ProjectRecord) -> None:
        del self.projects[project.id]
        self._deleting.pop(project.id, None)
        self._projects_of.get(project.user_id, {}).pop(project.id, None)
        for service in self.project_services(project.id):
            self._remove_service(service)
        self._services_of.pop(project.id, None)

    def _remove_service(self, service: ServiceRecord) -> None:
        del self.services[service.id]
        self._resizing.pop(service.id, None)
        for container in self.service_containers(service.id):
            del self.containers[container.id]
            self._powering.pop(container.id, None)
        self._containers_of.pop(service.id, None)

    def _progress(self, order: OrderRecord, now: float) -> None:
        plan = order.plan
        if plan.outcome == "stuck":
            return
        started = order.created_at + plan.pending_seconds
        if now < started:
            return
        if order.status == "pending":
            owner = self.users.get(order.user_id) if order.user_id is not None else None
            # The real job re-reads the user when it starts: a suspended
            # (or deleted) user's order ends `failed` (ProcessOrderService#valid?
            # sets `cancelled`, then fail_process! `failed`) before any project.
            if owner is None or not owner.active:
                self._finish(order, "failed", started)
                return
            order.status, order.updated_at = "processing", started
            self._remove_deleted_projects(started)  # what was gone by then
            self._start_processing(order, started)
        finished = started + plan.processing_seconds
        if now < finished:
            return
        if plan.outcome == "fail":
            self._fail(order, finished)
        else:
            self._complete(order, finished)

    def _finish(self, order: OrderRecord, status: str, at: float) -> None:
        order.status, order.updated_at = status, at
        self._open_orders.pop(order.id, None)

    def _start_processing(self, order: OrderRecord, at: float) -> None:
        """``init_project!`` then the provisioning loop: the project is linked
        to the order at once; the services the order will get are made."""
        assert order.user_id is not None
        project = self.projects.get(order.existing_project_id or -1)
        if project is None:
            # A new project; also for an order into a project removed since it
            # was placed (the order's `deployment` was nullified with it).
            project = ProjectRecord(
                id=self.next_id("project"),
                name=order.project_name,
                user_id=order.user_id,
                location_id=order.location_id,
                region_id=order.region_id,
                skip_ssh=order.skip_ssh,
                created_at=at,
                updated_at=at,
            )
            self.projects[project.id] = project
            self._projects_of.setdefault(project.user_id, {})[project.id] = None
        project.provision = "working"
        order.project_id = project.id
        made = order.containers
        if order.plan.outcome == "fail" and order.plan.built_before_failure is not None:
            made = made[: order.plan.built_before_failure]
        order.service_ids = [self._add_service(c, project.id, at).id for c in made]

    def _add_service(self, ordered: OrderedContainer, project_id: int, at: float) -> ServiceRecord:
        """One service with its one container, asked to run but not yet built.
        The name is generated as the controller's ``NamesGenerator.name``
        does it (an adjective, a surname and the project's id), so it is not
        the label."""
        service_id = self.next_id("service")
        adjective = _ADJECTIVES[service_id % len(_ADJECTIVES)]
        surname = _SURNAMES[service_id // len(_ADJECTIVES) % len(_SURNAMES)]
        service = ServiceRecord(
            id=service_id,
            name=f"{adjective}-{surname}{project_id}",
            label=ordered.label,
            project_id=project_id,
            image_id=ordered.image_id,
            variant_id=ordered.variant_id,
            product_id=ordered.product_id,
            created_at=at,
            updated_at=at,
        )
        self.services[service.id] = service
        self._services_of.setdefault(project_id, {})[service.id] = None
        container_id = self.next_id("container")
        self._containers_of.setdefault(service.id, []).append(container_id)
        self.containers[container_id] = ContainerRecord(
            id=container_id,
            name=f"{service.name}-{container_id}",
            service_id=service.id,
            req_state="running",
            running=False,
            built=False,
            created_at=at,
            updated_at=at,
        )
        return service

    def _order_services(self, order: OrderRecord) -> list[ServiceRecord]:
        return [self.services[i] for i in order.service_ids if i in self.services]

    def _complete(self, order: OrderRecord, at: float) -> None:
        """``finalize!`` succeeded: the bastion exists, the containers run."""
        for service in self._order_services(order):
            service.provision = "ok"
            for container in self.service_containers(service.id):
                container.built = True
                container.running = container.req_state == "running"
                container.updated_at = at
        project = self.projects.get(order.project_id or -1)
        if project is not None:
            project.provision = "ok"
            if project.sftp_id is None:
                project.sftp_id = self.next_id("sftp")
        self._finish(order, "completed", at)

    def _fail(self, order: OrderRecord, at: float) -> None:
        """``fail_process!``: nothing is removed; what was made stays, never
        deployed, and the project and its services show the failure."""
        for service in self._order_services(order):
            service.provision = "failed"
        project = self.projects.get(order.project_id or -1)
        if project is not None:
            project.provision = "failed"
        self._finish(order, "failed", at)

    # -- services ------------------------------------------------------------------------

    def start_resize(self, service: ServiceRecord, product_id: int) -> None:
        """Start moving ``service`` to ``product_id``: at once when
        :attr:`resize_seconds` is 0, else when that much time has passed (the
        service shows ``working`` meanwhile). A newer resize replaces one still
        in progress, as the later background job finishes last."""
        now = self.clock()
        service.resize_to, service.resize_due = product_id, now + self.resize_seconds
        self._resizing[service.id] = None
        if self.resize_seconds <= 0:
            self._finish_resize(service, now)
        else:
            service.updated_at = now

    def _finish_resize(self, service: ServiceRecord, at: float) -> None:
        if service.resize_to is not None:
            service.product_id = service.resize_to
        service.resize_to = service.resize_due = None
        self._resizing.pop(service.id, None)
        service.updated_at = at

    def start_power(self, container: ContainerRecord, action: PowerAction) -> None:
        """Start a power action on a container, finishing after
        :attr:`power_seconds` (at once when 0). ``req_state`` changes as the
        worker starts (``Containers::PowerManager``): ``stopped`` for a stop,
        and for a rebuild, which stops and deletes the container before
        building it anew; ``running`` for a start or restart. A start or
        restart of a container never built is a rebuild
        (``PowerCycleContainerService#perform``)."""
        now = self.clock()
        if action in ("start", "restart") and not container.built:
            action = "rebuild"
        container.action, container.due = action, now + self.power_seconds
        self._powering[container.id] = None
        container.req_state = "stopped" if action in ("stop", "rebuild") else "running"
        container.updated_at = now
        if self.power_seconds <= 0:
            self._finish_power(container, now)

    def _finish_power(self, container: ContainerRecord, at: float) -> None:
        if container.action == "stop":
            container.running = False
        else:
            # start, restart, and a rebuild (whose provisioning starts it).
            container.req_state, container.running, container.built = "running", True, True
        container.action = container.due = None
        self._powering.pop(container.id, None)
        container.updated_at = at

    # -- billing usage --------------------------------------------------------------------

    def subscribe(
        self, user: UserRecord, product_id: int, since: float
    ) -> SubscriptionProductRecord:
        """The user's subscription product for ``product_id``, made (starting at
        ``since``) when the user has none yet."""
        key = (user.id, product_id)
        sub = self._subscribed.get(key)
        if sub is None:
            sub = SubscriptionProductRecord(
                id=self.next_id("subscription_product"),
                user_id=user.id,
                product_id=product_id,
                start_on=since,
                created_at=since,
                updated_at=since,
            )
            self._subscribed[key] = self.subscription_products[sub.id] = sub
        return sub

    def add_usage(self, row: UsageRecord) -> None:
        """Store a usage row under the owner of its subscription product."""
        owner = self.subscription_products[row.subscription_product_id].user_id
        self.usages[row.id] = row
        self._usages_of.setdefault(owner, []).append(row)

    def user_usages(self, user_id: int) -> list[UsageRecord]:
        """``User#billing_usages``: the rows of the user's subscriptions (the
        join is through ``subscriptions.user_id``, not the row's own
        ``user_id``), newest ``created_at`` first as the model's
        ``default_scope`` orders them. The controller has no tiebreaker; the
        database keeps microseconds, so rows made later sort first, and the
        simulator, whose clock may not move between rows, breaks ties by id."""
        rows = self._usages_of.get(user_id, [])
        return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)

    # -- queries -------------------------------------------------------------------------

    def user_projects(self, user_id: int) -> list[ProjectRecord]:
        """Every project of the user, those being deleted too."""
        return [self.projects[i] for i in self._projects_of.get(user_id, ())]

    def live_projects(self, user_id: int) -> Iterator[ProjectRecord]:
        """The user's projects that are not being deleted."""
        return (p for p in self.user_projects(user_id) if p.deleting_since is None)

    def visible_project(self, user: UserRecord, project_id: int) -> ProjectRecord | None:
        """The project as the user API's ``Deployment.find_for`` sees it
        (``app/models/concerns/authorization/deployment.rb``): any project
        for an admin; its owner's while it is not being deleted; None
        otherwise."""
        project = self.projects.get(project_id)
        if project is None or user.is_admin:
            return project
        if project.user_id != user.id or project.deleting_since is not None:
            return None
        return project

    def visible_service(self, user: UserRecord, service_id: int) -> ServiceRecord | None:
        """The service as ``Deployment::ContainerService.find_for`` sees it
        (``app/models/concerns/authorization/container_service.rb``): its
        project's owner's (even while the project is being deleted) or any
        for an admin; None otherwise."""
        service = self.services.get(service_id)
        if service is None or user.is_admin:
            return service
        return service if self.projects[service.project_id].user_id == user.id else None

    def project_services(self, project_id: int) -> list[ServiceRecord]:
        """The project's services in creation order."""
        return sorted(
            (self.services[i] for i in self._services_of.get(project_id, ())), key=lambda s: s.id
        )

    def service_containers(self, service_id: int) -> list[ContainerRecord]:
        """The service's containers, by name (``Deployment::Container.sorted``)."""
        mine = (self.containers[i] for i in self._containers_of.get(service_id, ()))
        return sorted(mine, key=lambda c: (c.name, c.id))

    def user_containers(self, user_id: int) -> int:
        """How many containers the user's projects hold, those being deleted
        too (``User#deployed_containers``, what the quota counts)."""
        return sum(
            len(self._containers_of.get(s, ()))
            for p in self._projects_of.get(user_id, ())
            for s in self._services_of.get(p, ())
        )

    def service_state(self, service: ServiceRecord) -> str:
        """The service's ``current_state``
        (``app/models/concerns/container_services/state_manager.rb``):
        ``working`` while an event runs on it (its order processing, a
        resize, a power action), ``alert`` when the order that made it
        failed, else ``online`` when a container is asked to run and
        ``inactive`` when none is."""
        containers = self.service_containers(service.id)
        if (
            service.provision == "working"
            or service.resize_to is not None
            or any(c.action is not None for c in containers)
        ):
            return "working"
        if service.provision == "failed":
            return "alert"
        return "online" if any(c.req_state == "running" for c in containers) else "inactive"

    def is_locked(self, user: UserRecord) -> bool:
        """Whether the API refuses the user's credentials whatever the password
        (see :func:`.accounts.authenticate`)."""
        if not self.lockout:
            return False
        locked = user.locked_at is not None and self.clock() - user.locked_at < LOCK_SECONDS
        return locked or user.failed_attempts >= MAX_FAILED_ATTEMPTS

    def snapshot(self) -> dict[str, object]:
        """What exists, for tests: never passwords or hashes; usage rows only
        counted (a benchmark may seed hundreds of thousands)."""
        live_credentials: dict[int, int] = {}
        for cred in self.credentials.values():
            live_credentials[cred.user_id] = live_credentials.get(cred.user_id, 0) + 1
        users = [
            {
                "id": u.id,
                "email": u.email,
                "fname": u.fname,
                "lname": u.lname,
                "external_id": u.external_id,
                "labels": u.labels,
                "active": u.active,
                "is_admin": u.is_admin,
                "bypass_billing": u.bypass_billing,
                "group": u.user_group_id,
                "currency": u.currency,
                "locale": u.locale,
                "confirmed": u.confirmed_at is not None,
                "failed_attempts": u.failed_attempts,
                "locked": self.is_locked(u),
                "locked_at": u.locked_at,
                "credentials": live_credentials.get(u.id, 0),
            }
            for u in self.users.values()
        ]
        orders = [
            {
                "id": o.id,
                "owner": o.user_id,
                "status": o.status,
                "project": o.project_id,
                "project_name": o.project_name,
                "location": o.location_id,
                "containers": len(o.containers),
            }
            for o in self.orders.values()
        ]
        projects = [
            {"id": p.id, "name": p.name, "owner": p.user_id, "state": p.state}
            for p in self.projects.values()
        ]
        services = [
            {
                "id": s.id,
                "project": s.project_id,
                "label": s.label,
                "image": s.image_id,
                "variant": s.variant_id,
                "product": s.product_id,
                "resizing_to": s.resize_to,
            }
            for s in self.services.values()
        ]
        containers = [
            {"id": c.id, "service": c.service_id, "req_state": c.req_state, "state": c.state}
            for c in self.containers.values()
        ]
        return {
            "users": users,
            "orders": orders,
            "projects": projects,
            "services": services,
            "containers": containers,
            "billing_usages": len(self.usages),
        }
