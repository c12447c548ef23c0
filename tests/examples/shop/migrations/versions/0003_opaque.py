"""archive paid orders through the connection

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    if conn.dialect.name in ("postgresql", "sqlite", "mysql", "mariadb"):
        conn.execute(sa.text("UPDATE orders SET status = 'archived' WHERE status = 'paid'"))


def downgrade():
    pass
