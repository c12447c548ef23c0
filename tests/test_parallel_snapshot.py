"""Parallel snapshot (PostgreSQL, files store): several large tables copied on several connections
that share the migration's exported snapshot."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.config import load_config
from alembic_safety.errors import ConfigError

from .conftest import copy_example
from .helpers import alembic, backups_json, revision_file, rows
from .test_rollback import roll_back

TABLES = ("alpha", "beta", "gamma")


def project(tmp_path: Path, url: sa.URL, revisions: dict[str, tuple[str | None, str]], **settings: str) -> Path:
    """The shop example's env.py with our own revisions {id: (down_revision, upgrade body)}."""
    settings = {"store": "files", "parallel_snapshot_min_rows": "500", "parallel_snapshot_workers": "3", **settings}
    ini = copy_example("shop", tmp_path / "proj", url, **settings)
    versions = tmp_path / "proj" / "migrations" / "versions"
    for old in versions.glob("*.py"):
        old.unlink()
    for rev, (down, body) in revisions.items():
        text = revision_file(rev, down or "", f"revision {rev}", body)
        if down is None:
            text = text.replace("down_revision = ''", "down_revision = None")
        (versions / f"{rev}.py").write_text(text)
    return ini


def build(engine: sa.Engine, rows_each: int = 3000) -> None:
    """Three tables of a few thousand rows (never analysed: the estimate comes from EXPLAIN), and the
    version table of a project that has been migrated before (on a fresh database alembic creates
    it in the run's transaction, which is then no longer one that has written nothing)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS alembic_version "
                             "(version_num varchar(32) NOT NULL PRIMARY KEY)")  # fmt: skip
        for i, name in enumerate(TABLES):
            t = sa.table(name)
            q = conn.dialect.identifier_preparer.format_table(t)
            conn.exec_driver_sql(f"CREATE TABLE {q} (id integer PRIMARY KEY, v integer NOT NULL, note text)")
            conn.execute(sa.text(f"INSERT INTO {q} SELECT g, 100, repeat(md5(g::text), :k) "
                                 "FROM generate_series(1, :n) AS g"), {"n": rows_each, "k": i + 1})  # fmt: skip


def audit(ini: Path) -> list[dict[str, Any]]:
    text = (ini.parent / "backups" / "audit.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def table_rows(engine: sa.Engine, names: tuple[str, ...] = TABLES) -> dict[str, list[tuple[Any, ...]]]:
    return {t: rows(engine, t, ["id", "v", "note"]) for t in names}


DROP_ALL = "\n".join(f"op.drop_table({t!r})" for t in TABLES)


def test_tables_are_copied_on_several_connections_and_round_trip(pg_url: sa.URL, tmp_path: Path,
                                                                 engine_for: Any) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    build(engine)
    before = table_rows(engine)
    ini = project(tmp_path, pg_url, {"p001": (None, DROP_ALL)})
    alembic(ini, "upgrade", "head")
    events = audit(ini)
    [par] = [e for e in events if e["event"] == "snapshot_parallel"]
    assert par["connections"] == 3 and len(set(par["backend_pids"])) == 3
    assert sorted(par["tables"]) == sorted(TABLES) and all(n >= 500 for n in par["estimated_rows"])
    [backup] = [b for b in backups_json(ini) if b["revision_to"] == "p001"]
    assert par["backup_id"] == backup["id"]
    manifest = json.loads((ini.parent / "backups" / backup["id"] / "manifest.json").read_text())
    assert [t["file"] for t in manifest["tables"]] == ["001.pg-copy-binary.zst", "002.pg-copy-binary.zst",
                                                       "003.pg-copy-binary.zst"]  # request order, as serial
    assert [t["name"] for t in manifest["tables"]] == list(TABLES)
    assert [t["rows"] for t in manifest["tables"]] == [3000, 3000, 3000]
    with engine.connect() as conn:
        assert not any(sa.inspect(conn).has_table(t) for t in TABLES)
    roll_back(ini, backup["id"])
    assert table_rows(engine) == before


def test_serial_when_a_single_table_is_large_or_workers_is_one(pg_url: sa.URL, tmp_path: Path,
                                                              engine_for: Any) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    build(engine)
    ini = project(tmp_path, pg_url, {"s001": (None, "op.drop_table('alpha')\nop.drop_table('beta')")},
                  parallel_snapshot_workers="1")  # fmt: skip
    alembic(ini, "upgrade", "head")
    assert not [e for e in audit(ini) if e["event"] in ("snapshot_parallel", "snapshot_serial")]
    # the threshold above every table but one: serial too
    alembic(ini, "downgrade", "base")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alpha, beta, gamma")
    build(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO alpha SELECT g, 1, 'x' FROM generate_series(3001, 20000) AS g")
    alembic(ini, "-x", "parallel_snapshot_workers=4", "-x", "parallel_snapshot_min_rows=10000", "upgrade", "head")
    assert not [e for e in audit(ini) if e["event"] in ("snapshot_parallel", "snapshot_serial")]
    assert len([b for b in backups_json(ini) if b["revision_to"] == "s001"]) == 2


@pytest.mark.parametrize("per_migration", ["false", "true"])
def test_an_earlier_write_in_the_same_transaction_keeps_it_serial(pg_url: sa.URL, tmp_path: Path, engine_for: Any,
                                                                  per_migration: str) -> None:  # fmt: skip
    """Importers never see the exporter's own uncommitted changes: after an earlier step wrote in
    the same transaction the copy must stay on the migration's connection, or the snapshot would
    miss the rows that step added."""
    engine = engine_for(pg_url)
    build(engine)
    ini = project(tmp_path, pg_url, {
        "w001": (None, "op.execute(\"INSERT INTO alpha (id, v, note) VALUES (90001, 7, 'added by w001')\")\n"
                       "op.execute(\"UPDATE beta SET v = 8 WHERE id <= 10\")"),
        "w002": ("w001", DROP_ALL),
    })  # fmt: skip
    alembic(ini, "-x", f"per_migration={per_migration}", "upgrade", "w001")
    expected = table_rows(engine)
    alembic(ini, "downgrade", "base")  # w001's downgrade is pass: the rows it wrote stay
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alpha WHERE id = 90001")
        conn.exec_driver_sql("UPDATE beta SET v = 100 WHERE id <= 10")
    alembic(ini, "-x", f"per_migration={per_migration}", "upgrade", "head")
    [backup] = [b for b in backups_json(ini) if b["revision_to"] == "w002"]
    roll_back(ini, backup["id"])
    assert table_rows(engine) == expected
    events = audit(ini)
    parallel = [e for e in events if e["event"] == "snapshot_parallel" and e["backup_id"] == backup["id"]]
    serial = [e for e in events if e["event"] == "snapshot_serial" and e["backup_id"] == backup["id"]]
    if per_migration == "true":  # a fresh transaction per step: nothing written yet, parallel
        assert len(parallel) == 1 and parallel[0]["connections"] == 3 and not serial
    else:
        assert not parallel and len(serial) == 1 and "already written" in serial[0]["reason"]


REPEATABLE_READ_STEP = """\
import os
import sqlalchemy as sa
global WROTE
if not globals().get("WROTE"):  # the first call (recorded, before the snapshot): another session commits
    WROTE = True
    other = sa.create_engine(os.environ["PARALLEL_TEST_URL"], poolclass=sa.NullPool)
    with other.begin() as conn:
        conn.exec_driver_sql("INSERT INTO alpha (id, v, note) VALUES (90002, 1, 'late')")
        conn.exec_driver_sql("INSERT INTO beta (id, v, note) VALUES (90002, 1, 'late')")
    other.dispose()
