"""rename comments to task_comments

Downgrade: correct.

Revision ID: 8c365a0bf543
Revises: 7663167e7fe0
Create Date: 2023-05-22 09:30:56.218447

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '8c365a0bf543'
down_revision: Union[str, Sequence[str], None] = '7663167e7fe0'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.rename_table('comments', 'task_comments')
    op.execute('ALTER SEQUENCE comments_id_seq RENAME TO task_comments_id_seq')
    op.execute('ALTER INDEX ix_comments_task_id RENAME TO ix_task_comments_task_id')


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('ALTER INDEX ix_task_comments_task_id RENAME TO ix_comments_task_id')
    op.execute('ALTER SEQUENCE task_comments_id_seq RENAME TO comments_id_seq')
    op.rename_table('task_comments', 'comments')
