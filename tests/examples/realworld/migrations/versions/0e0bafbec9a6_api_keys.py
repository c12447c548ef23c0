"""api keys (idempotent: hotfixed by hand on prod)

Revision ID: 0e0bafbec9a6
Revises: 6dbbef65ed78
Create Date: 2023-12-12 19:26:02.734180

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0e0bafbec9a6'
down_revision = '6dbbef65ed78'
branch_labels = None
depends_on = None


def upgrade():
    inspector = sa.inspect(op.get_bind())
    if 'api_keys' not in inspector.get_table_names():
        op.create_table(
            'api_keys',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('organization_id', sa.Integer(), nullable=False),
            sa.Column('prefix', sa.String(length=8), nullable=False),
            sa.Column('hashed_key', sa.String(length=128), nullable=False),
            sa.Column('revoked_at', sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('id'),
        )
    indexes = {ix['name'] for ix in inspector.get_indexes('api_keys')} if inspector.has_table('api_keys') else set()
    if 'ix_api_keys_prefix' not in indexes:
        op.create_index('ix_api_keys_prefix', 'api_keys', ['prefix'], unique=True)


def downgrade():
    op.drop_index('ix_api_keys_prefix', table_name='api_keys')
    op.drop_table('api_keys')
