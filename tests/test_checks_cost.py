"""What the step checks cost, and what they may skip: tables a step creates and leaves empty are
not read (a created table that the step fills is, foreign-key orphans included), a step that
only creates tables counts nothing before it and sends nothing after it, the catalogue is probed
once per step, and one savepoint holds every check (a check that fails still falls back to a savepoint of its own)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from alembic_safety.checks import StepFacts, run_checks
from alembic_safety.checks import step as step_checks
from alembic_safety.checks.data import RowCount
from alembic_safety.config import SafetyConfig
from alembic_safety.errors import CheckFailed
from alembic_safety.hooks import SafetySession, StepInfo, StepStart
from alembic_safety.record import RecordedStep, record
from alembic_safety.snapshot.reflect import LiveCatalog
from alembic_safety.sqlinfo import TableRef

Step = Callable[[], None]


def _config(tmp_path: Path) -> SafetyConfig:
    return SafetyConfig(backup_dir=tmp_path / "backups")


def _apply(conn: sa.Connection, step: Step) -> RecordedStep:
    """Record the step's operations (as the hooks do), then run them for real on ``conn``."""
    recorded = record(step, conn.dialect)
    with Operations.context(MigrationContext.configure(conn)):
        step()
    return recorded


@contextmanager
def _statements(conn: sa.Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(conn, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(conn, "before_cursor_execute", before)


def _reads(statements: list[str], table: str) -> list[str]:
    """The data queries among ``statements`` that read ``table``."""
    pattern = re.compile(rf"\bFROM\s+[`\"]?{table}[`\"]?(\s|$|\))", re.IGNORECASE)
    return [s for s in statements if pattern.search(s)]


# -- a table the step created: empty, or filled by the step ------------------------------------------
def _child_step(dialect: str, fill: str) -> Step:
    def step() -> None:
        fk = [] if dialect == "postgresql" else [sa.ForeignKeyConstraint(["parent_id"], ["parent.id"],
                                                                          name="fk_child_parent")]  # fmt: skip
        child = op.create_table("child", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                                sa.Column("parent_id", sa.Integer), sa.Column("qty", sa.Integer, nullable=False),
                                *fk)  # fmt: skip
        if fill == "bulk_insert":
            op.bulk_insert(child, [{"id": 1, "parent_id": 1, "qty": 1}, {"id": 2, "parent_id": 7, "qty": 1}])
        elif fill == "insert_select":
            op.execute("INSERT INTO child (id, parent_id, qty) SELECT id, parent_id, qty FROM staging")
        if dialect == "postgresql":  # NOT VALID: PostgreSQL does not vouch for the rows already there
            op.create_foreign_key("fk_child_parent", "child", "parent", ["parent_id"], ["id"],
                                  postgresql_not_valid=True)  # fmt: skip

    return step


@pytest.mark.parametrize("fill", ["none", "bulk_insert", "insert_select"])
def test_a_created_table_is_read_only_when_the_step_filled_it(any_url: sa.URL, engine_for: Any, tmp_path: Path,
                                                              fill: str) -> None:  # fmt: skip
    engine = engine_for(any_url)
    dialect = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id integer PRIMARY KEY)"))
        conn.execute(sa.text("CREATE TABLE staging (id integer PRIMARY KEY, parent_id integer, qty integer)"))
        conn.execute(sa.text("INSERT INTO parent (id) VALUES (1), (2)"))
        conn.execute(sa.text("INSERT INTO staging VALUES (1, 1, 1), (2, 7, 1)"))
    with engine.begin() as conn:
        if dialect == "mysql":  # the orphan gets in as with foreign_key_checks = 0
            conn.execute(sa.text("SET foreign_key_checks = 0"))
        recorded = _apply(conn, _child_step(dialect, fill))
        ctx = step_checks.step_context(conn, None, _config(tmp_path), StepFacts("0002", "upgrade", recorded))
        with _statements(conn) as statements:
            run = run_checks(ctx)
    assert {t.name for t in ctx.tables} >= {"child", "parent"}
    orphans = [f for f in run.findings if f.code == "CHK201"]
    if fill == "none":
        assert ctx.empty == frozenset({TableRef("child")})
        assert orphans == [] and _reads(statements, "child") == []  # nothing to read in an empty table
    else:
        assert ctx.empty == frozenset()
        [f] = orphans
        assert f.table == "child" and [dict(r) for r in f.sample] == [{"id": 2, "parent_id": 7}]
        assert _reads(statements, "child")


@pytest.mark.postgres
@pytest.mark.parametrize("rows", [0, 2])
def test_a_created_table_filled_with_ids_still_gets_its_sequence_check(pg_url: sa.URL, engine_for: Any, tmp_path: Path,
                                                                       rows: int) -> None:  # fmt: skip
    engine = engine_for(pg_url)

    def step() -> None:  # CHK302's own example: the sequence stays at 1 while the ids reach 2
        countries = op.create_table("countries", sa.Column("id", sa.Integer, primary_key=True),
                                    sa.Column("code", sa.Text))  # fmt: skip
        op.bulk_insert(countries, [{"id": 1, "code": "FR"}, {"id": 2, "code": "DE"}][:rows])

    with engine.begin() as conn:
        recorded = _apply(conn, step)
        ctx = step_checks.step_context(conn, None, _config(tmp_path), StepFacts("0002", "upgrade", recorded))
        with _statements(conn) as statements:
            run = run_checks(ctx)
    found = [(f.code, f.table) for f in run.findings]
    if rows:
        assert ctx.empty == frozenset() and found == [("CHK302", "countries")]
    else:
        assert ctx.empty == frozenset({TableRef("countries")}) and found == []
        assert _reads(statements, "countries") == []  # no max(id) of an empty table


@pytest.mark.parametrize(("name", "expected"), [
    ("create", {"fresh"}),
    ("create_two_with_fk", {"fresh", "fresh_child"}),
    ("rename_then_create", set()),
    ("sql_drop_then_create", set()),
    ("if_not_exists", set()),
])  # fmt: skip
def test_created_tables_are_the_ones_first_named_by_create_table(name: str, expected: set[str]) -> None:
    def col() -> sa.Column[int]:
        return sa.Column("id", sa.Integer, primary_key=True)

    def create() -> None:
        op.create_table("fresh", col())
        op.add_column("fresh", sa.Column("note", sa.Text()))

    def create_two_with_fk() -> None:
        op.create_table("fresh", col())
        op.create_table("fresh_child", col(), sa.Column("fresh_id", sa.Integer, sa.ForeignKey("fresh.id")))

    def rename_then_create() -> None:  # "fresh" existed before the step, with its rows
        op.rename_table("fresh", "fresh_old")
        op.create_table("fresh", col())

    def sql_drop_then_create() -> None:
        op.execute("DROP TABLE fresh")
        op.create_table("fresh", col())

    def if_not_exists() -> None:  # may be the table that was there
        op.create_table("fresh", col(), if_not_exists=True)

    steps = {f.__name__: f for f in (create, create_two_with_fk, rename_then_create, sql_drop_then_create,
                                     if_not_exists)}  # fmt: skip
    recorded = record(steps[name], sa.create_engine("sqlite://").dialect)
    assert {t.name for t in step_checks.created_tables(recorded)} == expected


@pytest.mark.parametrize(("name", "alone"), [
    ("create_and_shape", True),
    ("widen_existing", True),
    ("concurrent_index", False),
    ("unrecorded_bind", False),
    ("drop_column", False),
    ("fk_on_existing", False),
])  # fmt: skip
def test_which_steps_leave_every_row_alone(name: str, alone: bool) -> None:
    def create_and_shape() -> None:
        op.create_table("fresh", sa.Column("id", sa.Integer, primary_key=True))
        op.create_index("ix_fresh", "fresh", ["id"], unique=True)
        op.alter_column("fresh", "id", comment="key")

    def widen_existing() -> None:
        op.add_column("old", sa.Column("note", sa.Text()))
        op.create_index("ix_old_note", "old", ["note"])
        op.create_table_comment("old", "kept as it was")

    def concurrent_index() -> None:  # may leave an INVALID index behind (CHK301)
        op.create_index("ix_old", "old", ["id"], postgresql_concurrently=True)

    def unrecorded_bind() -> None:
        op.add_column("old", sa.Column("note", sa.Text()))
        op.get_bind().execute(sa.text("UPDATE old SET note = 'x'"))

    def drop_column() -> None:
        op.drop_column("old", "note")

    def fk_on_existing() -> None:
        op.create_table("fresh", sa.Column("id", sa.Integer, primary_key=True))
        op.create_foreign_key("fk_old_fresh", "old", "fresh", ["fresh_id"], ["id"])

    steps = {f.__name__: f for f in (create_and_shape, widen_existing, concurrent_index, unrecorded_bind, drop_column,
                                     fk_on_existing)}  # fmt: skip
    recorded = record(steps[name], sa.create_engine("postgresql://").dialect)
    assert step_checks.leaves_rows_alone(recorded) is alone


# -- before the step --------------------------------------------------------------------------------
@pytest.mark.postgres
def test_before_a_step_that_only_creates_tables_nothing_is_read(pg_url: sa.URL, engine_for: Any,
                                                                tmp_path: Path) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id serial PRIMARY KEY, name text)"))
        conn.execute(sa.text("INSERT INTO parent (name) VALUES ('a'), ('b')"))
    session = SafetySession(config=_config(tmp_path), environment=None)

    def only_create() -> None:
        op.create_table("fresh", sa.Column("id", sa.Integer, primary_key=True))
        op.create_index("ix_fresh_id", "fresh", ["id"])

    def create_and_widen() -> None:  # a nullable column and an index on a table with rows: no row changes
        only_create()
        op.add_column("parent", sa.Column("note", sa.Text()))
        op.create_index("ix_parent_name", "parent", ["name"])

    def create_and_alter() -> None:
        only_create()
        op.alter_column("parent", "name", type_=sa.String(20), existing_type=sa.Text())

    with engine.begin() as conn:
        mctx = MigrationContext.configure(conn)
        for step in (only_create, create_and_widen):
            start = StepStart("0002", "upgrade", record(step, conn.dialect), None, {})
            with _statements(conn) as statements:
                step_checks.checks_before_step(session, mctx, start)
            assert statements == [] and step_checks.BEFORE_KEY not in start.state

        live = LiveCatalog(conn)  # what the snapshot hook read just before: its table names are reused
        assert live.resolve(TableRef("parent")) == TableRef("parent")
        recorded = record(create_and_alter, conn.dialect)
        start = StepStart("0002", "upgrade", recorded, None, {step_checks.LIVE_BEFORE_KEY: live})
        with _statements(conn) as statements:
            step_checks.checks_before_step(session, mctx, start)
        assert start.state[step_checks.BEFORE_KEY] == {TableRef("parent"): RowCount("exact", 2)}
        assert not [s for s in statements if "relkind" in s]  # the table names were not read again


