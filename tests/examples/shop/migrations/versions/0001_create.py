"""create customers, orders and notes with data

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CUSTOMERS = 60
ORDERS = 300


def upgrade():
    customers = op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("email", sa.String(120), nullable=False, unique=True),
        sa.Column("phone", sa.String(40)),
        sa.Column("score", sa.Numeric(8, 3)),
    )
    orders = op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    notes = op.create_table(
        "notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
    )
    op.create_index("ix_orders_status", "orders", ["status"])
    op.bulk_insert(customers, [
        {"id": i, "name": f"Customer {i}", "email": f"c{i}@example.com",
         "phone": None if i % 7 == 0 else f"+1-555-{i:04d}", "score": f"{i * 1.5:.3f}"}
        for i in range(1, CUSTOMERS + 1)
    ])
    import datetime as dt
    statuses = ["paid", "shipped", "cancelled", "paid", "refunded"]
    op.bulk_insert(orders, [
        {"id": i, "customer_id": (i % CUSTOMERS) + 1, "status": statuses[i % 5],
         "total": f"{i % 97}.{i % 100:02d}",
         "created_at": dt.datetime(2026, 1, 1) + dt.timedelta(minutes=i)}
        for i in range(1, ORDERS + 1)
    ])
    op.bulk_insert(notes, [{"id": i, "body": f"note {i} \u00e9\u4e2d\U0001F600 'quoted' \"double\""} for i in range(1, 21)])


def downgrade():
    op.drop_table("notes")
    op.drop_table("orders")
    op.drop_table("customers")
