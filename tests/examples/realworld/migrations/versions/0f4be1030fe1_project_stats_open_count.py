"""project_stats: open and blocked counts

Revision ID: 0f4be1030fe1
Revises: ca1a54c6c4b3
Create Date: 2024-06-17 14:33:58.215779

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0f4be1030fe1'
down_revision = 'ca1a54c6c4b3'
branch_labels = None
depends_on = None

V2 = """
DROP MATERIALIZED VIEW IF EXISTS project_stats;
CREATE MATERIALIZED VIEW project_stats AS
SELECT p.id AS project_id,
       p.organization_id,
       count(t.id) AS task_count,
       count(t.id) FILTER (WHERE t.status = 'done') AS done_count,
       count(t.id) FILTER (WHERE t.status IN ('todo', 'doing')) AS open_count,
       count(t.id) FILTER (WHERE t.status = 'blocked') AS blocked_count
FROM projects p
LEFT JOIN tasks t ON t.project_id = p.id
WHERE p.archived_at IS NULL
GROUP BY p.id, p.organization_id
WITH DATA;
CREATE UNIQUE INDEX ix_project_stats_project_id ON project_stats (project_id);
GRANT SELECT ON project_stats TO PUBLIC;
"""


def upgrade():
    if op.get_context().dialect.name == 'postgresql':
        op.execute(V2)


def downgrade():
    # v1 is in 68340cc8af11; nobody needs it back
    pass
