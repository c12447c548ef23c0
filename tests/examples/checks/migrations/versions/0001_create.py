"""customers and orders, two orders pointing at a customer that does not exist

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    customers = op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
    )
    orders = op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.bulk_insert(customers, [{"id": i, "name": f"Customer {i}"} for i in range(1, 6)])
    op.bulk_insert(orders, [{"id": i, "customer_id": i % 5 + 1, "total": i} for i in range(1, 21)]
                   + [{"id": 21, "customer_id": 99, "total": 1}, {"id": 22, "customer_id": 98, "total": 2}])


def downgrade():
    op.drop_table("orders")
    op.drop_table("customers")
