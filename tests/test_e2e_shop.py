"""End to end on tests/examples/shop: real `alembic` and `alembic-safety` processes against
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.project import load_project
from alembic_safety.snapshot.restore import restore_table
from alembic_safety.sqlinfo import TableRef

from .conftest import copy_example
from .helpers import alembic, backups_json, rows, safety


def _restore_into_copy(engine: sa.Engine, ini: Path, backup_id: str, table: str, copy_ddl: str) -> list[tuple]:
    project = load_project(str(ini))
    manifest = project.store.get(backup_id)
    snap = next(t for t in manifest.tables if t.name == table)
    with engine.begin() as conn:
        conn.exec_driver_sql(copy_ddl)
        restore_table(conn, project.store, manifest, snap, TableRef(f"{table}_copy"))
    return rows(engine, f"{table}_copy", list(snap.stored_columns))


@pytest.mark.parametrize("per_migration", ["false", "true"])
def test_destructive_revision_is_snapshotted_exactly(
    any_url: sa.URL, tmp_path: Path, engine_for, per_migration: str
) -> None:
    ini = copy_example("shop", tmp_path / "shop", any_url, store="files")
    engine = engine_for(any_url)
    alembic(ini, "-x", f"per_migration={per_migration}", "upgrade", "0001")
    assert backups_json(ini) == [], "creating tables puts nothing at risk"
    phones = rows(engine, "customers", ["id", "phone", "score"])
    cancelled = rows(engine, "orders", ["id", "customer_id", "status", "total", "created_at"], "status = 'cancelled'")
    notes = rows(engine, "notes", ["id", "body"])

    proc = alembic(ini, "-x", f"per_migration={per_migration}", "upgrade", "0002")
    assert "alembic.safety" in proc.stderr
    [backup] = backups_json(ini)
    assert backup["kind"] == "pre-revision" and backup["complete"] is True
    assert (backup["revision_from"], backup["revision_to"], backup["direction"]) == ("0001", "0002", "upgrade")
    tables = {t["name"]: t for t in backup["tables"]}
    assert set(tables) == {"customers", "orders", "notes"}
    # drop column + UPDATE ... SET score: primary key and both columns, every row
    assert tables["customers"]["columns"] == ["id", "phone", "score"]
    assert tables["customers"]["where"] is None and tables["customers"]["rows"] == 60
    # DELETE ... WHERE: just those rows, every column
    assert tables["orders"]["columns"] is None
    assert tables["orders"]["where"] == "status = 'cancelled'" and tables["orders"]["rows"] == len(cancelled) == 60
    # drop table: the whole table
    assert tables["notes"]["columns"] is None and tables["notes"]["rows"] == 20
    assert safety(ini, "show", backup["id"], "--verify").returncode == 0

    # the snapshot holds exactly the destroyed values
    got = _restore_into_copy(engine, ini, backup["id"], "customers",
                             "CREATE TABLE customers_copy "
                             "(id INTEGER PRIMARY KEY, phone VARCHAR(40), score NUMERIC(8, 3))")
    assert got == phones
    got = _restore_into_copy(engine, ini, backup["id"], "notes",
                             "CREATE TABLE notes_copy (id INTEGER PRIMARY KEY, body TEXT)")
    assert got == notes
    timestamp = "TIMESTAMP" if any_url.get_backend_name() == "postgresql" else "DATETIME"
    got = _restore_into_copy(engine, ini, backup["id"], "orders",
                             "CREATE TABLE orders_copy (id INTEGER PRIMARY KEY, customer_id INTEGER, "
                             "status VARCHAR(20), total NUMERIC(10, 2), created_at " + timestamp + ")")
    assert got == cancelled

    # the reflected definition of a dropped table is in the manifest
    manifest = load_project(str(ini)).store.get(backup["id"])
    notes_def = next(t for t in manifest.tables if t.name == "notes").definition
    assert [c["name"] for c in notes_def["columns"]] == ["id", "body"]
    assert notes_def["primary_key"]["constrained_columns"] == ["id"]
    assert any("CREATE TABLE" in d for d in notes_def["ddl"])


def test_opaque_step_snapshots_every_table_and_says_why(any_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", any_url, store="files")
    alembic(ini, "upgrade", "0002")
    alembic(ini, "upgrade", "0003")
    newest = backups_json(ini)[0]
    assert newest["revision_to"] == "0003"
    # op.get_bind() names no table: every table (but alembic_version) is copied whole
    assert {t["name"] for t in newest["tables"]} == {"customers", "orders"}
    assert all(t["columns"] is None and t["where"] is None for t in newest["tables"])
    events = [json.loads(line) for line in (tmp_path / "shop" / "backups" / "audit.jsonl").read_text().splitlines()]
    opaque = [e for e in events if e["event"] == "step_opaque"]
    assert opaque and "through the connection (bind.execute)" in opaque[0]["reason"]


def test_downgrade_is_snapshotted_too_and_audited(any_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", any_url, store="files")
    alembic(ini, "upgrade", "head")
    alembic(ini, "downgrade", "0003")
    newest = backups_json(ini)[0]
    assert (newest["revision_from"], newest["revision_to"], newest["direction"]) == ("0004", "0003", "downgrade")
    [customers] = newest["tables"]
    assert customers["name"] == "customers" and customers["columns"] == ["id", "tier"]
    events = [json.loads(line) for line in (tmp_path / "shop" / "backups" / "audit.jsonl").read_text().splitlines()]
    applied = [e for e in events if e["event"] == "revision_applied"]
    assert [(e["revision"], e["direction"]) for e in applied] == [
        ("0001", "upgrade"), ("0002", "upgrade"), ("0003", "upgrade"), ("0004", "upgrade"), ("0004", "downgrade")]
    assert applied[1]["backup_id"] and applied[0]["backup_id"] is None
    assert all("seconds" in e for e in applied)
    assert {"backup_started", "backup_completed"} <= {e["event"] for e in events}


@pytest.mark.parametrize("db", ["postgresql", "mariadb"])
def test_offline_sql_mode_emits_snapshot_statements(db: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    # (SQLite is left out: Alembic itself cannot render batch mode on SQLite in --sql mode)
    url = request.getfixturevalue("pg_url" if db == "postgresql" else "mariadb_url")
    ini = copy_example("shop", tmp_path / "shop", url, store="files")
    proc = alembic(ini, "upgrade", "0001:0002", "--sql")
    out = proc.stdout
    assert "-- alembic-safety: snapshot before upgrade 0001 -> 0002" in out
    assert "CREATE SCHEMA IF NOT EXISTS alembic_safety" in out
    assert "CREATE TABLE alembic_safety." in out and "AS SELECT" in out
    assert "status = 'cancelled'" in out
    # snapshot statements come before the step's own statements
    assert out.index("AS SELECT") < out.index("DROP TABLE notes")
    assert backups_json(ini) == []


def test_nothing_at_risk_makes_no_backup_and_policy_none_disables(any_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", any_url, snapshot="none", store="files")
    alembic(ini, "upgrade", "head")
    assert backups_json(ini) == []


@pytest.mark.parametrize("per_migration", ["false", "true"])
def test_manual_backup_is_kept_whatever_transaction_mode_env_py_uses(any_url: sa.URL, tmp_path: Path,
                                                                     per_migration: str) -> None:  # fmt: skip
    """With transaction_per_migration, env.py's begin_transaction() begins nothing when no step
    runs: a command's own writes (the database store's snapshot and catalogue row) must still be
    committed, not rolled back when env.py closes the connection."""
    ini = copy_example("shop", tmp_path / "shop", any_url)
    alembic(ini, "-x", f"per_migration={per_migration}", "upgrade", "0001")
    made = safety(ini, "-x", f"per_migration={per_migration}", "backup", "by-hand")
    backup_id = made.stdout.split()[1].rstrip(":")
    assert backup_id.endswith("by_hand")
    listed = backups_json(ini)
    assert [b["kind"] for b in listed if b["id"] == backup_id] == ["manual"], listed
    safety(ini, "show", backup_id, "--verify")


@pytest.mark.postgres
def test_a_statement_the_database_refuses_is_not_called_an_outage(pg_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    alembic(ini, "upgrade", "0001")
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:  # a catalogue table that is not ours
            conn.exec_driver_sql("CREATE SCHEMA alembic_safety")
            conn.exec_driver_sql("CREATE TABLE alembic_safety.backups (x int)")
    finally:
        engine.dispose()
    proc = safety(ini, "backups", check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("alembic-safety: error: the database refused a statement"), proc.stderr
    assert "cannot reach" not in proc.stderr and "Traceback" not in proc.stderr
