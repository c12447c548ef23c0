"""every account has a plan

Downgrade: pass.

Revision ID: 140ee8607c0a
Revises: 36f2c67a0ad0
Create Date: 2024-11-04 16:05:34.812947

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '140ee8607c0a'
down_revision: Union[str, Sequence[str], None] = '36f2c67a0ad0'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("UPDATE accounts SET plan_id = (SELECT id FROM plans WHERE code = 'free') WHERE plan_id IS NULL")
    op.alter_column('accounts', 'plan_id', nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    pass
