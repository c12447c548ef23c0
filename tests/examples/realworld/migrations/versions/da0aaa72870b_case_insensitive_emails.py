"""case-insensitive unique e-mail

Revision ID: da0aaa72870b
Revises: dd63d1764460
Create Date: 2024-01-22 08:48:29.157620

"""
from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'da0aaa72870b'
down_revision = 'dd63d1764460'
branch_labels = None
depends_on = None


def upgrade():
    dialect = context.get_context().dialect.name
    if dialect == 'postgresql':
        op.create_index('ix_users_email_lower', 'users', [sa.text('lower(email)')], unique=True)
    elif dialect in ('mysql', 'mariadb'):
        # MySQL compares case-insensitively with a _ci collation
        op.execute("ALTER TABLE users MODIFY email VARCHAR(320) NOT NULL COLLATE utf8mb4_unicode_ci")
    else:
        op.execute("CREATE UNIQUE INDEX ix_users_email_lower ON users (lower(email))")


def downgrade():
    dialect = context.get_context().dialect.name
    if dialect in ('mysql', 'mariadb'):
        op.execute("ALTER TABLE users MODIFY email VARCHAR(320) NOT NULL COLLATE utf8mb4_bin")
    else:
        op.drop_index('ix_users_email_lower', table_name='users')
