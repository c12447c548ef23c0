"""purge notifications read more than 90 days ago

Downgrade: irreversible — the deleted notifications are gone.

Revision ID: 51a3d9bb43bc
Revises: 9c09e877c6bc
Create Date: 2024-06-17 16:22:59.104736

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '51a3d9bb43bc'
down_revision: Union[str, Sequence[str], None] = '9c09e877c6bc'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("DELETE FROM notifications WHERE read_at IS NOT NULL AND read_at < now() - interval '90 days'")


def downgrade() -> None:
    """Downgrade schema."""
    pass
