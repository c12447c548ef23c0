"""projects: description as text, colour check, rename unique constraint

Revision ID: dd63d1764460
Revises: 0e0bafbec9a6
Create Date: 2024-01-08 11:11:43.994013

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'dd63d1764460'
down_revision = '0e0bafbec9a6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.alter_column('description',
               existing_type=sa.VARCHAR(length=500),
               type_=sa.Text(),
               existing_nullable=True)
        batch_op.create_check_constraint('ck_projects_color_hex', "color IS NULL OR color LIKE '#%'")
        batch_op.drop_constraint('uq_projects_organization_id_slug', type_='unique')
        batch_op.create_unique_constraint('uq_projects_org_slug', ['organization_id', 'slug'])


def downgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_constraint('uq_projects_org_slug', type_='unique')
        batch_op.create_unique_constraint('uq_projects_organization_id_slug', ['organization_id', 'slug'])
        batch_op.drop_constraint('ck_projects_color_hex', type_='check')
        batch_op.alter_column('description',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=500),
               existing_nullable=True)
