"""trigram index on task titles

Downgrade: correct.

Revision ID: 34b3b116350c
Revises: 12f0079ae61e
Create Date: 2023-03-28 14:58:11.487002

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '34b3b116350c'
down_revision: Union[str, Sequence[str], None] = '12f0079ae61e'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.execute('CREATE INDEX ix_tasks_title_trgm ON tasks USING gin (title gin_trgm_ops)')


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP INDEX IF EXISTS ix_tasks_title_trgm')
    op.execute('DROP EXTENSION IF EXISTS pg_trgm')
