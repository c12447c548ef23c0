"""A revision that drops a table and then the user-defined type its columns used (PostgreSQL,
database store): the snapshot stores such columns as text, so it never holds the type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.snapshot.dbstore import DatabaseStore

from .conftest import copy_example
from .helpers import alembic, backups_json, safety

CREATE = '''"""moods, with an enum, an enum array and a domain

Revision ID: 0001
Revises:
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TYPE swing AS ENUM ('happy', 'sad', 'so-so')")
    op.execute("CREATE DOMAIN points AS integer CHECK (VALUE >= 0)")
    op.execute("CREATE TABLE moods (id integer PRIMARY KEY, kind swing NOT NULL, score points, history swing[])")
    op.execute("INSERT INTO moods SELECT g, (ARRAY['happy', 'sad', 'so-so'])[1 + g % 3]::swing, "
               "CASE WHEN g % 4 = 0 THEN NULL ELSE g END, ARRAY['sad', 'happy']::swing[] "
               "FROM generate_series(1, 30) g")
    op.execute("CREATE TABLE plain (id integer PRIMARY KEY, body text)")
    op.execute("INSERT INTO plain SELECT g, 'row ' || g FROM generate_series(1, 5) g")


def downgrade():
    op.execute("DROP TABLE plain")
    op.execute("DROP TABLE moods")
    op.execute("DROP DOMAIN points")
    op.execute("DROP TYPE swing")
