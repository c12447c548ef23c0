"""`alembic-safety health` and `monitor`: JSON shape, exit codes, facts, rounds, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .conftest import copy_example
from .helpers import _env, alembic, safety


def _at_head(url: sa.URL, engine_for: Any, tmp_path: Path) -> Path:
    ini = copy_example("checks", tmp_path / "p", url)
    alembic(ini, "upgrade", "0001")
    with engine_for(url).begin() as conn:
        conn.execute(sa.text("DELETE FROM orders WHERE customer_id > 5"))
    alembic(ini, "upgrade", "head")
    return ini


def _orphan(url: sa.URL, engine_for: Any) -> None:
    with engine_for(url).begin() as conn:  # SQLite: foreign keys are off by default
        conn.execute(sa.text("INSERT INTO orders (id, customer_id, total) VALUES (50, 77, 1)"))


def test_health_json_shape_and_exit_codes(sqlite_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = _at_head(sqlite_url, engine_for, tmp_path)
    proc = safety(ini, "health", "--format", "json")
    data = json.loads(proc.stdout)
    assert set(data) == {"status", "findings", "facts", "checked_at"}
    assert data["status"] == "healthy" and data["findings"] == [] and data["checked_at"].endswith("Z")
    facts = data["facts"]
    assert facts["current"] == ["0002"] and facts["heads"] == ["0002"] and facts["latency_ms"] >= 0
    assert {t["table"]: t["rows_estimate"] for t in facts["tables"]} == {"customers": 5, "orders": 20}
    assert {p["table"] for p in facts["probes"]} == {"customers", "orders"}
    assert facts["long_transactions"] is None and facts["blocked_locks"] is None  # not knowable on SQLite
    assert {"CHK201", "CHK202", "CHK203", "CHK401", "CHK402"} <= set(facts["checks"]["ran"])

    _orphan(sqlite_url, engine_for)
    proc = safety(ini, "health", "--format", "json", check=False)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["status"] == "failed"
    [f] = data["findings"]
    assert set(f) == {"code", "name", "severity", "table", "detail", "sample"}
    assert (f["code"], f["name"], f["severity"], f["table"]) == ("CHK201", "data.fk-orphans", "error", "orders")
    assert f["sample"] == [{"id": 50, "customer_id": 77}]
    text = safety(ini, "health", check=False)
    assert text.returncode == 1 and "failed" in text.stdout and "CHK201 data.fk-orphans on orders" in text.stdout

    # a policy turns it into a warning: degraded, exit 0
    warn = safety(ini, "-x", "check_policies=CHK201=warn", "health", "--format", "json")
    assert json.loads(warn.stdout)["status"] == "degraded"
    # --scope step runs only the cheap checks
    step = json.loads(safety(ini, "health", "--scope", "step", "--format", "json", check=False).stdout)
    assert "CHK401" not in step["facts"]["checks"]["ran"] and step["status"] == "failed"


def test_health_unknown_revision_fails(sqlite_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = _at_head(sqlite_url, engine_for, tmp_path)
    with engine_for(sqlite_url).begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'feedbeef'"))
    proc = safety(ini, "health", "--format", "json", check=False)
    assert proc.returncode == 1
    codes = [f["code"] for f in json.loads(proc.stdout)["findings"]]
    assert "CHK402" in codes


def test_health_exits_2_when_it_cannot_run(tmp_path: Path) -> None:
    url = sa.URL.create("postgresql+psycopg2", username="postgres", host="127.0.0.1", port=1,
                        database="nowhere")  # fmt: skip
    ini = copy_example("checks", tmp_path / "p", url)
    proc = safety(ini, "health", "--format", "json", check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("alembic-safety: error: cannot reach the database")


def test_health_on_postgresql_reports_sessions(pg_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = _at_head(pg_url, engine_for, tmp_path)
    engine = engine_for(pg_url)
    with engine.begin() as conn:  # the example's explicit ids leave the sequences behind (a warning)
        conn.execute(sa.text("SELECT setval('customers_id_seq', 5), setval('orders_id_seq', 22)"))
    clean = json.loads(safety(ini, "health", "--format", "json").stdout)
    assert clean["status"] == "healthy" and clean["facts"]["long_transactions"] == []
    assert clean["facts"]["blocked_locks"] == []

    holder = engine.connect()
    holder.execute(sa.text("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"))
    waiting: list[Any] = []

    def reader() -> None:
        with engine.connect() as conn:
            waiting.append(conn.execute(sa.text("SELECT count(*) FROM customers")).scalar())

    # a transaction open as long on another database of the server is none of this health's business
    elsewhere_engine = sa.create_engine(pg_url.set(database="postgres"))
    elsewhere = elsewhere_engine.connect()
    elsewhere.execute(sa.text("SELECT 'elsewhere-marker'"))
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(1.5)
        proc = safety(ini, "-x", "long_transaction=1s", "-x", "lock_timeout=1s", "-x",
                      "check_policies=CHK201=off,CHK302=off", "health", "--format", "json")  # fmt: skip
    finally:
        holder.rollback()
        holder.close()
        elsewhere.rollback()
        elsewhere.close()
        elsewhere_engine.dispose()
        thread.join(30)
    data = json.loads(proc.stdout)
    assert data["status"] == "degraded" and proc.returncode == 0
    assert {f["code"] for f in data["findings"]} == {"CHK501", "CHK502"}
    assert any("LOCK TABLE customers" in (t["query"] or "") for t in data["facts"]["long_transactions"])
    assert not any("elsewhere-marker" in (t["query"] or "") for t in data["facts"]["long_transactions"])
    [blocked] = data["facts"]["blocked_locks"]
    assert "SELECT count(*) FROM customers" in blocked["query"] and blocked["blocked_by"]
    assert waiting == [5]
    probes = {p["table"]: p for p in data["facts"]["probes"]}
    assert probes["customers"]["ms"] is None and "lock timeout" in probes["customers"]["error"]
    assert probes["orders"]["error"] is None and probes["orders"]["ms"] >= 0


def test_health_on_mariadb(mariadb_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = _at_head(mariadb_url, engine_for, tmp_path)
    data = json.loads(safety(ini, "health", "--format", "json").stdout)
    assert data["status"] == "healthy" and data["facts"]["dialect"] == "mysql"
    assert data["facts"]["long_transactions"] == [] and data["facts"]["blocked_locks"] == []
    with engine_for(mariadb_url).begin() as conn:
        conn.execute(sa.text("SET foreign_key_checks = 0"))
        conn.execute(sa.text("INSERT INTO orders (id, customer_id, total) VALUES (50, 77, 1)"))
    proc = safety(ini, "health", "--format", "json", check=False)
    assert proc.returncode == 1 and json.loads(proc.stdout)["findings"][0]["code"] == "CHK201"


def _audit(ini: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (ini.parent / "backups" / "audit.jsonl").read_text().splitlines()]


def test_monitor_two_rounds(sqlite_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = _at_head(sqlite_url, engine_for, tmp_path)
    proc = safety(ini, "monitor", "--count", "2", "--interval", "0")
    lines = proc.stdout.splitlines()
    assert [ln.split()[1:4] for ln in lines] == [["round", "1", "healthy"], ["round", "2", "healthy"]]
    rounds = [e for e in _audit(ini) if e["event"] == "health"]
    assert [(e["round"], e["status"], e["exit_code"]) for e in rounds] == [(1, "healthy", 0), (2, "healthy", 0)]

    _orphan(sqlite_url, engine_for)
    proc = safety(ini, "monitor", "--count", "2", "--interval", "0", check=False)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    assert "round 1  failed" in out[0] and out[1].startswith("  + error CHK201 data.fk-orphans on orders")
    assert "round 2  failed" in out[2] and len(out) == 3  # details only when findings change


def test_monitor_stops_cleanly_on_sigterm_and_sigint(sqlite_url: sa.URL, engine_for: Any, tmp_path: Path) -> None:
    ini = _at_head(sqlite_url, engine_for, tmp_path)
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen([sys.executable, "-m", "alembic_safety", "-c", str(ini), "monitor", "--interval", "10"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())  # fmt: skip
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "round 1  healthy" in first
        started = time.monotonic()
        os.kill(proc.pid, sig)
        rest, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10
        assert proc.returncode == 0, err
        assert f"stopped ({sig.name}); worst exit status 0" in rest and "Traceback" not in err
