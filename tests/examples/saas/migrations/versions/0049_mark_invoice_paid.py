"""mark invoices paid when a payment succeeds

Downgrade: pass.

Revision ID: ed686cf19231
Revises: ae3d4015a55c
Create Date: 2024-03-25 13:27:33.071825

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'ed686cf19231'
down_revision: Union[str, Sequence[str], None] = 'ae3d4015a55c'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE FUNCTION mark_invoice_paid() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status = 'succeeded' THEN
                UPDATE invoices SET status = 'paid', paid_at = now()
                WHERE id = NEW.invoice_id AND status <> 'paid';
            END IF;
            RETURN NEW;
        END;
        $$
    """)
    op.execute(
        'CREATE TRIGGER payments_mark_invoice_paid AFTER INSERT OR UPDATE OF status ON payments '
        'FOR EACH ROW EXECUTE FUNCTION mark_invoice_paid()'
    )


def downgrade() -> None:
    """Downgrade schema."""
    pass
