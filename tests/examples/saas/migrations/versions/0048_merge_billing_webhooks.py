"""merge billing and webhooks

Downgrade: correct (a merge point has nothing to undo).

Revision ID: ae3d4015a55c
Revises: 55feb65e547f, df6eaa325848
Create Date: 2024-03-11 10:00:14.650498

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'ae3d4015a55c'
down_revision: Union[str, Sequence[str], None] = ('55feb65e547f', 'df6eaa325848')
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    pass


def downgrade() -> None:
    """Downgrade schema."""
    pass
