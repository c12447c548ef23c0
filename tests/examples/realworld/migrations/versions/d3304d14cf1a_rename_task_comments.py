"""rename task_comments to comments, projects.name to title

Revision ID: d3304d14cf1a
Revises: 4cc33c234038
Create Date: 2023-07-18 10:45:19.640381

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd3304d14cf1a'
down_revision = '4cc33c234038'
branch_labels = None
depends_on = None


def upgrade():
    op.rename_table('task_comments', 'comments')
    op.alter_column('projects', 'name', new_column_name='title',
                    existing_type=sa.String(length=200), existing_nullable=False)


def downgrade():
    op.alter_column('projects', 'title', new_column_name='name',
                    existing_type=sa.String(length=200), existing_nullable=False)
    op.rename_table('comments', 'task_comments')
