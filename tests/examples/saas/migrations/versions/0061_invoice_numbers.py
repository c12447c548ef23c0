"""invoice numbers from a sequence

Downgrade: raises NotImplementedError.

Revision ID: f84827112e18
Revises: aed6041fe836
Create Date: 2024-09-16 13:49:40.065183

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'f84827112e18'
down_revision: Union[str, Sequence[str], None] = 'aed6041fe836'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('CREATE SEQUENCE invoice_number_seq START WITH 1000')
    op.execute("ALTER TABLE invoices ALTER COLUMN number SET DEFAULT 'INV-' || lpad(nextval('invoice_number_seq')::text, 6, '0')")
    op.alter_column('invoices', 'number', existing_type=sa.VARCHAR(length=32), nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    raise NotImplementedError("invoice numbers are issued; restore them by hand")
