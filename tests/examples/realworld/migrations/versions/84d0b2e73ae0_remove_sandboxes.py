"""remove sandbox projects and memberships of inactive users

Revision ID: 84d0b2e73ae0
Revises: eee4f585675f
Create Date: 2024-03-18 10:04:33.181795

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '84d0b2e73ae0'
down_revision = 'eee4f585675f'
branch_labels = None
depends_on = None


def upgrade():
    # their tasks and comments go with them (ON DELETE CASCADE)
    op.execute("DELETE FROM projects WHERE slug LIKE 'sandbox-%'")
    if op.get_context().dialect.name == 'postgresql':
        op.execute("DELETE FROM memberships m USING users u WHERE m.user_id = u.id AND NOT u.is_active")
    else:
        op.execute("DELETE FROM memberships WHERE user_id IN (SELECT id FROM users WHERE NOT is_active)")


def downgrade():
    pass
