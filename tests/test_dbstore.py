"""The in-database store on PostgreSQL and MariaDB: snapshot tables, drop-as-move, in-database
checksums, restore functions, export/import, prune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.config import SafetyConfig
from alembic_safety.project import load_project
from alembic_safety.snapshot.backup import BackupRequest, take_backup
from alembic_safety.snapshot.dbstore import DatabaseStore, pg_column_types
from alembic_safety.snapshot.policy import SnapshotRequest
from alembic_safety.sqlinfo import TableRef

from .conftest import copy_example
from .helpers import alembic, backups_json, revision_file, safety
from .test_e2e_steps import FAILING
from .test_engines import _all, _fixture, _make


def _schema(conn: sa.Connection) -> str:
    if conn.dialect.name == "postgresql":
        return "alembic_safety"
    return f"alembic_safety_{conn.exec_driver_sql('SELECT DATABASE()').scalar()}"


@pytest.fixture(params=["postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> sa.URL:
    url: sa.URL = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url")
    return url


def _snap_tables(conn: sa.Connection) -> list[str]:
    schema = _schema(conn)
    return sorted(sa.inspect(conn).get_table_names(schema=schema)) if schema in sa.inspect(conn).get_schema_names() \
        else []  # fmt: skip


def _manifest_json(ini: Path, backup_id: str) -> dict:
    return json.loads(safety(ini, "show", backup_id, "--format", "json").stdout)


def test_destructive_revision_with_the_database_store(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", db_url)  # store = auto: the database here
    engine = engine_for(db_url)
    alembic(ini, "upgrade", "0001")
    with engine.connect() as conn:
        notes = conn.exec_driver_sql("SELECT id, body FROM notes ORDER BY id").fetchall()
        phones = conn.exec_driver_sql("SELECT id, phone, score FROM customers ORDER BY id").fetchall()
    alembic(ini, "upgrade", "0002")
    [b] = backups_json(ini)
    assert not (tmp_path / "shop" / "backups").exists() or not [p for p in (tmp_path / "shop" / "backups").iterdir()
                                                               if p.is_dir()]  # fmt: skip
    m = _manifest_json(ini, b["id"])
    assert m["store"] == "database"
    tables = {t["name"]: t for t in m["tables"]}
    assert tables["notes"]["format"] == "moved" and "moved, not copied" in tables["notes"]["reasons"]
    assert tables["customers"]["format"] == "table" and tables["customers"]["rows"] == 60
    assert tables["orders"]["rows"] == 60 and tables["orders"]["where"] == "status = 'cancelled'"
    with engine.connect() as conn:
        assert "notes" not in sa.inspect(conn).get_table_names()
        moved = tables["notes"]["file"]
        assert conn.execute(sa.select(sa.text("id, body")).select_from(sa.table(moved, schema=_schema(conn)))
                            .order_by(sa.text("id"))).fetchall() == notes  # fmt: skip
        copied = tables["customers"]["file"]
        assert conn.execute(sa.select(sa.text("id, phone, score")).select_from(sa.table(copied, schema=_schema(conn)))
                            .order_by(sa.text("id"))).fetchall() == phones  # fmt: skip
    # verify recomputes the in-database checksums and seals the moved table's
    out = safety(ini, "show", b["id"], "--verify").stdout
    assert "sealed now" in out
    assert "sealed now" not in safety(ini, "show", b["id"], "--verify").stdout
    assert _manifest_json(ini, b["id"])["tables"][2]["rows"] == 20
    # the name is free again: the downgrade recreates notes (index and constraint names too)
    alembic(ini, "downgrade", "0001")


def test_failed_step_leaves_no_snapshot_table_and_no_catalogue_row(pg_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    (tmp_path / "shop" / "migrations" / "versions" / "0005_failing.py").write_text(FAILING)
    alembic(ini, "upgrade", "0004")
    engine = engine_for(pg_url)
    with engine.connect() as conn:
        before = _snap_tables(conn)
    proc = alembic(ini, "upgrade", "head", check=False)
    assert proc.returncode != 0
    with engine.connect() as conn:
        assert _snap_tables(conn) == before
        ids = [r[0] for r in conn.exec_driver_sql(f"SELECT id FROM {_schema(conn)}.backups")]
        assert not any("0005" in i for i in ids)
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0004"


MOVES = revision_file("0005", "0004", "drop orders then customers (orders has a foreign key to customers)", """
op.drop_table("orders")
op.execute("DROP TABLE customers")
""")


def test_dropping_a_child_then_its_parent_moves_both(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", db_url)
    (tmp_path / "shop" / "migrations" / "versions" / "0005_moves.py").write_text(MOVES)
    alembic(ini, "upgrade", "0004")
    alembic(ini, "upgrade", "0005")
    newest = backups_json(ini)[0]
    m = _manifest_json(ini, newest["id"])
    assert {t["name"]: t["format"] for t in m["tables"]} == {"orders": "moved", "customers": "moved"}
    engine = engine_for(db_url)
    with engine.connect() as conn:
        assert not {"orders", "customers"} & set(sa.inspect(conn).get_table_names())
    assert safety(ini, "show", newest["id"], "--verify").returncode == 0


def test_a_drop_a_view_depends_on_is_copied_and_fails_as_it_would(pg_url: sa.URL, tmp_path: Path,
                                                                   engine_for) -> None:  # fmt: skip
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    alembic(ini, "upgrade", "0001")
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE VIEW note_bodies AS SELECT body FROM notes")
    proc = alembic(ini, "upgrade", "0002", check=False)
    assert proc.returncode != 0 and "depend" in proc.stderr  # PostgreSQL's own refusal, as without us
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM notes").scalar() == 20
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"


def test_restore_functions(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", db_url)
    engine = engine_for(db_url)
    alembic(ini, "upgrade", "0001")
    queries = {"customers": "SELECT id, name, email, phone, score FROM customers ORDER BY id",
               "orders": "SELECT * FROM orders ORDER BY id", "notes": "SELECT * FROM notes ORDER BY id"}

    def snapshot_of_data(conn: sa.Connection) -> dict[str, list[tuple]]:
        return {t: [tuple(r) for r in conn.exec_driver_sql(q)] for t, q in queries.items()}

    with engine.connect() as conn:
        before = snapshot_of_data(conn)
    alembic(ini, "upgrade", "0002")
    [b] = backups_json(ini)
    alembic(ini, "downgrade", "0001")  # schema back (empty notes, phone column all NULL), data gone
    project = load_project(str(ini))
    with engine.begin() as conn:
        store = DatabaseStore(conn, _schema(conn))
        manifest = store.get(b["id"])
        snaps = {t.name: t for t in manifest.tables}
        conn.exec_driver_sql("DROP TABLE notes")
        store.move_back(manifest, snaps["notes"])  # O(1): the dropped table itself comes back
        store.restore_update(snaps["customers"], TableRef("customers"), ["id"], ["phone", "score"])
        store.restore_insert(snaps["orders"], TableRef("orders"))
    with engine.connect() as conn:
        assert snapshot_of_data(conn) == before
    assert "notes" not in {t["name"] for t in _manifest_json(ini, b["id"])["tables"]}
    del project


def test_every_column_type_round_trips_through_a_snapshot_table(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    engine = engine_for(db_url)
    config = SafetyConfig(backup_dir=tmp_path / "b")
    with engine.begin() as conn:
        columns, values = _fixture(conn)
        _make(conn, "src", columns, values)
        _make(conn, "dst", columns, [])
    with engine.begin() as conn:
        manifest = take_backup(conn, BackupRequest((SnapshotRequest(TableRef("src"), None, None, ("t",)),), "manual"),
                               config)  # fmt: skip
    assert manifest is not None and manifest.store == "database"
    with engine.begin() as conn:
        store = DatabaseStore(conn, _schema(conn))
        assert all(r.ok for r in store.verify(manifest))
        store.restore_insert(manifest.tables[0], TableRef("dst"))
    with engine.connect() as conn:
        assert _all(conn, "dst") == _all(conn, "src")


def test_tampered_snapshot_table_fails_verification(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", db_url)
    alembic(ini, "upgrade", "0001")
    safety(ini, "backup", "--tables", "customers")
    [b] = backups_json(ini)
    m = _manifest_json(ini, b["id"])
    engine = engine_for(db_url)
    with engine.begin() as conn:
        t = sa.table(m["tables"][0]["file"], sa.column("name"), schema=_schema(conn))
        conn.execute(sa.update(t).values(name="tampered").where(sa.literal_column("id") == 3))
    proc = safety(ini, "show", b["id"], "--verify", check=False)
    assert proc.returncode == 1 and "checksum mismatch" in proc.stdout


def test_export_import_round_trip_and_prune(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", db_url, keep="5")
    alembic(ini, "upgrade", "0002")
    [b] = backups_json(ini)
    out = safety(ini, "export", b["id"], "--to", str(tmp_path / "offsite")).stdout
    assert "Exported" in out
    folder = tmp_path / "offsite" / b["id"]
    assert (folder / "manifest.json").exists()
    exported = json.loads((folder / "manifest.json").read_text())
    assert exported["store"] == "files" and {t["rows"] for t in exported["tables"]} == {60, 20}
    engine = engine_for(db_url)
    with engine.connect() as conn:
        originals = {t["name"]: sorted(map(repr, conn.execute(
            sa.select(sa.text("*")).select_from(sa.table(t["file"], schema=_schema(conn)))).fetchall()))
            for t in _manifest_json(ini, b["id"])["tables"]}  # fmt: skip
    # the database copy goes away; the export brings it back, verified
    out = safety(ini, "prune", "--keep", "0").stdout  # keep 0 keeps everything
    assert "Nothing to prune" in out
    with engine.begin() as conn:
        DatabaseStore(conn, _schema(conn)).delete(b["id"])
    assert backups_json(ini) == []
    safety(ini, "import", str(folder))
    [back] = backups_json(ini)
    assert back["id"] == b["id"]
    m = _manifest_json(ini, b["id"])
    assert m["store"] == "database"
    with engine.connect() as conn:
        restored = {t["name"]: sorted(map(repr, conn.execute(
            sa.select(sa.text("*")).select_from(sa.table(t["file"], schema=_schema(conn)))).fetchall()))
            for t in m["tables"]}  # fmt: skip
    assert restored == originals
    assert safety(ini, "show", b["id"], "--verify").returncode == 0
    line = safety(ini, "import", str(folder), check=False)
    assert line.returncode == 2 and "already in the database" in line.stderr
    # status reports the space the snapshot tables take; prune frees it
    data = json.loads(safety(ini, "status", "--format", "json").stdout)
    assert data["store"] == "database" and data["snapshot_bytes"] > 0
    safety(ini, "backup", "manual")
    out = safety(ini, "prune", "--keep", "1").stdout
    assert f"removed {b['id']}" in out and "freed" in out
    [kept] = backups_json(ini)
    kept_files = {t["file"] for t in _manifest_json(ini, kept["id"])["tables"]}
    with engine.connect() as conn:
        assert set(_snap_tables(conn)) == kept_files | {"backups", "events"}


def test_orphan_snapshot_tables_are_incomplete_and_pruned(mariadb_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", mariadb_url)
    alembic(ini, "upgrade", "0001")
    safety(ini, "backup", "--tables", "notes")
    engine = engine_for(mariadb_url)
    with engine.begin() as conn:  # what a process killed between CREATE TABLE AS and the catalogue row leaves
        conn.exec_driver_sql(f"CREATE TABLE {_schema(conn)}.b20200101t000000000000z_001 AS SELECT * FROM notes")
    listed = json.loads(safety(ini, "backups", "--format", "json").stdout)
    assert [x["complete"] for x in listed] == [True, False]
    out = safety(ini, "prune").stdout
    assert "interrupted" in out
    with engine.connect() as conn:
        assert "b20200101t000000000000z_001" not in _snap_tables(conn)
    assert len(backups_json(ini)) == 1


def test_a_role_without_privilege_gets_a_clear_error(pg_url: sa.URL, tmp_path: Path, engine_for) -> None:
    import uuid

    role = f"as_noprivs_{uuid.uuid4().hex[:8]}"
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY)")
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(f'GRANT SELECT ON t TO "{role}"')
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    try:
        url = pg_url.set(username=role)
        ini = copy_example("shop", tmp_path / "shop", url)
        proc = safety(ini, "backup", "--tables", "t", check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
        assert "may not create the snapshot schema 'alembic_safety'" in proc.stderr
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'REVOKE ALL ON t FROM "{role}"')
            conn.exec_driver_sql(f'REVOKE ALL ON SCHEMA public FROM "{role}"')
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f'DROP ROLE "{role}"')


def test_offline_script_snapshots_catalogues_and_moves(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    import subprocess

    ini = copy_example("shop", tmp_path / "shop", db_url)
    alembic(ini, "upgrade", "0001")
    script = alembic(ini, "upgrade", "0001:0002", "--sql").stdout
    pg = db_url.get_backend_name() == "postgresql"
    assert "CREATE TABLE IF NOT EXISTS" in script and "backups" in script
    assert "AS SELECT" in script and "status = 'cancelled'" in script
    assert "DROP TABLE notes" not in script
    assert ("SET SCHEMA" in script) if pg else ("RENAME TABLE" in script)
    assert script.index("AS SELECT") < script.index("DELETE FROM orders")
    # run the script for real, as a DBA would
    (tmp_path / "upgrade.sql").write_text(script)
    if pg:
        cmd = ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-h", db_url.host or "", "-p", str(db_url.port), "-U",
               db_url.username or "", "-d", db_url.database or "", "-f", str(tmp_path / "upgrade.sql")]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    else:
        with (tmp_path / "upgrade.sql").open() as fh:
            subprocess.run(["mariadb", "-h", db_url.host or "", "-P", str(db_url.port), "-u", db_url.username or "",
                            db_url.database or ""], stdin=fh, check=True, capture_output=True, timeout=120)  # fmt: skip
    engine = engine_for(db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0002"
        assert "notes" not in sa.inspect(conn).get_table_names()
    [b] = backups_json(ini)
    assert {t["name"] for t in b["tables"]} == {"customers", "orders", "notes"}
    out = safety(ini, "show", b["id"], "--verify").stdout
    assert out.count("sealed now") == 3
    rows = {t["name"]: t["rows"] for t in _manifest_json(ini, b["id"])["tables"]}
    assert rows == {"customers": 60, "orders": 60, "notes": 20}


def test_a_moved_table_comes_back_with_indexes_constraints_and_data(db_url: sa.URL, tmp_path: Path,
                                                                    engine_for) -> None:  # fmt: skip
    ini = copy_example("shop", tmp_path / "shop", db_url)
    (tmp_path / "shop" / "migrations" / "versions" / "0005_moves.py").write_text(MOVES)
    alembic(ini, "upgrade", "0004")
    engine = engine_for(db_url)

    def shape(conn: sa.Connection) -> tuple:
        insp = sa.inspect(conn)
        ix = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes("orders"))
        fks = sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                     for f in insp.get_foreign_keys("orders"))
        pk = insp.get_pk_constraint("orders")["constrained_columns"]
        data = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM orders ORDER BY id")]
        return ix, fks, pk, data

    with engine.connect() as conn:
        before = shape(conn)
    assert before[1], "orders has a foreign key to customers"
    alembic(ini, "upgrade", "0005")
    newest = backups_json(ini)[0]
    with engine.begin() as conn:
        store = DatabaseStore(conn, _schema(conn))
        manifest = store.get(newest["id"])
        snaps = {t.name: t for t in manifest.tables}
        store.move_back(manifest, snaps["customers"])  # the parent first: the child's key points at it
        store.move_back(store.get(newest["id"]), snaps["orders"])
    with engine.connect() as conn:
        assert shape(conn) == before


def test_audit_events_are_mirrored_into_the_catalogue(pg_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    alembic(ini, "upgrade", "0002")
    safety(ini, "backup", "by-hand", "--tables", "customers")
    with engine_for(pg_url).connect() as conn:
        events = [r[0] for r in conn.exec_driver_sql("SELECT event FROM alembic_safety.events ORDER BY seq")]
    assert events.count("backup_completed") == 2 and "revision_applied" in events
    in_file = [json.loads(x)["event"] for x in (tmp_path / "shop" / "backups" / "audit.jsonl").read_text().splitlines()]
    assert set(events) <= set(in_file)


def test_a_refused_snapshot_leaves_no_snapshot_table_behind(db_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", db_url)
    alembic(ini, "upgrade", "0001")
    proc = safety(ini, "-x", "max_snapshot_bytes=10", "backup", check=False)
    assert proc.returncode == 2 and "max_snapshot_bytes" in proc.stderr
    with engine_for(db_url).connect() as conn:  # MySQL committed the CREATE TABLE AS: it was removed
        assert [t for t in _snap_tables(conn) if t not in ("backups", "events")] == []
    assert backups_json(ini) == []


# -- PostgreSQL: columns of user-defined types ------------------------------------------------

TYPED_DDL = [
    "CREATE TYPE swing AS ENUM ('happy', 'sad', 'so-so', 'it''s \"fine\"')",
    "CREATE DOMAIN points AS integer CHECK (VALUE >= 0)",
    "CREATE TABLE moods (id integer PRIMARY KEY, kind swing NOT NULL, score points, history swing[], note text)",
]
TYPED_ROWS = """INSERT INTO moods VALUES
    (1, 'happy', 3, '{happy,sad}', 'a'),
    (2, 'so-so', NULL, '{}', NULL),
    (3, 'it''s "fine"', 0, ARRAY['it''s "fine"', NULL, 'sad']::swing[], 'c'),
    (4, 'sad', 2147483647, NULL, '')"""
TYPED_SELECT = "SELECT id, kind::text, score, history::text, note FROM moods ORDER BY id"


def _column_types(conn: sa.Connection, table: str, schema: str | None = None) -> dict[str, str]:
    return {c: spec for c, (spec, _, _) in pg_column_types(conn, TableRef(table, schema)).items()}


def test_a_snapshot_table_does_not_depend_on_user_defined_types(pg_url: sa.URL, tmp_path: Path, engine_for) -> None:
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        for ddl in TYPED_DDL:
            conn.exec_driver_sql(ddl)
        conn.exec_driver_sql(TYPED_ROWS)
        before = [tuple(r) for r in conn.exec_driver_sql(TYPED_SELECT)]
    request = BackupRequest((SnapshotRequest(TableRef("moods"), None, None, ("drop_table moods",)),), "manual")
    with engine.begin() as conn:  # the backup, then the drops a revision would make, in one transaction
        manifest = take_backup(conn, request, SafetyConfig(backup_dir=tmp_path / "b"))
        assert manifest is not None and manifest.store == "database"
        conn.exec_driver_sql("DROP TABLE moods")
        conn.exec_driver_sql("DROP TYPE swing")
        conn.exec_driver_sql("DROP DOMAIN points")
    [snap] = manifest.tables
    assert snap.rows == 4 and snap.format == "table"
    recorded = {c["name"]: c["type"] for c in snap.definition["columns"]}
    assert recorded["kind"] == "swing" and recorded["history"] == "swing[]"  # the manifest keeps the real types
    with engine.begin() as conn:
        assert _column_types(conn, snap.file, "alembic_safety") == {
            "id": "integer", "kind": "text", "score": "text", "history": "text", "note": "text"}
        store = DatabaseStore(conn, "alembic_safety")
        assert [r.ok for r in store.verify(manifest)] == [True]
        # the types come back (as a downgrade would re-create them), then the rows
        for ddl in TYPED_DDL:
            conn.exec_driver_sql(ddl)
        assert store.restore_insert(snap, TableRef("moods")) == 4
        assert [tuple(r) for r in conn.exec_driver_sql(TYPED_SELECT)] == before
        assert _column_types(conn, "moods")["history"] == "swing[]"
        # refill one enum column by primary key
        conn.exec_driver_sql("UPDATE moods SET kind = 'sad'")
        assert store.restore_update(snap, TableRef("moods"), ["id"], ["kind"]) == 4
        assert [tuple(r) for r in conn.exec_driver_sql(TYPED_SELECT)] == before
    with engine.begin() as conn:  # the snapshot still verifies after being read from
        store = DatabaseStore(conn, "alembic_safety")
        assert [r.ok for r in store.verify(manifest)] == [True]
        # moved back out of the backup, the copy gets its recorded types again
        conn.exec_driver_sql("DROP TABLE moods")
        store.move_back(manifest, snap)
        assert _column_types(conn, "moods") == {
            "id": "integer", "kind": "swing", "score": "points", "history": "swing[]", "note": "text"}
        assert [tuple(r) for r in conn.exec_driver_sql(TYPED_SELECT)] == before


def test_restore_casts_a_user_typed_key_and_keeps_the_length_check_of_strings(pg_url: sa.URL, tmp_path: Path,
                                                                              engine_for) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TYPE code AS ENUM ('a', 'b', 'c')")
        conn.exec_driver_sql("CREATE TABLE labels (k code PRIMARY KEY, label text NOT NULL)")
        conn.exec_driver_sql("INSERT INTO labels VALUES ('a', 'first'), ('b', 'second'), ('c', 'a longer third')")
    request = BackupRequest((SnapshotRequest(TableRef("labels"), None, None, ("t",)),), "manual")
    with engine.begin() as conn:
        manifest = take_backup(conn, request, SafetyConfig(backup_dir=tmp_path / "b"))
        assert manifest is not None
        conn.exec_driver_sql("UPDATE labels SET label = 'lost'")
    [snap] = manifest.tables
    with engine.begin() as conn:
        store = DatabaseStore(conn, "alembic_safety")
        assert store.restore_update(snap, TableRef("labels"), ["k"], ["label"]) == 3  # code = CAST(text AS code)
        assert conn.exec_driver_sql("SELECT k::text, label FROM labels ORDER BY k").fetchall() == [
            ("a", "first"), ("b", "second"), ("c", "a longer third")]
    with engine.begin() as conn:  # into a narrower string column: PostgreSQL's error, not a silent truncation
        conn.exec_driver_sql("CREATE TABLE narrow (k varchar(1), label varchar(6))")
        store = DatabaseStore(conn, "alembic_safety")
        with pytest.raises(sa.exc.DataError, match="too long"):
            store.restore_insert(snap, TableRef("narrow"))


def test_a_catalogue_row_that_does_not_read_is_listed_unusable_and_kept(db_url: sa.URL, tmp_path: Path,
                                                                       engine_for) -> None:  # fmt: skip
    """A hand-edited (or damaged) manifest in the catalogue: listed as unusable with the reason,
    refused by show and rollback with one line (exit 2), never pruned, its snapshot tables kept."""
    ini = copy_example("shop", tmp_path / "shop", db_url)
    alembic(ini, "upgrade", "0002")
    [backup] = [b for b in backups_json(ini) if b["revision_to"] == "0002"]
    engine = engine_for(db_url)
    with engine.begin() as conn:
        schema = _schema(conn)
        tables_before = _snap_tables(conn)
        backups = sa.table("backups", sa.column("id"), sa.column("manifest"), schema=schema)
        conn.execute(sa.update(backups).where(backups.c.id == backup["id"]).values(manifest='{"id": "broken'))
    listed = {b["id"]: b for b in backups_json(ini)}
    assert listed[backup["id"]]["complete"] is False and "unreadable" in listed[backup["id"]]["reason"]
    for args in (["show", backup["id"]], ["rollback", backup["id"], "--dry-run"]):
        proc = safety(ini, *args, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert backup["id"] in proc.stderr
    safety(ini, "prune", "--keep", "0")
    with engine.connect() as conn:
        assert _snap_tables(conn) == tables_before  # nothing of it removed
    assert backup["id"] in {b["id"] for b in backups_json(ini)}
