"""replace audit_log by a partitioned events table

Revision ID: 6dbbef65ed78
Revises: 26ad88c279d9
Create Date: 2023-12-01 09:41:15.001946

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6dbbef65ed78'
down_revision = '26ad88c279d9'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name == 'postgresql':
        op.execute("""
            CREATE TABLE events (
                id bigint GENERATED ALWAYS AS IDENTITY,
                actor_id integer,
                action varchar(100) NOT NULL,
                target varchar(200),
                created_at timestamp NOT NULL,
                PRIMARY KEY (id, created_at)
            ) PARTITION BY RANGE (created_at);
            CREATE TABLE events_2021 PARTITION OF events FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
            CREATE TABLE events_2022 PARTITION OF events FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
            CREATE TABLE events_default PARTITION OF events DEFAULT;
            INSERT INTO events (actor_id, action, target, created_at)
                SELECT actor_id, action, target, created_at FROM audit_log ORDER BY id;
            DROP TABLE audit_log;
        """)
    else:
        op.create_table(
            'events',
            sa.Column('id', sa.Integer(), primary_key=True),
            sa.Column('actor_id', sa.Integer()),
            sa.Column('action', sa.String(length=100), nullable=False),
            sa.Column('target', sa.String(length=200)),
            sa.Column('created_at', sa.DateTime(), nullable=False),
        )
        op.execute(
            "INSERT INTO events (actor_id, action, target, created_at) "
            "SELECT actor_id, action, target, created_at FROM audit_log"
        )
        op.drop_table('audit_log')


def downgrade():
    raise NotImplementedError("one-way: events is partitioned; restore audit_log from the backup")
