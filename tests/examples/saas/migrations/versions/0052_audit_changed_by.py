"""audit: record the acting user; audit invoices

Downgrade: wrong — drops the invoices trigger but does not restore the previous audit_row_change() body.

Revision ID: fa03f46b195c
Revises: 966890de4286
Create Date: 2024-05-06 10:04:26.918411

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'fa03f46b195c'
down_revision: Union[str, Sequence[str], None] = '966890de4286'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE OR REPLACE FUNCTION audit_row_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            actor text := nullif(current_setting('app.user_id', true), '');
        BEGIN
            IF TG_OP = 'DELETE' THEN
                INSERT INTO audit_log (table_name, row_id, action, old_data, changed_by)
                VALUES (TG_TABLE_NAME, OLD.id::text, TG_OP, to_jsonb(OLD), actor);
                RETURN OLD;
            END IF;
            INSERT INTO audit_log (table_name, row_id, action, old_data, new_data, changed_by)
            VALUES (TG_TABLE_NAME, NEW.id::text, TG_OP,
                    CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END, to_jsonb(NEW), actor);
            RETURN NEW;
        END;
        $$
    """)
    op.execute(
        'CREATE TRIGGER invoices_audit AFTER INSERT OR UPDATE OR DELETE ON invoices '
        'FOR EACH ROW EXECUTE FUNCTION audit_row_change()'
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP TRIGGER invoices_audit ON invoices')
