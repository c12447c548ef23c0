"""a note column and a foreign key that the database does not check for the rows already there

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
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":  # foreign keys are not enforced (PRAGMA foreign_keys is off by default)
        with op.batch_alter_table("orders") as batch:
            batch.add_column(sa.Column("note", sa.Text()))
            batch.create_foreign_key("fk_orders_customer", "customers", ["customer_id"], ["id"])
    elif dialect in ("mysql", "mariadb"):
        op.add_column("orders", sa.Column("note", sa.Text()))
        op.execute("SET foreign_key_checks = 0")
        op.create_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"])
        op.execute("SET foreign_key_checks = 1")
    else:
        op.add_column("orders", sa.Column("note", sa.Text()))
        op.create_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"],
                              postgresql_not_valid=True)


def downgrade():
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint("fk_orders_customer", type_="foreignkey")
        batch.drop_column("note")
