"""row level security on tasks

Downgrade: raises NotImplementedError.

Revision ID: de4f97971faf
Revises: 1a0129490e6b
Create Date: 2023-10-31 16:54:22.730198

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'de4f97971faf'
down_revision: Union[str, Sequence[str], None] = '1a0129490e6b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('ALTER TABLE tasks ENABLE ROW LEVEL SECURITY')
    op.execute("""
        CREATE POLICY tasks_tenant_isolation ON tasks
        USING (EXISTS (
            SELECT 1 FROM projects p
            WHERE p.id = tasks.project_id
              AND p.account_id = current_setting('app.account_id', true)::uuid
        ))
    """)


def downgrade() -> None:
    """Downgrade schema."""
    raise NotImplementedError("drop the RLS policies by hand")
