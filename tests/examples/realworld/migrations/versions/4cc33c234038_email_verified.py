"""email_verified flag; reset estimates

Revision ID: 4cc33c234038
Revises: 00d953a2f2b6
Create Date: 2023-07-04 13:08:44.395520

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4cc33c234038'
down_revision = '00d953a2f2b6'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('email_verified', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE users SET email_verified = true WHERE last_login_at IS NOT NULL")
    # the old estimates were in story points, not hours
    op.execute("UPDATE tasks SET estimate_hours = NULL")


def downgrade():
    op.drop_column('users', 'email_verified')
