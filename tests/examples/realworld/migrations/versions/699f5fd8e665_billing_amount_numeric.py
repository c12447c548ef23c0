"""billing: amount as numeric

Revision ID: 699f5fd8e665
Revises: a9dfbaecde5b
Create Date: 2023-09-12 09:58:24.471659

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '699f5fd8e665'
down_revision: Union[str, Sequence[str], None] = 'a9dfbaecde5b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.alter_column(
        'invoices', 'amount_cents',
        new_column_name='amount',
        existing_type=sa.Integer(),
        type_=sa.Numeric(12, 2),
        existing_nullable=False,
        postgresql_using='amount_cents / 100.0',
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column(
        'invoices', 'amount',
        new_column_name='amount_cents',
        existing_type=sa.Numeric(12, 2),
        type_=sa.Integer(),
        existing_nullable=False,
        postgresql_using='(amount * 100)::integer',
    )