'''


def _revision(revision: str, down: str, message: str, upgrade: str, downgrade: str = "    pass") -> str:
    return (f'"""{message}\n\nRevision ID: {revision}\nRevises: {down}\n"""\nfrom alembic import op\n\n'
            f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n{upgrade}\n\n\ndef downgrade():\n{downgrade}\n")


RECREATE = """\
    op.execute("CREATE TYPE swing AS ENUM ('happy', 'sad', 'so-so')")
    op.execute("CREATE DOMAIN points AS integer CHECK (VALUE >= 0)")
    op.execute("CREATE TABLE moods (id integer PRIMARY KEY, kind swing NOT NULL, score points, history swing[])")"""
DROP_TYPES = """\
    op.execute("DROP TYPE swing")
    op.execute("DROP DOMAIN points")"""
MOODS = "SELECT id, kind::text, score::text, history::text FROM {} ORDER BY id"


def _project(tmp_path: Path, url: sa.URL, *revisions: str) -> Path:
    ini = copy_example("generate", tmp_path / "proj", url)
    versions = tmp_path / "proj" / "migrations" / "versions"
    (versions / "0001_moods.py").write_text(CREATE)
    for n, text in enumerate(revisions, start=2):
        (versions / f"{n:04d}_step.py").write_text(text)
    return ini


def _manifest(ini: Path, backup_id: str) -> dict:
    return json.loads(safety(ini, "show", backup_id, "--format", "json").stdout)


def _rows(engine: sa.Engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(MOODS.format(table))]


def _snapshot(t: dict) -> str:
    return str(sa.table(t["file"], schema="alembic_safety").fullname)


def test_a_revision_drops_a_table_then_its_type(pg_url: sa.URL, tmp_path: Path, engine_for) -> None:
    drop = _revision("0002", "0001", "drop moods and its types", '    op.drop_table("moods")\n' + DROP_TYPES, RECREATE)
    ini = _project(tmp_path, pg_url, drop)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = _rows(engine, "moods")
    assert len(before) == 30
    alembic(ini, "upgrade", "head")  # before the fix: "cannot drop type swing because other objects depend on it"
    [b] = backups_json(ini)
    m = _manifest(ini, b["id"])
    assert m["store"] == "database"
    moods = next(t for t in m["tables"] if t["name"] == "moods")
    assert moods["format"] == "table" and moods["rows"] == 30
    assert {c["name"]: c["type"] for c in moods["definition"]["columns"]}["kind"] == "swing"  # the real type
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regtype('swing')").scalar() is None
    assert _rows(engine, _snapshot(moods)) == before
    assert safety(ini, "show", b["id"], "--verify").returncode == 0
    # the types come back with the downgrade, and go again with a second upgrade while the
    # first backup still holds the rows
    alembic(ini, "downgrade", "0001")
    alembic(ini, "upgrade", "head")
    assert len(backups_json(ini)) == 2


@pytest.mark.parametrize("drop", ['op.drop_table("moods")', 'op.execute("DROP TABLE moods")'])
def test_a_planned_move_of_a_user_typed_table_becomes_a_copy(pg_url: sa.URL, tmp_path: Path, engine_for,
                                                             drop: str) -> None:  # fmt: skip
    ini = _project(tmp_path, pg_url,
                   _revision("0002", "0001", "drop moods and plain", f'    {drop}\n    op.drop_table("plain")'),
                   _revision("0003", "0002", "a later revision drops the types", DROP_TYPES))  # fmt: skip
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = _rows(engine, "moods")
    alembic(ini, "upgrade", "0002")
    [b] = backups_json(ini)
    tables = {t["name"]: t for t in _manifest(ini, b["id"])["tables"]}
    moods, plain = tables["moods"], tables["plain"]
    assert moods["format"] == "table" and moods["rows"] == 30
    assert ("copied, not moved: column kind uses type swing; column score uses type points; "
            "column history uses type swing[]") in moods["reasons"]  # fmt: skip
    assert plain["format"] == "moved"  # every other table still moves, O(1)
    assert _rows(engine, _snapshot(moods)) == before
    alembic(ini, "upgrade", "0003")  # the backup holds no column of swing or points
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regtype('swing')").scalar() is None
    out = safety(ini, "show", b["id"], "--verify").stdout
    assert "sealed now" in out and "mismatch" not in out  # plain's checksum is computed now
    assert safety(ini, "show", b["id"], "--verify").returncode == 0


def test_export_and_import_of_a_backup_with_user_typed_columns(pg_url: sa.URL, tmp_path: Path,
                                                               engine_for) -> None:  # fmt: skip
    ini = _project(tmp_path, pg_url, _revision("0002", "0001", "drop moods and its types",
                                               '    op.drop_table("moods")\n' + DROP_TYPES))  # fmt: skip
    # one transaction for the run: under transaction_per_migration=True a command that runs no
    # revision (import) is never committed by env.py's begin_transaction()
    env = tmp_path / "proj" / "migrations" / "env.py"
    env.write_text(env.read_text().replace("transaction_per_migration=True", "transaction_per_migration=False"))
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = _rows(engine, "moods")
    alembic(ini, "upgrade", "head")
    [b] = backups_json(ini)
    safety(ini, "export", b["id"], "--to", str(tmp_path / "offsite"))
    with engine.begin() as conn:
        DatabaseStore(conn, "alembic_safety").delete(b["id"])
    assert backups_json(ini) == []
    safety(ini, "import", str(tmp_path / "offsite" / b["id"]))  # swing and points are gone by now
    moods = next(t for t in _manifest(ini, b["id"])["tables"] if t["name"] == "moods")
    assert moods["rows"] == 30
    assert _rows(engine, _snapshot(moods)) == before
    assert safety(ini, "show", b["id"], "--verify").returncode == 0


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_rollback_restores_user_typed_columns_of_an_update(pg_url: sa.URL, tmp_path: Path, mode: str) -> None:
    """An UPDATE of an enum (and domain, and enum[]) column: the snapshot holds the values as
    text; the rollback compares and writes them back as the live columns' types."""
    update = ('    op.execute("UPDATE moods SET kind = \'sad\', score = 7, '
              'history = ARRAY[\'so-so\']::swing[] WHERE id > 10")')
    ini = _project(tmp_path, pg_url, _revision("0002", "0001", "everyone sad", update))
    engine = sa.create_engine(pg_url)
    try:
        alembic(ini, "upgrade", "0001")
        before = _rows(engine, "moods")
        alembic(ini, "upgrade", "0002")
        assert _rows(engine, "moods") != before
        [backup] = [b for b in backups_json(ini) if b["kind"] == "pre-revision" and b["revision_to"] == "0002"]
        plan = json.loads(safety(ini, "rollback", backup["id"], "--mode", mode, "--dry-run", "--format", "json").stdout)
        safety(ini, "rollback", backup["id"], "--mode", mode, "--confirm", plan["confirmation_code"])
        assert _rows(engine, "moods") == before
    finally:
        engine.dispose()
