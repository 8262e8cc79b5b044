"""The initial ledger: raw Stripe events.

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


def downgrade() -> None:
    op.drop_table("events")
