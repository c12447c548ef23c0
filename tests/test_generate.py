"""``alembic-safety generate``: the Django-style round trip for every supported operation and SQL
statement — build the state, upgrade, run the *generated* downgrade, require the reflected
schema to equal the pre-state exactly, upgrade again — on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.reverse.schema import SchemaState, diff, reflect_state

from .conftest import copy_example
from .helpers import alembic, safety

BASE = '''
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(120), nullable=False),
        sa.Column("name", sa.String(80), server_default="anon"),
        sa.Column("score", sa.Integer, nullable=True),
        sa.UniqueConstraint("email", name="uq_customers_email"),
        sa.CheckConstraint("score >= 0", name="ck_customers_score"),
    )
    op.create_index("ix_customers_name", "customers", ["name"])
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer,
                  sa.ForeignKey("customers.id", name="fk_orders_customer", ondelete="CASCADE"), nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False, server_default="0"),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_orders_customer", "orders", ["customer_id"])
'''

PG_BASE = BASE + '''
    op.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    op.execute("CREATE FUNCTION order_count(cid integer) RETURNS bigint LANGUAGE sql STABLE "
               "AS $$ SELECT count(*) FROM orders WHERE customer_id = cid $$")
    op.execute("CREATE VIEW big_spenders AS SELECT id, score FROM customers WHERE score > 100")
    op.execute("CREATE TABLE feelings (id serial PRIMARY KEY, m mood NOT NULL DEFAULT 'happy')")
'''

ALL = ("sqlite", "postgresql", "mariadb")
PG = ("postgresql",)
SERVERS = ("postgresql", "mariadb")

# (case id, dialects, upgrade body)
CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("drop_table", ALL, 'op.drop_table("orders")'),
    ("create_table", ALL, 'op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True), '
                          'sa.Column("label", sa.String(30), nullable=False, unique=True))'),
    ("add_column", ALL, 'op.add_column("orders", sa.Column("status", sa.String(20), nullable=True))'),
    ("drop_column_batch", ALL, 'with op.batch_alter_table("orders") as b:\n    b.drop_column("note")'),
    ("drop_column", SERVERS, 'op.drop_column("customers", "name")'),
    ("alter_type_no_existing", SERVERS, 'op.alter_column("orders", "note", type_=sa.String(200))'),
    ("alter_type_batch", ("sqlite",),
     'with op.batch_alter_table("orders") as b:\n    b.alter_column("note", type_=sa.String(200))'),
    ("alter_nullable", SERVERS, 'op.alter_column("customers", "score", nullable=False, existing_type=sa.Integer)'),
    ("alter_default", SERVERS, 'op.alter_column("customers", "name", server_default="someone", '
                               'existing_type=sa.String(80))'),
    ("rename_column", SERVERS, 'op.alter_column("orders", "note", new_column_name="remark", existing_type=sa.Text)'),
    ("rename_column_batch", ("sqlite",),
     'with op.batch_alter_table("orders") as b:\n    b.alter_column("note", new_column_name="remark")'),
    ("rename_table", ALL, 'op.rename_table("orders", "purchases")'),
    ("drop_index", ALL, 'op.drop_index("ix_customers_name", table_name="customers")'),
    ("create_index", ALL, 'op.create_index("ix_orders_total", "orders", ["total"], unique=True)'),
    ("unnamed_unique", SERVERS, 'op.create_unique_constraint(None, "orders", ["customer_id", "total"])'),
    ("drop_fk", SERVERS, 'op.drop_constraint("fk_orders_customer", "orders", type_="foreignkey")'),
    ("drop_fk_batch", ("sqlite",),
     'with op.batch_alter_table("orders") as b:\n    b.drop_constraint("fk_orders_customer", type_="foreignkey")'),
    ("unnamed_fk", PG, 'op.add_column("customers", sa.Column("referrer_id", sa.Integer))\n'
                       'op.create_foreign_key(None, "customers", "customers", ["referrer_id"], ["id"], '
                       'ondelete="SET NULL")'),
    ("drop_unique", PG, 'op.drop_constraint("uq_customers_email", "customers", type_="unique")'),
    ("drop_check", PG, 'op.drop_constraint("ck_customers_score", "customers", type_="check")'),
    ("create_check", SERVERS, 'op.create_check_constraint("ck_orders_total", "orders", "total >= 0")'),
    ("table_comment", SERVERS, 'op.create_table_comment("orders", "what customers bought")'),
    ("enum_table", PG, 'op.create_table("moods", sa.Column("id", sa.Integer, primary_key=True), '
                       'sa.Column("kind", sa.Enum("up", "down", name="swing"), nullable=False))'),
    ("drop_enum_table", PG, 'op.drop_table("feelings")'),
    ("sql_function_trigger", PG, '''op.execute("""
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN NEW.note := coalesce(NEW.note, 'x'); RETURN NEW; END; $body$;
        CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
    """)'''),
    ("sql_replace_function", PG, 'op.execute("CREATE OR REPLACE FUNCTION order_count(cid integer) '
                                 'RETURNS bigint LANGUAGE sql STABLE '
                                 'AS $$ SELECT count(*) + 0 FROM orders WHERE customer_id = cid $$")'),
    ("sql_replace_view", PG, 'op.execute("CREATE OR REPLACE VIEW big_spenders AS SELECT id, score FROM customers '
                             'WHERE score > 500")'),
    ("sql_view_and_type", PG, 'op.execute("CREATE TYPE level AS ENUM (\'low\', \'high\')")\n'
                              'op.execute("CREATE VIEW small_orders AS SELECT id FROM orders WHERE total < 10")'),
    ("sql_rls_policy", PG, 'op.execute("ALTER TABLE orders ENABLE ROW LEVEL SECURITY")\n'
                           'op.execute("CREATE POLICY own_orders ON orders FOR SELECT USING (customer_id > 0)")'),
    ("sql_comment_and_column", PG, 'op.execute("COMMENT ON TABLE customers IS \'people\'")\n'
                                   'op.execute("ALTER TABLE orders ADD COLUMN paid boolean NOT NULL DEFAULT false")'),
    ("sql_drop_function", PG, 'op.execute("DROP FUNCTION order_count(integer)")'),
    ("sql_drop_view", PG, 'op.execute("DROP VIEW big_spenders")'),
    ("sql_create_index", PG, 'op.execute("CREATE INDEX ix_orders_note_lower ON orders (lower(note)) '
                             'WHERE note IS NOT NULL")'),
]


def revision_text(rev: str, down: str | None, upgrade: str, downgrade: str = "pass") -> str:
    """A revision file as ``alembic revision`` writes it."""
    return textwrap.dedent(f'''\
        """{rev}

        Revision ID: {rev}
        Revises: {down}
        """
        from alembic import op
        import sqlalchemy as sa

        revision = {rev!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
        ''') + textwrap.indent(upgrade.strip("\n"), "    ") + textwrap.dedent(f'''


        def downgrade() -> None:
            {downgrade}
        ''')


def make_project(tmp_path: Path, url: sa.URL, upgrade: str, base: str) -> Path:
    ini = copy_example("generate", tmp_path / "proj", url)
    versions = tmp_path / "proj" / "migrations" / "versions"
    # the base has a hand-written downgrade, so generate (by default) only fills 0002's
    base_file = revision_text("0001", None, textwrap.dedent(base), 'op.drop_table("orders")  # hand-written')
    (versions / "0001_base.py").write_text(base_file)
    (versions / "0002_change.py").write_text(revision_text("0002", "0001", upgrade))
    return ini


def state_of(url: sa.URL) -> SchemaState:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return reflect_state(conn)
    finally:
        engine.dispose()


def url_for(dialect: str, request: pytest.FixtureRequest) -> sa.URL:
    name = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mariadb_url"}[dialect]
    url: sa.URL = request.getfixturevalue(name)
    return url


def scratch_args(url: sa.URL) -> list[str]:
    if url.get_backend_name() == "sqlite":
        return []
    return ["--url", url.render_as_string(hide_password=False)]


PARAMS = [pytest.param(case, dialect, body, id=f"{case}-{dialect}",
                       marks=[pytest.mark.postgres] if dialect == "postgresql" else
                       [pytest.mark.mariadb] if dialect == "mariadb" else [])
          for case, dialects, body in CASES for dialect in dialects]  # fmt: skip


@pytest.mark.parametrize(("case", "dialect", "body"), PARAMS)
def test_generated_downgrade_round_trips(case: str, dialect: str, body: str, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:  # fmt: skip
    url = url_for(dialect, request)
    ini = make_project(tmp_path, url, body, PG_BASE if dialect == "postgresql" else BASE)
    alembic(ini, "upgrade", "0001")
    before = state_of(url)
    safety(ini, "generate", *scratch_args(url))
    generated = (tmp_path / "proj" / "migrations" / "versions" / "0002_change.py").read_text()
    assert "alembic-safety: generated downgrade" in generated
    alembic(ini, "upgrade", "head")
    after_up = state_of(url)
    assert diff(before, after_up), f"{case}: the upgrade changed nothing; the case tests nothing"
    alembic(ini, "downgrade", "0001")
    back = state_of(url)
    assert diff(before, back) == (), f"{case}: generated downgrade left differences:\n{generated}"
    alembic(ini, "upgrade", "head")
    assert diff(after_up, state_of(url)) == ()
    # idempotent: a second run changes nothing and --check is content
    safety(ini, "generate", *scratch_args(url))
    assert (tmp_path / "proj" / "migrations" / "versions" / "0002_change.py").read_text() == generated
    safety(ini, "generate", "--check")


@pytest.mark.postgres
def test_naming_convention_of_target_metadata_is_respected(pg_url: sa.URL, tmp_path: Path) -> None:
    """An unnamed constraint gets its name from the project's naming convention: the generated
    downgrade drops it by that name (read from the schema after the upgrade)."""
    upgrade = ('op.create_unique_constraint(None, "orders", ["note"])\n'
               'op.create_check_constraint("total_cap", "orders", "total < 1000000")')
    ini = make_project(tmp_path, pg_url, upgrade, PG_BASE)
    env = tmp_path / "proj" / "migrations" / "env.py"
    env.write_text(env.read_text().replace("target_metadata = None", (
        "import sqlalchemy as sa\ntarget_metadata = sa.MetaData(naming_convention={"
        "'uq': 'uq_%(table_name)s_%(column_0_name)s', 'ck': 'ck_%(table_name)s_%(column_0_name)s'})")))
    alembic(ini, "upgrade", "0001")
    before = state_of(pg_url)
    safety(ini, "generate", *scratch_args(pg_url))
    text = (tmp_path / "proj" / "migrations" / "versions" / "0002_change.py").read_text()
    assert "op.drop_constraint('uq_orders_note', 'orders', type_='unique')" in text
    alembic(ini, "upgrade", "head")
    assert {c["name"] for c in sa.inspect(sa.create_engine(pg_url)).get_unique_constraints("orders")} >= {
        "uq_orders_note"}
    alembic(ini, "downgrade", "0001")
    assert diff(before, state_of(pg_url)) == ()
