"""projects.billing_invoice_id (needs the billing tables)

Revision ID: bf41f1f0742a
Revises: 0e46b5fa5b0c
Create Date: 2023-10-05 13:14:20.550903

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bf41f1f0742a'
down_revision = '0e46b5fa5b0c'
branch_labels = None
depends_on = 'af5d9f2e9ea4'


def upgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('billing_invoice_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_projects_billing_invoice_id_invoices', 'invoices',
                                    ['billing_invoice_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_constraint('fk_projects_billing_invoice_id_invoices', type_='foreignkey')
        batch_op.drop_column('billing_invoice_id')
