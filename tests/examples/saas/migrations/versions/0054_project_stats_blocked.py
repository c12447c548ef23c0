"""project_stats: blocked tasks, last activity

Downgrade: correct.

Revision ID: 9c09e877c6bc
Revises: b37d12a77a0f
Create Date: 2024-06-03 09:50:37.782164

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '9c09e877c6bc'
down_revision: Union[str, Sequence[str], None] = 'b37d12a77a0f'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('DROP MATERIALIZED VIEW project_stats')
    op.execute("""
        CREATE MATERIALIZED VIEW project_stats AS
        SELECT p.id AS project_id,
               p.account_id,
               count(t.id) AS task_count,
               count(t.id) FILTER (WHERE t.status = 'done') AS done_count,
               count(t.id) FILTER (WHERE t.status = 'blocked') AS blocked_count,
               max(t.updated_at) AS last_activity_at
        FROM projects p
        LEFT JOIN tasks t ON t.project_id = p.id
        GROUP BY p.id, p.account_id
        WITH DATA
    """)
    op.execute('CREATE UNIQUE INDEX ux_project_stats_project_id ON project_stats (project_id)')


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP MATERIALIZED VIEW project_stats')
    op.execute("""
        CREATE MATERIALIZED VIEW project_stats AS
        SELECT p.id AS project_id,
               p.account_id,
               count(t.id) AS task_count,
               count(t.id) FILTER (WHERE t.status = 'done') AS done_count
        FROM projects p
        LEFT JOIN tasks t ON t.project_id = p.id
        GROUP BY p.id, p.account_id
        WITH DATA
    """)
    op.execute('CREATE UNIQUE INDEX ux_project_stats_project_id ON project_stats (project_id)')
