"""partial index on open tasks by due date

Downgrade: raises NotImplementedError.

Revision ID: 47b9e10e80ae
Revises: fb79dc41d05f
Create Date: 2023-07-03 13:12:50.307764

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '47b9e10e80ae'
down_revision: Union[str, Sequence[str], None] = 'fb79dc41d05f'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("CREATE INDEX ix_tasks_open_due_date ON tasks (due_date) WHERE status <> 'done'")


def downgrade() -> None:
    """Downgrade schema."""
    raise NotImplementedError()
