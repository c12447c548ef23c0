"""Security: passwords never leak (output, audit log, backups, reports, docs, process titles,
pg_stat_activity); backup files are 0600 and folders 0700 whatever the umask; a restore never
writes into another database, nor outside what the revision's snapshot could cover.

Every command runs for real, in its own process, as a password-protected PostgreSQL role.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .conftest import PG_HOST, PG_PORT, copy_example, pg_url_for
from .helpers import _env, revision_file

SLOW = """
op.execute("SELECT pg_sleep(3)")
kids = op.create_table("kids", sa.Column("id", sa.Integer, primary_key=True), sa.Column("parent_id", sa.Integer))
op.bulk_insert(kids, [{"id": 1, "parent_id": 9991}, {"id": 2, "parent_id": 9992}])
"""
REFUSED = """
op.add_column("kids", sa.Column("note", sa.Text()))
op.create_foreign_key("fk_kids_parent", "kids", "customers", ["parent_id"], ["id"], postgresql_not_valid=True)
"""


class Runs:
    """Every command the test runs, with everything it printed."""

    def __init__(self, ini: Path) -> None:
        self.ini = ini
        self.outputs: list[str] = []

    def cmd(self, tool: str, *args: str, ini: Path | None = None, code: int | None = 0,
            umask: int = -1) -> subprocess.CompletedProcess[str]:  # fmt: skip
        module = "alembic" if tool == "alembic" else "alembic_safety"
        proc = subprocess.run([sys.executable, "-m", module, "-c", str(ini or self.ini), *args],
                              capture_output=True, text=True, env=_env(), timeout=300, stdin=subprocess.DEVNULL,
                              umask=umask)  # fmt: skip
        self.outputs += [proc.stdout, proc.stderr]
        if code is not None:
            assert proc.returncode == code, f"{tool} {' '.join(args)}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc


@pytest.fixture
def secret_role(pg_url: sa.URL) -> Iterator[tuple[sa.URL, str]]:
    """A LOGIN role with a password that owns the test database; yields (its URL, the password)."""
    tag = uuid.uuid4().hex[:10]
    role, password = f"as_sec_{tag}", f"S3cr3t-{tag}"
    admin = sa.create_engine(pg_url_for("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"CREATE ROLE {prep.quote(role)} LOGIN PASSWORD %(pw)s", {"pw": password})
        conn.exec_driver_sql(f"ALTER DATABASE {prep.quote(str(pg_url.database))} OWNER TO {prep.quote(role)}")
    url = sa.URL.create("postgresql+psycopg2", username=role, password=password, host=PG_HOST, port=PG_PORT,
                        database=pg_url.database)  # fmt: skip
    assert url.password == password and password in url.render_as_string(hide_password=False)
    try:
        yield url, password
    finally:
        own = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")  # as the server's superuser
        with own.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {conn.dialect.identifier_preparer.quote(role)}")
            conn.exec_driver_sql(f"ALTER DATABASE {conn.dialect.identifier_preparer.quote(str(pg_url.database))} "
                                 "OWNER TO CURRENT_USER")  # fmt: skip
        own.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {conn.dialect.identifier_preparer.quote(role)}")
        admin.dispose()


def _project(url: sa.URL, dest: Path, **settings: str) -> Path:
    ini = copy_example("shop", dest, url, **settings)
    versions = dest / "migrations" / "versions"
    for name in ("0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    (versions / "0003_slow.py").write_text(revision_file("0003", "0002", "slow", SLOW).replace(
        "from alembic import op\n", "from alembic import op\nimport sqlalchemy as sa\n"))
    (versions / "0004_refused.py").write_text(revision_file("0004", "0003", "refused by a check", REFUSED).replace(
        "from alembic import op\n", "from alembic import op\nimport sqlalchemy as sa\n"))
    return ini


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def _watch_upgrade(ini: Path, role: str, password: str, runs: Runs) -> list[str]:
    """Run ``alembic upgrade 0003`` (a 3 s step) and read, while it runs, the command lines of
    its processes and the server's view of its sessions; returns what was seen."""
    seen: list[str] = []
    proc = subprocess.Popen([sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "0003"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())  # fmt: skip
    watcher = sa.create_engine(pg_url_for("postgres"))
    sessions = 0
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            for pid in [proc.pid, *_children(proc.pid)]:
                with suppress(OSError):  # the process may be gone already
                    seen.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            with watcher.connect() as conn:
                rows = conn.execute(sa.text("SELECT application_name, query, usename FROM pg_stat_activity "
                                            "WHERE usename = :r"), {"r": role}).all()  # fmt: skip
            sessions += len(rows)
            seen += [f"{r[0]} {r[1]}" for r in rows]
            time.sleep(0.2)
        out, err = proc.communicate(timeout=120)
    finally:
        watcher.dispose()
        if proc.poll() is None:
            proc.kill()
    runs.outputs += [out, err]
    assert proc.returncode == 0, err
    assert sessions, "the migration's session was never seen in pg_stat_activity"
    assert any("pg_sleep" in s for s in seen), "the slow step was not observed while it ran"
    assert any("alembic" in s and "upgrade" in s for s in seen)
    return seen


def _files_under(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file())


@pytest.mark.postgres
@pytest.mark.slow
def test_the_password_appears_nowhere(secret_role: tuple[sa.URL, str], tmp_path: Path) -> None:
    url, password = secret_role
    ini = _project(url, tmp_path / "shop", store="files")
    assert password in ini.read_text()  # the project really connects with it
    runs = Runs(ini)
    runs.cmd("safety", "plan")
    runs.cmd("safety", "plan", "--format", "json")
    runs.cmd("alembic", "upgrade", "0002")
    seen = _watch_upgrade(ini, str(url.username), password, runs)
    refused = runs.cmd("alembic", "upgrade", "0004", code=None)  # an integrity check refuses the step
    assert refused.returncode != 0 and "CHK201" in refused.stderr
    backups = json.loads(runs.cmd("safety", "backups", "--format", "json").stdout)
    backup_id = next(b["id"] for b in backups if b["revision_to"] == "0002")
    runs.cmd("safety", "backups")
    runs.cmd("safety", "show", backup_id)
    shown = json.loads(runs.cmd("safety", "show", backup_id, "--format", "json").stdout)
    assert shown["database"] and "***" in shown["database"]
    runs.cmd("safety", "show", backup_id, "--verify")
    runs.cmd("safety", "plan", "0003:0004", "--format", "markdown")
    runs.cmd("safety", "status")
    (tmp_path / "out").mkdir()  # status --out does not create folders
    runs.cmd("safety", "status", "--format", "markdown", "--out", str(tmp_path / "out" / "status.md"))
    runs.cmd("safety", "status", "--format", "json")
    runs.cmd("safety", "docs", "--out", str(tmp_path / "out" / "docs"))
    runs.cmd("safety", "emergency")
    runs.cmd("safety", "emergency", "--out", str(tmp_path / "out" / "emergency.md"))
    runs.cmd("safety", "health", code=None)
    runs.cmd("safety", "health", "--format", "json", code=None)
    plan = json.loads(runs.cmd("safety", "rollback", backup_id, "--dry-run", "--format", "json").stdout)
    assert "***" in plan["database"]
    runs.cmd("safety", "rollback", backup_id, "--dry-run", "--execute-in-transaction")
    runs.cmd("safety", "rollback", backup_id, "--confirm", "WRONG1", code=2)
    result = json.loads(runs.cmd("safety", "rollback", backup_id, "--confirm", plan["confirmation_code"],
                                 "--format", "json").stdout)  # fmt: skip
    assert result["ok"] is True and Path(result["report"]).is_file()
    # failures: an unreachable server, with the password in the URL
    down = url.set(port=1)
    bad_ini = tmp_path / "shop" / "down.ini"
    bad_ini.write_text(ini.read_text().replace(url.render_as_string(hide_password=False),
                                               down.render_as_string(hide_password=False)))  # fmt: skip
    assert f":{password}@" in bad_ini.read_text() and ":1/" in bad_ini.read_text()
    for args in (("status",), ("health",), ("backups",), ("rollback", backup_id, "--dry-run"), ("plan",)):
        proc = runs.cmd("safety", *args, ini=bad_ini, code=None)
        assert "Traceback" not in proc.stderr, proc.stderr
        if args[0] in ("status", "health", "rollback"):  # backups (files store) and plan work without it
            assert proc.returncode == 2 and "127.0.0.1" in proc.stderr, proc.stderr
    failed = runs.cmd("alembic", "upgrade", "head", ini=bad_ini, code=None)
    assert failed.returncode != 0

    leaks = [text for text in runs.outputs if password in text]
    assert not leaks, leaks[0][:2000]
    assert not [s for s in seen if password in s], "password in a process title or pg_stat_activity"
    checked = 0
    for path in _files_under(tmp_path / "shop" / "backups", tmp_path / "shop" / "migrations" / "rollback",
                             tmp_path / "out"):  # fmt: skip
        assert password.encode() not in path.read_bytes(), path
        checked += 1
    names = {p.name for p in _files_under(tmp_path / "shop" / "backups")}
    assert "audit.jsonl" in names and "manifest.json" in names and any(n.startswith("rollback-") for n in names)
    assert (tmp_path / "out" / "docs" / "EMERGENCY_ROLLBACK_PLAN.md").is_file() and checked > 10
    events = (tmp_path / "shop" / "backups" / "audit.jsonl").read_text()
    assert "step_refused" in events and "rollback_completed" in events


# -- permissions ---------------------------------------------------------------------------------
def _modes(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Every folder and file under ``root`` (and ``root``) whose mode is not 0700 / 0600."""
    bad_dirs = {}
    bad_files = {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir() and mode != 0o700:
            bad_dirs[str(path)] = oct(mode)
        elif path.is_file() and mode != 0o600:
            bad_files[str(path)] = oct(mode)
    return bad_dirs, bad_files


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_backup_files_are_0600_and_folders_0700(sqlite_url: sa.URL, tmp_path: Path, umask: int) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    runs = Runs(ini)
    runs.cmd("alembic", "upgrade", "0002", umask=umask)
    runs.cmd("safety", "backup", "by-hand", umask=umask)
    root = tmp_path / "shop" / "backups"
    assert _modes(root) == ({}, {})
    backup_id = next(b["id"] for b in json.loads(runs.cmd("safety", "backups", "--format", "json").stdout)
                     if b["kind"] == "pre-revision" and b["revision_to"] == "0002")  # fmt: skip
    plan = json.loads(runs.cmd("safety", "rollback", backup_id, "--dry-run", "--format", "json").stdout)
    runs.cmd("safety", "rollback", backup_id, "--confirm", plan["confirmation_code"], umask=umask)
    kinds = {b["kind"] for b in json.loads(runs.cmd("safety", "backups", "--format", "json").stdout)}
    assert kinds == {"pre-revision", "manual", "pre-rollback"}
    names = {p.name for p in root.iterdir()}
    assert "audit.jsonl" in names and any(n.startswith("rollback-") for n in names)
    assert _modes(root) == ({}, {})


# -- restore target ------------------------------------------------------------------------------
def _version(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.postgres
def test_rollback_refuses_a_backup_of_another_database(pg_url: sa.URL, tmp_path: Path) -> None:
    """Another database of the same server, at the same revision with the same rows, sharing the
    backup folder (one alembic.ini per environment, say)."""
    ini = copy_example("shop", tmp_path / "shop", pg_url, store="files")
    runs = Runs(ini)
    runs.cmd("alembic", "upgrade", "0002")
    backup_id = next(b["id"] for b in json.loads(runs.cmd("safety", "backups", "--format", "json").stdout)
                     if b["revision_to"] == "0002")  # fmt: skip
    manifest = json.loads((tmp_path / "shop" / "backups" / backup_id / "manifest.json").read_text())
    assert manifest["source"]["database"] == pg_url.database and manifest["source"]["dialect"] == "postgresql"
    probe = sa.create_engine(pg_url)
    with probe.connect() as conn:
        may = conn.exec_driver_sql("SELECT has_function_privilege('pg_control_system()', 'EXECUTE')").scalar()
    probe.dispose()
    assert manifest["source"].get("system_identifier", "").isdigit() is bool(may)

    clone = f"as_clone_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url_for("postgres"), isolation_level="AUTOCOMMIT")
    prep = admin.dialect.identifier_preparer
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {prep.quote(clone)}")
    other = pg_url.set(database=clone)
    engine = sa.create_engine(other)
    try:
        other_ini = tmp_path / "shop" / "clone.ini"
        other_ini.write_text(ini.read_text().replace(pg_url.render_as_string(hide_password=False),
                                                     other.render_as_string(hide_password=False)))  # fmt: skip
        runs.cmd("alembic", "upgrade", "0002", ini=other_ini)
        with engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar()
        _one_line(runs.cmd("safety", "rollback", backup_id, "--dry-run", ini=other_ini, code=None), 2,
                  "another database", str(pg_url.database), clone)  # fmt: skip
        _one_line(runs.cmd("safety", "rollback", backup_id, "--confirm", "ABCDEF", ini=other_ini, code=None), 2,
                  "another database")  # fmt: skip
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM orders").scalar() == before
        assert _version(engine) == "0002" and not sa.inspect(engine).has_table("notes")
        # the database it came from is fine
        assert runs.cmd("safety", "rollback", backup_id, "--dry-run").returncode == 0
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {prep.quote(clone)} WITH (FORCE)")
        admin.dispose()


def test_rollback_refuses_a_copied_sqlite_file(tmp_path: Path) -> None:
    url = sa.URL.create("sqlite", database=str(tmp_path / "a.db"))
    ini = copy_example("shop", tmp_path / "shop", url)
    runs = Runs(ini)
    runs.cmd("alembic", "upgrade", "0002")
    backup_id = next(b["id"] for b in json.loads(runs.cmd("safety", "backups", "--format", "json").stdout)
                     if b["revision_to"] == "0002")  # fmt: skip
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    other_ini = tmp_path / "shop" / "b.ini"
    other_ini.write_text(ini.read_text().replace(str(tmp_path / "a.db"), str(tmp_path / "b.db")))
    _one_line(runs.cmd("safety", "rollback", backup_id, "--dry-run", ini=other_ini, code=None), 2, "another database")
    assert runs.cmd("safety", "rollback", backup_id, "--dry-run").returncode == 0


@pytest.mark.postgres
def test_a_hand_edited_manifest_cannot_send_the_restore_elsewhere(pg_url: sa.URL, tmp_path: Path) -> None:
    """The manifest's table names drive the restore's INSERT/UPDATE targets and its recorded DDL
    is executed: edited to point at a table in another schema (with the right columns, so the
    restore would succeed there) or to carry another statement, it is refused before anything
    is written."""
    ini = copy_example("shop", tmp_path / "shop", pg_url, store="files")
    runs = Runs(ini)
    runs.cmd("alembic", "upgrade", "0002")
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA victim")
        conn.exec_driver_sql("CREATE TABLE victim.orders (LIKE public.orders INCLUDING ALL)")
        conn.exec_driver_sql("INSERT INTO victim.orders SELECT * FROM public.orders WHERE id <= 3")
        conn.exec_driver_sql("CREATE TABLE victim.notes (id integer PRIMARY KEY, body text)")
    backup_id = next(b["id"] for b in json.loads(runs.cmd("safety", "backups", "--format", "json").stdout)
                     if b["revision_to"] == "0002")  # fmt: skip
    path = tmp_path / "shop" / "backups" / backup_id / "manifest.json"
    original = path.read_text()

    def state() -> Any:
        with engine.connect() as conn:
            return (conn.exec_driver_sql("SELECT count(*), sum(id) FROM victim.orders").one(),
                    conn.exec_driver_sql("SELECT count(*) FROM victim.notes").scalar(),
                    conn.exec_driver_sql("SELECT count(*) FROM public.orders").scalar(),
                    conn.exec_driver_sql("SELECT count(*) FROM public.customers").scalar(),
                    _version(engine))  # fmt: skip

    before = state()
    good = json.loads(runs.cmd("safety", "rollback", backup_id, "--dry-run", "--format", "json").stdout)

    def edited(change: Any) -> None:
        data = json.loads(original)
        change(data)
        path.write_text(json.dumps(data))
        assert runs.cmd("safety", "show", backup_id, "--verify").returncode == 0  # the checksums still agree
        _one_line(runs.cmd("safety", "rollback", backup_id, "--dry-run", code=None), 2, "manifest was changed")
        _one_line(runs.cmd("safety", "rollback", backup_id, "--confirm", good["confirmation_code"], code=None), 2,
                  "manifest was changed")  # fmt: skip
        assert state() == before

    def other_schema(data: dict[str, Any]) -> None:
        for t in data["tables"]:
            if t["name"] in ("orders", "notes"):
                t["schema"] = "victim"

    def extra_statement(data: dict[str, Any]) -> None:
        notes = next(t for t in data["tables"] if t["name"] == "notes")
        notes["definition"]["ddl"][0] += "; DELETE FROM victim.orders"

    def ddl_for_another_table(data: dict[str, Any]) -> None:
        notes = next(t for t in data["tables"] if t["name"] == "notes")
        notes["definition"]["ddl"] = ["CREATE TABLE victim.planted (id integer)"]

    def column_sql(what: str, text: str) -> Any:
        def change(data: dict[str, Any]) -> None:  # a re-added column's type/default become SQL
            for t in data["tables"]:
                for col in t["definition"].get("columns") or []:
                    if t.get("columns") and col["name"] in t["columns"]:
                        col[what] = text
        return change

    edited(other_schema)
    edited(extra_statement)
    edited(ddl_for_another_table)
    edited(column_sql("default", "NULL; DELETE FROM victim.orders; --"))
    edited(column_sql("type", "text DEFAULT (SELECT count(*) FROM victim.orders)"))
    path.write_text(original)
    result = runs.cmd("safety", "rollback", backup_id, "--confirm", good["confirmation_code"], "--format", "json")
    assert json.loads(result.stdout)["ok"] is True
    after = state()
    assert after[:2] == before[:2]  # victim.* untouched by the real rollback too
    assert after[4] == "0001"
    engine.dispose()


@pytest.mark.parametrize("umask", [0o000])
def test_audit_log_alone_is_0600_in_a_new_folder(tmp_path: Path, umask: int) -> None:
    """The audit log may be the first thing written (a command before any backup)."""
    url = sa.URL.create("sqlite", database=str(tmp_path / "a.db"))
    ini = copy_example("shop", tmp_path / "shop", url)
    Runs(ini).cmd("safety", "health", umask=umask, code=None)
    root = tmp_path / "shop" / "backups"
    assert (root / "audit.jsonl").is_file()
    assert _modes(root) == ({}, {})
    assert os.stat(root).st_mode & 0o777 == 0o700
