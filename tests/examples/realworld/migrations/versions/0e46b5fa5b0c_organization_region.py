"""organizations.region, filled from the deployment's region

Revision ID: 0e46b5fa5b0c
Revises: db183f20134c
Create Date: 2023-10-02 08:55:47.129560

Every deployment sets RW_DEFAULT_REGION (see deploy/helm/values.yaml); the migration refuses
to guess.
"""
import os

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0e46b5fa5b0c'
down_revision = 'db183f20134c'
branch_labels = None
depends_on = None


def upgrade():
    region = os.environ['RW_DEFAULT_REGION']
    op.add_column('organizations', sa.Column('region', sa.String(length=20), nullable=True))
    op.execute(
        sa.text("UPDATE organizations SET region = :region WHERE region IS NULL").bindparams(region=region)
    )
    op.alter_column('organizations', 'region', existing_type=sa.String(length=20), nullable=False)


def downgrade():
    op.drop_column('organizations', 'region')
