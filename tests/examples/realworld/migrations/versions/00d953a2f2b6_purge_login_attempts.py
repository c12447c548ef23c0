"""purge login attempts and sessions (GDPR request #311)

Revision ID: 00d953a2f2b6
Revises: 33f507f0cbd4
Create Date: 2023-06-20 07:30:12.009812

"""
from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '00d953a2f2b6'
down_revision = '33f507f0cbd4'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM login_attempts")
    if context.get_context().dialect.name == 'postgresql':
        op.execute("TRUNCATE TABLE sessions")
    else:
        op.execute("DELETE FROM sessions")


def downgrade():
    pass
