"""active_memberships view

Downgrade: pass.

Revision ID: 09817ac4a807
Revises: 8c365a0bf543
Create Date: 2023-06-05 15:48:14.663090

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '09817ac4a807'
down_revision: Union[str, Sequence[str], None] = '8c365a0bf543'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE VIEW active_memberships AS
        SELECT m.id, m.account_id, m.user_id, m.role, u.email
        FROM memberships m
        JOIN users u ON u.id = m.user_id
        WHERE u.is_active
    """)


def downgrade() -> None:
    """Downgrade schema."""
    pass
