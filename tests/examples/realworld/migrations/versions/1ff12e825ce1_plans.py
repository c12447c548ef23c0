"""plans

Revision ID: 1ff12e825ce1
Revises: 158d9a0b2361
Create Date: 2023-06-01 08:12:40.223418

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '1ff12e825ce1'
down_revision = '158d9a0b2361'
branch_labels = None
depends_on = None


def upgrade():
    plans = op.create_table(
        'plans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('monthly_price_cents', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code', name='uq_plans_code'),
    )
    op.bulk_insert(plans, [
        {'code': 'free', 'name': 'Free', 'monthly_price_cents': 0},
        {'code': 'pro', 'name': 'Pro', 'monthly_price_cents': 1900},
        {'code': 'enterprise', 'name': 'Enterprise', 'monthly_price_cents': 49900},
    ])
    op.add_column('organizations', sa.Column('plan_id', sa.Integer(), nullable=True))
    op.create_foreign_key('fk_organizations_plan_id_plans', 'organizations', 'plans', ['plan_id'], ['id'])


def downgrade():
    op.drop_constraint('fk_organizations_plan_id_plans', 'organizations', type_='foreignkey')
    op.drop_column('organizations', 'plan_id')
    op.drop_table('plans')
