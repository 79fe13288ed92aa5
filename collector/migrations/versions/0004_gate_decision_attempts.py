"""gate decision attempts: a hold may be asked again under the same key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gate_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint("uq_gate_decisions_key", type_="unique")
        batch_op.create_unique_constraint("uq_gate_decisions_key_attempt", ["key", "attempt"])


def downgrade() -> None:
    with op.batch_alter_table("gate_decisions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_gate_decisions_key_attempt", type_="unique")
        batch_op.create_unique_constraint("uq_gate_decisions_key", ["key"])
        batch_op.drop_column("attempt")
