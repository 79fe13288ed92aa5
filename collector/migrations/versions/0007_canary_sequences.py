"""canary sequences: the state of sequential canaries and each look, so any process continues one

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canary_sequences",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=True),
        sa.Column("baseline_scope", sa.Text(), nullable=True),
        sa.Column("canary_scope", sa.Text(), nullable=True),
        sa.Column("looks", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_canary_sequences")),
    )
    op.create_table(
        "canary_looks",
        sa.Column("sequence_key", sa.String(length=255), nullable=False),
        sa.Column("look", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sequence_key", "look", name=op.f("pk_canary_looks")),
    )


def downgrade() -> None:
    op.drop_table("canary_looks")
    op.drop_table("canary_sequences")
