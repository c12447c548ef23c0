"""active_users view for the support dashboard

Revision ID: dd4e1fcfb980
Revises: 9823e6ba3ad7
Create Date: 2023-03-20 10:01:13.551874

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'dd4e1fcfb980'
down_revision = '9823e6ba3ad7'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        CREATE VIEW active_users AS
        SELECT u.id, u.email, u.display_name, o.name AS organization_name, u.last_login_at
        FROM users u
        JOIN organizations o ON o.id = u.organization_id
        WHERE u.is_active
    """)


def downgrade():
    op.execute("DROP VIEW active_users")
