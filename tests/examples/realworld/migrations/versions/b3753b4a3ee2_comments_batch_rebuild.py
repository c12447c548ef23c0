"""rebuild task_comments: body not null, drop legacy markup

Revision ID: b3753b4a3ee2
Revises: 046355ac0ecd
Create Date: 2023-02-14 09:03:17.448302

Written for the SQLite dev databases, hence the batch block; recreate="always" because the
old SQLite files have a broken CHECK constraint on this table.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3753b4a3ee2'
down_revision = '046355ac0ecd'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE task_comments SET body = '' WHERE body IS NULL")
    with op.batch_alter_table('task_comments', recreate='always') as batch_op:
        batch_op.add_column(sa.Column('edited_at', sa.DateTime(), nullable=True))
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('legacy_markup')


def downgrade():
    with op.batch_alter_table('task_comments', recreate='always') as batch_op:
        batch_op.add_column(sa.Column('legacy_markup', sa.Text(), nullable=True))
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=True)
        batch_op.drop_column('edited_at')
