"""Events by status, newest first (``events list --status``) stays fast as the
ledger grows.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_index("ix_events_status_received_at", "events", ["status", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_events_status_received_at", table_name="events")
