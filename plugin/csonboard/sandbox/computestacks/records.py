"""The simulator's mutable records: users, credentials, orders, projects,
container services and their containers, subscription products and their
billing usage rows.

Plain data; the rules that change them live in :mod:`.accounts` and
:mod:`.ordering`, the store in :mod:`.state`. Times are seconds from the
injected clock. Passwords are stored only as salted hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

OrderStatus = Literal["pending", "processing", "completed", "failed"]
Outcome = Literal["complete", "fail", "stuck"]
PowerAction = Literal["start", "stop", "restart", "rebuild"]
Provision = Literal["working", "ok", "failed"]
"""How the order that made (or last added to) a record went: ``working`` while
it is processing, ``failed`` once it failed (the controller's
``provisioning_failed?``), else ``ok``."""

FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def hash_password(password: str) -> str:
    """A salted hash. Not bcrypt: the simulator answers many requests in tests,
    and only needs to prove it never keeps or returns plaintext."""
    salt = secrets.token_hex(8)
    return f"{salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a :func:`hash_password` value."""
    salt, _, digest = stored.partition("$")
    candidate = hashlib.sha256((salt + password).encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


@dataclass
class UserRecord:
    """A user. ``details`` holds the free-form contact and address fields."""

    id: int
    fname: str
    lname: str
    email: str
    password_hash: str = field(repr=False)
    external_id: str | None
    labels: dict[str, object]
    active: bool
    is_admin: bool
    currency: str
    locale: str
    user_group_id: int
    bypass_billing: bool
    confirmed_at: float | None
    details: dict[str, object]
    created_at: float
    updated_at: float
    failed_attempts: int = 0
    locked_at: float | None = None
    auth_token_exp: float | None = None


@dataclass
class CredentialRecord:
    """An API credential pair; the password exists only as a hash."""

    id: int
    user_id: int
    name: str
    username: str
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class OrderPlan:
    """How an order progresses: ``pending`` for ``pending_seconds``, then
    ``processing`` for ``processing_seconds``, then the ``outcome``
    (``stuck`` stays ``pending`` forever).

    ``built_before_failure`` says how far a ``fail`` gets: None (the default)
    fails after every ordered service was made, in the order job's
    ``finalize!``; a number fails while provisioning that service (0-based),
    so only the services before it are left. Either way the project stays.
    """

    pending_seconds: float = 1.0
    processing_seconds: float = 1.0
    outcome: Outcome = "complete"
    built_before_failure: int | None = None


@dataclass(frozen=True)
class OrderedContainer:
    """One container of a placed order, as validated."""

    label: str
    image_id: int
    variant_id: int
    product_id: int
    params: dict[str, tuple[str, str]] = field(repr=False)
    domains: tuple[str, ...]


@dataclass
class OrderRecord:
    """An order. ``existing_project_id`` is set when the order adds to a project;
    ``project_id`` once the order is processing (the order job links the
    project first), and it stays when the order fails."""

    id: str
    user_id: int | None
    status: str
    plan: OrderPlan
    project_name: str
    skip_ssh: bool
    location_id: int
    region_id: int
    load_balancer_ip: str | None
    containers: tuple[OrderedContainer, ...]
    created_at: float
    updated_at: float
    existing_project_id: int | None = None
    project_id: int | None = None
    service_ids: list[int] = field(default_factory=list)


@dataclass
class ProjectRecord:
    """A project. ``deleting_since`` is set by a delete; it is removed later.
    ``sftp_id`` is its SSH bastion (``Deployment::Sftp``), made by the order
    job's ``finalize!`` (so a project whose first order failed has none)."""

    id: int
    name: str
    user_id: int
    location_id: int
    region_id: int
    skip_ssh: bool
    created_at: float
    updated_at: float
    provision: Provision = "working"
    sftp_id: int | None = None
    deleting_since: float | None = None

    @property
    def state(self) -> str:
        """``current_state`` as the API shows it
        (``app/models/concerns/projects/state_manager.rb``): ``deleting``,
        ``working`` while an order is processing into it, ``alert`` once its
        latest order failed, else ``ok``."""
        if self.deleting_since is not None:
            return "deleting"
        return {"working": "working", "failed": "alert", "ok": "ok"}[self.provision]


@dataclass
class ServiceRecord:
    """A container service of a project, made by the order job (one per
    ordered container, each with one container). ``resize_to`` and
    ``resize_due`` describe a resize in progress: the product changes to
    ``resize_to`` once the clock reaches ``resize_due``. ``provision`` is how
    the order that made it went. ``override_autoremove`` is the column of
    that name (``db/schema.rb``: false by default; nothing the simulator
    serves changes it)."""

    id: int
    name: str
    label: str
    project_id: int
    image_id: int
    variant_id: int
    product_id: int
    created_at: float
    updated_at: float
    provision: Provision = "working"
    resize_to: int | None = None
    resize_due: float | None = None
    override_autoremove: bool = False


@dataclass
class ContainerRecord:
    """A container of a service (``Deployment::Container``).

    ``req_state`` is the state asked for (``running``/``stopped``), ``running``
    whether it runs, ``built`` whether it was ever deployed to a node. A power
    action in progress is ``action`` until the clock reaches ``due``."""

    id: int
    name: str
    service_id: int
    req_state: str
    running: bool
    built: bool
    created_at: float
    updated_at: float
    action: PowerAction | None = None
    due: float | None = None

    @property
    def state(self) -> str:
        """``current_state`` as the API shows it
        (``app/models/concerns/containers/state_manager.rb``): ``starting``
        or ``stopping`` while a power action runs (rebuild and restart count
        as starting), else ``online`` or ``offline``."""
        if self.action is not None:
            return "stopping" if self.action == "stop" else "starting"
        return "online" if self.running else "offline"


@dataclass(slots=True)
class SubscriptionProductRecord:
    """What a user is billed for: one product of one of the user's
    subscriptions (``app/models/subscription_product.rb``). The simulator keeps
    one per (user, product), made with the user's first usage row of that
    product; ``user_id`` is the subscription's owner, through which the
    per-user usage list joins."""

    id: int
    user_id: int
    product_id: int
    start_on: float
    created_at: float
    updated_at: float
    external_id: str | None = None
    active: bool = True
    phase_type: str = "final"


@dataclass(slots=True)
class UsageRecord:
    """One billing usage row (``billing_usages``, ``app/models/billing_usage.rb``):
    ``qty`` is the billable quantity, ``qty_total`` the full one, ``rate`` the
    price per unit in a term of ``rate_period`` hours, ``total`` the amount.
    ``user_id`` is the row's own ``user_id`` column (the ``user`` it renders)."""

    id: int
    user_id: int
    subscription_product_id: int
    period_start: float
    period_end: float
    rate: Decimal
    rate_period: int
    qty: Decimal
    qty_total: Decimal
    total: Decimal
    processed: bool
    processed_on: float | None
    created_at: float
    updated_at: float
    external_id: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A request the real controller refuses: answer ``status`` with
    ``{"errors": errors}`` (a value, not an exception, so rules stay plain)."""

    status: int
    errors: list[object]
