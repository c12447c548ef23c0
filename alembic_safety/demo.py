"""``alembic-safety demo``: the whole story on an embedded SQLite database.

A real Alembic project is created with ``alembic init``, wired with ``alembic-safety init``,
given three revisions (the last one drops a column, deletes rows and drops a table) and
upgraded by a real ``alembic upgrade head`` process.  The demo then lists the backup the risky
revision produced, verifies its checksums and compares the snapshot with the rows that were
destroyed.  It returns facts; the CLI tells them.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

from .errors import SafetyError
from .project import Project, load_project, verify
from .snapshot.manifest import Manifest
from .snapshot.restore import VerifyResult
from .templating import macro, render
from .wiring import FileChange, apply_changes, plan_init

CUSTOMERS = 200
ORDERS = 1000
REVISIONS = (
    ("1a2b3c4d5e6f", None, "create customers and orders", "create"),
    ("2b3c4d5e6f70", "1a2b3c4d5e6f", "add loyalty tier", "tier"),
    ("3c4d5e6f7081", "2b3c4d5e6f70", "drop legacy phone, purge cancelled orders", "cleanup"),
)


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    wiring: tuple[FileChange, ...]
    alembic_output: str
    backups: tuple[Manifest, ...]
    risky: Manifest
    verified: tuple[VerifyResult, ...]
    lost: dict[str, int]  # what the revision destroyed, counted in the live database
    saved: dict[str, int]  # what the snapshot holds, per table
    digest_match: bool  # the destroyed phone numbers equal the snapshot's, value for value


def _write_project(folder: Path) -> tuple[Path, tuple[FileChange, ...]]:
    ini = folder / "alembic.ini"
    cfg = Config(str(ini), stdout=io.StringIO())  # alembic init's chatter is not the story
    command.init(cfg, str(folder / "migrations"), template="generic")
    text = ini.read_text()
    ini.write_text(text.replace("driver://user:pass@localhost/dbname", "sqlite:///%(here)s/shop.db"))
    changes = plan_init(ini, folder / "migrations" / "env.py")
    apply_changes(changes)
    versions = folder / "migrations" / "versions"
    for revision, down, message, story in REVISIONS:
        up = macro("demo/stories.j2", f"{story}_upgrade", customers=CUSTOMERS, orders=ORDERS) if story == "create" \
            else macro("demo/stories.j2", f"{story}_upgrade")  # fmt: skip
        body = render("demo/revision.py.j2", message=message, revision=revision, down_revision=down,
                      upgrade=up, downgrade=macro("demo/stories.j2", f"{story}_downgrade"))  # fmt: skip
        (versions / f"{revision}_{story}.py").write_text(body)
    return ini, tuple(changes)


def _phones_digest(rows: list[tuple[object, ...]]) -> str:
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: str(r[0])):
        h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def run_demo(folder: Path) -> DemoResult:
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise SafetyError(f"{folder} is not empty; the demo needs an empty folder")
    ini, wiring = _write_project(folder)
    db = folder / "shop.db"

    # the two first revisions, then a look at what the risky one will destroy
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ALEMBIC_SAFETY_BACKUP_DIR", None)
    run = [sys.executable, "-m", "alembic", "-c", str(ini)]
    outputs = []
    first = subprocess.run([*run, "upgrade", "2b3c4d5e6f70"], cwd=folder, env=env, capture_output=True, text=True)
    outputs.append(first.stdout + first.stderr)
    if first.returncode:
        raise SafetyError(f"the demo's alembic upgrade failed:\n{first.stderr.strip()}")
    with sqlite3.connect(db) as conn:
        phones = conn.execute("SELECT id, legacy_phone FROM customers").fetchall()
        lost = {
            "customers.legacy_phone": len(phones),
            "orders (cancelled)": conn.execute("SELECT count(*) FROM orders WHERE status = 'cancelled'").fetchone()[0],
            "old_audit": conn.execute("SELECT count(*) FROM old_audit").fetchone()[0],
        }
    conn.close()
    second = subprocess.run([*run, "upgrade", "head"], cwd=folder, env=env, capture_output=True, text=True)
    outputs.append(second.stdout + second.stderr)
    if second.returncode:
        raise SafetyError(f"the demo's alembic upgrade failed:\n{second.stderr.strip()}")

    project = load_project(str(ini))
    backups = tuple(project.store.list())
    risky = next(b for b in backups if b.revision_to == REVISIONS[-1][0])
    manifest, results = verify(project, risky.id)
    saved = {t.key: t.rows for t in manifest.tables}
    # read the phone numbers back out of the snapshot into a scratch table and compare
    digest_match = _snapshot_phones_digest(project, manifest, folder) == _phones_digest(phones)
    return DemoResult(folder, wiring, "".join(outputs), backups, manifest, tuple(results), lost, saved, digest_match)


def _snapshot_phones_digest(project: Project, manifest: Manifest, folder: Path) -> str:
    import sqlalchemy as sa

    from .snapshot.restore import restore_table
    from .sqlinfo import TableRef

    snap = next(t for t in manifest.tables if t.name == "customers")
    engine = sa.create_engine(f"sqlite:///{folder / 'scratch.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE phones (id INTEGER PRIMARY KEY, legacy_phone VARCHAR(40))")
            restore_table(conn, project.store, manifest, snap, TableRef("phones"))
            rows = conn.exec_driver_sql("SELECT id, legacy_phone FROM phones").fetchall()
    finally:
        engine.dispose()
    return _phones_digest([tuple(r) for r in rows])
