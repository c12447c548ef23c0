"""drop users.timezone where it still exists

Revision ID: 3a7c6088155f
Revises: 47635ed08d6b
Create Date: 2023-10-24 15:31:40.877320

Some staging databases had the column dropped by hand; be idempotent.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3a7c6088155f'
down_revision = '47635ed08d6b'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name == 'postgresql':
        op.execute("""
            DO $$
            BEGIN
                IF EXISTS (
                    SELECT 1 FROM information_schema.columns
                    WHERE table_name = 'users' AND column_name = 'timezone'
                ) THEN
                    ALTER TABLE users DROP COLUMN timezone;
                END IF;
            END
            $$;
        """)
    else:
        with op.batch_alter_table('users') as batch_op:
            batch_op.drop_column('timezone')


def downgrade():
    op.add_column('users', sa.Column('timezone', sa.String(length=50), nullable=True))
