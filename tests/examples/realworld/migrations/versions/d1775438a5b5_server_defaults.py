"""server defaults

Revision ID: d1775438a5b5
Revises: 07bd604af42a
Create Date: 2024-02-19 09:30:50.511126

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd1775438a5b5'
down_revision = '07bd604af42a'
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column('projects', 'created_at', existing_type=sa.DateTime(),
                    server_default=sa.text('now()'), existing_nullable=False)
    op.alter_column('invoices', 'currency', existing_type=sa.String(length=3),
                    server_default=None, existing_nullable=False)
    op.alter_column('comments', 'created_at', existing_type=sa.DateTime(),
                    server_default=sa.func.current_timestamp(), existing_nullable=True)


def downgrade():
    op.alter_column('comments', 'created_at', existing_type=sa.DateTime(),
                    server_default=None, existing_nullable=True)
    op.alter_column('invoices', 'currency', existing_type=sa.String(length=3),
                    server_default='EUR', existing_nullable=False)
    op.alter_column('projects', 'created_at', existing_type=sa.DateTime(),
                    server_default=sa.text('CURRENT_TIMESTAMP'), existing_nullable=False)