# -- after the step: what it costs ----------------------------------------------------------------------
def _session_step(conn: sa.Connection, tmp_path: Path, step: Step) -> tuple[SafetySession, MigrationContext,
                                                                             StepInfo]:  # fmt: skip
    recorded = _apply(conn, step)
    session = SafetySession(config=_config(tmp_path), environment=None)
    info = StepInfo("0002", "upgrade", "0001", "0002", recorded, None, 0.0, {})
    return session, MigrationContext.configure(conn), info


@pytest.mark.postgres
@pytest.mark.parametrize("with_fk", [False, True])
def test_checks_after_a_step_that_only_creates_or_widens_tables_send_nothing(
        pg_url: sa.URL, engine_for: Any, tmp_path: Path, with_fk: bool) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id integer PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO parent VALUES (1)"))

    def step() -> None:  # a serial key (an owned sequence), a CHECK, an index, maybe a NOT VALID foreign key
        op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("parent_id", sa.Integer), sa.Column("n", sa.Integer),
                        sa.CheckConstraint("n > 0", name="ck_invoices_n"))  # fmt: skip
        op.create_index("ix_invoices_n", "invoices", ["n"])
        op.add_column("invoices", sa.Column("note", sa.Text(), nullable=False))
        op.add_column("parent", sa.Column("note", sa.Text()))  # a table with a row: widened, no row changed
        op.add_column("parent", sa.Column("kind", sa.Text(), nullable=False, server_default="a"))
        op.create_index("ix_parent_note", "parent", ["note"])
        if with_fk:
            op.create_foreign_key("fk_invoices_parent", "invoices", "parent", ["parent_id"], ["id"],
                                  postgresql_not_valid=True)  # fmt: skip

    with engine.begin() as conn:
        session, mctx, info = _session_step(conn, tmp_path, step)
        assert step_checks.leaves_rows_alone(info.recorded)
        with _statements(conn) as statements:
            step_checks.checks_after_step(session, mctx, info)
    assert statements == []  # a new empty table, an old one with new columns: nothing to read, not even the catalogue


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["bulk_insert", "sql", "other table", "identity start", "foreign key column",
                                 "not null column"])
