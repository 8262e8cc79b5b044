"""The services csonboard stopped because their purchase went out of service.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from csonboard.ledger.schema import UTCDateTime

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "stopped_services",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("project_id", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("service_id", name="pk_stopped_services"),
    )
    op.create_index("ix_stopped_services_customer_id", "stopped_services", ["customer_id"])
    op.create_index("ix_stopped_services_session_id", "stopped_services", ["session_id"])


def downgrade() -> None:
    op.drop_table("stopped_services")
