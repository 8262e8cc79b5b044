"""How many times provision-or-refund tried to refund an onboarding.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column(
        "onboardings",
        sa.Column("refund_attempts", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("onboardings") as batch:
        batch.drop_column("refund_attempts")
