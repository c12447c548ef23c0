"""dashboard: refresh stats, grants, comments

Revision ID: eee4f585675f
Revises: d1775438a5b5
Create Date: 2024-03-04 13:55:09.447652

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'eee4f585675f'
down_revision = 'd1775438a5b5'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name != 'postgresql':
        return
    op.execute("""
        REFRESH MATERIALIZED VIEW CONCURRENTLY project_stats;
        GRANT SELECT ON active_users TO PUBLIC;
        GRANT SELECT ON project_stats TO PUBLIC;
        COMMENT ON VIEW active_users IS 'Users that can log in; used by the support dashboard';
        ANALYZE tasks;
    """)


def downgrade():
    if op.get_context().dialect.name != 'postgresql':
        return
    op.execute("REVOKE SELECT ON project_stats FROM PUBLIC; REVOKE SELECT ON active_users FROM PUBLIC")
