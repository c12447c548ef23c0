"""drop users.nickname, add projects.color

Revision ID: db183f20134c
Revises: fdfbd6fad8db
Create Date: 2023-09-19 16:27:31.776045

Generated from the autogenerate diff by scripts/diff_to_ops.py, which emits operation objects.
"""
from alembic import op
from alembic.operations import ops
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'db183f20134c'
down_revision = 'fdfbd6fad8db'
branch_labels = None
depends_on = None

UPGRADE_OPS = [
    ops.AddColumnOp('projects', sa.Column('color', sa.String(length=7), nullable=True)),
    ops.DropColumnOp.from_column_and_tablename(None, 'users', sa.Column('nickname', sa.String(length=50))),
]


def upgrade():
    for operation in UPGRADE_OPS:
        op.invoke(operation)


def downgrade():
    for operation in reversed(UPGRADE_OPS):
        op.invoke(operation.reverse())
