"""Usage billed through Stripe Billing Meters: one cursor per ComputeStacks user,
one report per usage row.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from csonboard.ledger.schema import UTCDateTime

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "usage_cursors",
        sa.Column("cs_user_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("billable_from", UTCDateTime(), nullable=False),
        sa.Column("watermark", UTCDateTime()),
        sa.Column("carry", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("synced_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("cs_user_id", name="pk_usage_cursors"),
    )
    op.create_index(
        "ix_usage_cursors_status_next_attempt_at", "usage_cursors", ["status", "next_attempt_at"]
    )
    op.create_index("ix_usage_cursors_customer_id", "usage_cursors", ["customer_id"])
    op.create_table(
        "usage_reports",
        sa.Column("usage_id", sa.BigInteger(), nullable=False),
        sa.Column("cs_user_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("meter", sa.String(100), nullable=False),
        sa.Column("resource", sa.String(255), nullable=False),
        sa.Column("quantity", sa.String(64), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("identifier", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_sent_at", UTCDateTime()),
        sa.Column("reported_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("usage_id", name="pk_usage_reports"),
        sa.UniqueConstraint("identifier", name="uq_usage_reports_identifier"),
    )
    op.create_index("ix_usage_reports_cs_user_id_status", "usage_reports", ["cs_user_id", "status"])
    op.create_index("ix_usage_reports_customer_id", "usage_reports", ["customer_id"])
    op.create_index("ix_usage_reports_status_timestamp", "usage_reports", ["status", "timestamp"])


def downgrade() -> None:
    op.drop_table("usage_reports")
    op.drop_table("usage_cursors")
