"""add a tier column

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("customers", sa.Column("tier", sa.String(10), nullable=False, server_default="basic"))


def downgrade():
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("tier")