def test_checks_after_a_create_step_that_does_more_still_run(pg_url: sa.URL, engine_for: Any, tmp_path: Path,
                                                             how: str) -> None:  # fmt: skip
    """Rows put into the new table, SQL, another table touched, or a sequence started by hand: the
    checks run (and find the orphan the step put in under a NOT VALID foreign key)."""
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id integer PRIMARY KEY)"))

    def step() -> None:
        key = sa.Identity(start=2_147_483_000) if how == "identity start" else None
        invoices = op.create_table("invoices", sa.Column("id", sa.Integer, *([key] if key else []), primary_key=True),
                                   sa.Column("parent_id", sa.Integer))  # fmt: skip
        if how == "bulk_insert":
            op.bulk_insert(invoices, [{"id": 1, "parent_id": 9}])
        elif how == "sql":
            op.execute("INSERT INTO invoices (id, parent_id) VALUES (1, 9)")
        elif how == "other table":
            op.alter_column("parent", "id", type_=sa.BigInteger(), existing_type=sa.Integer())
        elif how == "foreign key column":
            op.add_column("parent", sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoices.id")))
        elif how == "not null column":  # fails on a table with rows; parent has none here
            op.add_column("parent", sa.Column("code", sa.Text(), nullable=False))
        op.create_foreign_key("fk_invoices_parent", "invoices", "parent", ["parent_id"], ["id"],
                              postgresql_not_valid=True)  # fmt: skip

    with engine.begin() as conn:
        session, mctx, info = _session_step(conn, tmp_path, step)
        assert not step_checks.leaves_rows_alone(info.recorded)
        with _statements(conn) as statements:
            if how in ("bulk_insert", "sql"):
                with pytest.raises(CheckFailed) as refused:
                    step_checks.checks_after_step(session, mctx, info)
                assert [f.code for f in refused.value.findings] == ["CHK201"]
            else:
                step_checks.checks_after_step(session, mctx, info)
    # one savepoint around all of it, the table names and a catalogue probe at least; nothing per check
    assert [s.split()[0].upper() for s in statements].count("SAVEPOINT") == 1
    assert len(statements) >= 3


@pytest.mark.postgres
def test_a_check_that_cannot_run_falls_back_to_its_own_savepoint(pg_url: sa.URL, engine_for: Any,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id integer PRIMARY KEY)"))
        conn.execute(sa.text("CREATE TABLE child (id integer PRIMARY KEY, parent_id integer)"))
        conn.execute(sa.text("CREATE TABLE items (id integer PRIMARY KEY, n integer)"))
        conn.execute(sa.text("INSERT INTO parent VALUES (1)"))
        conn.execute(sa.text("INSERT INTO child VALUES (1, 1), (2, 99)"))
        conn.execute(sa.text("INSERT INTO items VALUES (1, 0)"))
        conn.execute(sa.text("ALTER TABLE child ADD CONSTRAINT fk_child FOREIGN KEY (parent_id) "
                             "REFERENCES parent (id) NOT VALID"))  # fmt: skip
        # scanning for rows that break it divides by zero: CHK203 cannot run
        conn.execute(sa.text("ALTER TABLE items ADD CONSTRAINT ck_items CHECK (10 / n > 0) NOT VALID"))

    def check_codes(findings: Any) -> list[tuple[str, str]]:
        return sorted((f.code, f.severity) for f in findings)

    with engine.begin() as conn:  # health: every table
        run = run_checks(step_checks.full_context(conn, None, _config(tmp_path), None))
        assert check_codes(run.findings) == [("CHK201", "error"), ("CHK203", "warn")]
        assert "could not run" in next(f.detail for f in run.findings if f.code == "CHK203")
        assert conn.execute(sa.text("SELECT count(*) FROM child")).scalar() == 2  # the transaction is usable

    def step() -> None:  # alter_column: the checks look at the tables (adding a nullable column would not)
        op.alter_column("items", "n", comment="quantity", existing_type=sa.Integer())
        op.alter_column("child", "parent_id", comment="the parent", existing_type=sa.Integer())

    with engine.begin() as conn:  # after a step: one savepoint for all, then one per check
        session, mctx, info = _session_step(conn, tmp_path, step)
        with pytest.raises(CheckFailed) as refused:
            step_checks.checks_after_step(session, mctx, info)
        assert check_codes(refused.value.findings) == [("CHK201", "error")]
        assert conn.execute(sa.text("SELECT count(*) FROM items")).scalar() == 1
    events = [json.loads(line) for line in session.config.audit_path.read_text().splitlines()]
    warned = [e for e in events if e["event"] == "check_warning"]
    assert [(e["code"], "could not run" in e["detail"]) for e in warned] == [("CHK203", True)]
