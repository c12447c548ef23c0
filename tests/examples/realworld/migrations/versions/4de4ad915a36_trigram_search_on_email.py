"""trigram search on users.email

Revision ID: 4de4ad915a36
Revises: b3753b4a3ee2
Create Date: 2023-03-01 13:27:55.196513

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4de4ad915a36'
down_revision = 'b3753b4a3ee2'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.create_index(
            'ix_users_email_trgm', 'users', ['email'],
            postgresql_using='gin', postgresql_ops={'email': 'gin_trgm_ops'},
        )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_users_email_trgm', table_name='users', postgresql_using='gin')
        # the extension stays: other databases on the server may use it
