"""drop phone, purge cancelled orders, reset high scores, drop notes

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("phone")
    op.execute("DELETE FROM orders WHERE status = 'cancelled'")
    op.execute("UPDATE customers SET score = 0 WHERE score > 50")
    op.drop_table("notes")


def downgrade():
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text))
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(40)))
