"""account names unique, case-insensitively

Downgrade: pass.

Revision ID: cfcd33743039
Revises: 47b9e10e80ae
Create Date: 2023-07-10 11:01:24.592318

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'cfcd33743039'
down_revision: Union[str, Sequence[str], None] = '47b9e10e80ae'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('CREATE UNIQUE INDEX ux_accounts_lower_name ON accounts (lower(name))')


def downgrade() -> None:
    """Downgrade schema."""
    pass
