"""The library behind the CLI verbs: one Alembic project, its settings, store and database.

Database work runs *through the project's own env.py* (as ``alembic current`` does), so
alembic-safety connects exactly the way the project's migrations do — URLs computed in
env.py, async engines and multidb setups included.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from . import _compat
from .audit import AuditLog, redact_text
from .config import SafetyConfig, from_alembic_config, parse_x_args
from .errors import BackupCorrupt, BackupNotFound, ConfigError, DatabaseUnavailable, SafetyError, UnknownTable
from .snapshot.backup import BackupRequest, database_store, open_store, take_backup
from .snapshot.dbstore import COPIED, DatabaseStore, snapshot_table_name
from .snapshot.engines import engine_for
from .snapshot.manifest import Manifest
from .snapshot.policy import SnapshotRequest
from .snapshot.reflect import LiveCatalog
from .snapshot.restore import VerifyResult, restore_table, verify_backup
from .snapshot.store import BackupStore, FileStore, IncompleteBackup
from .snapshot.streams import COMPRESSION, HASH_ALGORITHM, SnapshotSink
from .sqlinfo import TableRef

T = TypeVar("T")
S = TypeVar("S", bound="BackupStore | DatabaseStore")


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
        """The project's scripts, every revision file imported (see :func:`load_revisions`)."""
        try:
            script = ScriptDirectory.from_config(self.alembic)
        except CommandError as exc:
            raise ConfigError(f"alembic configuration: {exc}") from exc
        load_revisions(script)
        return script


_PACKAGE = Path(__file__).resolve().parent


def _project_roots(script: ScriptDirectory) -> list[Path]:
    """The folders of the project's own Alembic code: env.py's folder and the version locations."""
    return [Path(p).resolve() for p in (script.dir, script.versions, *script.version_locations)]


def _inside(path: str, roots: list[Path]) -> bool:
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return False
    return any(resolved.is_relative_to(root) for root in roots)


def project_code_failure(exc: BaseException, script: ScriptDirectory) -> str | None:
    """When ``exc`` was raised by the project's own code (env.py or a revision file, at import
    or at module level), one line naming the file and line; None when it came from elsewhere
    (alembic-safety itself among them: that is a bug to report, not the user's file)."""
    roots = _project_roots(script)
    if isinstance(exc, SyntaxError) and exc.filename and _inside(exc.filename, roots):
        where: tuple[str, int | None] = (str(Path(exc.filename).resolve()), exc.lineno)
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        last = max((i for i, f in enumerate(frames) if _inside(f.filename, roots)), default=None)
        if last is None or any(_inside(f.filename, [_PACKAGE]) for f in frames[last + 1:]):
            return None
        where = (str(Path(frames[last].filename).resolve()), frames[last].lineno)
    lines = str(exc.msg if isinstance(exc, SyntaxError) else exc).strip().splitlines()
    what = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    line = f" (line {where[1]})" if where[1] else ""
    versions = _project_roots(script)[1:]
    hint = " (or move it out of the versions folder)" if _inside(where[0], versions) else ""
    return f"{where[0]}{line} fails: {what}; fix that file{hint}"


