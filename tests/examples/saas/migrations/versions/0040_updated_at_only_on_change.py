"""set_updated_at() only when the row changed

Downgrade: wrong — drops set_updated_at() with CASCADE (taking every touch trigger) instead of restoring the previous body.

Revision ID: 3e61ba58d437
Revises: cd0d97004efe
Create Date: 2024-01-22 10:58:07.736019

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3e61ba58d437'
down_revision: Union[str, Sequence[str], None] = 'cd0d97004efe'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW IS DISTINCT FROM OLD THEN
                NEW.updated_at = now();
            END IF;
            RETURN NEW;
        END;
        $$
    """)


def downgrade() -> None:
    """Downgrade schema."""
    op.execute('DROP FUNCTION set_updated_at() CASCADE')
