"""The library behind the CLI verbs: one Alembic project, its settings, store and database.

Database work runs *through the project's own env.py* (as ``alembic current`` does), so
alembic-safety connects exactly the way the project's migrations do — URLs computed in
env.py, async engines and multidb setups included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from .audit import AuditLog, redact_text
from .config import SafetyConfig, from_alembic_config, parse_x_args
from .errors import ConfigError, DatabaseUnavailable, SafetyError, UnknownTable
from .snapshot.backup import BackupRequest, open_store, take_backup
from .snapshot.manifest import Manifest
from .snapshot.policy import SnapshotRequest
from .snapshot.reflect import LiveCatalog
from .snapshot.restore import VerifyResult, verify_backup
from .snapshot.store import BackupStore, IncompleteBackup
from .sqlinfo import TableRef

T = TypeVar("T")


@dataclass(frozen=True)
class Project:
    alembic: Config
    config: SafetyConfig

    @property
    def store(self) -> BackupStore:
        return open_store(self.config)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.config.audit_path)

    def script(self) -> ScriptDirectory:
        try:
            return ScriptDirectory.from_config(self.alembic)
        except CommandError as exc:
            raise ConfigError(f"alembic configuration: {exc}") from exc


def load_project(config_file: str, section: str = "alembic", x_args: tuple[str, ...] = (),
                 toml_file: str | None = None) -> Project:  # fmt: skip
    path = Path(config_file)
    toml = Path(toml_file) if toml_file else path.resolve().parent / "pyproject.toml"
    if not path.is_file():
        raise ConfigError(f"no {config_file} here; run in the project folder or pass -c PATH/alembic.ini")
    cfg = Config(str(path), ini_section=section, toml_file=str(toml) if toml.is_file() else None)
    cfg.cmd_opts = _CmdOpts(list(x_args))  # type: ignore[assignment]
    try:
        cfg.get_main_option("script_location")
    except Exception as exc:
        raise ConfigError(f"{config_file} cannot be read: {str(exc).splitlines()[0]}") from exc
    return Project(cfg, from_alembic_config(cfg, x_args=parse_x_args(list(x_args))))


class _CmdOpts:
    """What env.py may read from ``config.cmd_opts`` (``-x``), as alembic's own parser sets it."""

    def __init__(self, x: list[str]) -> None:
        self.x = x


def with_database(project: Project, work: Callable[[sa.Connection, MigrationContext], T]) -> list[T]:
    """Run ``work`` on each connection the project's env.py configures (one, or one per
    database of a multidb env.py), inside env.py's transaction.  Connection problems become
    DatabaseUnavailable with the password hidden."""
    script = project.script()
    results: list[T] = []

    def fn(rev: Any, context: MigrationContext) -> list[Any]:
        if context.connection is None:
            raise SafetyError("env.py ran in offline mode; alembic-safety needs a database connection")
        results.append(work(context.connection, context))
        return []

    # env.py's logging setup would print alembic's INFO chatter around our own output
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with EnvironmentContext(project.alembic, script, fn=fn, dont_mutate=True):
            script.run_env()
    except SafetyError:
        raise
    except (sa.exc.OperationalError, sa.exc.InterfaceError, ConnectionError, OSError) as exc:
        first = redact_text(str(getattr(exc, "orig", exc) or exc)).strip().splitlines()
        raise DatabaseUnavailable(
            f"cannot reach the database: {first[0] if first else type(exc).__name__}; check sqlalchemy.url "
            "(or how env.py builds it) and that the server is running"
        ) from exc
    except CommandError as exc:
        raise ConfigError(f"alembic: {exc}") from exc
    finally:
        logging.disable(previous)
    return results


def _parse_tables(tables: list[str]) -> list[TableRef]:
    out = []
    for name in tables:
        name = name.strip()
        if not name:
            continue
        schema, _, table = name.rpartition(".")
        out.append(TableRef(table, schema or None))
    return out


