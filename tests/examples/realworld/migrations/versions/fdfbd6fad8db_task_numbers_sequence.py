"""human-friendly task numbers from a sequence

Revision ID: fdfbd6fad8db
Revises: 7658f94855d0
Create Date: 2023-09-07 12:40:56.019772

The create_sequence/drop_sequence operations follow the "Operation Plugins" recipe of the
Alembic documentation; they live here because nothing else needs them (yet).
"""
from alembic import op
from alembic.operations import MigrateOperation, Operations
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'fdfbd6fad8db'
down_revision = '7658f94855d0'
branch_labels = None
depends_on = None


@Operations.register_operation("create_sequence")
class CreateSequenceOp(MigrateOperation):
    """Create a SEQUENCE."""

    def __init__(self, sequence_name, schema=None, start=1):
        self.sequence_name = sequence_name
        self.schema = schema
        self.start = start

    @classmethod
    def create_sequence(cls, operations, sequence_name, **kw):
        """Issue a "CREATE SEQUENCE" instruction."""
        return operations.invoke(cls(sequence_name, **kw))

    def reverse(self):
        return DropSequenceOp(self.sequence_name, schema=self.schema)


@Operations.register_operation("drop_sequence")
class DropSequenceOp(MigrateOperation):
    """Drop a SEQUENCE."""

    def __init__(self, sequence_name, schema=None):
        self.sequence_name = sequence_name
        self.schema = schema

    @classmethod
    def drop_sequence(cls, operations, sequence_name, **kw):
        """Issue a "DROP SEQUENCE" instruction."""
        return operations.invoke(cls(sequence_name, **kw))

    def reverse(self):
        return CreateSequenceOp(self.sequence_name, schema=self.schema)


def _qualified(operation):
    if operation.schema is not None:
        return f'{operation.schema}.{operation.sequence_name}'
    return operation.sequence_name


@Operations.implementation_for(CreateSequenceOp)
def create_sequence(operations, operation):
    if operations.get_context().dialect.name != 'postgresql':
        return  # no sequences on SQLite; MySQL uses AUTO_INCREMENT columns instead
    operations.execute(f'CREATE SEQUENCE {_qualified(operation)} START WITH {operation.start}')


@Operations.implementation_for(DropSequenceOp)
def drop_sequence(operations, operation):
    if operations.get_context().dialect.name != 'postgresql':
        return
    operations.execute(f'DROP SEQUENCE {_qualified(operation)}')


def upgrade():
    op.create_sequence('task_number_seq', start=1000)
    if op.get_context().dialect.name == 'postgresql':
        op.add_column('tasks', sa.Column('number', sa.Integer(), server_default=sa.text("nextval('task_number_seq')"),
                                         nullable=False))
    else:
        op.add_column('tasks', sa.Column('number', sa.Integer(), nullable=True))


def downgrade():
    op.drop_column('tasks', 'number')
    op.drop_sequence('task_number_seq')
