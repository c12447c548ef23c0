"""import the data exported from the v1 application

Revision ID: 5d96265beda9
Revises: cf0c4243ed52
Create Date: 2022-12-05 08:31:10.550271

The v1 export was converted to Python literals by scripts/convert_v1_export.py; the ids are
kept so that links in old e-mails keep working.
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d96265beda9'
down_revision = 'cf0c4243ed52'
branch_labels = None
depends_on = None

EPOCH = dt.datetime(2021, 6, 1, 12, 0, 0)

organizations = sa.table(
    'organizations',
    sa.column('id', sa.Integer), sa.column('name', sa.String), sa.column('slug', sa.String),
    sa.column('created_at', sa.DateTime),
)
users = sa.table(
    'users',
    sa.column('id', sa.Integer), sa.column('organization_id', sa.Integer), sa.column('email', sa.String),
    sa.column('display_name', sa.String), sa.column('nickname', sa.String), sa.column('timezone', sa.String),
    sa.column('theme', sa.String), sa.column('locale', sa.String),
    sa.column('legacy_password_hash', sa.String), sa.column('is_active', sa.Boolean),
    sa.column('created_at', sa.DateTime),
)
memberships = sa.table(
    'memberships', sa.column('user_id', sa.Integer), sa.column('organization_id', sa.Integer),
    sa.column('role', sa.String),
)
projects = sa.table(
    'projects',
    sa.column('id', sa.Integer), sa.column('organization_id', sa.Integer), sa.column('name', sa.String),
    sa.column('slug', sa.String), sa.column('description', sa.String),
)
tasks = sa.table(
    'tasks',
    sa.column('id', sa.Integer), sa.column('project_id', sa.Integer), sa.column('title', sa.String),
    sa.column('status', sa.String), sa.column('priority', sa.Integer),
    sa.column('estimate_hours', sa.Numeric), sa.column('labels', sa.String), sa.column('created_by', sa.Integer),
)
task_comments = sa.table(
    'task_comments',
    sa.column('id', sa.Integer), sa.column('task_id', sa.Integer), sa.column('author_id', sa.Integer),
    sa.column('body', sa.Text), sa.column('legacy_markup', sa.Text), sa.column('created_at', sa.DateTime),
)
sessions = sa.table(
    'sessions', sa.column('id', sa.Integer), sa.column('user_id', sa.Integer), sa.column('token', sa.String),
    sa.column('expires_at', sa.DateTime),
)
login_attempts = sa.table(
    'login_attempts', sa.column('id', sa.Integer), sa.column('email', sa.String),
    sa.column('succeeded', sa.Boolean), sa.column('attempted_at', sa.DateTime),
)
legacy_imports = sa.table(
    'legacy_imports', sa.column('id', sa.Integer), sa.column('source', sa.String),
    sa.column('payload', sa.Text), sa.column('imported_at', sa.DateTime),
)
audit_log = sa.table(
    'audit_log', sa.column('id', sa.Integer), sa.column('actor_id', sa.Integer), sa.column('action', sa.String),
    sa.column('target', sa.String), sa.column('created_at', sa.DateTime),
)

ORGS = ['Acme', 'Globex', 'Initech', 'Umbrella']
STATUSES = ['todo', 'doing', 'done', 'done', 'todo']
LABELS = ['bug', 'bug,ui', 'feature', '', None, 'ui, backend', 'backend']


def upgrade():
    op.bulk_insert(organizations, [
        {'id': i, 'name': name, 'slug': name.lower(), 'created_at': EPOCH}
        for i, name in enumerate(ORGS, start=1)
    ])
    op.bulk_insert(users, [
        {
            'id': i,
            'organization_id': (i % len(ORGS)) + 1,
            # v1 did not normalise addresses
            'email': f'User.{i}@Example.COM' if i % 4 == 0 else f'user{i}@example.com',
            'display_name': None if i % 5 == 0 else f'User {i}',
            'nickname': f'u{i}' if i % 2 else None,
            'timezone': 'Europe/Berlin' if i % 3 else 'UTC',
            'theme': 'dark' if i % 2 else 'light',
            'locale': 'de' if i % 3 == 0 else 'en',
            'legacy_password_hash': f'md5${i:032x}',
            'is_active': i % 9 != 0,
            'created_at': EPOCH + dt.timedelta(days=i),
        }
        for i in range(1, 41)
    ])
    op.bulk_insert(memberships, [
        {'user_id': i, 'organization_id': (i % len(ORGS)) + 1, 'role': 'owner' if i <= len(ORGS) else 'member'}
        for i in range(1, 41)
    ])
    op.bulk_insert(projects, [
        {'id': i, 'organization_id': (i % len(ORGS)) + 1, 'name': f'Project {i}',
         'slug': 'sandbox-%d' % i if i % 6 == 0 else f'project-{i}',
         'description': None if i % 2 else f'The {i}th project'}
        for i in range(1, 13)
    ])
    op.bulk_insert(tasks, [
        {'id': i, 'project_id': (i % 12) + 1, 'title': f'Task {i}', 'status': STATUSES[i % 5],
         'priority': None if i % 3 == 0 else i % 5, 'estimate_hours': -1 if i % 17 == 0 else (i % 8) * 1.5,
         'labels': LABELS[i % len(LABELS)], 'created_by': (i % 40) + 1}
        for i in range(1, 151)
    ])
    op.bulk_insert(task_comments, [
        {'id': i, 'task_id': (i % 150) + 1, 'author_id': (i % 40) + 1,
         'body': f'comment {i}' if i % 10 else None, 'legacy_markup': f'[b]comment {i}[/b]',
         'created_at': EPOCH + dt.timedelta(hours=i)}
        for i in range(1, 121)
    ])
    op.bulk_insert(sessions, [
        {'id': i, 'user_id': (i % 40) + 1, 'token': f'{i:064x}',
         'expires_at': dt.datetime(2023, 1, 1) + dt.timedelta(days=i * 7)}
        for i in range(1, 61)
    ])
    op.bulk_insert(login_attempts, [
        {'id': i, 'email': f'user{i % 40}@example.com', 'succeeded': i % 4 != 0,
         'attempted_at': EPOCH + dt.timedelta(minutes=i)}
        for i in range(1, 101)
    ])
    op.bulk_insert(legacy_imports, [
        {'id': i, 'source': 'v1-export', 'payload': '{"row": %d}' % i, 'imported_at': EPOCH}
        for i in range(1, 31)
    ])
    op.bulk_insert(audit_log, [
        {'id': i, 'actor_id': (i % 40) + 1, 'action': 'login' if i % 2 else 'update',
         'target': f'task:{i % 150}', 'created_at': EPOCH + dt.timedelta(hours=i)}
        for i in range(1, 201)
    ])

    # explicit ids leave the PostgreSQL sequences behind: move them past the imported rows
    if op.get_context().dialect.name == 'postgresql':
        op.execute("""
            SELECT setval(pg_get_serial_sequence('organizations', 'id'), (SELECT max(id) FROM organizations));
            SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
            SELECT setval(pg_get_serial_sequence('projects', 'id'), (SELECT max(id) FROM projects));
            SELECT setval(pg_get_serial_sequence('tasks', 'id'), (SELECT max(id) FROM tasks));
            SELECT setval(pg_get_serial_sequence('task_comments', 'id'), (SELECT max(id) FROM task_comments));
            SELECT setval(pg_get_serial_sequence('sessions', 'id'), (SELECT max(id) FROM sessions));
            SELECT setval(pg_get_serial_sequence('audit_log', 'id'), (SELECT max(id) FROM audit_log));
        """)


def downgrade():
    op.execute("""
        DELETE FROM audit_log;
        DELETE FROM legacy_imports;
        DELETE FROM login_attempts;
        DELETE FROM sessions;
        DELETE FROM task_comments;
        DELETE FROM tasks;
        DELETE FROM projects;
        DELETE FROM memberships;
        DELETE FROM users;
        DELETE FROM organizations;
    """)
