"""Ledger tables (SQLAlchemy Core). Alembic migrations must produce exactly this;
a test compares the two.

All times are timezone-aware UTC in Python. SQLite has no time zone type, so
they are stored there as naive UTC and made aware again on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that is always aware and always UTC; naive input is a bug."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# One row per Stripe event, exactly as received. The primary key on the Stripe
# event id is what makes a duplicate delivery (even a concurrent one at another
# receiver) a no-op.
events = Table(
    "events",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(255), nullable=False),
    Column("api_version", String(64)),
    Column("livemode", Boolean, nullable=False),
    Column("created", UTCDateTime, nullable=False),
    # The object the event is about (cs_..., sub_..., in_...) and its customer,
    # copied out at receipt so operators can filter without parsing bodies.
    Column("object_id", String(255)),
    Column("customer_id", String(255)),
    Column("body", LargeBinary, nullable=False),
    Column("signature", Text),
    Column("source", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("outcome", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status", "next_attempt_at"),
    # `events list --status S` shows the newest first: without this it sorts
    # every event in that status (migration 0003).
    Index(None, "status", "received_at"),
    Index(None, "type"),
    Index(None, "object_id"),
    Index(None, "customer_id"),
    Index(None, "received_at"),
)


# One row per Checkout Session: the onboarding that fulfils it. The primary key
# on the session id is what makes fulfilment run once however many events,
# replays and status pages ask for it.
onboardings = Table(
    "onboardings",
    metadata,
    Column("session_id", String(255), primary_key=True),
    Column("status", String(24), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("step", String(32)),
    Column("customer_id", String(255)),
    Column("subscription_id", String(255)),
    Column("cs_user_id", Integer),
    Column("note", Text),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("deadline_at", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("source", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("refund_attempts", Integer, nullable=False, server_default="0"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "customer_id"),
    Index(None, "subscription_id"),
    Index(None, "created_at"),
)

# The checkpoint of each step: written before the next step starts. ``result``
# is JSON and never holds a secret (no passwords, no credentials).
onboarding_steps = Table(
    "onboarding_steps",
    metadata,
    Column(
        "session_id",
        String(255),
        ForeignKey("onboardings.session_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("result", Text),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
)


# Every ComputeStacks order an onboarding placed, recorded the moment its id is
# known: ComputeStacks has no idempotency keys, so this table is how a retry
# after a crash recognises an order it already placed.
orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column(
        "session_id",
        String(255),
        ForeignKey("onboardings.session_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("unit", Integer, nullable=False),
    Column("cs_user_id", Integer, nullable=False),
    Column("project_name", String(255), nullable=False),
    Column("status", String(24), nullable=False),
    Column("project_id", Integer),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "session_id"),
    Index(None, "cs_user_id"),
)


# -- subscription lifecycle (migration 0002) ----------------------------------------

# One row per Stripe customer that has subscriptions csonboard follows: the unit
# of lifecycle work (ComputeStacks suspends a whole user, so all of a customer's
# subscriptions are decided together, under one lease). ``suspended_reason`` is
# set while csonboard holds the user suspended; csonboard never lifts a
# suspension it did not make.
accounts = Table(
    "accounts",
    metadata,
    Column("customer_id", String(255), primary_key=True),
    Column("cs_user_id", Integer),
    Column("status", String(24), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("note", Text),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("suspended_reason", Text),
    Column("suspended_at", UTCDateTime),
    # Set when an event or a finished onboarding arrives while a worker holds
    # the account: its pass may have read Stripe before, so it must run again.
    Column("dirty", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status", "next_attempt_at"),
)

# What csonboard last learnt about each subscription it follows.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(255), primary_key=True),
    Column("customer_id", String(255), nullable=False),
    Column("stripe_status", String(32)),
    Column("price_ids", Text),  # JSON list, as last applied
    Column("past_due_since", UTCDateTime),
    Column("wants_suspension", Boolean, nullable=False),
    Column("reason", Text),
    Column("terminated_at", UTCDateTime),
    Column("ours", Boolean),  # None: not known yet; False: not sold through csonboard
    Column("last_event_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # When csonboard first saw it ended: retention counts from then (or the end).
    Column("ended_seen_at", UTCDateTime),
    Index(None, "customer_id"),
)

# What csonboard did, declined, or has scheduled for a customer: the record an
# operator reads (`csonboard lifecycle list`, `onboardings show`).
lifecycle_actions = Table(
    "lifecycle_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(255), nullable=False),
    Column("subscription_id", String(255)),
    Column("cs_user_id", Integer),
    Column("action", String(24), nullable=False),
    Column("status", String(24), nullable=False),
    Column("reason", Text, nullable=False),
    Column("due_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime),
    Index(None, "customer_id"),
    Index(None, "status", "due_at"),
)


# -- usage billed through Stripe Billing Meters (migration 0005) ----------------------

# One row per ComputeStacks user whose usage csonboard bills: the unit of usage
# work (leased like an account). Rows of that user created before ``watermark``
# have all been seen; usage before ``billable_from`` (the user's first purchase
# through csonboard) is not csonboard's to bill.
usage_cursors = Table(
    "usage_cursors",
    metadata,
    Column("cs_user_id", Integer, primary_key=True),
    Column("customer_id", String(255), nullable=False),
    Column("status", String(24), nullable=False),
    Column("billable_from", UTCDateTime, nullable=False),
    Column("watermark", UTCDateTime),
    # Stripe takes whole numbers: per meter, the fraction of a unit used but not
    # yet billed (JSON {"meter": "0.37"}), added to the user's next usage.
    Column("carry", Text),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("synced_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status", "next_attempt_at"),
    Index(None, "customer_id"),
)

# One row per ComputeStacks usage row csonboard bills, recorded before it is
# sent. ``first_sent_at`` is written before the first attempt: Stripe keeps a
# meter event's identifier for at least 24 hours, so until then a retry is safe
# (a duplicate is refused, which confirms the first); after that an unconfirmed
# row is never sent again on its own (``uncertain``).
usage_reports = Table(
    "usage_reports",
    metadata,
    Column("usage_id", BigInteger, primary_key=True),
    Column("cs_user_id", Integer, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("meter", String(100), nullable=False),
    Column("resource", String(255), nullable=False),
    Column("quantity", String(64), nullable=False),
    Column("value", String(64), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("identifier", String(100), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_sent_at", UTCDateTime),
    Column("reported_at", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "cs_user_id", "status"),
    Index(None, "customer_id"),
    Index(None, "status", "timestamp"),
)


# -- a purchase's services, stopped and started (migration 0006) ----------------------

# A service csonboard stopped (or is stopping) because its purchase is out of
# service (not paid, paused, cancelled). Written before the stop is asked for,
# so a crash or a lost answer cannot leave a service stopped that csonboard
# does not know it stopped; deleted once csonboard has started it again. A
# service csonboard did not stop (the customer's, an operator's) never gets a
# row, so csonboard never starts it.
stopped_services = Table(
    "stopped_services",
    metadata,
    Column("service_id", Integer, primary_key=True),
    Column("customer_id", String(255), nullable=False),
    Column("session_id", String(255), nullable=False),
    Column("project_id", Integer),
    Column("status", String(16), nullable=False),  # stopping | stopped
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "customer_id"),
    Index(None, "session_id"),
)


# -- drift between Stripe and ComputeStacks (migration 0007) -----------------------------

# A pass of ``csonboard drift`` over every customer (or the worker's scheduled
# one): customers are checked in order and ``cursor`` is the last one finished,
# so a pass whose worker died is taken over and resumed from there.
drift_passes = Table(
    "drift_passes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fix", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # running | done | abandoned
    Column("cursor", String(255)),
    Column("customers", Integer, nullable=False),
    Column("note", Text),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status", "finished_at"),
    # At most one pass runs at a time.
    Index(
        "ux_drift_passes_running",
        "status",
        unique=True,
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
)

# One difference a pass found, and what became of it.
drift_items = Table(
    "drift_items",
    metadata,
    Column("pass_id", Integer, primary_key=True),
    Column("customer_id", String(255), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("object", String(64), primary_key=True),
    Column("detail", Text, nullable=False),
    Column("fix", Text, nullable=False),  # what --fix does (or why it does not)
    Column("outcome", String(16), nullable=False),  # open | fixed | left | failed | busy
    Column("created_at", UTCDateTime, nullable=False),
)

# A payment (a Stripe charge) of a purchase and what became of its money:
# refunded, disputed, warned of fraud. Written from Stripe's current state of the
# charge, re-read on every event about it; ``hold`` is what that state means for
# the purchase, ``final_since`` when the money was gone for good (retention
# counts from there), ``terminated_at`` when csonboard deleted its projects.
payments = Table(
    "payments",
    metadata,
    Column("charge_id", String(255), primary_key=True),
    Column("session_id", String(255)),  # null: the charge paid for no purchase
    Column("customer_id", String(255)),
    Column("amount", BigInteger, nullable=False),
    Column("amount_refunded", BigInteger, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("dispute_id", String(255)),
    Column("dispute_status", String(32)),
    Column("fraud_warning_id", String(255)),
    Column("fraud_action", String(16)),  # recorded | refunded
    Column("hold", String(16)),  # refund | dispute
    Column("hold_since", UTCDateTime),
    Column("final_since", UTCDateTime),
    Column("terminated_at", UTCDateTime),
    Column("evidence_submitted_at", UTCDateTime),
    Column("note", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "session_id"),
    Index(None, "customer_id"),
)

# What the buyer did with a ready purchase, per day: status page visits and
# control panel sign-ins from it (evidence for a dispute; nothing personal).
buyer_access = Table(
    "buyer_access",
    metadata,
    Column("session_id", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),  # visit | sign_in
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
)

# Bodies that arrived under the id of a stored event but differ from it: kept
# beside the event (never replacing it) for a person to look at. One row per
# distinct body (its SHA-256), however often it is sent again.
event_conflicts = Table(
    "event_conflicts",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("signature", Text),
    Column("source", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)
