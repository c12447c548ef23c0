"""invoice status: uncollectible

Revision ID: aa5b18677db7
Revises: 5c8067fd4c1e
Create Date: 2024-04-16 09:13:51.605220

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'aa5b18677db7'
down_revision = '5c8067fd4c1e'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name == 'postgresql':
        op.execute("ALTER TYPE invoice_status ADD VALUE IF NOT EXISTS 'uncollectible'")


def downgrade():
    if op.get_context().dialect.name == 'postgresql':
        # the usual dance: PostgreSQL cannot drop an enum value
        op.execute("""
            UPDATE invoices SET status = 'void' WHERE status = 'uncollectible';
            ALTER TYPE invoice_status RENAME TO invoice_status_old;
            CREATE TYPE invoice_status AS ENUM ('draft', 'open', 'paid', 'void');
            ALTER TABLE invoices ALTER COLUMN status TYPE invoice_status USING status::text::invoice_status;
            DROP TYPE invoice_status_old;
        """)
