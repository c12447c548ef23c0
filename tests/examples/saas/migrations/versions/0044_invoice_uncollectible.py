"""invoice status 'uncollectible'

Downgrade: raises NotImplementedError.

Revision ID: 55feb65e547f
Revises: a250577868ee
Create Date: 2024-03-04 16:12:56.309174

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '55feb65e547f'
down_revision: Union[str, Sequence[str], None] = 'a250577868ee'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE invoice_status ADD VALUE IF NOT EXISTS 'uncollectible'")


def downgrade() -> None:
    """Downgrade schema."""
    raise NotImplementedError("PostgreSQL cannot drop a value from an enum type")