def load_revisions(script: ScriptDirectory) -> None:
    """Import every revision file now, so that one which cannot be imported (a syntax error, a
    missing module, an exception or ``sys.exit`` at module level), a ``down_revision`` naming no
    revision and a revision id present twice are one line naming the problem — before anything
    is read or written — instead of an error deep inside a command."""
    caught: list[warnings.WarningMessage] = []
    failure: BaseException | None = None
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        try:
            script.get_heads()
        except (SafetyError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # SystemExit at module level included
            failure = exc
        caught = list(recorded)
    graph = [str(w.message) for w in caught if issubclass(w.category, UserWarning)
             and ("is not present" in str(w.message) or "present more than once" in str(w.message))]  # fmt: skip
    if graph:  # alembic only warns, then fails later (or silently keeps one of two revisions)
        raise ConfigError(f"alembic: {graph[0]}; fix down_revision (or the duplicate revision id) in "
                          f"the revision files in {script.versions}") from failure  # fmt: skip
    if isinstance(failure, CommandError):
        raise ConfigError(f"alembic: {failure}") from failure
    if failure is not None:
        message = project_code_failure(failure, script)
        if message is None:
            lines = str(failure).strip().splitlines()
            message = (f"the revision files in {script.versions} cannot be loaded: {type(failure).__name__}: "
                       f"{lines[0] if lines else ''}")  # fmt: skip
        raise ConfigError(message) from failure
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


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
        try:
            results.append(work(context.connection, context))
        except OSError as exc:  # the files alembic-safety writes (backup_dir), not the database
            where = f" ({exc.filename})" if exc.filename else ""
            raise SafetyError(f"cannot use the backup folder: {exc.strerror or exc}{where}; check that "
                              "backup_dir is a writable folder") from exc  # fmt: skip
        except sa.exc.DBAPIError as exc:
            # connected: an error here is the database refusing a statement, not an outage
            first = redact_text(str(getattr(exc, "orig", exc) or exc)).strip().splitlines()
            raise SafetyError(f"the database refused a statement: {first[0] if first else type(exc).__name__}"
                              ) from exc  # fmt: skip
        per_step = bool(context.opts.get("transaction_per_migration"))
        if ((not context.impl.transactional_ddl or per_step) and context.connection.in_transaction()
                and not _compat.transaction_begun_by_env(context)):  # fmt: skip
            # env.py's context.begin_transaction() is a no-op without transactional DDL, and with
            # transaction_per_migration (transactions begin per step, and no step ran): commit
            # what the work wrote (a backup, a catalogue row), as a migration step would
            context.connection.commit()
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
    except Exception as exc:
        message = project_code_failure(exc, script)  # env.py's own error, e.g. a missing import
        if message is None:
            raise
        raise ConfigError(message) from exc
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
        db = database_store(conn, project.config)
        if db is not None:
            db.ensure()
        audit = AuditLog(project.config.audit_path, db.record_event if db is not None else None)
        manifest = take_backup(conn, request, project.config, audit=audit, progress=progress,
                               db=db, catalog=catalog)  # fmt: skip
        assert manifest is not None
        return manifest

    return with_database(project, work)


AnyStore = BackupStore | DatabaseStore


StoreWork = Callable[[list[AnyStore], sa.Connection | None, MigrationContext | None], T]


def with_stores(project: Project, work: StoreWork[T]) -> T:
    """Run ``work`` with the project's stores: the database store first (connected through
    env.py) when the settings choose it, then the files store (which also holds exports)."""
    files = FileStore(project.config.backup_dir)
    if project.config.store == "files":
        return work([files], None, None)

    def on_db(conn: sa.Connection, ctx: MigrationContext) -> T:
        db = database_store(conn, project.config)
        return work([db, files] if db is not None else [files], conn, ctx)

    return with_database(project, on_db)[0]


def find_backup(stores: Sequence[S], backup_id: str) -> tuple[S, Manifest]:
    """The store holding ``backup_id`` and its manifest; an ambiguous, incomplete or malformed id
    is an error at once, an id no store holds is BackupNotFound."""
    missing: BackupNotFound | None = None
    for store in stores:
        try:
            return store, store.get(backup_id)
        except BackupNotFound as exc:
            if "ambiguous" in str(exc) or "incomplete" in str(exc) or "not a backup id" in str(exc):
                raise
            missing = missing or exc
    raise missing or BackupNotFound(backup_id)


def _listing(stores: list[AnyStore]) -> tuple[list[Manifest], list[IncompleteBackup]]:
    """Complete backups of every store, newest first, and the incomplete ones."""
    manifests = sorted((m for s in stores for m in s.list()), key=lambda m: m.id, reverse=True)
    return manifests, [i for s in stores for i in s.incomplete()]


def list_backups(project: Project) -> tuple[list[Manifest], list[IncompleteBackup]]:
    return with_stores(project, lambda stores, conn, ctx: _listing(stores))


def show_backup(project: Project, backup_id: str) -> Manifest:
    return with_stores(project, lambda stores, conn, ctx: find_backup(stores, backup_id)[1])


def verify(project: Project, backup_id: str) -> tuple[Manifest, list[VerifyResult]]:
    def work(stores: list[AnyStore], conn: Any, ctx: Any) -> tuple[Manifest, list[VerifyResult]]:
        store, manifest = find_backup(stores, backup_id)
        results = store.verify(manifest) if isinstance(store, DatabaseStore) else verify_backup(store, manifest)
        return manifest, results

    manifest, results = with_stores(project, work)
    project.audit.write("backup_verified", backup_id=manifest.id, ok=all(r.ok for r in results),
                        problems=[f"{r.table}: {r.detail}" for r in results if not r.ok])  # fmt: skip
    return manifest, results


@dataclass(frozen=True)
class PruneResult:
    removed: tuple[Manifest, ...]
    removed_incomplete: tuple[IncompleteBackup, ...]
    kept: int
    dry_run: bool
    freed: int


def prune(project: Project, keep: int | None, dry_run: bool) -> PruneResult:
    """Remove complete backups beyond the newest ``keep`` (per store) and every interrupted one."""
    keep = project.config.keep if keep is None else keep
    if keep < 0:
        raise SafetyError("--keep must be 0 or more")

    def work(stores: list[AnyStore], conn: Any, ctx: Any) -> PruneResult:
        removed: list[Manifest] = []
        dead_all: list[IncompleteBackup] = []
        kept = 0
        freed = 0
        for store in stores:
            complete = store.list()
            doomed = complete[keep:] if keep else []  # keep = 0 keeps everything, as in the settings
            dead = [i for i in store.incomplete() if i.removable]
            kept += len(complete) - len(doomed)
            removed += doomed
            dead_all += dead
            if dry_run:
                continue
            for m in doomed:
                n = store.delete(m.id)
                freed += n
                project.audit.write("backup_pruned", backup_id=m.id, bytes=n, store=store.name,
                                    reason=f"prune --keep {keep}")  # fmt: skip
            for inc in dead:
                freed += store.delete(inc.id)
                project.audit.write("backup_pruned", backup_id=inc.id, store=store.name, reason=inc.reason)
        return PruneResult(tuple(removed), tuple(dead_all), kept, dry_run, freed)

    return with_stores(project, work)


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
    store: str
    snapshot_bytes: int | None  # space the snapshot schema occupies (database store)


def status(project: Project, n_backups: int = 5, n_events: int = 10) -> Status:
    script = project.script()
    heads = tuple(script.get_heads())
    current: tuple[str, ...] | None = None
    pending: int | None = None
    error: str | None = None
    files = FileStore(project.config.backup_dir)
    listed: tuple[list[Manifest], list[IncompleteBackup], int | None, str] | None = None

    def work(conn: sa.Connection, ctx: MigrationContext) -> tuple[str, ...]:
        nonlocal listed
        db = database_store(conn, project.config) if project.config.store != "files" else None
        if db is not None:
            manifests, incomplete = _listing([db, files])
            listed = (manifests, incomplete, db.space() if db.exists() else 0, "database")
        return tuple(ctx.get_current_heads())

    try:
        current = with_database(project, work)[0]
    except DatabaseUnavailable as exc:
        error = str(exc)
    if current is not None:
        try:
            lower = current or ("base",)
            pending = sum(1 for _ in script.revision_map.iterate_revisions(heads, lower, implicit_base=True))
        except CommandError as exc:
            error = f"the database is at a revision this project does not know: {exc}"
    if listed is None:  # the files store, or the database could not be reached
        listed = (*_listing([files]), None, "files")
    return Status(
        current=current, heads=heads, pending=pending, database_error=error,
        backups=tuple(listed[0][:n_backups]), incomplete=tuple(listed[1]),
        events=tuple(project.audit.tail(n_events)), backup_dir=str(project.config.backup_dir),
        store=listed[3], snapshot_bytes=listed[2],
    )  # fmt: skip


def export_backup(project: Project, backup_id: str, to: Path | None = None) -> tuple[Manifest, Path]:
    """Copy an in-database backup into the files store (``to``, default ``backup_dir``),
    after verifying it; streamed, compressed and checksummed like any file snapshot."""

    def work(stores: list[AnyStore], conn: Any, ctx: Any) -> tuple[Manifest, Path]:
        store, manifest = find_backup(stores, backup_id)
        if not isinstance(store, DatabaseStore):
            raise SafetyError(f"backup {manifest.id} is already in the files store ({project.config.backup_dir})")
        bad = [r for r in store.verify(manifest) if not r.ok]
        if bad:
            raise BackupCorrupt(f"backup {manifest.id} failed verification ({bad[0].table}: {bad[0].detail}); "
                                "not exported")  # fmt: skip
        manifest = store.get(manifest.id)  # checksums of moved tables are sealed now
        dest = FileStore(to or project.config.backup_dir)
        writer = dest.begin(manifest.id)
        engine = engine_for(conn)
        tables = []
        try:
            for index, t in enumerate(manifest.tables, start=1):
                name, fh = writer.open_table(index, engine.format)
                sink = SnapshotSink(fh, level=project.config.compression_level)
                order = [c for c in t.primary_key if c in t.stored_columns]
                rows = engine.dump(conn, TableRef(t.file, store.schema), list(t.stored_columns), None, order, sink)
                checksum, raw, stored = sink.finish()
                tables.append(replace(t, file=name, format=engine.format, checksum=checksum, rows=rows,
                                      bytes=stored, raw_bytes=raw))  # fmt: skip
            exported = replace(manifest, store="files", tables=tuple(tables), hash_algorithm=HASH_ALGORITHM,
                               compression=COMPRESSION, notes=(*manifest.notes, "exported from the database store"))
            writer.commit(exported)
        except BaseException:
            writer.abort()
            raise
        return exported, dest.root / manifest.id

    manifest, path = with_stores(project, work)
    project.audit.write("backup_exported", backup_id=manifest.id, to=str(path))
    return manifest, path


def import_backup(project: Project, folder: Path) -> Manifest:
    """Bring an exported backup (a folder with manifest.json) back into the database store."""
    folder = folder.resolve()
    source = FileStore(folder.parent)
    try:
        manifest = source.get(folder.name)
    except BackupNotFound as exc:
        raise SafetyError(f"{folder} is not a complete backup folder (it needs a manifest.json)") from exc
    bad = [r for r in verify_backup(source, manifest) if not r.ok]
    if bad:
        raise BackupCorrupt(f"{folder}: {bad[0].table}: {bad[0].detail}; not imported")

    def work(stores: list[AnyStore], conn: Any, ctx: Any) -> Manifest:
        db = next((s for s in stores if isinstance(s, DatabaseStore)), None)
        if db is None:
            raise SafetyError("import needs the database store (store = database or auto on PostgreSQL/MySQL)")
        if manifest.dialect != conn.dialect.name:
            raise SafetyError(
                f"backup {manifest.id} comes from {manifest.dialect}, this database is {conn.dialect.name}")
        db.ensure()
        if any(m.id == manifest.id for m in db.list()):
            raise SafetyError(f"backup {manifest.id} is already in the database")
        tables = []
        for index, t in enumerate(manifest.tables, start=1):
            types = {c["name"]: str(c["type"]) for c in t.definition.get("columns", [])}
            missing = [c for c in t.stored_columns if c not in types]
            if missing:
                raise BackupCorrupt(f"backup {manifest.id}: {t.key} has no recorded type for {', '.join(missing)}")
            name = snapshot_table_name(manifest.id, index)
            table = sa.Table(name, sa.MetaData(), *(sa.Column(c, db.stored_type(types[c])) for c in t.stored_columns),
                             schema=db.schema)  # fmt: skip
            table.create(conn)
            restore_table(conn, source, manifest, t, TableRef(name, db.schema))
            rows, checksum = db.checksum(name, list(t.stored_columns))
            size = db.table_bytes([name])
            tables.append(replace(t, file=name, format=COPIED, rows=rows, checksum=checksum, bytes=size,
                                  raw_bytes=size))  # fmt: skip
        imported = replace(manifest, store="database", tables=tuple(tables), hash_algorithm="row-hash-sum",
                           compression="none", notes=(*manifest.notes, f"imported from {folder.name}"))
        db.write_manifest(imported)
        return imported

    imported = with_stores(project, work)
    project.audit.write("backup_imported", backup_id=imported.id, source=str(folder))
    return imported
