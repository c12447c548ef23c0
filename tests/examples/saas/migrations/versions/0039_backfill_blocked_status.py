"""tasks labelled 'blocked' get status 'blocked'

Downgrade: pass.

Revision ID: cd0d97004efe
Revises: c8b7a48608c9
Create Date: 2024-01-08 14:16:30.291755

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'cd0d97004efe'
down_revision: Union[str, Sequence[str], None] = 'c8b7a48608c9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        UPDATE tasks t SET status = 'blocked'
        FROM task_labels tl
        JOIN labels l ON l.id = tl.label_id
        WHERE tl.task_id = t.id
          AND lower(l.name) = 'blocked'
          AND t.status <> 'done'
    """)


def downgrade() -> None:
    """Downgrade schema."""
    pass
