"""project_stats materialized view

Revision ID: 68340cc8af11
Revises: dd4e1fcfb980
Create Date: 2023-04-04 12:18:30.660529

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '68340cc8af11'
down_revision = 'dd4e1fcfb980'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name != 'postgresql':
        return  # the dashboards only run against PostgreSQL
    op.execute("""
        CREATE MATERIALIZED VIEW project_stats AS
        SELECT p.id AS project_id,
               p.organization_id,
               count(t.id) AS task_count,
               count(t.id) FILTER (WHERE t.status = 'done') AS done_count
        FROM projects p
        LEFT JOIN tasks t ON t.project_id = p.id
        GROUP BY p.id, p.organization_id
        WITH DATA
    """)
    # REFRESH ... CONCURRENTLY needs a unique index
    op.execute("CREATE UNIQUE INDEX ix_project_stats_project_id ON project_stats (project_id)")


def downgrade():
    op.execute("DROP MATERIALIZED VIEW IF EXISTS project_stats")
