"""move theme and locale into users.settings

Revision ID: 26ad88c279d9
Revises: 37c9d57dcafd
Create Date: 2023-11-15 14:02:26.610985

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '26ad88c279d9'
down_revision = '37c9d57dcafd'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'users',
        sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  server_default=sa.text("'{}'"), nullable=False),
    )
    bind = op.get_context()
    if bind.dialect.name == 'postgresql':
        op.execute("""
            UPDATE users SET settings = jsonb_strip_nulls(jsonb_build_object('theme', theme, 'locale', locale));
            ALTER TABLE users DROP COLUMN theme, DROP COLUMN locale;
        """)
    else:
        op.execute("UPDATE users SET settings = json_object('theme', theme, 'locale', locale)")
        with op.batch_alter_table('users') as batch_op:
            batch_op.drop_column('theme')
            batch_op.drop_column('locale')


def downgrade():
    op.add_column('users', sa.Column('theme', sa.String(length=20), nullable=True))
    op.add_column('users', sa.Column('locale', sa.String(length=10), nullable=True))
    if op.get_context().dialect.name == 'postgresql':
        op.execute("UPDATE users SET theme = settings->>'theme', locale = settings->>'locale'")
    op.drop_column('users', 'settings')
