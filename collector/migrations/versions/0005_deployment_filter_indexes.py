"""deployment filter indexes: the dashboard's team and environment choices, and a team's services

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:25:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # DISTINCT team / environment and "the services of a team" read these indexes instead of the table.
    op.create_index("ix_deployments_team_service", "deployments", ["team", "service"])
    op.create_index("ix_deployments_environment", "deployments", ["environment"])


def downgrade() -> None:
    op.drop_index("ix_deployments_environment", table_name="deployments")
    op.drop_index("ix_deployments_team_service", table_name="deployments")
