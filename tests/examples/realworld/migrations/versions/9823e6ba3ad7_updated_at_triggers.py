"""updated_at columns maintained by a trigger

Revision ID: 9823e6ba3ad7
Revises: 4de4ad915a36
Create Date: 2023-03-08 15:50:42.902117

"""
from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9823e6ba3ad7'
down_revision = '4de4ad915a36'
branch_labels = None
depends_on = None

TABLES = ('projects', 'tasks')

SET_UPDATED_AT = """
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    -- keep an explicit value when the application sets one
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade():
    for table in TABLES:
        op.add_column(table, sa.Column('updated_at', sa.DateTime(), server_default=sa.func.now(), nullable=False))

    if context.get_context().dialect.name == 'postgresql':
        op.execute(SET_UPDATED_AT)
        for table in TABLES:
            op.execute(
                f'CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} '
                f'FOR EACH ROW EXECUTE FUNCTION set_updated_at()'
            )


def downgrade():
    if context.get_context().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'DROP TRIGGER IF EXISTS trg_{table}_updated_at ON {table}')
        op.execute('DROP FUNCTION IF EXISTS set_updated_at()')
    for table in TABLES:
        op.drop_column(table, 'updated_at')
