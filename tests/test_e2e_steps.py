"""Step semantics: snapshots see earlier uncommitted steps, a failing step leaves no trace but
its audit entry, and a second install() in the same process is harmless."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from .conftest import copy_example
from .helpers import alembic, backups_json, revision_file

FAILING = revision_file("0005", "0004", "fails after its snapshot", """
op.execute("DELETE FROM orders WHERE status = 'shipped'")
op.execute("SELECT no_such_function_at_all()")
""")


def _events(ini: Path) -> list[dict]:
    return [json.loads(x) for x in (ini.parent / "backups" / "audit.jsonl").read_text().splitlines()]


def test_one_transaction_snapshot_sees_the_earlier_uncommitted_step(pg_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url, store="files")
    alembic(ini, "upgrade", "0002")  # 0001 creates and fills the tables in the same transaction
    [b] = backups_json(ini)
    rows = {t["name"]: t["rows"] for t in b["tables"]}
    assert rows == {"customers": 60, "orders": 60, "notes": 20}


def test_failing_step_rolls_back_on_postgresql_and_is_audited(pg_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url, store="files")
    (tmp_path / "shop" / "migrations" / "versions" / "0005_failing.py").write_text(FAILING)
    alembic(ini, "upgrade", "0004")
    proc = alembic(ini, "upgrade", "head", check=False)
    assert proc.returncode != 0 and "no_such_function_at_all" in proc.stderr
    engine = engine_for(pg_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0004"
        assert conn.exec_driver_sql("SELECT count(*) FROM orders WHERE status = 'shipped'").scalar() == 60
    failed = [e for e in _events(ini) if e["event"] == "revision_failed"]
    assert len(failed) == 1 and failed[0]["revision"] == "0005"
    assert "rolls back" in failed[0]["note"]
    # its snapshot is complete (it holds the rows as they were before the step)
    newest = backups_json(ini)[0]
    assert newest["revision_to"] == "0005" and newest["tables"][0]["rows"] == 60


def test_install_twice_in_one_process_wraps_once(sqlite_url: sa.URL, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    cfg = Config(str(ini))
    command.upgrade(cfg, "0001")
    command.upgrade(cfg, "0002")  # env.py runs (and installs) again in this process
    command.downgrade(cfg, "0001")
    command.upgrade(cfg, "0002")
    listed = backups_json(ini)
    # the downgrade of 0002 only recreates things: nothing at risk, no backup
    assert [(b["direction"], b["revision_to"]) for b in listed] == [("upgrade", "0002"), ("upgrade", "0002")]
    applied = [e for e in _events(ini) if e["event"] == "revision_applied"]
    assert len(applied) == 4
