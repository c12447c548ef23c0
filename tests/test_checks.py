"""Integrity checks: each fires on a broken database and stays quiet on a sound one (on the
databases where it applies), policies, and the step refusal end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op

from alembic_safety.checks import StepFacts, all_checks, policies, run_checks
from alembic_safety.checks.base import CheckRun
from alembic_safety.checks.step import full_context, step_context
from alembic_safety.config import SafetyConfig, load_config
from alembic_safety.errors import ConfigError
from alembic_safety.record import record

from .conftest import copy_example
from .helpers import alembic, backups_json, revision_file

VERSIONS = Path("migrations") / "versions"


def _config(tmp_path: Path, **kw: Any) -> SafetyConfig:
    return SafetyConfig(backup_dir=tmp_path / "backups", **kw)


def _full(engine: sa.Engine, tmp_path: Path, **kw: Any) -> CheckRun:
    with engine.begin() as conn:
        return run_checks(full_context(conn, None, _config(tmp_path, **kw), None))


def _codes(run: CheckRun) -> list[str]:
    return [f.code for f in run.findings]


def _parent_child(engine: sa.Engine) -> None:
    md = sa.MetaData()
    sa.Table("parent", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    sa.Table("child", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id", name="fk_child_parent")),
             sa.Column("qty", sa.Integer))  # fmt: skip
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO parent (id) VALUES (1), (2)"))
        conn.execute(sa.text("INSERT INTO child (id, parent_id, qty) VALUES (1, 1, 1), (2, 2, 2), (3, NULL, 3)"))


# -- registry and policies ----------------------------------------------------------------------
def test_registry_codes_names_docs() -> None:
    checks = all_checks()
    assert len({c.code for c in checks}) == len(checks) >= 12
    assert len({c.name for c in checks}) == len(checks)
    for c in checks:
        assert re.fullmatch(r"CHK[1-5]\d\d", c.code), c.code
        assert c.scope in ("step", "full")
        assert "Bad" in c.doc() and "Good" in c.doc(), c.code


def test_policies_from_settings(tmp_path: Path) -> None:
    cfg = load_config({"check_policies": "CHK201=warn, objects.sequence-behind=error, CHK403=off"},
                      here=tmp_path, environ={})  # fmt: skip
    p = policies(cfg)
    assert p["CHK201"] == "warn" and p["CHK302"] == "error" and p["CHK403"] == "off" and p["CHK202"] == "error"
    assert set(policies(load_config({"checks": "warn"}, here=tmp_path, environ={})).values()) == {"warn"}
    assert set(policies(load_config({"checks": "off"}, here=tmp_path, environ={})).values()) == {"off"}
    with pytest.raises(ConfigError, match="no check 'CHK999'"):
        policies(load_config({"check_policies": "CHK999=warn"}, here=tmp_path, environ={}))
    with pytest.raises(ConfigError, match="must be one of"):
        load_config({"check_policies": "CHK201=maybe"}, here=tmp_path, environ={})


# -- data checks on each database -----------------------------------------------------------------
def test_fk_orphans(any_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(any_url)
    dialect = engine.dialect.name
    md = sa.MetaData()
    sa.Table("parent", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    sa.Table("child", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("parent_id", sa.Integer))  # fmt: skip
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO parent (id) VALUES (1), (2)"))
        conn.execute(sa.text("INSERT INTO child (id, parent_id) VALUES (1, 1), (2, NULL), (3, 7), (4, 8)"))
        if dialect == "postgresql":
            conn.execute(sa.text("ALTER TABLE child ADD CONSTRAINT fk_child FOREIGN KEY (parent_id) "
                                 "REFERENCES parent (id) NOT VALID"))  # fmt: skip
        elif dialect == "sqlite":  # recreate with the FK: SQLite does not check the copied rows
            conn.execute(sa.text("ALTER TABLE child RENAME TO old_child"))
            conn.execute(sa.text("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                                 "CONSTRAINT fk_child REFERENCES parent (id))"))  # fmt: skip
            conn.execute(sa.text("INSERT INTO child SELECT * FROM old_child"))
            conn.execute(sa.text("DROP TABLE old_child"))
        else:
            conn.execute(sa.text("SET foreign_key_checks = 0"))
            conn.execute(sa.text("ALTER TABLE child ADD CONSTRAINT fk_child FOREIGN KEY (parent_id) "
                                 "REFERENCES parent (id)"))  # fmt: skip
            conn.execute(sa.text("SET foreign_key_checks = 1"))
    run = _full(engine, tmp_path)
    [f] = [f for f in run.findings if f.code == "CHK201"]
    assert f.severity == "error" and f.table == "child" and "2 row(s) of child(parent_id)" in f.detail
    assert [dict(r) for r in f.sample] == [{"id": 3, "parent_id": 7}, {"id": 4, "parent_id": 8}]
    # counted exactly below check_exact_rows; the sample is capped by check_sample_rows
    one = _full(engine, tmp_path, check_sample_rows=1)
    assert [len(f.sample) for f in one.findings if f.code == "CHK201"] == [1]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM child WHERE parent_id > 2"))
    assert "CHK201" not in _codes(_full(engine, tmp_path))


def test_fk_orphans_behind_disabled_triggers_on_postgresql(pg_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(pg_url)
    _parent_child(engine)
    assert _full(engine, tmp_path).findings == ()  # a validated, enforced key is not scanned
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE child DISABLE TRIGGER ALL"))
        conn.execute(sa.text("INSERT INTO child (id, parent_id) VALUES (9, 99)"))
    [f] = _full(engine, tmp_path).findings
    assert f.code == "CHK201" and "triggers are disabled" in f.detail and f.sample[0]["parent_id"] == 99


def test_check_violations(any_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(any_url)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(sa.text("CREATE TABLE items (id integer PRIMARY KEY, price integer)"))
            conn.execute(sa.text("INSERT INTO items VALUES (1, 5), (2, -1), (3, NULL)"))
            conn.execute(sa.text("ALTER TABLE items ADD CONSTRAINT ck_price CHECK (price > 0) NOT VALID"))
        elif dialect == "sqlite":
            conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, price INTEGER, "
                                 "CONSTRAINT ck_price CHECK (price > 0))"))  # fmt: skip
            conn.execute(sa.text("PRAGMA ignore_check_constraints = ON"))
            conn.execute(sa.text("INSERT INTO items VALUES (1, 5), (2, -1), (3, NULL)"))
        else:
            conn.execute(sa.text("CREATE TABLE items (id int PRIMARY KEY, price int, "
                                 "CONSTRAINT ck_price CHECK (price > 0))"))  # fmt: skip
            conn.execute(sa.text("SET check_constraint_checks = 0"))
            conn.execute(sa.text("INSERT INTO items VALUES (1, 5), (2, -1), (3, NULL)"))
    [f] = [f for f in _full(engine, tmp_path).findings if f.code == "CHK203"]
    assert f.table == "items" and "1 row(s)" in f.detail and [dict(r) for r in f.sample] == [{"id": 2}]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE items SET price = 1 WHERE price < 0"))
    assert "CHK203" not in _codes(_full(engine, tmp_path))


def test_null_in_not_null_on_sqlite(sqlite_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)"))
        conn.execute(sa.text("INSERT INTO users VALUES (1, 'a@x'), (2, NULL)"))
    assert "CHK202" not in _codes(_full(engine, tmp_path))
    with engine.begin() as conn:  # the writable_schema shortcut: NOT NULL without checking old rows
        conn.execute(sa.text("PRAGMA writable_schema = ON"))
        conn.execute(sa.text("UPDATE sqlite_master SET sql = replace(sql, 'email TEXT', 'email TEXT NOT NULL') "
                             "WHERE name = 'users'"))  # fmt: skip
    engine.dispose()
    [f] = [f for f in _full(engine, tmp_path).findings if f.code == "CHK202"]
    assert f.table == "users" and "email" in f.detail and [dict(r) for r in f.sample] == [{"id": 2, "email": None}]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET email = '' WHERE typeof(email) = 'null'"))  # IS NULL is folded away
    assert "CHK202" not in _codes(_full(engine, tmp_path))


def test_null_in_not_null_on_postgresql(pg_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL)"))
        conn.execute(sa.text("INSERT INTO users VALUES (1, 'a@x')"))
        version = conn.dialect.server_version_info or (0,)
    assert "CHK202" not in _codes(_full(engine, tmp_path))  # enforced: no scan, no finding
    if version < (18,):
        return  # SET NOT NULL ... NOT VALID (the only way to get NULLs there) arrived in PostgreSQL 18
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE users ADD COLUMN nick text"))
        conn.execute(sa.text("ALTER TABLE users ADD CONSTRAINT nick_nn NOT NULL nick NOT VALID"))
    assert "CHK202" in _codes(_full(engine, tmp_path))


def test_invalid_unique_index_and_duplicates_on_postgresql(pg_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id integer PRIMARY KEY, email text)"))
        conn.execute(sa.text("INSERT INTO users VALUES (1, 'a'), (2, 'b'), (3, 'a'), (4, NULL), (5, NULL)"))
    assert _full(engine, tmp_path).findings == ()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, \
            pytest.raises(sa.exc.IntegrityError):  # fmt: skip
        conn.execute(sa.text("CREATE UNIQUE INDEX CONCURRENTLY uq_users_email ON users (email)"))
    run = _full(engine, tmp_path)
    assert sorted(_codes(run)) == ["CHK204", "CHK301"]
    dup = next(f for f in run.findings if f.code == "CHK204")
    assert [dict(r) for r in dup.sample] == [{"email": "a", "rows": 2}] and "uq_users_email" in dup.detail
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX uq_users_email"))
    assert _full(engine, tmp_path).findings == ()


def test_sequence_behind_on_postgresql(pg_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE countries (id serial PRIMARY KEY, code text)"))
        conn.execute(sa.text("CREATE TABLE tags (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO countries (code) VALUES ('FR'), ('DE')"))  # the sequence moves on
    assert _full(engine, tmp_path).findings == ()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO countries (id, code) VALUES (10, 'IT')"))
        conn.execute(sa.text("INSERT INTO tags (id) VALUES (1)"))
    run = _full(engine, tmp_path)
    assert sorted((f.code, f.severity, f.table) for f in run.findings) == [
        ("CHK302", "warn", "countries"), ("CHK302", "warn", "tags")]
    assert run.status == "degraded"
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('countries', 'id'), 10)"))
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('tags', 'id'), 1)"))
    assert _full(engine, tmp_path).findings == ()


# -- step scope -----------------------------------------------------------------------------------
def _promises() -> None:
    op.create_table("ghost", sa.Column("id", sa.Integer, primary_key=True))
    op.drop_table("parent_old")
    op.add_column("child", sa.Column("note", sa.Text()))
    op.drop_column("child", "qty")


def test_step_schema_matches_the_recorded_operations(any_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(any_url)
    _parent_child(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent_old (id integer PRIMARY KEY)"))
    recorded = record(_promises, engine.dialect)

    def step_run() -> CheckRun:
        with engine.begin() as conn:
            facts = StepFacts("0002", "upgrade", recorded)
            return run_checks(step_context(conn, None, _config(tmp_path), facts))

    run = step_run()
    found = sorted((f.code, f.table, f.detail) for f in run.findings)
    assert [(c, t) for c, t, _ in found] == [("CHK101", "ghost"), ("CHK101", "parent_old"), ("CHK102", "child"),
                                             ("CHK102", "child")]
    assert "create ghost" in found[0][2] and "drop parent_old" in found[1][2]
    with engine.begin() as conn:  # do what the operations said
        conn.execute(sa.text("CREATE TABLE ghost (id integer PRIMARY KEY)"))
        conn.execute(sa.text("DROP TABLE parent_old"))
        conn.execute(sa.text("ALTER TABLE child ADD COLUMN note text"))
        conn.execute(sa.text("ALTER TABLE child DROP COLUMN qty"))
    assert step_run().findings == ()


def test_step_scope_is_the_touched_tables_and_their_fk_neighbours(pg_url: sa.URL, engine_for: Any,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    _parent_child(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE unrelated (id integer PRIMARY KEY, n integer)"))
        conn.execute(sa.text("INSERT INTO unrelated VALUES (1, -1)"))
        conn.execute(sa.text("ALTER TABLE unrelated ADD CONSTRAINT ck_n CHECK (n > 0) NOT VALID"))

    def touch_parent() -> None:
        op.add_column("parent", sa.Column("label", sa.Text()))

    with engine.begin() as conn:
        facts = StepFacts("1", "upgrade", record(touch_parent, engine.dialect))
        ctx = step_context(conn, None, _config(tmp_path), facts)
        assert ctx.touched == (ctx.tables[0],) and {t.name for t in ctx.tables} == {"parent", "child"}
        assert [f.code for f in run_checks(ctx).findings] == ["CHK102"]  # the column is not there; unrelated unseen


# -- end to end: the step is refused inside its transaction ------------------------------------------------
def _version(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _columns(engine: sa.Engine, table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(engine).get_columns(table)]


@pytest.mark.parametrize("db", ["postgresql", "sqlite"])
def test_not_valid_fk_over_orphans_refuses_the_step(db: str, request: pytest.FixtureRequest, engine_for: Any,
                                                     tmp_path: Path) -> None:  # fmt: skip
    url = request.getfixturevalue("pg_url" if db == "postgresql" else "sqlite_url")
    ini = copy_example("checks", tmp_path / "p", url)
    alembic(ini, "upgrade", "0001")
    proc = alembic(ini, "upgrade", "head", check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert "alembic-safety refused upgrade 0001 -> 0002" in err and "CHK201 data.fk-orphans on orders" in err
    assert "(id=21, customer_id=99), (id=22, customer_id=98)" in err and "rolls back" in err
    engine = engine_for(url)
    assert _version(engine) == "0001"
    assert "note" not in _columns(engine, "orders")  # the column the step added is gone
    events = [json.loads(line) for line in (tmp_path / "p" / "backups" / "audit.jsonl").read_text().splitlines()]
    refused = [e for e in events if e["event"] == "step_refused"]
    assert len(refused) == 1 and refused[0]["findings"][0]["code"] == "CHK201"
    assert not [e for e in events if e["event"] == "revision_applied" and e["revision"] == "0002"]
    with engine.begin() as conn:  # repair the data: the same revision now goes through
        conn.execute(sa.text("DELETE FROM orders WHERE customer_id > 5"))
    alembic(ini, "upgrade", "head")
    assert _version(engine) == "0002" and "note" in _columns(engine, "orders")


def test_pysqlite_default_transactions_leave_the_schema_changed(sqlite_url: sa.URL, engine_for: Any,
                                                                tmp_path: Path) -> None:  # fmt: skip
    ini = copy_example("checks", tmp_path / "p", sqlite_url)
    alembic(ini, "upgrade", "0001")
    proc = alembic(ini, "-x", "pysqlite_default=true", "upgrade", "head", check=False)
    assert proc.returncode != 0 and "pysqlite ran the step's DDL outside a transaction" in proc.stderr
    assert "may be partially changed" in proc.stderr
    assert _version(engine_for(sqlite_url)) == "0001"


def test_mariadb_refusal_points_to_rollback(mariadb_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = copy_example("checks", tmp_path / "p", mariadb_url, snapshot="touched")
    alembic(ini, "upgrade", "0001")
    proc = alembic(ini, "upgrade", "head", check=False)
    assert proc.returncode != 0
    backup_id = backups_json(ini)[0]["id"]
    assert "CHK201 data.fk-orphans on orders" in proc.stderr
    assert "this database commits DDL implicitly: the schema may be partially changed" in proc.stderr
    assert f"alembic-safety rollback {backup_id}" in proc.stderr and f"alembic-safety show {backup_id}" in proc.stderr
    assert _version(engine_for(mariadb_url)) == "0001"


def test_warn_policy_lets_the_step_through_and_logs(sqlite_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = copy_example("checks", tmp_path / "p", sqlite_url)
    proc = alembic(ini, "-x", "check_policies=data.fk-orphans=warn", "upgrade", "head")
    assert "WARNI [alembic.safety] check CHK201 data.fk-orphans on orders" in proc.stderr
    assert _version(engine_for(sqlite_url)) == "0002"
    events = [json.loads(line) for line in (tmp_path / "p" / "backups" / "audit.jsonl").read_text().splitlines()]
    warned = [e for e in events if e["event"] == "check_warning"]
    assert [(e["code"], e["table"], e["severity"]) for e in warned] == [("CHK201", "orders", "warn")]


TRIGGERS = {
    "sqlite": ["CREATE TRIGGER hidden_purge AFTER UPDATE ON customers "
               "BEGIN DELETE FROM orders WHERE customer_id > 5; END"],
    "postgresql": [
        "CREATE FUNCTION purge() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN DELETE FROM orders WHERE customer_id > 5; RETURN NULL; END $$",
        "CREATE TRIGGER hidden_purge AFTER UPDATE ON customers FOR EACH STATEMENT EXECUTE FUNCTION purge()",
    ],
    "mysql": ["CREATE TRIGGER hidden_purge AFTER UPDATE ON customers FOR EACH ROW "
              "DELETE FROM orders WHERE customer_id > 5"],
}
SILENT_DELETE = revision_file("0002", "0001", "touch two tables, delete nothing (says the code)", """
op.execute("UPDATE customers SET name = name")
op.execute("UPDATE orders SET total = total")
""")


def test_rows_lost_in_a_step_that_deletes_nothing(any_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    _rows_lost(any_url, "100000", engine_for, tmp_path)


@pytest.mark.postgres
def test_rows_lost_by_estimate_on_postgresql(pg_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    """Above check_exact_rows the guard estimates from the transaction's counters (PostgreSQL
    only: elsewhere the statistics are too coarse)."""
    _rows_lost(pg_url, "0", engine_for, tmp_path)


def _rows_lost(any_url: sa.URL, exact_rows: str, engine_for: Any, tmp_path: Path) -> None:
    engine = engine_for(any_url)
    dialect = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    ini = copy_example("checks", tmp_path / "p", any_url, check_exact_rows=exact_rows)
    (tmp_path / "p" / VERSIONS / "0002_fk.py").unlink()
    (tmp_path / "p" / VERSIONS / "0002_silent.py").write_text(SILENT_DELETE)
    alembic(ini, "upgrade", "0001")
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(sa.text("ANALYZE orders"))  # a real estimate (22 rows) instead of none
        for stmt in TRIGGERS[dialect]:
            conn.exec_driver_sql(stmt)
    proc = alembic(ini, "upgrade", "head", check=False)
    assert proc.returncode != 0
    assert "CHK205 data.rows-lost on orders: orders lost 2 row(s) in a step whose operations delete none" in proc.stderr
    assert ("estimate" if exact_rows == "0" else "exact count") in proc.stderr
    assert _version(engine) == "0001"
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER hidden_purge" + (" ON customers" if dialect == "postgresql" else ""))
    alembic(ini, "upgrade", "head")  # the same step without the hidden delete passes
    assert _version(engine) == "0002"
