"""Snapshot -> restore into an empty copy gives identical rows, for every column type that
matters, on PostgreSQL (both drivers), MariaDB and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.config import SafetyConfig
from alembic_safety.errors import BackupCorrupt
from alembic_safety.snapshot.backup import BackupRequest, open_store, take_backup
from alembic_safety.snapshot.policy import SnapshotRequest
from alembic_safety.snapshot.restore import restore_table, verify_backup
from alembic_safety.sqlinfo import TableRef

PG_COLUMNS = """
    id bigint PRIMARY KEY, i int, s smallint, n numeric(38, 12), f double precision, r real,
    t text, v varchar(20), b bytea, ok boolean, d date, ts timestamp(6), tz timestamptz(6),
    tm time, tmz timetz, iv interval, u uuid, j json, jb jsonb, ai int[], at text[],
    mood mood, ip inet
"""
PG_ROWS = [
    """(1, 2147483647, -32768, 12345678901234567890.123456789012, 'NaN', 'Infinity',
        'héllo 中文 😀 ''q'' "dq" \\ tab	end', 'short', '\\x00ff10'::bytea, true, '2026-02-28',
        '2026-03-01 12:34:56.789012', '2026-03-01 12:34:56.789012+05:30', '23:59:59.999999',
        '10:00:00+02', '1 year 2 mons 3 days 04:05:06.7', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        '{"a": [1, 2.5, null], "b": "x"}', '{"k": {"n": 1}}', '{1,NULL,3}', '{"a",NULL,"c d"}',
        'happy', '192.168.0.1/24')""",
    """(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    """(3, -1, 0, -0.000000000001, -1.5e-300, '-Infinity', '', '', ''::bytea, false, '0001-01-01',
        '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '00:00', '00:00+00', '-1 day',
        '00000000-0000-0000-0000-000000000000', 'null', '[]', '{}', '{}', 'sad', '::1')""",
]
MY_COLUMNS = """
    id BIGINT PRIMARY KEY, i INT, n DECIMAL(38, 12), f DOUBLE, t TEXT, v VARCHAR(20),
    b BLOB, ok BOOL, d DATE, ts DATETIME(6), tsz TIMESTAMP(6) NULL, tm TIME(6), j JSON,
    e ENUM('a', 'b c'), bits BIT(8)
"""
MY_ROWS = [
    """(1, 2147483647, 12345678901234567890.123456789012, -1.5e-300, 'héllo 中文 😀 ''q'' "dq" \\\\ end',
        'short', X'00FF10', TRUE, '2026-02-28', '2026-03-01 12:34:56.789012',
        '2026-03-01 12:34:56.789012', '-838:59:59.000000', '{"a": [1, 2.5, null]}', 'b c', b'10100101')""",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, -1, -0.000000000001, 0, '', '', X'', FALSE, '1000-01-01', '1000-01-01 00:00:00', NULL, '00:00:00', "
    "'[]', 'a', b'0')",
]
SQLITE_COLUMNS = "id INTEGER PRIMARY KEY, i INTEGER, n NUMERIC, f REAL, t TEXT, b BLOB, d DATETIME, j JSON"
SQLITE_ROWS = [
    """(1, 9223372036854775807, 12.5, 1.5e-300, 'héllo 中文 😀 ''q''', X'00FF10', '2026-03-01 12:34:56.789012',
        '{"a": [1, null]}')""",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, -9223372036854775808, 'text in numeric', -0.0, '', X'', 'not a date', '[]')",
]


def _make(conn: sa.Connection, name: str, columns: str, values: list[str]) -> None:
    conn.exec_driver_sql(f"CREATE TABLE {name} ({columns})")
    if values:
        conn.exec_driver_sql(f"INSERT INTO {name} VALUES " + ", ".join(values))


def _fixture(conn: sa.Connection) -> tuple[str, list[str]]:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql("CREATE TYPE mood AS ENUM ('happy', 'sad')")
        return PG_COLUMNS, PG_ROWS
    if dialect in ("mysql", "mariadb"):
        return MY_COLUMNS, MY_ROWS
    return SQLITE_COLUMNS, SQLITE_ROWS


