"""row level security on projects

Downgrade: pass.

Revision ID: 1a0129490e6b
Revises: 3fd501789da9
Create Date: 2023-10-30 11:09:03.184776

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '1a0129490e6b'
down_revision: Union[str, Sequence[str], None] = '3fd501789da9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('ALTER TABLE projects ENABLE ROW LEVEL SECURITY')
    op.execute("""
        CREATE POLICY projects_tenant_isolation ON projects
        USING (account_id = current_setting('app.account_id', true)::uuid)
    """)


def downgrade() -> None:
    """Downgrade schema."""
    pass
