"""Subscription lifecycle: accounts, subscriptions and lifecycle actions.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from csonboard.ledger.schema import UTCDateTime

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("cs_user_id", sa.Integer()),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("suspended_reason", sa.Text()),
        sa.Column("suspended_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_accounts"),
    )
    op.create_index("ix_accounts_status_next_attempt_at", "accounts", ["status", "next_attempt_at"])
    op.create_table(
        "subscriptions",
        sa.Column("subscription_id", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("stripe_status", sa.String(32)),
        sa.Column("price_ids", sa.Text()),
        sa.Column("past_due_since", UTCDateTime()),
        sa.Column("wants_suspension", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("terminated_at", UTCDateTime()),
        sa.Column("ours", sa.Boolean()),
        sa.Column("last_event_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name="pk_subscriptions"),
    )
    op.create_index("ix_subscriptions_customer_id", "subscriptions", ["customer_id"])
    op.create_table(
        "lifecycle_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("subscription_id", sa.String(255)),
        sa.Column("cs_user_id", sa.Integer()),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("due_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_actions"),
    )
    op.create_index("ix_lifecycle_actions_customer_id", "lifecycle_actions", ["customer_id"])
    op.create_index("ix_lifecycle_actions_status_due_at", "lifecycle_actions", ["status", "due_at"])


def downgrade() -> None:
    op.drop_table("lifecycle_actions")
    op.drop_table("subscriptions")
    op.drop_table("accounts")
