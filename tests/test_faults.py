"""Fault injection on PostgreSQL: `alembic upgrade` killed (SIGKILL) during the snapshot, during
the step and during the after-step checks; `rollback` killed during the restore; the
migration's connection terminated mid-step; the backup disk full; a read-only backup_dir.

After each: the database is at the old or the new revision (never between) with that
revision's schema, no backup is listed as usable unless it is complete, the audit log parses
line by line (a torn line is skipped, never glued to the next event), and the next command
(`status`, or the same command again) says what happened and what to do.

The kill is placed by the project's env.py (user code, the legitimate place): it writes a
marker file and sleeps when the migration's connection runs a chosen statement, or inside the
after-step hooks, and the test SIGKILLs the process group once the marker is there.  A server
restart is replaced by its per-database equivalent, ``pg_terminate_backend()`` of every backend
of the test's own database while the step runs: the server is shared and must not restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .conftest import copy_example
from .helpers import _env, alembic, backups_json, revision_file, safety
from .test_rollback import COLUMNS, data, plan_json, run_safety, version

FAULT_ENV = '''\
"""The shop's env.py plus a fault seam for the tests (tests/test_faults.py).

FAULT_AT: a regex; right after the migration's connection runs the first statement matching
it (FAULT_SKIP earlier matches are let through), this process writes FAULT_MARKER and stalls
-- in the server (pg_sleep) with FAULT_SERVER_SLEEP=1, else in Python -- for FAULT_HOLD seconds
(default: until it is killed).  FAULT_AT=after-step-hooks stalls inside the after-step hooks,
right after the integrity checks ran."""
import os
import re
import time
from logging.config import fileConfig

from alembic import context
import alembic_safety
from alembic_safety import hooks
from alembic_safety.checks.step import checks_after_step
from sqlalchemy import engine_from_config, event, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

FAULT_AT = os.environ.get("FAULT_AT", "")
HOLD = float(os.environ.get("FAULT_HOLD", "600"))
skip = [int(os.environ.get("FAULT_SKIP", "0"))]


def stall(where, cursor=None):
    with open(os.environ["FAULT_MARKER"] + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {where}")
    os.replace(os.environ["FAULT_MARKER"] + ".tmp", os.environ["FAULT_MARKER"])
    if cursor is not None and os.environ.get("FAULT_SERVER_SLEEP"):
        cursor.execute("SELECT pg_sleep(%s)", (HOLD,))
    else:
        time.sleep(HOLD)


def on_statement(conn, cursor, statement, parameters, context_, executemany):
    if FAULT_AT and FAULT_AT != "after-step-hooks" and re.search(FAULT_AT, statement):
        skip[0] -= 1
        if skip[0] == -1:
            stall(statement, cursor)


def stall_after_checks(session, mctx, info):
    stall("after-step hooks")


if FAULT_AT == "after-step-hooks" and stall_after_checks not in hooks.AFTER_STEP_HOOKS:
    hooks.AFTER_STEP_HOOKS.insert(hooks.AFTER_STEP_HOOKS.index(checks_after_step) + 1, stall_after_checks)


def run_migrations_online():
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as connection:
        event.listen(connection, "after_cursor_execute", on_statement)
        context.configure(connection=connection, target_metadata=None)
        alembic_safety.install(context)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
'''

SNAPSHOT_STATEMENT = {  # the statement right after the first table's snapshot, per store
    "database": r"^CREATE TABLE alembic_safety\.b\w+ AS SELECT",
    "files": r"set_config\('synchronize_seqscans'",  # COPY runs on the raw cursor; this follows it
}


def fault_project(url: sa.URL, dest: Path, **settings: str) -> Path:
    ini = copy_example("shop", dest, url, **settings)
    (dest / "migrations" / "env.py").write_text(FAULT_ENV)
    return ini


@contextmanager
def stalled(tmp_path: Path, cmd: list[str], at: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` (in its own process group) until env.py reports the fault point ``at``;
    the process is killed on the way out whatever happened."""
    marker = tmp_path / f"stalled-{time.monotonic_ns()}"
    log = tmp_path / f"{marker.name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**_env(), "FAULT_AT": at, "FAULT_MARKER": str(marker), **env})  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"{cmd[2:]} ended ({proc.returncode}) before {at!r}:\n{log.read_text()}")
            assert time.monotonic() < deadline, f"{at!r} not reached within 60 s:\n{log.read_text()}"
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def upgrade_cmd(ini: Path, target: str) -> list[str]:
    return [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", target]


def columns(engine: sa.Engine, table: str) -> set[str]:
    insp = sa.inspect(engine)
    return {c["name"] for c in insp.get_columns(table)} if insp.has_table(table) else set()


def assert_shop_at(engine: sa.Engine, revision: str) -> None:
    """The version table and the schema agree: 0001 has customers.phone and notes, 0002 neither."""
    assert version(engine) == revision
    at_0001 = revision == "0001"
    assert ("phone" in columns(engine, "customers")) is at_0001
    assert bool(columns(engine, "notes")) is at_0001


def audit_lines(project: Path) -> list[dict[str, Any]]:
    """Every line of the audit log parses, except torn fragments a killed writer left: those
    are alone on their line (never glued to an event)."""
    events = []
    for line in (project / "backups" / "audit.jsonl").read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            assert line.startswith('{"ts": ') and line.count('"ts"') == 1, f"not a torn event: {line!r}"
    return events


def assert_listing_is_honest(listed: list[dict[str, Any]], project: Path) -> list[dict[str, Any]]:
    """``backups --format json`` (or status's ``backups`` + ``incomplete_backups``): a backup
    listed as complete has its manifest and no in-progress marker (files store); the others are
    listed as incomplete, with a reason and nothing usable."""
    for b in listed:
        folder = project / "backups" / b["id"]
        if b["complete"]:
            if folder.is_dir():
                assert (folder / "manifest.json").is_file() and not (folder / ".inprogress").exists()
        else:
            assert b["reason"] and not b.get("tables") and b.get("total_bytes") is None
            assert not (folder / "manifest.json").exists()
    return listed


def status_listing(report: dict[str, Any], project: Path) -> list[dict[str, Any]]:
    listed = [*report["backups"], *({**i, "complete": False} for i in report["incomplete_backups"])]
    return assert_listing_is_honest(listed, project)


def status_json(ini: Path) -> dict[str, Any]:
    report = json.loads(safety(ini, "status", "--format", "json").stdout)
    assert isinstance(report, dict)
    return report


def one_step(report: dict[str, Any], *fragments: str) -> str:
    """The one next step that contains every fragment."""
    found = [s for s in report["next_steps"] if all(f in s for f in fragments)]
    assert len(found) == 1, (fragments, report["next_steps"])
    return str(found[0])


# -- SIGKILL of `alembic upgrade` -------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("store", ["database", "files"])
def test_sigkill_during_the_snapshot(pg_url: sa.URL, tmp_path: Path, engine_for: Any, store: str) -> None:
    project = tmp_path / "shop"
    ini = fault_project(pg_url, project, store=store)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    with stalled(tmp_path, upgrade_cmd(ini, "0002"), SNAPSHOT_STATEMENT[store]) as proc:
        if store == "files":  # the first table's data file is written, the manifest is not
            [folder] = [p for p in (project / "backups").iterdir() if p.is_dir()]
            assert (folder / ".inprogress").exists() and list(folder.glob("001.*.zst"))
        kill(proc)
    # a writer killed mid-line leaves a fragment: readers skip it, the next event starts a new line
    with (project / "backups" / "audit.jsonl").open("a") as fh:
        fh.write('{"ts": "2026-11-21T20:38:11.801Z", "event": "backup_comp')

    assert_shop_at(engine, "0001")
    assert data(engine) == before
    listed = assert_listing_is_honest(backups_json(ini), project)
    started = [e for e in audit_lines(project) if e["event"] == "backup_started"]
    assert started[-1]["pid"] == proc.pid and started[-1]["kind"] == "pre-revision"
    backup_id = started[-1]["backup_id"]
    if store == "files":  # the folder without a manifest: incomplete, never usable
        assert [(b["id"], b["complete"]) for b in listed] == [(backup_id, False)]
        assert f"pid {proc.pid} is gone" in listed[0]["reason"]
    else:  # the snapshot table went with the step's transaction
        assert listed == []
    report = status_json(ini)
    step = one_step(report, "upgrade 0001 -> 0002", "never recorded its end", "run `alembic upgrade` again")
    assert "still at 0001" in step and backup_id in step
    assert ("incomplete and never usable" in step) is (store == "files")
    assert [(u["kind"], u["backup_id"], u["running"]) for u in report["interrupted"]] == [("step", backup_id, False)]

    # the next command: the same upgrade again, which completes and clears the story
    alembic(ini, "upgrade", "0002")
    assert_shop_at(engine, "0002")
    report = status_json(ini)
    assert [b["complete"] for b in status_listing(report, project)] == [True]  # retention removed the folder
    assert report["interrupted"] == [] and not [s for s in report["next_steps"] if "never recorded" in s]
    events = audit_lines(project)
    assert events[-1]["event"] == "revision_applied" and events[-1]["revision"] == "0002"


@pytest.mark.slow
def test_sigkill_during_the_step(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """Killed after the step's DELETE ran, before the version moved: PostgreSQL rolls it all
    back, the database store's snapshot with it."""
    project = tmp_path / "shop"
    ini = fault_project(pg_url, project)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    with stalled(tmp_path, upgrade_cmd(ini, "0002"), r"^DELETE FROM orders") as proc:
        kill(proc)
    assert_shop_at(engine, "0001")
    assert data(engine) == before
    events = audit_lines(project)
    assert [e["event"] for e in events[-2:]] == ["backup_started", "backup_completed"]
    report = status_json(ini)
    assert status_listing(report, project) == []
    step = one_step(report, "upgrade 0001 -> 0002", "never recorded its end")
    assert "still at 0001 (PostgreSQL rolled the step back)" in step
    assert f"its backup {events[-1]['backup_id']} went with the rolled-back transaction" in step


@pytest.mark.slow
def test_sigkill_during_the_after_step_checks(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """Files store: the backup was complete before the step ran; the step and the version
    update are rolled back, so the complete backup protects a revision that never landed."""
    project = tmp_path / "shop"
    ini = fault_project(pg_url, project, store="files")
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    with stalled(tmp_path, upgrade_cmd(ini, "0002"), "after-step-hooks") as proc:
        assert version(engine) == "0001"  # the step ran and the version moved, uncommitted: unseen here
        kill(proc)
    assert_shop_at(engine, "0001")
    assert data(engine) == before
    assert "revision_applied" not in [e["event"] for e in audit_lines(project)][-3:]
    report = status_json(ini)
    [backup] = status_listing(report, project)
    assert backup["complete"] and backup["revision_to"] == "0002"
    step = one_step(report, "upgrade 0001 -> 0002", "never recorded its end")
    assert f"its backup {backup['id']} is complete, but nothing of the step was applied" in step
    # and a rollback from it says there is nothing to roll back
    refused = run_safety(ini, "rollback", backup["id"], "--dry-run")
    assert refused.returncode == 2 and "not applied" in refused.stderr and "nothing to roll back" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


# -- SIGKILL of `alembic-safety rollback` -----------------------------------------------------
@pytest.mark.slow
def test_sigkill_of_rollback_during_the_restore(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    project = tmp_path / "shop"
    ini = fault_project(pg_url, project)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    alembic(ini, "upgrade", "0002")
    deployed = data(engine)
    [backup] = backups_json(ini)
    code = plan_json(ini, backup["id"])["confirmation_code"]
    cmd = [sys.executable, "-m", "alembic_safety", "-c", str(ini), "rollback", backup["id"], "--confirm", code]
    with stalled(tmp_path, cmd, r"^UPDATE customers SET phone=") as proc:  # the dropped column's refill
        kill(proc)
    assert_shop_at(engine, "0002")  # the downgrade and the converge ran in the same transaction
    assert data(engine) == deployed
    events = audit_lines(project)
    assert "rollback_started" in [e["event"] for e in events]
    assert not {"rollback_completed", "rollback_failed"} & {e["event"] for e in events}
    report = status_json(ini)
    assert [b["id"] for b in status_listing(report, project)] == [backup["id"]]  # the pre-rollback one went too
    step = one_step(report, f"the rollback of {backup['id']}", "never recorded its end")
    assert "still at 0002 (nothing was rolled back: PostgreSQL undid the whole rollback)" in step
    assert f"alembic-safety rollback {backup['id']} --dry-run" in step
    assert [u["kind"] for u in report["interrupted"]] == ["rollback"]

    # the next command: the rollback again (same plan, same code), which completes
    done = run_safety(ini, "rollback", backup["id"], "--confirm", code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_shop_at(engine, "0001")
    assert data(engine) == before
    assert [e["event"] for e in audit_lines(project)][-1] == "rollback_completed"


# -- the connection dies mid-step (what a server restart looks like to the migration) ---------
@pytest.mark.slow
def test_connection_terminated_mid_step(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """In place of restarting the shared server: pg_terminate_backend() of every backend of the
    test's own database while the step's session is busy in the server."""
    project = tmp_path / "shop"
    ini = fault_project(pg_url, project)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    with stalled(tmp_path, upgrade_cmd(ini, "0002"), r"^DELETE FROM orders", FAULT_SERVER_SLEEP="1") as proc:
        with engine.connect() as conn:
            busy = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND state = 'active' AND query LIKE :q")
            deadline = time.monotonic() + 30
            while not conn.execute(busy, {"q": "SELECT pg_sleep%"}).scalar():
                assert time.monotonic() < deadline
                time.sleep(0.02)
            killed = conn.exec_driver_sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid()").scalar()
        assert killed >= 1
        assert proc.wait(timeout=30) == 1  # alembic reports the lost connection and exits
    assert_shop_at(engine, "0001")
    assert data(engine) == before
    [failed] = [e for e in audit_lines(project) if e["event"] == "revision_failed"]
    assert failed["revision"] == "0002" and "OperationalError" in failed["error"]
    report = status_json(ini)
    assert status_listing(report, project) == []
    assert report["last_failure"]["event"] == "revision_failed" and report["interrupted"] == []
    step = one_step(report, "upgrade 0001 -> 0002 failed at", "run it again")
    assert "OperationalError" in step and "\n" not in step

    alembic(ini, "upgrade", "0002")  # the next command: the same upgrade, now complete
    assert_shop_at(engine, "0002")
    report = status_json(ini)
    assert report["last_failure"] is None and not [s for s in report["next_steps"] if "failed at" in s]


# -- the backup disk -------------------------------------------------------------------------
@contextmanager
def small_disk(path: Path, size: str = "256k", read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` (read-only if asked), unmounted on the way out.
    Root ignores permission bits, so only a mount makes a folder full or read-only for it."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"these tests mount a small tmpfs (as root): mount failed: {proc.stderr.strip()}", pytrace=False)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def big_table_project(url: sa.URL, dest: Path, engine: sa.Engine, **settings: str) -> Path:
    """The shop's 0001, then 0002 drops a column of a table whose snapshot is ~700 KB."""
    ini = copy_example("shop", dest, url, **settings)
    versions = dest / "migrations" / "versions"
    for name in ("0002_cleanup.py", "0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    (versions / "0002_payload.py").write_text(revision_file("0002", "0001", "drop the payload",
                                                            'op.drop_column("big", "payload")'))  # fmt: skip
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload "
                             "FROM generate_series(1, 20000) g")  # fmt: skip
        conn.exec_driver_sql("ALTER TABLE big ADD PRIMARY KEY (id)")
    return ini


def fill(folder: Path) -> Path:
    """Write into ``folder`` until its disk is full; returns the filler file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 512)
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_backup_disk_full(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    project = tmp_path / "proj"
    engine = engine_for(pg_url)
    ini = big_table_project(pg_url, project, engine, store="files")
    with small_disk(project / "backups"):
        alembic(ini, "upgrade", "0001")
        # the snapshot outgrows the disk: the step is refused, its folder removed, the failure logged
        proc = alembic(ini, "upgrade", "0002", check=False)
        assert proc.returncode == 1
        assert "SnapshotError" in proc.stderr and "No space left on device" in proc.stderr
        assert version(engine) == "0001" and "payload" in columns(engine, "big")
        assert not [p for p in (project / "backups").iterdir() if p.is_dir()]
        assert [e["event"] for e in audit_lines(project)][-2:] == ["backup_started", "backup_failed"]
        report = status_json(ini)
        assert status_listing(report, project) == []
        step = one_step(report, "failed at", "No space left on device")
        assert "the step it protected was refused and nothing of it ran" in step
        one_step(report, "backup_dir", "free: snapshots and audit events need room")

        # now the disk is full before the step: one clear line (the audit log's or the store's: whichever
        # write comes first that does not fit), nothing done, a torn audit line at worst
        filler = fill(project / "backups")
        proc = alembic(ini, "upgrade", "0002", check=False)
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert "SafetyError: cannot write" in last and "No space left on device" in last and "backup_dir" in last
        assert version(engine) == "0001" and "payload" in columns(engine, "big")
        filler.unlink()
        audit_lines(project)  # parses (a torn line, if the disk cut one, alone on its line)
        assert backups_json(ini) == []


@pytest.mark.slow
def test_read_only_backup_dir(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """The database store (PostgreSQL's default) keeps no snapshot there, but the audit log is
    there: every step is recorded or refused, so the step is refused with one clear line."""
    project = tmp_path / "shop"
    ini = copy_example("shop", project, pg_url)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    with small_disk(project / "backups", read_only=True):
        proc = alembic(ini, "upgrade", "0002", check=False)
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert "cannot write the audit log" in last and "Read-only file system" in last
        assert "set backup_dir to a writable folder" in last
        assert_shop_at(engine, "0001")
        assert data(engine) == before
        report = status_json(ini)
        assert status_listing(report, project) == []
        one_step(report, "is not writable", "set backup_dir to a writable folder")
        # a command that writes the audit log says the same in one line (exit 2, no traceback)
        refused = safety(ini, "backup", check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.count("\n") == 1 and "cannot write the audit log" in refused.stderr
    assert_shop_at(engine, "0001")
    assert set(COLUMNS) <= set(sa.inspect(engine).get_table_names())
