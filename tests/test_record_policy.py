"""Pure layers: SQL classification, recording a revision offline, the snapshot policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql, sqlite

from alembic_safety.config import SafetyConfig
from alembic_safety.record import record
from alembic_safety.snapshot.policy import plan_snapshot, risks_of
from alembic_safety.sqlinfo import COLUMNS, OPAQUE, ROWS, SCHEMA, WHOLE, TableRef, analyze_sql, where_columns

PG = postgresql.dialect()


@pytest.mark.parametrize(
    ("sql", "kind", "tables", "columns", "where"),
    [
        ("DROP TABLE IF EXISTS s.t, u CASCADE", WHOLE, [TableRef("t", "s"), TableRef("u")], (), None),
        ("TRUNCATE a, b", WHOLE, [TableRef("a"), TableRef("b")], (), None),
        ("DELETE FROM orders", WHOLE, [TableRef("orders")], (), None),
        ("DELETE FROM orders WHERE status = 'x' AND id > 3", ROWS, [TableRef("orders")], (), "status = 'x' AND id > 3"),
        ("DELETE FROM t AS x USING u WHERE x.a = u.b", WHOLE, [TableRef("t")], (), None),
        ('UPDATE "Users" SET a = 1, "B" = 2 WHERE id < 10', COLUMNS, [TableRef("Users")], ("a", "B"), "id < 10"),
        ("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", COLUMNS, [TableRef("t")], ("a",), None),
        ("ALTER TABLE t DROP COLUMN c, ADD COLUMN d int", COLUMNS, [TableRef("t")], ("c",), None),
        ("ALTER TABLE t ALTER COLUMN c TYPE int USING c::int", COLUMNS, [TableRef("t")], ("c",), None),
        ("ALTER TABLE t RENAME COLUMN a TO b", SCHEMA, [TableRef("t")], (), None),
        ("ALTER TABLE t ADD CONSTRAINT ck CHECK (a > 0)", SCHEMA, [TableRef("t")], (), None),
        ("INSERT INTO t (a) VALUES (1)", SCHEMA, [], (), None),
        ("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1", WHOLE, [TableRef("t")], (), None),
        ("CREATE INDEX ix ON t (a)", SCHEMA, [], (), None),
        ("CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql",
         SCHEMA, [], (), None),
        ("COMMENT ON TABLE t IS 'x'", SCHEMA, [], (), None),
        ("ALTER TYPE mood ADD VALUE 'x'", SCHEMA, [], (), None),
        ("DROP INDEX ix", SCHEMA, [], (), None),
        ("DROP TYPE mood CASCADE", OPAQUE, [], (), None),
        ("DROP SCHEMA s CASCADE", OPAQUE, [], (), None),
        ("DO $$ BEGIN DELETE FROM t; END $$", OPAQUE, [], (), None),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", WHOLE, [TableRef("t")], (), None),
        ("this is not sql at all ((", OPAQUE, [], (), None),
    ],
)
def test_sql_classification(
    sql: str, kind: str, tables: list[TableRef], columns: tuple[str, ...], where: str | None
) -> None:
    [effect] = analyze_sql(sql, "postgresql")
    assert effect.kind == kind, effect
    assert list(effect.tables) == tables
    assert effect.columns == columns
    assert effect.where == where


def test_several_statements_and_dialects() -> None:
    effects = analyze_sql("DELETE FROM a WHERE x = 1; DROP TABLE b;", "postgresql")
    assert [e.kind for e in effects] == [ROWS, WHOLE]
    [e] = analyze_sql("ALTER TABLE t MODIFY c INT", "mysql")
    assert e.kind == COLUMNS and e.columns == ("c",)
    [e] = analyze_sql("REPLACE INTO t VALUES (1)", "mysql")
    assert e.kind == OPAQUE
    assert where_columns("status = 'x' AND id IN (SELECT oid FROM other WHERE zzz = 1)", "postgresql") == {
        "status",
        "id",
    }


def _upgrade_mixed() -> None:
    op.drop_table("gone")
    op.add_column("users", sa.Column("new", sa.Integer))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("legacy")
        batch.alter_column("age", type_=sa.SmallInteger, existing_type=sa.Integer)
    op.alter_column("users", "name", new_column_name="full_name")
    op.execute("DELETE FROM events WHERE created < '2020-01-01'")
    op.execute(sa.table("users", sa.column("flag")).update().values(flag=sa.literal(True)))


def test_record_never_touches_a_database_and_captures_ops() -> None:
    step = record(_upgrade_mixed, PG)
    assert not step.opaque
    report = risks_of(step)
    got = {(r.table.key, r.columns, r.where) for r in report.risks}
    assert got == {
        ("gone", None, None),
        ("users", ("legacy",), None),
        ("users", ("age",), None),
        ("events", None, "created < '2020-01-01'"),
        ("users", ("flag",), None),
    }
    assert [t.key for t in report.named] == ["gone", "users", "events"]


def _upgrade_get_bind() -> None:
    op.add_column("a", sa.Column("x", sa.Integer))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # the dialect is readable while recording
        bind.execute(sa.text("UPDATE a SET x = 1"))


def _upgrade_raises() -> None:
    raise RuntimeError("needs the network")


def test_get_bind_and_failures_are_opaque() -> None:
    step = record(_upgrade_get_bind, PG)
    assert any("bind.execute" in o.reason for o in step.opaque) and not step.complete
    report = risks_of(step)
    assert report.opaque and report.incomplete and [t.key for t in report.named] == ["a"]
    # reading only the dialect through the bind is not opaque
    step = record(_upgrade_get_bind, sqlite.dialect())
    assert not step.opaque and step.complete
    step = record(_upgrade_raises, sqlite.dialect())
    assert any("RuntimeError" in o.reason and "needs the network" in o.reason for o in step.opaque)


def test_a_recording_stopped_early_snapshots_every_table() -> None:
    def upgrade() -> None:
        op.create_table("fresh", sa.Column("id", sa.Integer, primary_key=True))
        op.get_bind().execute(sa.text("INSERT INTO fresh SELECT id FROM users"))
        op.drop_column("users", "legacy")  # never seen: recording stopped above

    reqs, notes = plan_snapshot(risks_of(record(upgrade, PG)), _cfg(), CATALOG, dialect_name="postgresql")
    assert {r.table.key for r in reqs} == set(CATALOG.t)
    assert any("stopped early" in n for n in notes)


def test_sql_drop_table_is_moved_only_when_plain() -> None:
    def upgrade() -> None:
        op.execute("DROP TABLE gone")
        op.execute("UPDATE users SET flag = 1; DROP TABLE events")
        op.execute(sa.text("DROP TABLE nopk"))

    reasons = {r.table.key: r.reason for r in risks_of(record(upgrade, PG)).risks}
    assert reasons["gone"] == "DROP TABLE"
    assert "copied, not moved" in reasons["events"] and "copied, not moved" in reasons["nopk"]


def test_deletes_follow_on_delete_cascade() -> None:
    class Cascading(Catalog):
        def referencing(self, parent: TableRef) -> list[tuple[TableRef, str]]:
            return {"users": [(TableRef("events"), "CASCADE")], "events": [(TableRef("big_log"), "SET NULL")]}.get(
                parent.name, [])

    def upgrade() -> None:
        op.execute("DELETE FROM users WHERE id = 1")

    reqs, _ = plan_snapshot(risks_of(record(upgrade, PG)), _cfg(), Cascading(CATALOG.t), dialect_name="postgresql")
    by = {r.table.key: r for r in reqs}
    assert set(by) == {"users", "events", "big_log"}
    assert by["events"].reasons == ("ON DELETE CASCADE from users",) and by["events"].columns is None


class Catalog:
    """A database described by a dict: {table: (columns, primary key)}."""

    def __init__(self, tables: dict[str, tuple[list[str], list[str]]]) -> None:
        self.t = tables

    def resolve(self, ref: TableRef) -> TableRef | None:
        return TableRef(ref.name) if ref.name in self.t else None

    def tables(self, schemas: object) -> list[TableRef]:
        return [TableRef(n) for n in self.t]

    def columns(self, ref: TableRef) -> list[str]:
        return self.t[ref.name][0]

    def primary_key(self, ref: TableRef) -> list[str]:
        return self.t[ref.name][1]


CATALOG = Catalog({
    "users": (["id", "name", "legacy", "age", "flag"], ["id"]),
    "gone": (["id", "x"], ["id"]),
    "events": (["id", "created"], ["id"]),
    "nopk": (["a", "b"], []),
    "big_log": (["id"], ["id"]),
})  # fmt: skip


def _cfg(**kw: object) -> SafetyConfig:
    return SafetyConfig(backup_dir=Path("/nonexistent"), **kw)  # type: ignore[arg-type]


def test_policy_at_risk_merges_and_orders_columns() -> None:
    report = risks_of(record(_upgrade_mixed, PG))
    reqs, notes = plan_snapshot(report, _cfg(), CATALOG, dialect_name="postgresql")
    by = {r.table.key: r for r in reqs}
    assert by["gone"].columns is None and by["gone"].where is None
    assert by["users"].columns == ("id", "legacy", "age", "flag")  # PK first, table order
    assert by["events"].where == "created < '2020-01-01'" and by["events"].columns is None
    assert not notes


def test_policy_touched_all_none_and_exclusions() -> None:
    report = risks_of(record(_upgrade_mixed, PG))
    touched, _ = plan_snapshot(report, _cfg(snapshot="touched"), CATALOG, dialect_name="postgresql")
    assert {r.table.key for r in touched} == {"gone", "users", "events"}
    assert all(r.columns is None for r in touched)
    every, _ = plan_snapshot(report, _cfg(snapshot="all"), CATALOG, dialect_name="postgresql")
    assert {r.table.key for r in every} == set(CATALOG.t)
    none, notes = plan_snapshot(report, _cfg(snapshot="none"), CATALOG, dialect_name="postgresql")
    assert none == [] and notes
    excluded, notes = plan_snapshot(report, _cfg(exclude_tables=("gon*",)), CATALOG, dialect_name="postgresql")
    assert "gone" not in {r.table.key for r in excluded}
    assert any("excluded" in n for n in notes)
    only, _ = plan_snapshot(report, _cfg(include_tables=("events",)), CATALOG, dialect_name="postgresql")
    assert [r.table.key for r in only] == ["events"]


def test_policy_fallbacks() -> None:
    def upgrade() -> None:
        op.drop_column("nopk", "b")  # no primary key: whole table
        op.add_column("events", sa.Column("extra", sa.Integer))
        op.execute("UPDATE events SET extra = 1")  # a column the step adds: nothing to lose
        op.execute("DELETE FROM users WHERE missing_col = 1")  # WHERE not evaluable before the step
        op.create_table("fresh", sa.Column("id", sa.Integer, primary_key=True))
        op.drop_table("fresh")  # created in the same step: nothing existed before

    reqs, notes = plan_snapshot(risks_of(record(upgrade, PG)), _cfg(), CATALOG, dialect_name="postgresql")
    by = {r.table.key: r for r in reqs}
    assert set(by) == {"nopk", "users"}
    assert by["nopk"].columns is None
    assert by["users"].where is None and by["users"].columns is None
    assert any("no primary key" in n for n in notes) and any("WHERE" in n for n in notes)


def test_opaque_without_tables_snapshots_everything() -> None:
    def upgrade() -> None:
        op.execute("DO $$ BEGIN PERFORM 1; END $$")

    reqs, notes = plan_snapshot(risks_of(record(upgrade, PG)), _cfg(), CATALOG, dialect_name="postgresql")
    assert {r.table.key for r in reqs} == set(CATALOG.t)
    assert any("names no table" in n for n in notes)


def test_mysql_dialect_recording() -> None:
    def upgrade() -> None:
        op.execute("ALTER TABLE users MODIFY age SMALLINT")

    reqs, _ = plan_snapshot(risks_of(record(upgrade, mysql.dialect())), _cfg(), CATALOG, dialect_name="mysql")
    assert [(r.table.key, r.columns) for r in reqs] == [("users", ("id", "age"))]
