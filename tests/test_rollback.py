"""`alembic-safety rollback`: round trips of destructive revisions on PostgreSQL, SQLite and
MariaDB (real `alembic` and `alembic-safety` processes on tests/examples/shop), the two restore
modes, the safeguards, and a failure in the middle of a PostgreSQL rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.reverse.schema import diff, reflect_state

from .conftest import copy_example
from .helpers import _env, alembic, backups_json, revision_file, rows

COLUMNS = {
    "customers": ["id", "name", "email", "phone", "score"],
    "orders": ["id", "customer_id", "status", "total", "created_at"],
    "notes": ["id", "body"],
}


def run_safety(ini: Path, *args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    """alembic-safety without a terminal (stdin is /dev/null unless given)."""
    return subprocess.run([sys.executable, "-m", "alembic_safety", "-c", str(ini), *args], stdin=stdin,
                          capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip


Rows = dict[str, list[tuple[Any, ...]]]


def data(engine: sa.Engine, tables: tuple[str, ...] = ("customers", "orders", "notes")) -> Rows:
    insp = sa.inspect(engine)
    out: Rows = {}
    for t in tables:
        present = {c["name"] for c in insp.get_columns(t)} if insp.has_table(t) else set()
        out[t] = rows(engine, t, [c for c in COLUMNS[t] if c in present]) if present else []
    return out


def version(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def schema(engine: sa.Engine) -> Any:
    with engine.connect() as conn:
        return reflect_state(conn)


def plan_json(ini: Path, backup_id: str, *extra: str) -> dict[str, Any]:
    proc = run_safety(ini, "rollback", backup_id, "--dry-run", "--format", "json", *extra)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert isinstance(plan, dict)
    return plan


def roll_back(ini: Path, backup_id: str, *extra: str) -> dict[str, Any]:
    code = plan_json(ini, backup_id, *extra)["confirmation_code"]
    proc = run_safety(ini, "rollback", backup_id, "--confirm", code, "--format", "json", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert isinstance(result, dict)
    return result


def audit_events(project_dir: Path) -> list[dict[str, Any]]:
    text = (project_dir / "backups" / "audit.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def the_backup(ini: Path, revision: str) -> str:
    [backup] = [b for b in backups_json(ini) if b["kind"] == "pre-revision" and b["revision_to"] == revision]
    return str(backup["id"])


def write_after_deploy(engine: sa.Engine) -> None:
    """What the application writes after 0002 was deployed: a customer, an order, an edit."""
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customers (id, name, email, score) VALUES (1001, 'New', 'n@x.org', 7)"))
        conn.execute(sa.text("INSERT INTO orders (id, customer_id, status, total, created_at) "
                             "VALUES (5001, 1, 'paid', 12.50, '2026-02-01 10:00:00')"))  # fmt: skip
        conn.execute(sa.text("UPDATE customers SET name = 'Renamed' WHERE id = 2"))


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_round_trip_drop_column_delete_update_drop_table(any_url: sa.URL, tmp_path: Path, engine_for: Any,
                                                         mode: str) -> None:  # fmt: skip
    ini = copy_example("shop", tmp_path / "shop", any_url)
    engine = engine_for(any_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    alembic(ini, "upgrade", "0002")
    write_after_deploy(engine)
    backup_id = the_backup(ini, "0002")

    result = roll_back(ini, backup_id, "--mode", mode)
    assert result["ok"] is True and result["revision"] == "0001" and version(engine) == "0001"
    after = data(engine)
    assert after["notes"] == before["notes"]  # dropped table: back, row for row
    # deleted rows (DELETE ... WHERE) are back; the order written since stays in both modes
    # (a row snapshot removes nothing it did not hold)
    assert [r for r in after["orders"] if r[0] != 5001] == before["orders"]
    assert any(r[0] == 5001 for r in after["orders"])
    by_id = {r[0]: r for r in after["customers"]}
    for old in before["customers"]:
        new = by_id[old[0]]
        assert (new[3], new[4]) == (old[3], old[4])  # dropped column refilled, UPDATE undone
    if mode == "merge":
        assert 1001 in by_id and by_id[2][1] == "Renamed"  # written after the deploy: kept
    else:
        assert 1001 not in by_id  # replace: rows not in the full-column snapshot are removed
    kinds = {b["kind"] for b in backups_json(ini)}
    assert "pre-rollback" in kinds
    pre = next(b for b in backups_json(ini) if b["kind"] == "pre-rollback")
    assert pre["id"] == result["pre_rollback_id"]
    assert {t["name"] for t in pre["tables"]} == {"customers", "orders"}
    report = Path(result["report"])
    assert report.parent == tmp_path / "shop" / "backups" and "# Rollback of" in report.read_text()
    events = [e["event"] for e in audit_events(tmp_path / "shop")]
    assert "rollback_started" in events and "rollback_completed" in events
    assert "rollback_failed" not in events


def test_several_revisions_at_once(any_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """0004 (add column), 0003 (UPDATE through the connection, downgrade pass) and 0002, newest
    first, each with its own backup; the data ends as 0001 left it."""
    ini = copy_example("shop", tmp_path / "shop", any_url)
    engine = engine_for(any_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    alembic(ini, "upgrade", "head")
    assert any(r[2] == "archived" for r in data(engine)["orders"])
    backup_id = the_backup(ini, "0002")
    plan = plan_json(ini, backup_id)
    assert [r["revision"] for r in plan["revisions"]] == ["0004", "0003", "0002"]
    assert plan["revisions"][1]["downgrade"] == "empty" and plan["revisions"][1]["backup_id"]
    assert any(d["effect"] == "lost" and "tier" in d["detail"] for d in plan["data"])  # 0004's downgrade
    result = roll_back(ini, backup_id)
    assert result["ok"] is True and version(engine) == "0001"
    assert data(engine) == before
    assert "tier" not in {c["name"] for c in sa.inspect(engine).get_columns("customers")}


def _custom_project(url: sa.URL, dest: Path) -> Path:
    """The shop's 0001, then a revision whose downgrade() is ``pass``: it drops a column, updates
    and deletes every row without WHERE, and drops a table."""
    ini = copy_example("shop", dest, url)
    versions = dest / "migrations" / "versions"
    for name in ("0002_cleanup.py", "0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    body = """