def manual_backup(project: Project, name: str, tables: list[str] | None,
                  progress: Callable[[str, int, int], None] | None = None) -> list[Manifest]:  # fmt: skip
    """``alembic-safety backup``: all tables (or the named ones), whole."""

    def work(conn: sa.Connection, ctx: MigrationContext) -> Manifest:
        catalog = LiveCatalog(conn, version_table=ctx.version_table, version_schema=ctx.version_table_schema)
        if tables:
            wanted = _parse_tables(tables)
            resolved = [catalog.resolve(t) for t in wanted]
            missing = [w.key for w, r in zip(wanted, resolved, strict=True) if r is None]
            if missing:
                raise UnknownTable(missing)
            refs = list(dict.fromkeys(r for r in resolved if r is not None))
        else:
            refs = [t for t in catalog.tables([None]) if project.config.wants_table(t.key)]
        if not refs:
            raise SafetyError("the database has no table to back up")
        heads = ctx.get_current_heads()
        current = "+".join(heads) if heads else None
        request = BackupRequest(
            tuple(SnapshotRequest(t, None, None, ("manual backup",)) for t in refs),
            "manual", name=name, revision_from=current, revision_to=current,
        )  # fmt: skip
        manifest = take_backup(conn, request, project.config, audit=project.audit, progress=progress,
                               version_table=ctx.version_table)  # fmt: skip
        assert manifest is not None
        return manifest

    return with_database(project, work)


def show_backup(project: Project, backup_id: str) -> Manifest:
    return project.store.get(backup_id)


def verify(project: Project, backup_id: str) -> tuple[Manifest, list[VerifyResult]]:
    manifest = project.store.get(backup_id)
    results = verify_backup(project.store, manifest)
    project.audit.write("backup_verified", backup_id=manifest.id, ok=all(r.ok for r in results),
                        problems=[f"{r.table}: {r.detail}" for r in results if not r.ok])  # fmt: skip
    return manifest, results


@dataclass(frozen=True)
class PruneResult:
    removed: tuple[Manifest, ...]
    removed_incomplete: tuple[IncompleteBackup, ...]
    kept: int
    dry_run: bool


def prune(project: Project, keep: int | None, dry_run: bool) -> PruneResult:
    """Remove complete backups beyond the newest ``keep`` and every interrupted folder."""
    store = project.store
    keep = project.config.keep if keep is None else keep
    if keep < 0:
        raise SafetyError("--keep must be 0 or more")
    complete = store.list()
    doomed = complete[keep:] if keep else []  # keep = 0 keeps everything, as in the settings
    dead = [i for i in store.incomplete() if i.removable]
    if not dry_run:
        for m in doomed:
            freed = store.delete(m.id)
            project.audit.write("backup_pruned", backup_id=m.id, bytes=freed, reason=f"prune --keep {keep}")
        for inc in dead:
            store.delete(inc.id)
            project.audit.write("backup_pruned", backup_id=inc.id, reason=inc.reason)
    return PruneResult(tuple(doomed), tuple(dead), len(complete) - len(doomed), dry_run)


@dataclass(frozen=True)
class Status:
    current: tuple[str, ...] | None  # None: database not reachable
    heads: tuple[str, ...]
    pending: int | None
    database_error: str | None
    backups: tuple[Manifest, ...]
    incomplete: tuple[IncompleteBackup, ...]
    events: tuple[dict[str, Any], ...]
    backup_dir: str


def status(project: Project, n_backups: int = 5, n_events: int = 10) -> Status:
    script = project.script()
    heads = tuple(script.get_heads())
    current: tuple[str, ...] | None = None
    pending: int | None = None
    error: str | None = None
    try:
        current = with_database(project, lambda conn, ctx: tuple(ctx.get_current_heads()))[0]
    except DatabaseUnavailable as exc:
        error = str(exc)
    if current is not None:
        try:
            lower = current or ("base",)
            pending = sum(1 for _ in script.revision_map.iterate_revisions(heads, lower, implicit_base=True))
        except CommandError as exc:
            error = f"the database is at a revision this project does not know: {exc}"
    store = project.store
    return Status(
        current=current, heads=heads, pending=pending, database_error=error,
        backups=tuple(store.list()[:n_backups]), incomplete=tuple(store.incomplete()),
        events=tuple(project.audit.tail(n_events)), backup_dir=str(project.config.backup_dir),
    )  # fmt: skip
