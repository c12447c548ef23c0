"""audit trigger on projects and tasks

Downgrade: correct.

Revision ID: 41e000f8cbf7
Revises: 84b2cd7cad4b
Create Date: 2023-04-12 16:20:45.871923

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '41e000f8cbf7'
down_revision: Union[str, Sequence[str], None] = '84b2cd7cad4b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


AUDIT_ROW_CHANGE = """
CREATE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log (table_name, row_id, action, old_data)
        VALUES (TG_TABLE_NAME, OLD.id::text, TG_OP, to_jsonb(OLD));
        RETURN OLD;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO audit_log (table_name, row_id, action, old_data, new_data)
        VALUES (TG_TABLE_NAME, NEW.id::text, TG_OP, to_jsonb(OLD), to_jsonb(NEW));
        RETURN NEW;
    ELSE
        INSERT INTO audit_log (table_name, row_id, action, new_data)
        VALUES (TG_TABLE_NAME, NEW.id::text, TG_OP, to_jsonb(NEW));
        RETURN NEW;
    END IF;
END;
$$
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(AUDIT_ROW_CHANGE)
    for table in ('projects', 'tasks'):
        op.execute(
            f'CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table} '
            'FOR EACH ROW EXECUTE FUNCTION audit_row_change()'
        )


def downgrade() -> None:
    """Downgrade schema."""
    for table in ('projects', 'tasks'):
        op.execute(f'DROP TRIGGER {table}_audit ON {table}')
    op.execute('DROP FUNCTION audit_row_change()')
