"""backfill tasks.completed_at, void stale open invoices

Revision ID: ca1a54c6c4b3
Revises: 70fab78eda4f
Create Date: 2024-06-03 08:27:14.870491

"""
import datetime as dt

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ca1a54c6c4b3'
down_revision = '70fab78eda4f'
branch_labels = None
depends_on = None

tasks = sa.table(
    'tasks',
    sa.column('status', sa.String),
    sa.column('completed_at', sa.DateTime),
    sa.column('updated_at', sa.DateTime),
)


def upgrade():
    op.execute(
        tasks.update()
        .where(tasks.c.status == 'done')
        .where(tasks.c.completed_at.is_(None))
        .values(completed_at=tasks.c.updated_at)
    )
    op.execute(
        sa.text("UPDATE invoices SET status = :new WHERE status = :old AND issued_at < :cutoff")
        .bindparams(new='void', old='open', cutoff=dt.datetime(2023, 9, 2))
    )


def downgrade():
    pass
