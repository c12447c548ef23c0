"""human-facing task numbers

Downgrade: wrong — drops the column and its index but never drops task_number_seq.

Revision ID: ebbb5cf20781
Revises: 41e000f8cbf7
Create Date: 2023-04-25 11:33:09.052716

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'ebbb5cf20781'
down_revision: Union[str, Sequence[str], None] = '41e000f8cbf7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('CREATE SEQUENCE task_number_seq START WITH 1000')
    op.execute("ALTER TABLE tasks ADD COLUMN number bigint NOT NULL DEFAULT nextval('task_number_seq')")
    op.execute('CREATE UNIQUE INDEX ux_tasks_number ON tasks (number)')


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP INDEX ux_tasks_number')
    op.execute('ALTER TABLE tasks DROP COLUMN number')
