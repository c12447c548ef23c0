"""merge billing into main

Revision ID: 47635ed08d6b
Revises: f82def7d9967, 422a9248b974
Create Date: 2023-10-20 09:00:03.442818

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '47635ed08d6b'
down_revision = ('f82def7d9967', '422a9248b974')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
