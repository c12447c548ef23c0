"""rename users.full_name to display_name

Downgrade: correct.

Revision ID: 03a926fdc356
Revises: cfcd33743039
Create Date: 2023-07-24 16:35:03.820155

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '03a926fdc356'
down_revision: Union[str, Sequence[str], None] = 'cfcd33743039'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.alter_column('users', 'full_name', new_column_name='display_name',
                    existing_type=sa.VARCHAR(length=120), existing_nullable=True)


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column('users', 'display_name', new_column_name='full_name',
                    existing_type=sa.VARCHAR(length=120), existing_nullable=True)