def _all(conn: sa.Connection, table: str) -> list[str]:
    def norm(v: object) -> object:
        return bytes(v) if isinstance(v, memoryview) else v

    return [repr(tuple(norm(v) for v in r)) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")]


def _config(tmp_path: Path) -> SafetyConfig:
    return SafetyConfig(backup_dir=tmp_path / "backups", store="files")


def _roundtrip(url: sa.URL, tmp_path: Path, engine_for) -> None:
    engine = engine_for(url)
    config = _config(tmp_path)
    with engine.begin() as conn:
        columns, values = _fixture(conn)
        _make(conn, "src", columns, values)
        _make(conn, "dst", columns, [])
    with engine.begin() as conn:
        req = BackupRequest((SnapshotRequest(TableRef("src"), None, None, ("test",)),), "manual", name="types")
        manifest = take_backup(conn, req, config)
    assert manifest is not None
    [snap] = manifest.tables
    assert snap.rows == 3
    store = open_store(config)
    assert all(r.ok for r in verify_backup(store, manifest))
    with engine.begin() as conn:
        assert restore_table(conn, store, manifest, snap, TableRef("dst")) == 3
    with engine.connect() as conn:
        assert _all(conn, "dst") == _all(conn, "src")


def test_roundtrip_postgresql_all_types(pg_driver_url: sa.URL, tmp_path: Path, engine_for) -> None:
    _roundtrip(pg_driver_url, tmp_path, engine_for)


def test_roundtrip_mariadb_all_types(mariadb_url: sa.URL, tmp_path: Path, engine_for) -> None:
    _roundtrip(mariadb_url, tmp_path, engine_for)


def test_roundtrip_sqlite_all_types(sqlite_url: sa.URL, tmp_path: Path, engine_for) -> None:
    _roundtrip(sqlite_url, tmp_path, engine_for)


def test_column_and_where_snapshot_restores_exactly_those(any_url: sa.URL, tmp_path: Path, engine_for) -> None:
    engine = engine_for(any_url)
    config = _config(tmp_path)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, kind VARCHAR(10), price NUMERIC(10, 2), note TEXT)"
        )
        conn.exec_driver_sql("CREATE TABLE items_copy (id INTEGER PRIMARY KEY, price NUMERIC(10, 2))")
        conn.execute(sa.text("INSERT INTO items VALUES (:id, :kind, :price, :note)"),
                     [{"id": i, "kind": "old" if i % 3 == 0 else "new", "price": f"{i}.25", "note": f"n{i}"}
                      for i in range(1, 101)])  # fmt: skip
    # a WHERE with a colon and a percent sign inside literals reaches the database verbatim
    where = "kind = 'old' OR note LIKE 'x%' OR note = 'a:b'"
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE items SET note = 'a:b' WHERE id = 1")
        req = BackupRequest((SnapshotRequest(TableRef("items"), ("id", "price"), where, ("t",)),), "manual")
        manifest = take_backup(conn, req, config)
    assert manifest is not None
    [snap] = manifest.tables
    assert snap.rows == 34 and snap.stored_columns == ("id", "price") and snap.where == where
    with engine.begin() as conn:
        restore_table(conn, open_store(config), manifest, snap, TableRef("items_copy"))
    with engine.connect() as conn:
        query = "SELECT id, price FROM items WHERE kind = 'old' OR id = 1 ORDER BY id"
        expected = conn.execute(sa.text(query)).fetchall()
        assert conn.exec_driver_sql("SELECT id, price FROM items_copy ORDER BY id").fetchall() == expected


def test_corrupted_data_file_is_detected_and_restore_refused(sqlite_url: sa.URL, tmp_path: Path, engine_for) -> None:
    engine = engine_for(sqlite_url)
    config = _config(tmp_path)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("CREATE TABLE t2 (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute(sa.text("INSERT INTO t VALUES (:i, :v)"), [{"i": i, "v": "x" * 50} for i in range(500)])
    with engine.begin() as conn:
        manifest = take_backup(conn, BackupRequest((SnapshotRequest(TableRef("t"), None, None, ()),), "manual"), config)
    assert manifest is not None
    store = open_store(config)
    # a different, valid zstd stream with other rows: decompresses fine, checksum differs
    import zstandard

    path = config.backup_dir / manifest.id / manifest.tables[0].file
    path.write_bytes(zstandard.ZstdCompressor().compress(b'[1,"tampered"]\n'))
    [result] = verify_backup(store, manifest)
    assert not result.ok and "checksum mismatch" in result.detail
    with pytest.raises(BackupCorrupt), engine.begin() as conn:
        restore_table(conn, store, manifest, manifest.tables[0], TableRef("t2"))
    with engine.connect() as conn:  # the failed restore rolled back
        assert conn.exec_driver_sql("SELECT count(*) FROM t2").scalar() == 0
