"""notifications.kind becomes an enum

Downgrade: wrong — turns kind back into VARCHAR(50) but never drops the notification_kind type.

Revision ID: 86ed9d9abf32
Revises: 448b5f2342ce
Create Date: 2024-07-15 14:03:18.675540

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '86ed9d9abf32'
down_revision: Union[str, Sequence[str], None] = '448b5f2342ce'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("CREATE TYPE notification_kind AS ENUM ('mention', 'assignment', 'due_soon', 'invoice', 'system')")
    op.execute("""
        UPDATE notifications SET kind = 'system'
        WHERE kind NOT IN ('mention', 'assignment', 'due_soon', 'invoice', 'system')
    """)
    op.execute('ALTER TABLE notifications ALTER COLUMN kind TYPE notification_kind USING kind::notification_kind')


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column('notifications', 'kind', type_=sa.String(length=50), postgresql_using='kind::text')
