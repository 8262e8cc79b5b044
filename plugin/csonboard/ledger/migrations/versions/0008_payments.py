"""Payments of purchases and what became of their money (refunds, disputes,
fraud warnings); what buyers did with ready purchases (dispute evidence).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from csonboard.ledger.schema import UTCDateTime

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("charge_id", sa.String(255), nullable=False),
        sa.Column("session_id", sa.String(255)),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("dispute_id", sa.String(255)),
        sa.Column("dispute_status", sa.String(32)),
        sa.Column("fraud_warning_id", sa.String(255)),
        sa.Column("fraud_action", sa.String(16)),
        sa.Column("hold", sa.String(16)),
        sa.Column("hold_since", UTCDateTime()),
        sa.Column("final_since", UTCDateTime()),
        sa.Column("terminated_at", UTCDateTime()),
        sa.Column("evidence_submitted_at", UTCDateTime()),
        sa.Column("note", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("charge_id"),
    )
    op.create_index("ix_payments_session_id", "payments", ["session_id"])
    op.create_index("ix_payments_customer_id", "payments", ["customer_id"])
    op.create_table(
        "buyer_access",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "kind", "day"),
    )


def downgrade() -> None:
    op.drop_table("buyer_access")
    op.drop_table("payments")
