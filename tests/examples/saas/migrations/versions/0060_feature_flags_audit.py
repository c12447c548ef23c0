"""audit feature flag changes

Downgrade: wrong — DROP TRIGGER without ON <table> is a syntax error on PostgreSQL.

Revision ID: aed6041fe836
Revises: 92c535865694
Create Date: 2024-09-02 09:18:27.213075

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'aed6041fe836'
down_revision: Union[str, Sequence[str], None] = '92c535865694'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(
        'CREATE TRIGGER feature_flags_audit AFTER INSERT OR UPDATE OR DELETE ON feature_flags '
        'FOR EACH ROW EXECUTE FUNCTION audit_row_change()'
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP TRIGGER IF EXISTS feature_flags_audit')
