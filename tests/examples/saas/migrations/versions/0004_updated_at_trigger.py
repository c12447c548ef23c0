"""set_updated_at() trigger function, on accounts

Downgrade: wrong — drops the trigger but never drops the set_updated_at() function.

Revision ID: 5922f1ba450a
Revises: f3bdb213e4bf
Create Date: 2023-01-12 11:05:55.031877

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '5922f1ba450a'
down_revision: Union[str, Sequence[str], None] = 'f3bdb213e4bf'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE FUNCTION set_updated_at() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at = now();
            RETURN NEW;
        END;
        $$
    """)
    op.execute(
        'CREATE TRIGGER accounts_set_updated_at BEFORE UPDATE ON accounts '
        'FOR EACH ROW EXECUTE FUNCTION set_updated_at()'
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP TRIGGER accounts_set_updated_at ON accounts')
