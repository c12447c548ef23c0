"""project_stats materialized view

Downgrade: correct.

Revision ID: fb79dc41d05f
Revises: 09817ac4a807
Create Date: 2023-06-19 10:27:38.941852

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'fb79dc41d05f'
down_revision: Union[str, Sequence[str], None] = '09817ac4a807'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
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


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP MATERIALIZED VIEW project_stats')
