"""task indexes for the board view

Revision ID: 046355ac0ecd
Revises: 5e6add70e34d
Create Date: 2023-02-02 17:45:38.120874

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '046355ac0ecd'
down_revision = '5e6add70e34d'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index(op.f('ix_tasks_status'), table_name='tasks')
    op.create_index('ix_tasks_project_id_status', 'tasks', ['project_id', 'status'], unique=False)
    op.create_index(
        'ix_tasks_open', 'tasks', ['project_id'],
        postgresql_where=sa.text("status <> 'done'"),
        sqlite_where=sa.text("status <> 'done'"),
    )
    if op.get_context().dialect.name == 'postgresql':
        # tasks is big in production: build this one without locking writes
        with op.get_context().autocommit_block():
            op.create_index('ix_tasks_created_by', 'tasks', ['created_by'], postgresql_concurrently=True)
    else:
        op.create_index('ix_tasks_created_by', 'tasks', ['created_by'])


def downgrade():
    op.drop_index('ix_tasks_created_by', table_name='tasks')
    op.drop_index('ix_tasks_open', table_name='tasks')
    op.drop_index('ix_tasks_project_id_status', table_name='tasks')
    op.create_index(op.f('ix_tasks_status'), 'tasks', ['status'], unique=False)
