"""seed the administrator account

Revision ID: ea396a42ed19
Revises: aa5b18677db7
Create Date: 2024-05-06 12:00:41.920337

    alembic -x admin_email=ops@example.org upgrade head
"""
from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ea396a42ed19'
down_revision = 'aa5b18677db7'
branch_labels = None
depends_on = None

users = sa.table(
    'users',
    sa.column('organization_id', sa.Integer), sa.column('email', sa.String), sa.column('display_name', sa.String),
    sa.column('is_active', sa.Boolean), sa.column('email_verified', sa.Boolean),
)


def upgrade():
    email = context.get_x_argument(as_dictionary=True).get('admin_email', 'admin@example.com')
    op.bulk_insert(users, [{
        'organization_id': 1, 'email': email, 'display_name': 'Administrator',
        'is_active': True, 'email_verified': True,
    }])
    op.execute(
        sa.text(
            "INSERT INTO memberships (user_id, organization_id, role) "
            "SELECT id, organization_id, 'owner' FROM users WHERE email = :email"
        ).bindparams(email=email)
    )


def downgrade():
    email = context.get_x_argument(as_dictionary=True).get('admin_email', 'admin@example.com')
    op.execute(sa.text("DELETE FROM memberships WHERE user_id IN (SELECT id FROM users WHERE email = :email)")
               .bindparams(email=email))
    op.execute(sa.text("DELETE FROM users WHERE email = :email").bindparams(email=email))
