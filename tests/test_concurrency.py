"""Writers during `alembic upgrade` (PostgreSQL): a second process inserts and updates the at-risk
table while a revision drops one of its columns and rewrites another; then `rollback` (merge)
must bring back exactly the snapshot plus the writes that landed — nothing lost, nothing
duplicated.

How the expectations follow from the lock (README, "Consistency and locking"): the snapshot
locks the at-risk table IN SHARE ROW EXCLUSIVE MODE in the migration's transaction before
reading it, and the lock lasts until the step commits.  A write committed before the lock is in
the snapshot; a write that comes later waits for the commit and then meets the new schema.
Every pre-migration write here sets the dropped column, so it either committed before the lock
(and must be in the snapshot) or failed once the column was gone: the writer's log splits
cleanly into writes before the lock and writes after the deploy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .conftest import copy_example
from .helpers import _env, alembic, backups_json, revision_file
from .test_faults import FAULT_ENV
from .test_rollback import roll_back, version

ROWS = 2000
FIRST_NEW_ID = 100_000
REVISION = """
op.drop_column("accounts", "legacy")
op.execute("UPDATE accounts SET tier = 'gold' WHERE balance >= 500")
"""

WRITER = r"""
import json, os, random, sys, time
import psycopg2
from psycopg2 import errors

dsn, log_path, stop_path = sys.argv[1], sys.argv[2], sys.argv[3]
first_id, rows = int(sys.argv[4]), int(sys.argv[5])
conn = psycopg2.connect(dsn)
conn.autocommit = True
cur = conn.cursor()
rng = random.Random(11)
post = False  # once the column is gone, write what the application writes after the deploy
deadline = time.monotonic() + 40
with open(log_path, "a", buffering=1) as log:
    for i in range(6000):
        if os.path.exists(stop_path) or time.monotonic() > deadline:
            break
        insert = i % 3 == 0
        key = first_id + i if insert else rng.randint(1, rows)
        shape, started = "post" if post else "pre", time.monotonic()
        try:
            if insert and not post:
                cur.execute("INSERT INTO accounts (id, balance, tier, legacy) VALUES (%s, %s, %s, %s)",
                            (key, i, f"t{i}", f"new-{i}"))
            elif insert:
                cur.execute("INSERT INTO accounts (id, balance, tier) VALUES (%s, %s, %s)", (key, i, f"t{i}"))
            elif not post:
                cur.execute("UPDATE accounts SET balance = balance + 1, tier = %s, legacy = %s WHERE id = %s",
                            (f"t{i}", f"upd-{i}", key))
            else:
                cur.execute("UPDATE accounts SET balance = balance + 1, tier = %s WHERE id = %s", (f"t{i}", key))
            ok = True
        except errors.UndefinedColumn:
            ok, post = False, True
        log.write(json.dumps({"i": i, "insert": insert, "id": key, "shape": shape, "ok": ok,
                              "waited": round(time.monotonic() - started, 3)}) + "\n")
        time.sleep(0.003)
"""

Row = dict[str, Any]


def writer_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for(path: Path, enough: Any, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not (path.exists() and enough(writer_log(path))):
        assert proc.poll() is None, f"the writer stopped before {what}"
        assert time.monotonic() < deadline, f"no {what} within 30 s"
        time.sleep(0.02)


def apply(state: dict[int, Row], write: dict[str, Any]) -> None:
    """A committed write of the writer's log, applied to the model of the table."""
    i, key = write["i"], write["id"]
    if write["insert"]:
        state[key] = {"balance": i, "tier": f"t{i}", "legacy": f"new-{i}" if write["shape"] == "pre" else None}
    elif key in state:
        row = state[key]
        row.update(balance=row["balance"] + 1, tier=f"t{i}")
        if write["shape"] == "pre":
            row["legacy"] = f"upd-{i}"


