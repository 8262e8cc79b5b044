"""The objects of one sandbox Stripe account (test mode), with their ids and clock.

Plain Python, no Flask. Objects are stored as the JSON-ready dicts the API
returns, keyed by their ``object`` field, in creation order (lists are served
newest first by reversing it). One re-entrant lock guards everything: an
operation takes it for its whole read-modify-emit sequence, so the events of one
operation are contiguous and every snapshot is consistent.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable
from typing import Any

from csonboard.sandbox.stripe.errors import no_such

Json = dict[str, Any]

API_VERSION = "2026-10-28.endive"
"""The version stripe-python 16 pins; events and objects are rendered in its shapes."""

# object name -> (id prefix, random part length, label used in "No such ..." messages)
KINDS: dict[str, tuple[str, int, str]] = {
    "product": ("prod", 14, "product"),
    "price": ("price", 24, "price"),
    "customer": ("cus", 14, "customer"),
    "checkout.session": ("cs_test", 58, "checkout.session"),
    "payment_intent": ("pi", 24, "payment_intent"),
    "charge": ("ch", 24, "charge"),
    "balance_transaction": ("txn", 24, "balance transaction"),
    "refund": ("re", 24, "refund"),
    "dispute": ("dp", 24, "dispute"),
    "radar.early_fraud_warning": ("issfr", 24, "radar.early_fraud_warning"),
    "invoice_payment": ("inpay", 24, "invoice_payment"),
    "subscription": ("sub", 24, "subscription"),
    "invoice": ("in", 24, "invoice"),
    "payment_link": ("plink", 24, "payment_link"),
    "event": ("evt", 24, "event"),
    "webhook_endpoint": ("we", 24, "webhook endpoint"),
    "billing.meter": ("mtr_test", 32, "billing.meter"),
    "v2.core.event": ("evt_test", 48, "event"),
}

_ALPHABET = string.ascii_letters + string.digits


class Store:
    """Every object of the account, guarded by :attr:`lock`.

    ``clock`` gives Unix seconds (``created`` fields); ``rng`` makes ids, so a
    seeded ``random.Random`` makes a run reproducible.
    """

    def __init__(self, *, clock: Callable[[], float], rng: random.Random) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.rng = rng
        self.objects: dict[str, dict[str, Json]] = {kind: {} for kind in KINDS}
        self.line_items: dict[str, list[Json]] = {}
        """Line items by Checkout Session or Payment Link id; never part of the object itself."""
        self.hidden: dict[str, Json] = {}
        """Per-object settings the API never shows (a session's ``subscription_data``)."""
        self.meter_events: list[Json] = []
        """Accepted billing meter events in arrival order, each ``{"meter": <id>,
        "event": <billing.meter_event>}``. Stripe gives them no id and no way to
        read them back, so they live outside :attr:`objects` (see ``meter_events``)."""
        self.meter_identifiers: dict[str, int] = {}
        """When each meter event identifier was last accepted (Unix seconds)."""

    def now(self) -> int:
        """The current time in whole Unix seconds, as Stripe's timestamps are."""
        return int(self.clock())

    def new_id(self, prefix: str, length: int = 24) -> str:
        """A fresh id such as ``cus_Nf3kPq...``; unique within this store.

        Takes the lock: request ids are drawn outside any operation, and the
        shared generator must not be used by two threads at once.
        """
        with self.lock:
            while True:
                candidate = f"{prefix}_" + "".join(self.rng.choices(_ALPHABET, k=length))
                if not any(candidate in table for table in self.objects.values()):
                    return candidate

    def token(self, length: int = 24) -> str:
        """Random letters and digits, for the secret part of client secrets."""
        with self.lock:
            return "".join(self.rng.choices(_ALPHABET, k=length))

    def new_object_id(self, kind: str) -> str:
        """A fresh id with the prefix Stripe uses for objects of ``kind``."""
        prefix, length, _ = KINDS[kind]
        return self.new_id(prefix, length)

    def put(self, obj: Json) -> Json:
        """Store (or replace) ``obj`` under its ``object`` and ``id``; returns it."""
        self.objects[obj["object"]][obj["id"]] = obj
        return obj

    def find(self, kind: str, object_id: str) -> Json | None:
        """The stored object, or None (also for a deleted one: see :meth:`delete`)."""
        found = self.objects[kind].get(object_id)
        return None if found is None or found.get("deleted") is True else found

    def get(self, kind: str, object_id: str, *, param: str = "id", status: int = 404) -> Json:
        """The stored object, or Stripe's ``resource_missing`` error (also for a
        deleted object, which Stripe no longer lets anything use).

        ``param``/``status`` say where the id came from: the path (404, ``id``)
        or a body parameter (400, that parameter's name).
        """
        found = self.find(kind, object_id)
        if found is None:
            raise no_such(KINDS[kind][2], object_id, param=param, status=status)
        return found

    def delete(self, obj: Json) -> Json:
        """Replace ``obj`` by the stub Stripe keeps of a deleted object and return it.

        The stub (``{"id", "object", "deleted": true}``) stays under its id: it is
        what retrieving the object answers and what an expanded reference to it
        shows, while :meth:`find`, :meth:`get` and lists treat it as gone.
        """
        stub: Json = {"id": obj["id"], "object": obj["object"], "deleted": True}
        return self.put(stub)

    def newest_first(self, kind: str) -> list[Json]:
        """All objects of ``kind``, most recently created first; deleted ones left out."""
        return [
            obj for obj in reversed(self.objects[kind].values()) if obj.get("deleted") is not True
        ]

    def kind_of_id(self, object_id: str) -> str | None:
        """The kind of the stored object with this id, or None when there is none."""
        for kind, table in self.objects.items():
            if object_id in table:
                return kind
        return None

    def clear(self) -> None:
        """Forget every object."""
        for table in self.objects.values():
            table.clear()
        self.line_items.clear()
        self.hidden.clear()
        self.meter_events.clear()
        self.meter_identifiers.clear()

    def counts(self) -> dict[str, int]:
        """How many objects of each kind exist."""
        return {kind: len(table) for kind, table in self.objects.items()}
