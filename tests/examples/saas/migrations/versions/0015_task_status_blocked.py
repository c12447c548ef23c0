"""task status 'blocked'

Downgrade: irreversible — an enum value cannot be removed, and later revisions store it in tasks.status.

Revision ID: 12f0079ae61e
Revises: 347fea6b908d
Create Date: 2023-03-20 09:15:33.114590

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '12f0079ae61e'
down_revision: Union[str, Sequence[str], None] = '347fea6b908d'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # ALTER TYPE ... ADD VALUE: the new value cannot be used in the transaction that adds it
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE task_status ADD VALUE IF NOT EXISTS 'blocked' BEFORE 'done'")


def downgrade() -> None:
    """Downgrade schema."""
    pass
