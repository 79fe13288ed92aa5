"""canary runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 02:54:10.074734
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "canary_metric_results",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("metric", sa.String(length=255), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("metric_group", sa.String(length=255), nullable=True),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("baseline_n", sa.Integer(), nullable=True),
        sa.Column("baseline_median", sa.Float(), nullable=True),
        sa.Column("canary_n", sa.Integer(), nullable=True),
        sa.Column("canary_median", sa.Float(), nullable=True),
        sa.Column("shift", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("relative_shift", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "metric", name=op.f("pk_canary_metric_results")),
    )
    op.create_table(
        "canary_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("baseline_scope", sa.Text(), nullable=True),
        sa.Column("canary_scope", sa.Text(), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_runs")),
    )
    with op.batch_alter_table("canary_runs", schema=None) as batch_op:
        batch_op.create_index("ix_canary_runs_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_canary_runs_deployment_id", ["deployment_id"], unique=False)

    op.create_table(
        "canary_samples",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("metric", sa.String(length=255), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("shape", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "metric", "side", name=op.f("pk_canary_samples")),
    )


def downgrade() -> None:

    op.drop_table("canary_samples")
    with op.batch_alter_table("canary_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_canary_runs_deployment_id")
        batch_op.drop_index("ix_canary_runs_created_at")

    op.drop_table("canary_runs")
    op.drop_table("canary_metric_results")
