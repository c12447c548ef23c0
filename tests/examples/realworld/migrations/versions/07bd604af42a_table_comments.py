"""comments for the data catalogue

Revision ID: 07bd604af42a
Revises: da0aaa72870b
Create Date: 2024-02-05 16:37:12.208411

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '07bd604af42a'
down_revision = 'da0aaa72870b'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table_comment('tasks', 'Work items on a project board')
    op.alter_column('tasks', 'estimate_hours',
                    existing_type=sa.Numeric(precision=6, scale=2),
                    comment='Estimate in hours (story points before 2023-07)',
                    existing_nullable=True)
    op.create_table_comment('comments', 'Discussion on a task', existing_comment=None)


def downgrade():
    op.drop_table_comment('comments', existing_comment='Discussion on a task')
    op.alter_column('tasks', 'estimate_hours',
                    existing_type=sa.Numeric(precision=6, scale=2),
                    comment=None,
                    existing_comment='Estimate in hours (story points before 2023-07)',
                    existing_nullable=True)
    op.drop_table_comment('tasks', existing_comment='Work items on a project board')
