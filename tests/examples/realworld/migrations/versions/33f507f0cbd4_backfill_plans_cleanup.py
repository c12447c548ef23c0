"""backfill plans, expire old sessions, deactivate dormant users

Revision ID: 33f507f0cbd4
Revises: 1ff12e825ce1
Create Date: 2023-06-02 18:59:03.771604

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '33f507f0cbd4'
down_revision = '1ff12e825ce1'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        UPDATE organizations SET plan_id = (SELECT id FROM plans WHERE code = 'free') WHERE plan_id IS NULL;
        DELETE FROM sessions WHERE expires_at < '2023-03-01';
        UPDATE users SET is_active = false WHERE last_login_at IS NULL AND created_at < '2021-06-10';
        INSERT INTO plans (code, name, monthly_price_cents) VALUES ('legacy', 'Legacy', 0);
    """)


def downgrade():
    op.execute("DELETE FROM plans WHERE code = 'legacy'")
