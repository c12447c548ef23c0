"""active_memberships: display name and join date

Downgrade: pass (a `pass  # TODO`).

Revision ID: b37d12a77a0f
Revises: fa03f46b195c
Create Date: 2024-05-21 14:36:10.257893

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'b37d12a77a0f'
down_revision: Union[str, Sequence[str], None] = 'fa03f46b195c'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE OR REPLACE VIEW active_memberships AS
        SELECT m.id, m.account_id, m.user_id, m.role, u.email,
               u.display_name, m.created_at AS member_since
        FROM memberships m
        JOIN users u ON u.id = m.user_id
        WHERE u.deactivated_at IS NULL
    """)


def downgrade() -> None:
    """Downgrade schema."""
    pass  # TODO
