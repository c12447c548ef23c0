"""``alembic-safety demo``: the whole story on an embedded SQLite database.

A real Alembic project is created with ``alembic init``, wired with ``alembic-safety init``,
given three revisions (the last one drops a column, deletes rows and drops a table) and
upgraded by a real ``alembic upgrade head`` process.  The demo then lists the backup the risky
revision produced, verifies its checksums and compares the snapshot with the rows that were
destroyed.  Last, it rolls the risky revision back through the rollback library (plan, then
execute with the plan's confirmation code) and compares a checksum of every affected table's
rows, taken before the risky revision, with one taken after the rollback.  It returns facts;
the CLI tells them.
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
from .rollback import RollbackResult, execute_rollback, plan_rollback
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
    rollback: RollbackResult  # the risky revision rolled back (merge mode, the plan's own code)
    before: dict[str, TableChecksum]  # each affected table before the risky revision ...
    after: dict[str, TableChecksum]  # ... and after the rollback

    @property
    def data_back(self) -> bool:
        """Every affected table has, after the rollback, the rows it had before the risky revision."""
        return bool(self.before) and self.before == self.after


@dataclass(frozen=True)
class TableChecksum:
    rows: int
    sha256: str  # over the rows in primary-key order, columns in the order they had before


def table_checksums(db: Path, columns: dict[str, list[str]]) -> dict[str, TableChecksum]:
    """sha256 of each table's rows as read back, ordered by primary key, with the given columns
    in the given order (a re-added column is last in the table but is hashed where it was)."""
    out: dict[str, TableChecksum] = {}
    with sqlite3.connect(db) as conn:
        for table, cols in columns.items():
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone():
                out[table] = TableChecksum(0, "(table missing)")
                continue
            key = [r[1] for r in sorted(conn.execute(f'PRAGMA table_info("{table}")'), key=lambda r: r[5]) if r[5]]
            present = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            listed = ", ".join(f'"{c}"' if c in present else "NULL" for c in cols)
            order = ", ".join(f'"{k}"' for k in key) or "rowid"
            h = hashlib.sha256()
            n = 0
            for row in conn.execute(f'SELECT {listed} FROM "{table}" ORDER BY {order}'):
                h.update(repr(tuple(row)).encode() + b"\n")
                n += 1
            if set(cols) - present:
                h.update(b"missing columns: " + ",".join(sorted(set(cols) - present)).encode())
            out[table] = TableChecksum(n, h.hexdigest())
    conn.close()
    return out


def _columns(db: Path) -> dict[str, list[str]]:
    """Every table of the demo database (not alembic's) with its columns, in order."""
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                            "'sqlite_%' AND name <> 'alembic_version' ORDER BY name")]  # fmt: skip
        out = {n: [r[1] for r in conn.execute(f'PRAGMA table_info("{n}")')] for n in names}
    conn.close()
    return out


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
    columns = _columns(db)
    before = table_checksums(db, columns)
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

    # the last act: roll the risky revision back, non-interactively (the plan's own code)
    plan = plan_rollback(project, manifest.id, "merge")
    rolled = execute_rollback(project, plan, plan.confirmation_code)
    affected = {t.name: columns.get(t.name, []) for t in manifest.tables}
    after = table_checksums(db, affected)
    return DemoResult(folder, wiring, "".join(outputs), backups, manifest, tuple(results), lost, saved, digest_match,
                      rolled, {t: before[t] for t in affected if t in before}, after)  # fmt: skip


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
