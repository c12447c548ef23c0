"""task status: blocked, cancelled

Revision ID: bfb65bae2d26
Revises: 68340cc8af11
Create Date: 2023-04-19 09:44:02.318853

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bfb65bae2d26'
down_revision = '68340cc8af11'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name == 'postgresql':
        # new enum values cannot be used in the transaction that adds them
        with op.get_context().autocommit_block():
            op.execute("ALTER TYPE task_status ADD VALUE IF NOT EXISTS 'blocked' AFTER 'doing'")
            op.execute("ALTER TYPE task_status ADD VALUE IF NOT EXISTS 'cancelled'")
    else:
        # SQLite/MySQL: the enum is a VARCHAR (+ CHECK); rebuild with the new values
        with op.batch_alter_table('tasks') as batch_op:
            batch_op.alter_column(
                'status',
                existing_type=sa.Enum('todo', 'doing', 'done', name='task_status'),
                type_=sa.Enum('todo', 'doing', 'blocked', 'done', 'cancelled', name='task_status'),
                existing_nullable=False,
            )


def downgrade():
    raise NotImplementedError("PostgreSQL cannot remove values from an enum; restore from backup")
