"""billing: opening invoices for existing customers

Revision ID: a9dfbaecde5b
Revises: af5d9f2e9ea4
Create Date: 2023-09-06 14:12:51.980036

"""
import datetime as dt
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'a9dfbaecde5b'
down_revision: Union[str, Sequence[str], None] = 'af5d9f2e9ea4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

invoices = sa.table(
    'invoices',
    sa.column('id', sa.Integer), sa.column('organization_id', sa.Integer), sa.column('number', sa.String),
    sa.column('amount_cents', sa.Integer), sa.column('status', sa.String), sa.column('issued_at', sa.DateTime),
)
organizations = sa.table('organizations', sa.column('id', sa.Integer), sa.column('plan_id', sa.Integer))
plans = sa.table('plans', sa.column('id', sa.Integer), sa.column('monthly_price_cents', sa.Integer))


def upgrade() -> None:
    """Upgrade schema."""
    bind = op.get_bind()
    query = (
        sa.select(organizations.c.id, plans.c.monthly_price_cents)
        .select_from(organizations.join(plans, plans.c.id == organizations.c.plan_id))
        .order_by(organizations.c.id)
    )
    for org_id, price in bind.execute(query):
        for month in (7, 8, 9):
            bind.execute(invoices.insert().values(
                organization_id=org_id,
                number=f'2023-{org_id:04d}-{month:02d}',
                amount_cents=price,
                status='paid' if month < 9 else 'open',
                issued_at=dt.datetime(2023, month, 1),
            ))


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DELETE FROM invoices WHERE number LIKE '2023-%'")
