"""One sandbox Stripe account: its objects, events, deliverer, idempotency keys and faults.

This is the handle tests hold (``sandbox_account(app)``): it drains and stops the
webhook deliverer and resets the account to its starting catalog.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import requests
from flask import Flask

from csonboard.sandbox.stripe.contract import ContractLog, Violation
from csonboard.sandbox.stripe.delivery import Deliverer, WebhookConfig
from csonboard.sandbox.stripe.destinations import Destinations
from csonboard.sandbox.stripe.events import EventLog
from csonboard.sandbox.stripe.faults import FaultPlan
from csonboard.sandbox.stripe.idempotency import IdempotencyCache
from csonboard.sandbox.stripe.prices import seed_catalog
from csonboard.sandbox.stripe.purchase import expire_due_sessions
from csonboard.sandbox.stripe.state import Store

EXTENSION = "csonboard_stripe_sandbox"

contract_log = logging.getLogger("csonboard.sandbox.stripe.contract")
"""Where a stand-in answer that breaks stripe-python's types is reported (ERROR)."""


class SandboxAccount:
    """Everything one stand-in app serves, wired together.

    ``catalog_section`` is the catalog's ``stripe`` section. ``webhook`` is the
    endpoint configuration to start with (and to return to on :meth:`reset`).
    With ``check_contract`` every ``/v1`` answer and every event published is
    checked against stripe-python's own types (:mod:`contract`); violations are
    kept in :attr:`contract` and logged at ERROR on ``contract_log``.
    """

    def __init__(
        self,
        *,
        api_key: str,
        catalog_section: Mapping[str, Any],
        webhook: WebhookConfig,
        clock: Callable[[], float],
        rng: random.Random,
        http: requests.Session | None = None,
        check_contract: bool = True,
    ) -> None:
        self.api_key = api_key
        self.contract: ContractLog | None = (
            ContractLog(on_violation=_report) if check_contract else None
        )
        self._catalog_section = copy.deepcopy(dict(catalog_section))
        self._initial_webhook = webhook
        self.store = Store(clock=clock, rng=rng)
        # A separate generator for duplicates keeps id sequences independent of
        # delivery timing, while staying reproducible from one seed.
        self.deliverer = Deliverer(
            webhook,
            on_delivered=self._mark_delivered,
            clock=clock,
            rng=random.Random(rng.getrandbits(64)),
            http=http,
        )
        self.destinations = Destinations(
            self.deliverer,
            lambda config: Deliverer(
                config,
                on_delivered=self._mark_delivered,
                clock=clock,
                rng=random.Random(rng.getrandbits(64)),
            ),
            self.store,
            self.contract,
        )
        self.events = EventLog(self.store, self.destinations, self.contract)
        self.idempotency = IdempotencyCache()
        self.faults = FaultPlan()
        seed_catalog(self.store, self._catalog_section)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until the webhook outbox is empty (nothing queued, retrying or in flight).

        Returns False on timeout, for instance while deliveries are paused.
        """
        return self.destinations.wait_idle(timeout)

    def stop(self) -> None:
        """Stop every webhook deliverer's thread; the account stays readable."""
        self.destinations.stop()

    def reset(self) -> None:
        """Back to the state the app started in: catalog only, starting webhook settings,
        no events, deliveries, idempotency keys or faults. Not meant to race with
        API traffic."""
        # The deliverer first, outside the store lock: it waits for an attempt in
        # flight, whose success callback needs that lock.
        self.destinations.reset(self._initial_webhook)
        with self.store.lock:
            self.store.clear()
            self.idempotency.clear()
            self.faults.clear()
            if self.contract is not None:
                self.contract.clear()
            seed_catalog(self.store, self._catalog_section)

    def expire_due_sessions(self) -> None:
        """Expire sessions whose time has passed (called before serving each request)."""
        expire_due_sessions(self.store, self.events)

    def _mark_delivered(self, event_id: str) -> None:
        self.events.mark_delivered(event_id)


def _report(violation: Violation) -> None:
    contract_log.error("stand-in answer breaks stripe-python's types: %s", violation)


def sandbox_account(app: Flask) -> SandboxAccount:
    """The :class:`SandboxAccount` behind an app made by ``create_app``."""
    account = app.extensions[EXTENSION]
    assert isinstance(account, SandboxAccount)
    return account
