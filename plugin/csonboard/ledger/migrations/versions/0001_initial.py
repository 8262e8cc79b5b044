"""The initial ledger: raw Stripe events and onboardings.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from csonboard.ledger.schema import UTCDateTime

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("api_version", sa.String(64)),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("object_id", sa.String(255)),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.Text()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("outcome", sa.Text()),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_status_next_attempt_at", "events", ["status", "next_attempt_at"])
    op.create_index("ix_events_type", "events", ["type"])
    op.create_index("ix_events_object_id", "events", ["object_id"])
    op.create_index("ix_events_customer_id", "events", ["customer_id"])
    op.create_index("ix_events_received_at", "events", ["received_at"])

    op.create_table(
        "onboardings",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("step", sa.String(32)),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("subscription_id", sa.String(255)),
        sa.Column("cs_user_id", sa.Integer()),
        sa.Column("note", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("deadline_at", UTCDateTime()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("session_id", name="pk_onboardings"),
    )
    op.create_index(
        "ix_onboardings_status_next_attempt_at", "onboardings", ["status", "next_attempt_at"]
    )
    op.create_index("ix_onboardings_customer_id", "onboardings", ["customer_id"])
    op.create_index("ix_onboardings_subscription_id", "onboardings", ["subscription_id"])
    op.create_index("ix_onboardings_created_at", "onboardings", ["created_at"])
    op.create_table(
        "onboarding_steps",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["onboardings.session_id"],
            name="fk_onboarding_steps_session_id_onboardings",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "step", name="pk_onboarding_steps"),
    )

    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("cs_user_id", sa.Integer(), nullable=False),
        sa.Column("project_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("project_id", sa.Integer()),
        sa.Column("placed_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["onboardings.session_id"],
            name="fk_orders_session_id_onboardings",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name="pk_orders"),
    )
    op.create_index("ix_orders_session_id", "orders", ["session_id"])
    op.create_index("ix_orders_cs_user_id", "orders", ["cs_user_id"])


def downgrade() -> None:
    op.drop_table("orders")
    op.drop_table("onboarding_steps")
    op.drop_table("onboardings")
    op.drop_table("events")