@pytest.mark.slow
def test_writers_during_upgrade_then_merge_rollback(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    project = tmp_path / "proj"
    ini = copy_example("shop", project, pg_url)
    (project / "migrations" / "env.py").write_text(FAULT_ENV)  # holds the lock 1.5 s after the step, see below
    versions = project / "migrations" / "versions"
    for name in ("0002_cleanup.py", "0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    (versions / "0002_accounts.py").write_text(revision_file("0002", "0001", "drop legacy, gold tier", REVISION))
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE accounts (id integer PRIMARY KEY, balance integer NOT NULL, tier text, "
                             "legacy text)")  # fmt: skip
        conn.exec_driver_sql(f"INSERT INTO accounts SELECT g, mod(g, 1000), 'basic', 'L' || g "
                             f"FROM generate_series(1, {ROWS}) g")  # fmt: skip
    initial: dict[int, Row] = {
        k: {"balance": k % 1000, "tier": "basic", "legacy": f"L{k}"} for k in range(1, ROWS + 1)
    }

    log, stop = tmp_path / "writer.jsonl", tmp_path / "stop"
    dsn = pg_url.set(drivername="postgresql").render_as_string(hide_password=False)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, dsn, str(log), str(stop), str(FIRST_NEW_ID), str(ROWS)],
                              env=_env())  # fmt: skip
    try:
        wait_for(log, lambda w: len(w) >= 30, "its first writes", writer)
        # the step's lock is held 1.5 s longer (env.py stalls after the checks), so writers pile up on it
        env = {**_env(), "FAULT_AT": "after-step-hooks", "FAULT_HOLD": "1.5", "FAULT_MARKER": str(tmp_path / "held")}
        upgrade = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "0002"], env=env,
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr
        wait_for(log, lambda w: sum(x["shape"] == "post" and x["ok"] for x in w) >= 30, "writes after the deploy",
                 writer)  # fmt: skip
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0

    writes = writer_log(log)
    before_lock = [w for w in writes if w["shape"] == "pre" and w["ok"]]
    refused = [w for w in writes if not w["ok"]]
    after = [w for w in writes if w["shape"] == "post"]
    assert writes[: len(before_lock)] == before_lock  # the log splits cleanly: pre writes, then the rest
    assert len(refused) == 1 and refused[0]["waited"] >= 1.0  # it waited on the lock, then met the new schema
    assert all(w["ok"] for w in after)
    assert sum(w["insert"] for w in before_lock) and sum(w["insert"] for w in after)

    # the model: the table at the lock (= what the snapshot must hold) and after the deploy's writes
    at_lock = {k: dict(v) for k, v in initial.items()}
    for w in before_lock:
        apply(at_lock, w)
    final = {k: dict(v) for k, v in at_lock.items()}
    for row in final.values():
        row["legacy"] = None
        if row["balance"] >= 500:
            row["tier"] = "gold"
    for w in after:
        apply(final, w)
    changed_since = {w["id"] for w in after if not w["insert"]}

    [backup] = backups_json(ini)
    for t in backup["tables"]:  # the snapshot has every row that existed at the lock, no other
        expected = len(at_lock) if t["where"] is None else sum(r["balance"] >= 500 for r in at_lock.values())
        assert t["rows"] == expected, t

    result = roll_back(ini, backup["id"], "--mode", "merge")
    assert result["ok"] is True and version(engine) == "0001"
    with engine.connect() as conn:
        restored = {r.id: {"balance": r.balance, "tier": r.tier, "legacy": r.legacy}
                    for r in conn.execute(sa.text("SELECT id, balance, tier, legacy FROM accounts"))}  # fmt: skip
        assert conn.exec_driver_sql("SELECT count(*) FROM accounts").scalar() == len(restored)
    assert set(restored) == set(final)  # nothing lost, nothing extra
    for key, row in restored.items():
        want = {"balance": final[key]["balance"],  # not in the snapshot: every write kept
                "legacy": at_lock[key]["legacy"] if key in at_lock else None,  # the dropped column: as at the lock
                "tier": at_lock[key]["tier"] if key in at_lock and key not in changed_since else final[key]["tier"]}
        assert row == want, (key, row, want)
    assert any(t["changed_since"] for t in result["tables"])  # rows rewritten since the deploy were reported


@pytest.mark.postgres
def test_tables_are_locked_in_one_order_whatever_the_step_names_first(pg_url: sa.URL, engine_for: Any) -> None:
    """Two migrators (or a migrator and a rollback) locking overlapping tables take the locks in
    the same order (schema, then name), so one waits for the other instead of deadlocking."""
    from alembic_safety.snapshot.backup import lock_tables
    from alembic_safety.sqlinfo import TableRef

    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE SCHEMA s2; CREATE TABLE zeta (id int); CREATE TABLE "Beta" (id int); '
                             "CREATE TABLE s2.alpha (id int)")  # fmt: skip
    seen: list[str] = []
    with engine.begin() as conn:
        sa.event.listen(conn, "before_cursor_execute", lambda *a: seen.append(str(a[2])))
        lock_tables(conn, [TableRef("zeta"), TableRef("alpha", "s2"), TableRef("Beta"), TableRef("zeta")], 5)
    [stmt] = [s for s in seen if s.startswith("LOCK TABLE")]
    assert stmt == 'LOCK TABLE "Beta", zeta, s2.alpha IN SHARE ROW EXCLUSIVE MODE'
