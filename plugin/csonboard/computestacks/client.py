"""The ComputeStacks client: the calls csonboard makes, typed.

Every call has a timeout. Idempotent calls (GET, PATCH, DELETE, the suspension
and resize POSTs and the power start and stop PUTs, whose effect is
idempotent) are retried on transient errors with exponential backoff and
jitter. Calls that create something (users, credentials, orders, SSO tokens)
or that do something each time they are made (a power restart or rebuild) are
sent once: ComputeStacks has no idempotency keys, so a retried create makes a
second thing. Their transient errors reach the caller, who must look before
trying again (a user by external id or email, an order in the user's order
list, a service's containers).

Error mapping is described in :mod:`csonboard.computestacks.transport`.
"""

from __future__ import annotations

import base64
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import quote

import requests

from csonboard.computestacks.models import (
    POWER_ACTIONS,
    AdminProduct,
    ApiCredential,
    BillingUsage,
    Container,
    ContainerImage,
    Listing,
    Location,
    NewOrder,
    NewUser,
    Order,
    PlacedOrder,
    Product,
    Project,
    Service,
    SsoToken,
    User,
    UserUpdate,
)
from csonboard.computestacks.parse import (
    Call,
    Fields,
    parse_admin_product,
    parse_billing_usage,
    parse_container,
    parse_credential,
    parse_image,
    parse_location,
    parse_order,
    parse_placed_order,
    parse_product,
    parse_project,
    parse_service,
    parse_sso,
    parse_user,
    root,
)
from csonboard.computestacks.transport import (
    PAGE_SIZE,
    HasId,
    Pacer,
    RetryPolicy,
    Transport,
    read_fields,
    read_json,
)
from csonboard.errors import ComputeStacksNotFound

Row = TypeVar("Row", bound=HasId)


