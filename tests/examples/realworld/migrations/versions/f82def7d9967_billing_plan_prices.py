"""billing: 2023 plan prices

Revision ID: f82def7d9967
Revises: 699f5fd8e665
Create Date: 2023-09-15 17:04:11.302980

"""
from typing import Sequence, Union

from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'f82def7d9967'
down_revision: Union[str, Sequence[str], None] = '699f5fd8e665'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    if context.get_context().dialect.name == 'postgresql':
        op.execute("""
            INSERT INTO plans (code, name, monthly_price_cents)
            VALUES ('pro', 'Pro', 2900), ('team', 'Team', 9900)
            ON CONFLICT (code) DO UPDATE
                SET monthly_price_cents = EXCLUDED.monthly_price_cents, name = EXCLUDED.name
        """)
    else:
        op.execute("UPDATE plans SET monthly_price_cents = 2900 WHERE code = 'pro'")
        op.execute("INSERT INTO plans (code, name, monthly_price_cents) VALUES ('team', 'Team', 9900)")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DELETE FROM plans WHERE code = 'team'")
    op.execute("UPDATE plans SET monthly_price_cents = 1900 WHERE code = 'pro'")
