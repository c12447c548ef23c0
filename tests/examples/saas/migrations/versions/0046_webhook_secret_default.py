"""generate webhook secrets in the database

Downgrade: pass.

Revision ID: 4613c5a26275
Revises: b7b9a33a4961
Create Date: 2024-02-13 14:49:05.992613

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '4613c5a26275'
down_revision: Union[str, Sequence[str], None] = 'b7b9a33a4961'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("ALTER TABLE webhook_endpoints ALTER COLUMN secret SET DEFAULT encode(gen_random_bytes(24), 'hex')")


def downgrade() -> None:
    """Downgrade schema."""
    pass
