"""Assembling a worker from settings (the CLI and the tests share this)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import requests

from csonboard.computestacks import ComputeStacksClient
from csonboard.drift import Drift, Repairer
from csonboard.drift import due as drift_due_now
from csonboard.errors import ConfigError, CsonboardError, LedgerUnavailable
from csonboard.ledger import Ledger
from csonboard.ledger.onboardings import REFUNDED_BY_THE_WORKER
from csonboard.lifecycle import LifecycleRunner
from csonboard.money import money_routes
from csonboard.money.refund import refund_purchase
from csonboard.onboarding import Onboarder, Services
from csonboard.plans import Catalog, load_catalog
from csonboard.queue import Doorbell, open_doorbell
from csonboard.routes import checkout_routes, lifecycle_routes
from csonboard.settings import Settings
from csonboard.stripe_api import StripeGateway
from csonboard.thin_events import thin_routes
from csonboard.usage import UsageSync, identifier_prefix
from csonboard.worker import Job, Worker, worker_name

log = logging.getLogger(__name__)


def migrate_when_ready(
    ledger: Ledger, *, patience: float = 120.0, sleep: Callable[[float], None] = time.sleep
) -> list[str]:
    """Apply pending migrations, pausing up to ``patience`` seconds in all
    between tries while the database cannot be reached (a daemon that starts
    while PostgreSQL restarts should wait for it, not exit). Raises
    LedgerUnavailable when the patience runs out."""
    waited = 0.0
    delay = 1.0
    while True:
        try:
            return ledger.upgrade()
        except LedgerUnavailable as exc:
            if waited + delay > patience:
                raise
            log.warning("the ledger is not reachable (%s); trying again in %.0f s", exc, delay)
            sleep(delay)
            waited += delay
            delay = min(delay * 2, 10.0)


def computestacks_admin(settings: Settings) -> ComputeStacksClient:
    """The admin ComputeStacks client; raises ConfigError for missing settings."""
    cs = settings.cs
    if not cs.url:
        raise ConfigError("cs.url", "required: set CSONBOARD_CS_URL (https://your-computestacks)")
    if cs.admin_username is None or cs.admin_password is None:
        raise ConfigError(
            "cs.admin_username",
            "required: set CSONBOARD_CS_ADMIN_USERNAME and CSONBOARD_CS_ADMIN_PASSWORD "
            "(an API credential of an admin user)",
        )
    return ComputeStacksClient(
        cs.url.rstrip("/"),
        requests.Session(),
        username=cs.admin_username.get_secret_value(),
        password=cs.admin_password.get_secret_value(),
        api_version=cs.api_version,
        timeout=cs.timeout_seconds,
    )


def catalog_of(settings: Settings) -> Catalog:
    """The validated plan catalog; raises ConfigError naming the plan and key."""
    if settings.plans is None:
        raise ConfigError("plans", "required: set CSONBOARD_PLANS to the plan catalog (TOML)")
    return load_catalog(settings.plans)


def build_services(settings: Settings) -> Services:
    """Everything the onboarding steps call, checked now so that a bad setting
    stops the worker at start-up (exit status 2), not at the first purchase."""
    return Services(
        stripe=StripeGateway.from_settings(settings),
        cs=computestacks_admin(settings),
        catalog=catalog_of(settings),
        policy=settings.onboarding,
        livemode=settings.livemode,
    )


def usage_sync(settings: Settings, services: Services, ledger: Ledger, name: str) -> UsageSync:
    """The usage sync of a worker (or of ``csonboard usage sync``)."""
    return UsageSync(
        ledger,
        services.cs,
        services.stripe,
        services.catalog,
        settings.worker,
        interval=timedelta(minutes=settings.usage.interval_minutes),
        identifier_prefix=identifier_prefix(settings.cs.url),
        name=name,
    )


def drift_checks(
    settings: Settings, services: Services, ledger: Ledger, doorbell: Doorbell, name: str
) -> Drift:
    """Drift checks (a worker's scheduled pass, or ``csonboard drift``), their
    ComputeStacks requests paced to ``drift.computestacks_requests_per_minute``."""
    return Drift(
        Repairer(
            ledger,
            services.cs.paced(settings.drift.computestacks_requests_per_minute),
            services.stripe,
            doorbell,
            # Its own lease owner: a repair must not pass for the lifecycle
            # runner of the same worker, which may hold the customer's lease.
            owner=f"{name}:drift",
            lease_seconds=settings.worker.lease_seconds,
            livemode=services.livemode,
        ),
        services.catalog,
        settings.lifecycle,
        settings.drift,
        ledger.now,
    )


def build_worker(settings: Settings, ledger: Ledger | None = None) -> Worker:
    """A worker wired to the ledger, queue, Stripe and ComputeStacks of ``settings``."""
    services = build_services(settings)
    ledger = ledger or settings.open_ledger()
    name = worker_name()
    worker: Worker | None = None

    def handle(kind: str, ident: str) -> None:
        assert worker is not None
        worker.handle(kind, ident)  # type: ignore[arg-type]

    doorbell = open_doorbell(settings, handler=handle)
    onboarder = Onboarder(ledger, doorbell, services, settings.worker, name=name)
    lifecycle = LifecycleRunner(
        ledger, doorbell, services, settings.worker, settings.lifecycle, name=name
    )
    usage = usage_sync(settings, services, ledger, name)
    drift = drift_checks(settings, services, ledger, doorbell, name)

    def drift_pass(_: str) -> None:
        if not drift_due_now(ledger, settings.drift, ledger.now()):
            return  # a second ring for a pass that has run (or runs) already
        try:
            drift.full_pass(fix=settings.drift.fix)
        except CsonboardError as exc:
            # Left unfinished: once its lease runs out the sweep finds it due
            # and the next pass resumes it after its last recorded page.
            log.warning("drift pass failed (resumed later): %s", exc)

    def drift_due() -> list[str]:
        return ["pass"] if drift_due_now(ledger, settings.drift, ledger.now()) else []

    refund_after = timedelta(hours=settings.onboarding.refund_after_hours)

    def refund(session_id: str) -> None:
        try:
            done = refund_purchase(
                ledger,
                services,
                session_id,
                owner=name,
                retry=settings.worker,
                reason=f"not provisioned within {settings.onboarding.refund_after_hours:g} hours",
                statuses=REFUNDED_BY_THE_WORKER,
            )
        except CsonboardError as exc:
            # Recorded on the onboarding (tried again after a backoff, or
            # refund_failed), or not claimed at all (someone else holds it).
            log.warning("refund of %s not done: %s", session_id, exc)
            return
        if done.customer_id is not None:
            doorbell.ring_or_log("account", done.customer_id)

    def refund_due() -> list[str]:
        # With refund_after_hours off, only refunds under way (started by
        # hand, then failed for a while) are finished.
        return ledger.onboardings.refund_due(ledger.now() - refund_after if refund_after else None)

    worker = Worker(
        ledger,
        doorbell,
        {
            **checkout_routes(ledger, doorbell),
            **lifecycle_routes(ledger, doorbell),
            **thin_routes(ledger, doorbell, services.stripe, livemode=services.livemode),
            **money_routes(ledger, doorbell, services.stripe, settings.money, services.catalog),
        },
        settings.worker,
        jobs={
            "onboarding": Job(onboarder.run, ledger.onboardings.due),
            "account": Job(lifecycle.run, ledger.lifecycle.due),
            "usage": Job(usage.run, usage.due),
            "drift": Job(drift_pass, drift_due),
            "refund": Job(refund, refund_due),
        },
        name=name,
    )
    return worker