class ComputeStacksClient:
    """One API credential talking to one ComputeStacks.

    Admin calls need a credential whose user is an admin; user calls act as
    the credential's owner (use :meth:`as_user` to act as a customer).

    ``api_version`` adds ``; api_version=NN`` to ``Accept``; omitted by default,
    which every server version accepts. ``attempts`` counts tries of an
    idempotent call (1 disables retries). ``sleep``, ``jitter`` and ``clock``
    are injected so tests run instantly (``clock`` is Unix time, read against
    ``RateLimit-Reset``; ``monotonic`` measures the spacing of a
    :meth:`paced` client). ``page_size`` is the ``per_page`` asked for when
    walking lists. ``max_wait`` caps how long a 429's ``RateLimit-Reset`` is
    waited for inside a call; beyond it the
    :class:`~csonboard.errors.ComputeStacksRateLimited` is raised with its
    ``retry_after`` for the caller to reschedule.
    """

    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        *,
        username: str,
        password: str,
        api_version: int | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        page_size: int = PAGE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if timeout <= 0 or page_size < 1:
            raise ValueError("timeout and page_size must be positive")
        self._base_url = base_url
        self._session = session
        self._password = password
        self._api_version = api_version
        self._timeout = timeout
        self._retry = RetryPolicy(attempts, backoff, max_wait, sleep, jitter)
        self._clock = clock
        self._page_size = page_size
        self._monotonic = monotonic
        self._pacer: Pacer | None = None
        self.username = username
        self._http = self._transport()

    def _transport(self) -> Transport:
        accept = "application/json"
        if self._api_version is not None:
            accept += f"; api_version={self._api_version}"
        return Transport(
            self._base_url,
            self._session,
            auth=(self.username, self._password),
            accept=accept,
            timeout=self._timeout,
            retry=self._retry,
            clock=self._clock,
            page_size=self._page_size,
            pacer=self._pacer,
        )

    def __repr__(self) -> str:
        return f"ComputeStacksClient({self._base_url!r}, username={self.username!r})"

    def _derive(self, username: str, password: str, pacer: Pacer | None) -> ComputeStacksClient:
        r = self._retry
        client = ComputeStacksClient(
            self._base_url,
            self._session,
            username=username,
            password=password,
            api_version=self._api_version,
            timeout=self._timeout,
            attempts=r.attempts,
            backoff=r.backoff,
            max_wait=r.max_wait,
            sleep=r.sleep,
            jitter=r.jitter,
            clock=self._clock,
            page_size=self._page_size,
            monotonic=self._monotonic,
        )
        if pacer is not None:
            client._pacer = pacer
            client._http = client._transport()
        return client

    def as_user(self, username: str, password: str) -> ComputeStacksClient:
        """A client with the same session and settings acting as another
        credential. A :meth:`paced` client's is paced with it: both share one
        spacing, as they share the server's per-IP throttle."""
        return self._derive(username, password, self._pacer)

    def paced(self, requests_per_minute: float) -> ComputeStacksClient:
        """A client with the same session, credential and settings whose
        requests start at least ``60 / requests_per_minute`` seconds apart.

        Every HTTP request counts: each page of a list and each retry (a
        retry's backoff counts towards the spacing). The pause uses the
        client's ``sleep`` and is measured on its ``monotonic`` clock. This
        client stays unpaced; pacing an already paced client replaces its
        rate. ``requests_per_minute`` must be positive and finite (else
        ValueError)."""
        if not math.isfinite(requests_per_minute) or requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive and finite")
        pacer = Pacer(
            60.0 / requests_per_minute, monotonic=self._monotonic, sleep=self._retry.sleep
        )
        return self._derive(self.username, self._password, pacer)

    # -- admin: users ---------------------------------------------------------------

    def find_user_by_external_id(self, external_id: str) -> User | None:
        """The user with this ``external_id``, or None (404).

        ``external_id`` is not unique in ComputeStacks; with several matches the
        server returns any one. Ids containing ``.`` or ``/`` cannot be routed by
        the server and raise ValueError here. Retried when transient.
        """
        if not external_id or "." in external_id or "/" in external_id:
            raise ValueError("external_id must be non-empty without '.' or '/'")
        path = f"/api/admin/users/{quote(external_id, safe='')}"
        return self._find_user(path, {"find_by_external_id": "true"})

    def find_user_by_email(self, email: str) -> User | None:
        """The user with this email (compared lower-cased), or None (404).
        A blank email raises ValueError. Retried when transient."""
        if not email.strip():
            raise ValueError("email must not be blank")
        key = base64.b64encode(email.strip().lower().encode("utf-8")).decode("ascii")
        return self._find_user(f"/api/admin/users/{quote(key, safe='')}", {"find_by_email": "true"})

    def _find_user(self, path: str, params: dict[str, str | int]) -> User | None:
        try:
            response = self._http.send("GET", path, params=params, retry=True)
        except ComputeStacksNotFound:
            return None
        call = Call("GET", path)
        return parse_user(root(read_json(response, call), call, "user"))

    def get_user(self, user_id: int) -> User:
        """The user with this id; ComputeStacksNotFound if none. Retried when transient."""
        return self._user_call("GET", f"/api/admin/users/{user_id}", None, retry=True)

    def create_user(self, user: NewUser) -> User:
        """Create a user. Sent once, never retried: after a transient error look
        the user up (by external id or email) before trying again. A taken email
        raises ComputeStacksValidationError with "Email has already been taken"."""
        return self._user_call("POST", "/api/admin/users", user.to_body(), retry=False)

    def update_user(self, user_id: int, changes: UserUpdate) -> User:
        """Change a user (PATCH); unset fields are kept. Retried when transient."""
        return self._user_call(
            "PATCH", f"/api/admin/users/{user_id}", changes.to_body(), retry=True
        )

    def _user_call(self, method: str, path: str, body: object, *, retry: bool) -> User:
        response = self._http.send(method, path, body=body, retry=retry)
        call = Call(method, path)
        return parse_user(root(read_json(response, call), call, "user"))

    def suspend_user(self, user_id: int) -> None:
        """Suspend the user (``active=false``); that is all it does. Its new
        orders fail, but its credentials still authenticate (it can still
        start its services through the API) and nothing is stopped: its
        services keep running and billing (stop them with :meth:`power`).
        Idempotent in effect, so retried when transient."""
        self._http.send("POST", f"/api/admin/users/{user_id}/suspension", retry=True)

    def unsuspend_user(self, user_id: int) -> None:
        """Lift a suspension (``active=true``). Retried when transient."""
        self._http.send("DELETE", f"/api/admin/users/{user_id}/suspension", retry=True)

    def delete_user(self, user_id: int) -> None:
        """Delete the user with its credentials. Delete its projects first: the
        server's guard against users with projects is unreliable. Raises
        ComputeStacksNotFound if the user is already gone. Retried when transient."""
        self._http.send("DELETE", f"/api/admin/users/{user_id}", retry=True)

    def create_api_credential(self, user_id: int, name: str) -> ApiCredential:
        """Mint a new credential pair for the user; existing pairs keep working.
        The password is readable only from this answer. Sent once, never retried:
        a retry would mint a second pair."""
        path = f"/api/admin/users/{user_id}/api_credentials"
        response = self._http.send(
            "POST", path, body={"api_credential": {"name": name}}, retry=False
        )
        call = Call("POST", path)
        return parse_credential(root(read_json(response, call), call, "api_credential"))

    def delete_api_credential(self, user_id: int, credential_id: int) -> None:
        """Delete one credential pair. Raises ComputeStacksNotFound if it is
        already gone (also when a retried delete had succeeded). Retried when transient."""
        path = f"/api/admin/users/{user_id}/api_credentials/{credential_id}"
        self._http.send("DELETE", path, retry=True)

    def create_sso_token(self, user_id: int) -> SsoToken:
        """A login token valid for one minute. Sent once, never retried."""
        path = f"/api/admin/users/{user_id}/user_sso"
        response = self._http.send("POST", path, retry=False)
        return parse_sso(read_fields(response, Call("POST", path)))

    def list_user_projects(self, user_id: int) -> tuple[Project, ...]:
        """Every project of the user, newest first, all pages: those being
        deleted, and those a failed order left behind (``alert``), too.
        ComputeStacksNotFound for an unknown user. Retried when transient."""
        return self._http.fetch_all(
            f"/api/admin/users/{user_id}/projects", "projects", parse_project
        )

    # -- admin: the whole installation ----------------------------------------------------

    def list_all_users(self, *, per_page: int | None = None) -> Listing[User]:
        """Every user of the installation (``GET /api/admin/users``), all pages.

        The server sorts by last then first name, case-insensitively, with no
        tiebreaker, so users of one name may come on two pages (kept once) or
        on none: see :attr:`Listing.missed`. ``per_page`` rows a page (the
        client's ``page_size`` by default; the server has no maximum, and a
        page holding everything cannot miss a row). ValueError when
        ``per_page`` is below 1. Retried when transient."""
        return self._listing("/api/admin/users", "users", parse_user, per_page)

    def list_all_projects(self, *, per_page: int | None = None) -> Listing[Project]:
        """Every project of every user (``GET /api/admin/projects``), those being
        deleted and those a failed order left too, newest first, all pages,
        each with its owner (``user_id``, ``user_external_id``). A project
        deleted while the pages are read pulls older ones up a page, which
        may then be missed (:attr:`Listing.missed`). ``per_page`` as for
        :meth:`list_all_users`. Retried when transient."""
        return self._listing("/api/admin/projects", "projects", parse_project, per_page)

    def list_all_services(self, *, per_page: int | None = None) -> Listing[Service]:
        """Every container service of every project
        (``GET /api/admin/container_services?all=true``), in full: with its
        project, image, product, ``current_state`` and owner. All pages.

        The server sorts by label, which is not unique, with no tiebreaker,
        so services of one label may come on two pages (kept once) or on
        none: see :attr:`Listing.missed`. ``per_page`` as for
        :meth:`list_all_users`. Retried when transient."""
        return self._listing(
            "/api/admin/container_services",
            "container_services",
            parse_service,
            per_page,
            params={"all": "true"},
        )

    def _listing(
        self,
        path: str,
        key: str,
        parse: Callable[[Fields], Row],
        per_page: int | None,
        *,
        params: dict[str, str] | None = None,
    ) -> Listing[Row]:
        if per_page is not None and per_page < 1:
            raise ValueError("per_page must be positive")
        return self._http.fetch_listing(path, key, parse, params=params, per_page=per_page)

    # -- admin: billing ------------------------------------------------------------------

    def billing_usages(
        self,
        user_id: int,
        *,
        per_page: int | None = None,
        stop: Callable[[Sequence[BillingUsage]], bool] | None = None,
    ) -> tuple[BillingUsage, ...]:
        """The user's billing usage rows (those of the user's subscriptions),
        newest ``created_at`` first (ties by id, newest first), each once.
        ComputeStacksNotFound for an unknown user. Retried when transient.

        Pages of ``per_page`` rows (the client's ``page_size`` by default; the
        server has no maximum, and fewer pages mean fewer requests against its
        per-IP throttle) are read until the last, or until ``stop``, called
        with each page's rows as sent, returns True; the rows read so far,
        that page's included, are returned. To sync from a watermark, stop at
        a page reaching rows at or before it, e.g.
        ``stop=lambda page: any(r.created_at <= mark for r in page)``, and
        filter the result: the server has no filter parameters. Rows that
        move between pages while paging are neither missed nor repeated (see
        :meth:`~csonboard.computestacks.transport.Transport.fetch_shifting`).
        """
        if per_page is not None and per_page < 1:
            raise ValueError("per_page must be positive")
        rows = self._http.fetch_shifting(
            f"/api/admin/users/{user_id}/billing_usages",
            "billing_usages",
            parse_billing_usage,
            per_page=per_page,
            stop=stop,
        )
        return tuple(sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True))

    # -- admin: products -----------------------------------------------------------------

    def list_admin_products(self) -> tuple[AdminProduct, ...]:
        """Every product, of any kind and whatever billing plan holds it
        (packages, resource products such as bandwidth), oldest first, all
        pages. Retried when transient."""
        return self._http.fetch_all("/api/admin/products", "products", parse_admin_product)

    # -- admin: images and orders --------------------------------------------------------

    def get_admin_image(self, image_id: int) -> ContainerImage:
        """The image with its variants (the admin endpoint lists them; the user
        API at HEAD does not). ComputeStacksNotFound if none. Retried when transient."""
        return self._image_call(f"/api/admin/container_images/{image_id}")

    def default_variant_id(self, image_id: int) -> int:
        """The id of the image's default variant (else its first), read through
        the admin API. ComputeStacksProtocolError if it lists no variants."""
        image = self.get_admin_image(image_id)
        variant = image.default_variant()
        if variant is None:
            path = f"/api/admin/container_images/{image_id}"
            raise Call("GET", path).protocol_error(f"image {image_id} lists no variants")
        return variant.id

    def get_admin_order(self, order_id: str) -> Order:
        """Any user's order (project id from ``deployment``). ComputeStacksNotFound
        if none. Retried when transient."""
        return self._order_call(f"/api/admin/orders/{quote(order_id, safe='')}")

    # -- user API (acts as the credential's owner) -------------------------------------

    def list_products(self) -> tuple[Product, ...]:
        """Products of the caller's billing plan, one row per product x region.
        Retried when transient."""
        path = "/api/products"
        response = self._http.send("GET", path, retry=True)
        return tuple(
            parse_product(p) for p in read_fields(response, Call("GET", path)).items("products")
        )

    def list_locations(self) -> tuple[Location, ...]:
        """All locations, all pages, including ones the caller may not order in.
        Retried when transient."""
        return self._http.fetch_all("/api/locations", "locations", parse_location)

    def list_images(self) -> tuple[ContainerImage, ...]:
        """Every image the caller can see (system images, their own, shared),
        all pages; ``variants`` may be empty (see :meth:`get_admin_image`).
        Retried when transient."""
        return self._http.fetch_all("/api/container_images", "container_images", parse_image)

    def get_image(self, image_id: int) -> ContainerImage:
        """An image with its setting params and required images, as the caller
        sees it; ``variants`` may be empty (see :meth:`get_admin_image`).
        Retried when transient."""
        return self._image_call(f"/api/container_images/{image_id}")

    def _image_call(self, path: str) -> ContainerImage:
        response = self._http.send("GET", path, retry=True)
        call = Call("GET", path)
        return parse_image(root(read_json(response, call), call, "container_image"))

    def create_order(self, order: NewOrder) -> PlacedOrder:
        """Place an order as the caller; it starts ``pending`` and is processed
        in the background. Sent once, never retried: a retry places a second
        order. After a transient error, look for the order in
        :meth:`list_orders` before placing again."""
        path = "/api/orders"
        response = self._http.send("POST", path, body=order.to_body(), retry=False)
        call = Call("POST", path)
        return parse_placed_order(root(read_json(response, call), call, "order"))

    def get_order(self, order_id: str) -> Order:
        """One of the caller's orders; ComputeStacksNotFound for anyone else's.
        Retried when transient."""
        return self._order_call(f"/api/orders/{quote(order_id, safe='')}")

    def _order_call(self, path: str) -> Order:
        response = self._http.send("GET", path, retry=True)
        call = Call("GET", path)
        return parse_order(root(read_json(response, call), call, "order"))

    def list_orders(self) -> tuple[Order, ...]:
        """The caller's orders, newest first, all pages. Retried when transient."""
        return self._http.fetch_all("/api/orders", "orders", parse_order)

    def list_projects(self) -> tuple[Project, ...]:
        """The caller's projects by name, all pages, without those being
        deleted; with those a failed order left behind. Retried when transient."""
        return self._http.fetch_all("/api/projects", "projects", parse_project)

    def delete_project(self, project_id: int) -> None:
        """Start deleting a project (admins may delete anyone's); it is hidden
        from the owner at once and removed later. ComputeStacksNotFound if it
        is not visible, which for its owner includes a project already being
        deleted (so a retry after a lost answer may raise it: the project is
        going). Retried when transient."""
        self._http.send("DELETE", f"/api/projects/{project_id}", retry=True)

    def list_project_services(self, project_id: int) -> tuple[Service, ...]:
        """The project's container services (load balancers are not listed),
        all pages. The caller must own the project or be an admin; otherwise,
        and for an unknown project, ComputeStacksNotFound. Retried when transient."""
        return self._http.fetch_all(
            f"/api/projects/{project_id}/services", "container_services", parse_service
        )

    def resize_service(self, service_id: int, product_id: int) -> None:
        """Move a service to another product (package); the caller must own it
        or be an admin. Returns once ComputeStacks accepted the resize (202);
        the change happens in the background, so read
        :meth:`list_project_services` to see the new ``product_id``.

        A POST, yet retried when transient, like the suspension calls: its
        effect is idempotent. Asking for the product the service already has
        is accepted and does nothing, so a retry after a lost answer either
        finds the resize done (a no-op) or starts the same resize again,
        which ends at the same product.

        ComputeStacks checks only that the product exists and has a package
        (else ComputeStacksValidationError ``["Missing package id: <id>"]``);
        it does not check the user's billing plan, the image's minimums or
        whether the user is suspended, so check those before calling.
        ComputeStacksNotFound when the service is not visible.
        """
        self._http.send(
            "POST",
            f"/api/container_services/{service_id}/resize",
            body={"container_service": {"product_id": product_id}},
            retry=True,
        )

    def power(self, service_id: int, action: str) -> None:
        """Ask every container of a service to ``start``, ``stop``, ``restart``
        or ``rebuild`` (anything else raises ValueError, unsent). Returns once
        ComputeStacks accepted it (202); the containers change in the
        background (``starting``/``stopping`` for a while): read
        :meth:`list_service_containers`. The caller must own the service or be
        an admin; otherwise, and for an unknown service, ComputeStacksNotFound.

        A container with a power action still running ignores a new one
        (ComputeStacks cancels it, and still answers 202). ``start`` and
        ``stop`` are retried when transient: doing either twice ends where
        doing it once does. ``restart`` and ``rebuild`` are sent once: each
        one sent restarts (or rebuilds) the containers again, so after a
        transient error look at the containers before asking again.

        Nothing checks the owner's ``active``: a suspended user can start its
        services again through its API credentials.
        """
        if action not in POWER_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(POWER_ACTIONS)}")
        self._http.send(
            "PUT",
            f"/api/container_services/{service_id}/power/{action}",
            retry=action in ("start", "stop"),
        )

    def list_service_containers(self, service_id: int) -> tuple[Container, ...]:
        """The service's containers, by name (the list is not paginated). The
        caller must own the service or be an admin; otherwise, and for an
        unknown service, ComputeStacksNotFound. Retried when transient."""
        path = f"/api/container_services/{service_id}/containers"
        response = self._http.send("GET", path, retry=True)
        rows = read_fields(response, Call("GET", path)).items("containers")
        return tuple(parse_container(row, service_id) for row in rows)
