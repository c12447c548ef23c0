"""The alembic-safety command as users run it: real processes, real databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import copy_example
from .helpers import alembic, backups_json, safety

CONTRACT_KEYS = {"id", "kind", "name", "created_at", "revision_from", "revision_to", "direction", "complete",
                 "total_bytes", "tables"}  # fmt: skip
TABLE_KEYS = {"name", "schema", "rows", "bytes", "columns", "where"}


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def shop(sqlite_url: sa.URL, tmp_path: Path) -> Path:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    alembic(ini, "upgrade", "0001")
    return ini


def test_manual_backup_json_contract_show_and_verify(shop: Path) -> None:
    proc = safety(shop, "backup", "before-release", "--tables", "customers,notes")
    assert "Backup " in proc.stdout
    [b] = backups_json(shop)
    assert set(b) == CONTRACT_KEYS
    assert b["kind"] == "manual" and b["complete"] is True and b["name"] == "before-release"
    assert b["created_at"].endswith("Z") and "before_release" in b["id"]
    assert b["revision_from"] == b["revision_to"] == "0001" and b["direction"] is None
    assert [t["name"] for t in b["tables"]] == ["customers", "notes"]
    assert all(set(t) == TABLE_KEYS for t in b["tables"])
    assert b["total_bytes"] == sum(t["bytes"] for t in b["tables"]) > 0
    shown = json.loads(safety(shop, "show", b["id"][:16], "--verify", "--format", "json").stdout)
    assert shown["id"] == b["id"] and all(v["ok"] for v in shown["verify"])
    text = safety(shop, "show", b["id"], "--verify").stdout
    assert "customers" in text and "ok" in text


def test_all_tables_by_default_and_retention(shop: Path) -> None:
    ini_text = shop.read_text().replace("[alembic_safety]\n", "[alembic_safety]\nkeep = 2\n")
    shop.write_text(ini_text)
    for n in range(3):
        safety(shop, "backup", f"b{n}")
    listed = backups_json(shop)
    assert [b["name"] for b in listed] == ["b2", "b1"]
    assert {t["name"] for t in listed[0]["tables"]} == {"customers", "orders", "notes"}
    events = [json.loads(x) for x in (shop.parent / "backups" / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("backup_pruned") == 1


def test_tampered_backup_fails_verification_with_exit_1(shop: Path) -> None:
    safety(shop, "backup", "--tables", "notes")
    [b] = backups_json(shop)
    folder = shop.parent / "backups" / b["id"]
    data = next(folder.glob("*.zst"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    proc = safety(shop, "show", b["id"], "--verify", check=False)
    assert proc.returncode == 1
    assert "BAD" in proc.stdout and "failed verification" in proc.stderr


def test_prune_dry_run_then_for_real(shop: Path) -> None:
    for n in range(3):
        safety(shop, "backup", f"b{n}")
    out = safety(shop, "prune", "--keep", "1", "--dry-run").stdout
    assert out.count("would remove") == 2 and len(backups_json(shop)) == 3
    out = safety(shop, "prune", "--keep", "1").stdout
    assert out.count("removed") == 2
    assert [b["name"] for b in backups_json(shop)] == ["b2"]


def test_status_text_and_json(shop: Path) -> None:
    safety(shop, "backup", "one")
    data = json.loads(safety(shop, "status", "--format", "json").stdout)
    assert data["current"] == ["0001"] and data["heads"] == ["0004"] and data["pending"] == 3
    assert data["backups"][0]["name"] == "one"
    assert data["events"][-1]["event"] == "backup_completed"
    text = safety(shop, "status").stdout
    assert "0001" in text and "3 revision(s)" in text and "backup_completed" in text


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["backup", "--tables", "nope"], "unknown table(s) 'nope'"),
        (["backup", "--tables", 'x"; DROP TABLE customers; --'], "unknown table"),
        (["show", "20990101T000000000000Z"], "no backup"),
        (["show", "../../etc/passwd"], "not a backup id"),
        (["backup", "--tables", " , "], "--tables is empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(shop: Path, args: list[str], fragment: str, sqlite_url: sa.URL,
                                          engine_for) -> None:  # fmt: skip
    line = _one_line_error(safety(shop, *args, check=False))
    assert fragment in line
    with engine_for(sqlite_url).connect() as conn:  # nothing changed
        assert conn.exec_driver_sql("SELECT count(*) FROM customers").scalar() == 60


def test_configuration_errors(tmp_path: Path, sqlite_url: sa.URL) -> None:
    line = _one_line_error(safety(tmp_path / "missing.ini", "backups", check=False))
    assert "missing.ini" in line
    ini = copy_example("shop", tmp_path / "shop", sqlite_url, keep="lots")
    line = _one_line_error(safety(ini, "backups", check=False))
    assert "keep = 'lots'" in line
    broken = tmp_path / "broken.ini"
    broken.write_text("[alembic\nscript_location = x\n")
    _one_line_error(safety(broken, "backups", check=False))


def test_unreachable_database_hides_the_password(tmp_path: Path) -> None:
    url = sa.make_url("postgresql+psycopg2://someone:hunter2@127.0.0.1:1/nowhere")
    ini = copy_example("shop", tmp_path / "shop", url)
    proc = safety(ini, "backup", check=False)
    line = _one_line_error(proc)
    assert "cannot reach the database" in line
    assert "hunter2" not in proc.stderr + proc.stdout
    proc = safety(ini, "status", check=False)
    assert proc.returncode == 2 and "hunter2" not in proc.stderr + proc.stdout


def test_snapshot_budget_refuses_the_step(sqlite_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url, max_snapshot_bytes="200")
    alembic(ini, "upgrade", "0001")
    proc = alembic(ini, "upgrade", "0002", check=False)
    assert proc.returncode != 0 and "max_snapshot_bytes" in proc.stderr
    assert backups_json(ini) == []
    assert not [p for p in (tmp_path / "shop" / "backups").iterdir() if p.is_dir()]
    with engine_for(sqlite_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
        assert conn.exec_driver_sql("SELECT count(*) FROM notes").scalar() == 20
    ini.write_text(ini.read_text().replace("max_snapshot_bytes = 200\n", "max_snapshot_bytes = 200\noversize = warn\n"))
    proc = alembic(ini, "upgrade", "0002")
    assert len(backups_json(ini)) == 1
    assert "over max_snapshot_bytes" in proc.stderr
    events = [json.loads(x)["event"] for x in (tmp_path / "shop" / "backups" / "audit.jsonl").read_text().splitlines()]
    assert "snapshot_oversize" in events


def test_lock_timeout_when_another_session_holds_the_table(pg_url: sa.URL, tmp_path: Path, engine_for) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url, lock_timeout="300ms")
    alembic(ini, "upgrade", "0001")
    engine = engine_for(pg_url)
    with engine.connect() as holder:
        holder.exec_driver_sql("LOCK TABLE notes IN ROW EXCLUSIVE MODE")  # a writer mid-transaction
        started = time.monotonic()
        proc = alembic(ini, "upgrade", "0002", check=False)
        assert time.monotonic() - started < 30
        holder.rollback()
    assert proc.returncode != 0 and "could not lock" in proc.stderr and "lock_timeout" in proc.stderr
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
    assert backups_json(ini) == []


@pytest.mark.slow
def test_sigkill_mid_stream_leaves_no_usable_backup_and_prune_removes_it(pg_url: sa.URL, tmp_path: Path,
                                                                         engine_for) -> None:  # fmt: skip
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload, now() AS at "
            "FROM generate_series(1, 2000000) g"
        )
    ini = copy_example("shop", tmp_path / "shop", pg_url, compression_level="19", store="files")
    backups = tmp_path / "shop" / "backups"
    cmd = [sys.executable, "-m", "alembic_safety", "-c", str(ini), "backup", "--tables", "big"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    data_file = None
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(backups.glob("*/*.zst")) if backups.exists() else []
        if files and files[0].stat().st_size > 64 * 1024:
            data_file = files[0]
            break
        time.sleep(0.02)
    assert data_file is not None and proc.poll() is None, "the backup finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    listed = json.loads(safety(ini, "backups", "--format", "json").stdout)
    assert [(b["id"], b["complete"]) for b in listed] == [(data_file.parent.name, False)]
    line = _one_line_error(safety(ini, "show", data_file.parent.name, check=False))
    assert "incomplete" in line
    out = safety(ini, "prune").stdout
    assert "interrupted" in out
    assert not data_file.parent.exists()
    assert json.loads(safety(ini, "backups", "--format", "json").stdout) == []


def test_an_empty_revision_argument_is_a_usage_error(tmp_path: Path) -> None:
    for command in ("plan", "verify", "generate"):
        proc = safety(None, command, " ", check=False)
        assert proc.returncode == 2, command
        assert proc.stderr.strip().count("\n") == 0 and "is empty" in proc.stderr and "Traceback" not in proc.stderr
