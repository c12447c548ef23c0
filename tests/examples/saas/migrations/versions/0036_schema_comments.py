"""comments on tables and columns

Downgrade: pass.

Revision ID: be0211d4c740
Revises: de4f97971faf
Create Date: 2023-11-13 10:37:45.018342

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'be0211d4c740'
down_revision: Union[str, Sequence[str], None] = 'de4f97971faf'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("COMMENT ON TABLE accounts IS 'Tenants: one row per customer organisation.'")
    op.execute("COMMENT ON TABLE audit_log IS 'Written by audit_row_change(); never updated.'")
    op.execute("COMMENT ON COLUMN tasks.number IS 'Human-facing task number, from task_number_seq.'")


def downgrade() -> None:
    """Downgrade schema."""
    pass
