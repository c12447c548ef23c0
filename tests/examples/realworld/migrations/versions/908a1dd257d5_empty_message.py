"""empty message

Revision ID: 908a1dd257d5
Revises: 0f4be1030fe1
Create Date: 2024-07-01 10:00:12.113244

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '908a1dd257d5'
down_revision = '0f4be1030fe1'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
