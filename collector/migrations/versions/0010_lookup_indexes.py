"""lookup indexes: the newest payload per source (/metrics), a deployment's incidents and gate
decisions, and a CodeDeploy deployment id among the actions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 03:50:00
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_raw_events_source_received", "raw_events", ["source", "received_at"]),
    ("ix_incidents_deployment_id", "incidents", ["deployment_id"]),
    ("ix_gate_decisions_deployment_id", "gate_decisions", ["deployment_id"]),
    ("ix_action_runs_external_id", "action_runs", ["external_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
