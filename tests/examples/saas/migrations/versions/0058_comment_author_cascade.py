"""delete comments with their author

Downgrade: wrong — re-creates the foreign key without its ondelete='SET NULL'.

Revision ID: ca0d4e98e425
Revises: 86ed9d9abf32
Create Date: 2024-07-29 10:26:04.541209

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'ca0d4e98e425'
down_revision: Union[str, Sequence[str], None] = '86ed9d9abf32'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_constraint('comments_author_id_fkey', 'task_comments', type_='foreignkey')
    op.create_foreign_key('task_comments_author_id_fkey', 'task_comments', 'users',
                          ['author_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint('task_comments_author_id_fkey', 'task_comments', type_='foreignkey')
    op.create_foreign_key('comments_author_id_fkey', 'task_comments', 'users', ['author_id'], ['id'])
