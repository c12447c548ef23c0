"""prune_webhook_deliveries(keep_days)

Downgrade: wrong — DROP FUNCTION with the wrong argument list fails (function does not exist).

Revision ID: df6eaa325848
Revises: 4613c5a26275
Create Date: 2024-02-26 09:05:48.213587

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'df6eaa325848'
down_revision: Union[str, Sequence[str], None] = '4613c5a26275'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE FUNCTION prune_webhook_deliveries(keep_days integer DEFAULT 30) RETURNS integer
        LANGUAGE plpgsql AS $$
        DECLARE
            removed integer;
        BEGIN
            DELETE FROM webhook_deliveries
            WHERE attempted_at < now() - make_interval(days => keep_days);
            GET DIAGNOSTICS removed = ROW_COUNT;
            RETURN removed;
        END;
        $$
    """)


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP FUNCTION prune_webhook_deliveries()')