with op.batch_alter_table("customers") as batch_op:
    batch_op.drop_column("phone")
op.execute("UPDATE customers SET score = 0")
op.execute("DELETE FROM orders")
op.drop_table("notes")
"""
    (versions / "0002_purge.py").write_text(revision_file("0002", "0001", "purge everything", body))
    return ini


def test_downgrade_pass_converges_from_the_manifest(any_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    ini = _custom_project(any_url, tmp_path / "proj")
    engine = engine_for(any_url)
    alembic(ini, "upgrade", "0001")
    before, shape = data(engine), schema(engine)
    alembic(ini, "upgrade", "0002")
    backup_id = the_backup(ini, "0002")
    plan = plan_json(ini, backup_id, "--mode", "replace")
    assert plan["revisions"][0]["downgrade"] == "empty"
    result = roll_back(ini, backup_id, "--mode", "replace")
    assert result["ok"] is True
    assert data(engine) == before
    assert any("phone" in c for c in result["converged"]) and any("notes" in c for c in result["converged"])
    assert diff(shape, schema(engine)) == ()  # the schema is back too


def test_dry_run_changes_nothing_and_confirmation_rules(any_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    ini = copy_example("shop", tmp_path / "shop", any_url)
    engine = engine_for(any_url)
    alembic(ini, "upgrade", "0002")
    backup_id = the_backup(ini, "0002")
    state = (data(engine), schema(engine), version(engine), backups_json(ini))

    plan = plan_json(ini, backup_id)
    assert len(plan["confirmation_code"]) == 6 and plan["confirmation_code"].isupper()
    assert [s["kind"] for s in plan["steps"]][:3] == ["verify-backup", "pre-rollback-backup", "downgrade"]
    assert all({"order", "action", "critical", "seconds"} <= set(s) for s in plan["steps"])
    assert plan["transactional"] is (any_url.get_backend_name() == "postgresql")
    assert plan_json(ini, backup_id)["confirmation_code"] == plan["confirmation_code"]  # deterministic
    assert plan_json(ini, backup_id, "--mode", "replace")["confirmation_code"] != plan["confirmation_code"]
    text = run_safety(ini, "rollback", backup_id, "--dry-run")
    assert text.returncode == 0 and plan["confirmation_code"] in text.stdout and "nothing changed" in text.stdout

    no_code = run_safety(ini, "rollback", backup_id)  # no terminal, no --confirm
    assert no_code.returncode == 2 and "--confirm" in no_code.stderr
    wrong = run_safety(ini, "rollback", backup_id, "--confirm", "WRONG1")
    assert wrong.returncode == 2 and "nothing was changed" in wrong.stderr
    unknown = run_safety(ini, "rollback", "29990101T000000000000Z", "--dry-run")
    assert unknown.returncode == 2 and "no backup" in unknown.stderr
    assert (data(engine), schema(engine), version(engine), backups_json(ini)) == state


def _interactive(ini: Path, backup_id: str, answers: str) -> tuple[int, str]:
    """Run rollback with a pseudo-terminal as stdin and type ``answers``."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "alembic_safety", "-c", str(ini), "rollback", backup_id],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(),
                            text=True)  # fmt: skip
    os.close(slave)
    time.sleep(0.2)
    os.write(master, answers.encode())
    output, _ = proc.communicate(timeout=300)
    os.close(master)
    return proc.returncode, output


