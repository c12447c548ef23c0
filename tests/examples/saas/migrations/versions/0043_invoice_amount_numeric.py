"""invoices.amount_cents to amount NUMERIC(12, 2)

Downgrade: wrong — renames the column back but leaves it NUMERIC(12, 2) and the values in euros.

Revision ID: a250577868ee
Revises: d749b13035cf
Create Date: 2024-02-19 11:07:39.540286

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'a250577868ee'
down_revision: Union[str, Sequence[str], None] = 'd749b13035cf'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.alter_column('invoices', 'amount_cents', new_column_name='amount',
                    existing_type=sa.BigInteger(), type_=sa.Numeric(precision=12, scale=2),
                    existing_nullable=False, postgresql_using='amount_cents / 100.0')


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column('invoices', 'amount', new_column_name='amount_cents')
