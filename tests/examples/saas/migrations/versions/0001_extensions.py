"""enable pgcrypto and citext

Downgrade: pass (extensions are left installed).

Revision ID: 6d145edf627d
Revises: 
Create Date: 2023-01-09 10:02:41.512004

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '6d145edf627d'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('CREATE EXTENSION IF NOT EXISTS pgcrypto')
    op.execute('CREATE EXTENSION IF NOT EXISTS citext')


def downgrade() -> None:
    """Downgrade schema."""
    pass