def test_interactive_asks_three_questions(sqlite_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    engine = engine_for(sqlite_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    alembic(ini, "upgrade", "0002")
    backup_id = the_backup(ini, "0002")
    code = plan_json(ini, backup_id)["confirmation_code"]

    rc, output = _interactive(ini, backup_id, "y\nn\n")  # understood, but not "yes, now"
    assert rc == 2 and "cancelled" in output and version(engine) == "0002"
    rc, output = _interactive(ini, backup_id, "y\ny\nABCDEF\n")  # a wrong code
    assert rc == 2 and "wrong" in output and version(engine) == "0002"
    rc, output = _interactive(ini, backup_id, f"y\ny\n{code}\n")
    assert rc == 0, output
    assert "data is lost" in output and "confirmation code" in output.lower()
    assert version(engine) == "0001" and data(engine) == before


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_corrupted_backup_is_refused(db: str, request: pytest.FixtureRequest, tmp_path: Path,
                                     engine_for: Any) -> None:  # fmt: skip
    url: sa.URL = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    ini = copy_example("shop", tmp_path / "shop", url)
    engine = engine_for(url)
    alembic(ini, "upgrade", "0002")
    backup_id = the_backup(ini, "0002")
    code = plan_json(ini, backup_id)["confirmation_code"]
    if db == "sqlite":  # files store: flip bytes in a data file
        data_file = sorted((tmp_path / "shop" / "backups" / backup_id).glob("*.zst"))[0]
        raw = bytearray(data_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data_file.write_bytes(bytes(raw))
    else:  # database store: change a value in a snapshot table
        with engine.begin() as conn:
            name = conn.execute(sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                        "'alembic_safety' AND table_name LIKE 'b%' ORDER BY 1")).scalars().first()
            conn.execute(sa.update(sa.table(name, sa.column("score"), schema="alembic_safety")).values(score=999))
    state = (data(engine), schema(engine), version(engine))
    proc = run_safety(ini, "rollback", backup_id, "--confirm", code)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "failed verification" in proc.stderr and "refused" in proc.stderr
    assert (data(engine), schema(engine), version(engine)) == state


def test_postgresql_failure_mid_rollback_changes_nothing(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """A constraint added after the deploy rejects the restored rows: the downgrade, the
    re-created table and the first restores already ran — everything is rolled back."""
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0002")
    write_after_deploy(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE orders ADD CONSTRAINT no_cancelled CHECK (status <> 'cancelled')")
    backup_id = the_backup(ini, "0002")
    state = (data(engine), schema(engine), version(engine), backups_json(ini))
    code = plan_json(ini, backup_id)["confirmation_code"]
    proc = run_safety(ini, "rollback", backup_id, "--confirm", code)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "restore-data" in proc.stderr and "no_cancelled" in proc.stderr
    assert "rolled every change back" in proc.stderr
    assert diff(state[1], schema(engine)) == ()
    assert (data(engine), schema(engine), version(engine), backups_json(ini)) == state
    events = audit_events(tmp_path / "shop")
    failed = [e for e in events if e["event"] == "rollback_failed"]
    assert failed and failed[-1]["rolled_back"] is True and Path(failed[-1]["report"]).is_file()


def test_mariadb_failure_stops_and_names_the_pre_rollback_backup(mariadb_url: sa.URL, tmp_path: Path,
                                                                 engine_for: Any) -> None:  # fmt: skip
    """MariaDB commits DDL as it runs: the rollback stops at the failing step, the version table
    agrees with the schema it left, and the error names the pre-rollback backup."""
    ini = copy_example("shop", tmp_path / "shop", mariadb_url)
    engine = engine_for(mariadb_url)
    alembic(ini, "upgrade", "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE orders ADD CONSTRAINT no_cancelled CHECK (status <> 'cancelled')")
    backup_id = the_backup(ini, "0002")
    plan = plan_json(ini, backup_id)
    assert plan["transactional"] is False and any("not one transaction" in n for n in plan["notes"])
    proc = run_safety(ini, "rollback", backup_id, "--confirm", plan["confirmation_code"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [pre] = [b for b in backups_json(ini) if b["kind"] == "pre-rollback"]
    assert "stopped part-way" in proc.stderr and pre["id"] in proc.stderr and "restore-data" in proc.stderr
    # the downgrade's step was committed with its version stamp; the failed restore left nothing
    assert version(engine) == "0001"
    assert sa.inspect(engine).has_table("notes") and data(engine)["notes"] == []
    assert not [r for r in data(engine)["orders"] if r[2] == "cancelled"]
    assert not any(n.startswith("alembic_safety_restore_") for n in sa.inspect(engine).get_table_names())


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_key_conflict_merge_keeps_the_newer_row_replace_the_backups(any_url: sa.URL, tmp_path: Path,
                                                                   engine_for: Any, mode: str) -> None:  # fmt: skip
    ini = copy_example("shop", tmp_path / "shop", any_url)
    engine = engine_for(any_url)
    alembic(ini, "upgrade", "0001")
    deleted = rows(engine, "orders", COLUMNS["orders"], "id = 2")
    assert deleted[0][2] == "cancelled"
    alembic(ini, "upgrade", "0002")
    with engine.begin() as conn:  # the application reuses the key of a purged order
        conn.execute(sa.text("INSERT INTO orders (id, customer_id, status, total, created_at) "
                             "VALUES (2, 5, 'paid', 99.00, '2026-03-01 09:00:00')"))  # fmt: skip
    result = roll_back(ini, the_backup(ini, "0002"), "--mode", mode)
    orders = next(t for t in result["tables"] if t["table"] == "orders")
    now = rows(engine, "orders", COLUMNS["orders"], "id = 2")
    if mode == "merge":
        assert now[0][2] == "paid" and orders["conflicts"] == 1
        assert "kept" in orders["detail"] and orders["matching"] == orders["rows_in_backup"] - 1
    else:
        assert now == deleted and orders["conflicts"] == 0 and orders["matching"] == orders["rows_in_backup"]
    assert orders["ok"] is True and result["ok"] is True


def test_postgresql_transaction_per_migration_commits(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """env.py with transaction_per_migration=True opens no outer transaction: the rollback
    still runs as one transaction and commits it."""
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    engine = engine_for(pg_url)
    alembic(ini, "-x", "per_migration=true", "upgrade", "0001")
    before = data(engine)
    alembic(ini, "-x", "per_migration=true", "upgrade", "0002")
    backup_id = the_backup(ini, "0002")
    code = plan_json(ini, backup_id)["confirmation_code"]
    proc = subprocess.run([sys.executable, "-m", "alembic_safety", "-c", str(ini), "-x", "per_migration=true",
                           "rollback", backup_id, "--confirm", code], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert version(engine) == "0001" and data(engine) == before
