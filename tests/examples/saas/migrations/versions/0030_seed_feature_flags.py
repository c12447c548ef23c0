"""seed the first feature flags

Downgrade: pass (the seed rows stay).

Revision ID: b460548f3880
Revises: 60ecfb23ebb4
Create Date: 2023-09-05 11:14:40.883167

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'b460548f3880'
down_revision: Union[str, Sequence[str], None] = '60ecfb23ebb4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        INSERT INTO feature_flags (key, description, enabled, rollout_percent) VALUES
            ('new_dashboard', 'Redesigned project dashboard', false, 0),
            ('task_search', 'Full-text task search', true, 100),
            ('webhooks', 'Outgoing webhooks (beta)', false, 10)
    """)


def downgrade() -> None:
    """Downgrade schema."""
    pass
