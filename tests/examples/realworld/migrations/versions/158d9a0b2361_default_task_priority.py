"""default task priority

Revision ID: 158d9a0b2361
Revises: aed04ca87fc2
Create Date: 2023-05-10 11:35:27.845961

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '158d9a0b2361'
down_revision = 'aed04ca87fc2'
branch_labels = None
depends_on = None

tasks = sa.table(
    'tasks',
    sa.column('id', sa.Integer),
    sa.column('status', sa.String),
    sa.column('priority', sa.Integer),
)


def upgrade():
    op.execute(
        tasks.update()
        .where(tasks.c.status == op.inline_literal('done'))
        .values(priority=op.inline_literal(0))
    )
    op.execute(tasks.update().where(tasks.c.priority.is_(None)).values(priority=3))
    op.alter_column('tasks', 'priority', existing_type=sa.Integer(), nullable=False, server_default='3')


def downgrade():
    op.alter_column('tasks', 'priority', existing_type=sa.Integer(), nullable=True, server_default=None)
