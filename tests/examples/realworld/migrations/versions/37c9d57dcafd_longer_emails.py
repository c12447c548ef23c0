"""allow 320-character e-mail addresses

Revision ID: 37c9d57dcafd
Revises: 3a7c6088155f
Create Date: 2023-11-02 10:19:08.336712

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '37c9d57dcafd'
down_revision = '3a7c6088155f'
branch_labels = None
depends_on = None

ACTIVE_USERS = """
    CREATE VIEW active_users AS
    SELECT u.id, u.email, u.display_name, o.name AS organization_name, u.last_login_at
    FROM users u
    JOIN organizations o ON o.id = u.organization_id
    WHERE u.is_active
"""


def _alter_email(old, new):
    # PostgreSQL refuses to change the type of a column a view uses
    op.execute("DROP VIEW IF EXISTS active_users")
    if op.get_context().dialect.name == 'sqlite':
        with op.batch_alter_table('users') as batch_op:
            batch_op.alter_column('email', existing_type=old, type_=new, existing_nullable=False)
    else:
        op.alter_column('users', 'email', existing_type=old, type_=new, existing_nullable=False)
    op.execute(ACTIVE_USERS)


def upgrade():
    _alter_email(sa.String(length=255), sa.String(length=320))


def downgrade():
    _alter_email(sa.String(length=320), sa.String(length=255))
