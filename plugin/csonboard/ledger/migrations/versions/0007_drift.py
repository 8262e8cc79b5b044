"""Drift passes and what they found; when a subscription's end was first seen.

Revision ID: 0007
Revises: 0006
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from csonboard.ledger.schema import UTCDateTime

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("ended_seen_at", UTCDateTime()))
    # Ends csonboard had already recorded were seen in time: their retention
    # keeps counting from the end (the epoch is never later than an end).
    op.execute(
        sa.text(
            "UPDATE subscriptions SET ended_seen_at = :epoch WHERE stripe_status = 'canceled'"
        ).bindparams(sa.bindparam("epoch", datetime(1970, 1, 1, tzinfo=UTC), type_=UTCDateTime()))
    )
    op.create_table(
        "drift_passes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fix", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cursor", sa.String(255)),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drift_passes"),
    )
    op.create_index("ix_drift_passes_status_finished_at", "drift_passes", ["status", "finished_at"])
    op.create_index(
        "ux_drift_passes_running",
        "drift_passes",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "drift_items",
        sa.Column("pass_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("object", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("fix", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pass_id", "customer_id", "kind", "object", name="pk_drift_items"),
    )


def downgrade() -> None:
    op.drop_table("drift_items")
    op.drop_index("ux_drift_passes_running", "drift_passes")
    op.drop_index("ix_drift_passes_status_finished_at", "drift_passes")
    op.drop_table("drift_passes")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("ended_seen_at")
