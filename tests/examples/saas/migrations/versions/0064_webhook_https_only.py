"""webhook URLs must be https

Downgrade: pass (a `pass  # TODO`).

Revision ID: 095f5bd3b096
Revises: 140ee8607c0a
Create Date: 2024-12-09 11:23:50.440219

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '095f5bd3b096'
down_revision: Union[str, Sequence[str], None] = '140ee8607c0a'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_check_constraint('ck_webhook_endpoints_url_https', 'webhook_endpoints', "left(url, 8) = 'https://'")


def downgrade() -> None:
    """Downgrade schema."""
    pass  # TODO