op.execute("DELETE FROM alpha")
op.execute("DELETE FROM beta")
"""


def test_the_other_connections_see_the_migrations_snapshot(pg_url: sa.URL, tmp_path: Path, engine_for: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A REPEATABLE READ migration does not see a row committed after its transaction began: the
    connections that import its snapshot must not see it either (their own snapshot would)."""
    engine = engine_for(pg_url)
    build(engine)
    ini = project(tmp_path, pg_url, {"r001": (None, REPEATABLE_READ_STEP)})
    env = tmp_path / "proj" / "migrations" / "env.py"
    text = env.read_text()
    assert "with connectable.connect() as connection:" in text
    env.write_text(text.replace("with connectable.connect() as connection:",
                                'with connectable.connect().execution_options(isolation_level="REPEATABLE READ") '
                                "as connection:"))  # fmt: skip
    monkeypatch.setenv("PARALLEL_TEST_URL", pg_url.render_as_string(hide_password=False))
    alembic(ini, "upgrade", "head")
    [backup] = [b for b in backups_json(ini) if b["revision_to"] == "r001"]
    [par] = [e for e in audit(ini) if e["event"] == "snapshot_parallel"]
    assert par["connections"] == 2
    manifest = json.loads((ini.parent / "backups" / backup["id"] / "manifest.json").read_text())
    assert [(t["name"], t["rows"]) for t in manifest["tables"]] == [("alpha", 3000), ("beta", 3000)]


def test_a_concurrent_writer_cannot_split_the_tables(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """A writer moves value from alpha to beta, one transaction per move: every table in the
    snapshot must come from the same moment, so the total is the same as at the start."""
    engine = engine_for(pg_url)
    build(engine)
    ini = project(tmp_path, pg_url, {"c001": (None, "op.drop_table('alpha')\nop.drop_table('beta')")},
                  parallel_snapshot_workers="2")  # fmt: skip
    total = 2 * 3000 * 100
    stop = threading.Event()
    moves = [0]

    def writer() -> None:
        writer_engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
        try:
            with writer_engine.connect() as conn:
                i = 0
                while not stop.is_set():
                    i = i % 3000 + 1
                    try:
                        with conn.begin():
                            conn.execute(sa.text("UPDATE alpha SET v = v - 1 WHERE id = :i"), {"i": i})
                            conn.execute(sa.text("UPDATE beta SET v = v + 1 WHERE id = :i"), {"i": 3001 - i})
                        moves[0] += 1
                    except sa.exc.DBAPIError:  # the tables are gone
                        return
        finally:
            writer_engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while moves[0] < 50:
            stop.wait(0.01)
        alembic(ini, "upgrade", "head")
    finally:
        stop.set()
        thread.join()
    [par] = [e for e in audit(ini) if e["event"] == "snapshot_parallel"]
    assert par["connections"] == 2
    [backup] = [b for b in backups_json(ini) if b["revision_to"] == "c001"]
    roll_back(ini, backup["id"])
    with engine.connect() as conn:
        got = conn.exec_driver_sql("SELECT (SELECT sum(v) FROM alpha) + (SELECT sum(v) FROM beta)").scalar_one()
        moved = conn.exec_driver_sql("SELECT sum(100 - v) FROM alpha").scalar_one()
    assert got == total and moved > 0


@pytest.mark.parametrize(("key", "value"), [("parallel_snapshot_workers", "0"), ("parallel_snapshot_workers", "x"),
                                            ("parallel_snapshot_min_rows", "-1")])  # fmt: skip
def test_settings_are_validated(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config({key: value}, here=tmp_path, environ={})
    cfg = load_config({}, here=tmp_path, environ={})
    assert (cfg.parallel_snapshot_workers, cfg.parallel_snapshot_min_rows) == (4, 1_000_000)
