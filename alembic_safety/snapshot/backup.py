"""Take a backup: lock, reflect, stream every requested table into the store, commit the
manifest last.  A backup is complete (manifest written) or absent (folder removed)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, BinaryIO

import sqlalchemy as sa

from .._version import __version__
from ..audit import AuditLog, isoformat, redact_url, utcnow
from ..config import SafetyConfig
from ..errors import LockTimeout, SafetyError, SnapshotError, SnapshotTooLarge
from ..sqlinfo import TableRef
from . import parallel, throughput
from .dbstore import COPIED, MOVED, PENDING, DatabaseStore, snapshot_table_name, supports_database_store
from .engines import Engine, engine_for
from .identity import database_identity
from .manifest import Manifest, TableSnapshot
from .policy import SnapshotRequest
from .reflect import SAFETY_SCHEMA, LiveCatalog, table_definition
from .store import BackupStore, BackupWriter, FileStore, new_backup_id
from .streams import COMPRESSION, HASH_ALGORITHM, SnapshotSink

log = logging.getLogger("alembic.safety")
ProgressFn = Callable[[str, int, int], None]  # (table key, raw bytes so far, rows or -1)


@dataclass(frozen=True)
class BackupRequest:
    """Everything a backup needs to know besides the connection."""

    tables: tuple[SnapshotRequest, ...]
    kind: str
    name: str = ""
    revision_from: str | None = None
    revision_to: str | None = None
    direction: str | None = None
    notes: tuple[str, ...] = ()
    protect: frozenset[str] = field(default_factory=frozenset)  # ids retention must not remove


def open_store(config: SafetyConfig) -> BackupStore:
    return FileStore.for_config(config)


def lock_tables(conn: sa.Connection, tables: Sequence[TableRef], timeout: float) -> None:
    """Block concurrent writers of the at-risk tables until the step's transaction ends.

    PostgreSQL: ``SHARE ROW EXCLUSIVE`` (readers go on; writers and other migrators wait),
    taken on the migration's own connection inside its transaction, so nothing can change
    between the snapshot and the step.  Elsewhere: SQLite serialises writers itself;
    MySQL/MariaDB DDL commits implicitly, so a lock could not be held into the step (README).
    """
    if conn.dialect.name != "postgresql" or not tables:
        return
    prep = conn.dialect.identifier_preparer
    # one order for every process (schema, then name): two migrators or a migrator and a rollback
    # locking overlapping tables wait for each other instead of deadlocking
    ordered = sorted(set(tables), key=lambda t: (t.schema or "", t.name))
    names = ", ".join(prep.format_table(sa.table(t.name, schema=t.schema)) for t in ordered)
    prev = conn.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar_one()
    conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{int(timeout * 1000)}ms"})
    try:
        conn.exec_driver_sql(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")
    except sa.exc.OperationalError as exc:
        if "lock timeout" in str(exc).lower() or getattr(exc.orig, "pgcode", None) == "55P03":
            raise LockTimeout(
                f"could not lock {', '.join(t.key for t in tables)} within lock_timeout "
                f"({timeout:g}s): another session holds them; retry when it is done or raise "
                "lock_timeout"
            ) from exc
        raise
    conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": prev})


def database_store(conn: sa.Connection, config: SafetyConfig) -> DatabaseStore | None:
    """The in-database store when the settings choose it for this connection's dialect."""
    kind = config.store_for(conn.dialect.name)
    if kind != "database":
        return None
    if not supports_database_store(conn.dialect.name):
        raise SafetyError(f"store = database needs PostgreSQL or MySQL/MariaDB, not {conn.dialect.name}; "
                          "set store = files")  # fmt: skip
    return DatabaseStore(conn, snapshot_schema(conn, config.snapshot_schema))


def snapshot_schema(conn: sa.Connection, configured: str) -> str:
    """The configured schema, or the default: ``alembic_safety`` on PostgreSQL (schemas are per
    database there); ``alembic_safety_<database>`` on MySQL/MariaDB, where a schema *is* a
    database shared by the whole server."""
    if configured:
        return configured
    if conn.dialect.name in ("mysql", "mariadb"):
        current = conn.exec_driver_sql("SELECT DATABASE()").scalar()
        return f"{SAFETY_SCHEMA}_{current}"[:64] if current else SAFETY_SCHEMA
    return SAFETY_SCHEMA


def take_backup(
    conn: sa.Connection,
    request: BackupRequest,
    config: SafetyConfig,
    *,
    audit: AuditLog | None = None,
    progress: ProgressFn | None = None,
    version_table: str = "alembic_version",
    move: frozenset[TableRef] = frozenset(),
    db: DatabaseStore | EllipsisType | None = ...,
    catalog: LiveCatalog | None = None,
) -> Manifest | None:
    """Snapshot ``request.tables``; returns the manifest, or None when there is nothing to
    snapshot.  Raises SnapshotError (and leaves no backup) when anything fails.

    With the database store, tables in ``move`` get a manifest entry but no copy: the step's
    drop moves them into the snapshot schema (:mod:`.moves`).  Callers that already resolved
    the store (``db``: the database store or None for files) or read the catalogue pass them in,
    so nothing is reflected twice."""
    if not request.tables:
        return None
    audit = audit or AuditLog(config.audit_path)
    if isinstance(db, EllipsisType):
        db = database_store(conn, config)
    store: BackupStore | DatabaseStore = db if db is not None else open_store(config)
    backup_id = new_backup_id(request.revision_to if request.direction != "downgrade" else request.revision_from,
                              request.name)  # fmt: skip
    refs = [r.table for r in request.tables]
    audit.write("backup_started", backup_id=backup_id, kind=request.kind, tables=[t.key for t in refs],
                revision_from=request.revision_from, revision_to=request.revision_to,
                direction=request.direction, store=store.name, notes=list(request.notes))  # fmt: skip
    started = time.monotonic()
    writer = None
    try:
        if db is not None:
            db.ensure()  # first: a missing privilege is reported before anything is locked
        lock_tables(conn, refs, config.lock_timeout)
        if catalog is None:
            catalog = LiveCatalog(conn, version_table=version_table, safety_schema=db.schema if db else SAFETY_SCHEMA)
        snapshots: list[TableSnapshot] = []
        if db is not None:
            for index, req in enumerate(request.tables, start=1):
                snapshots.append(_db_snapshot_table(conn, db, backup_id, req, index, catalog, config,
                                                    req.table in move, sum(t.bytes for t in snapshots)))  # fmt: skip
                if progress is not None:
                    progress(req.table.key, snapshots[-1].bytes, snapshots[-1].rows)
        else:
            writer = store.begin(backup_id)  # type: ignore[union-attr]
            snapshots = _files_snapshots(conn, request, backup_id, catalog, writer, config, audit, progress)
        manifest = Manifest(
            id=backup_id,
            kind=request.kind,
            name=request.name,
            created_at=isoformat(utcnow()),
            revision_from=request.revision_from,
            revision_to=request.revision_to,
            direction=request.direction,
            dialect=conn.dialect.name,
            database=redact_url(conn.engine.url),
            source=database_identity(conn),
            store=store.name,
            tool_version=__version__,
            hash_algorithm=HASH_ALGORITHM if db is None else "row-hash-sum",
            compression=COMPRESSION if db is None else "none",
            tables=tuple(snapshots),
            notes=request.notes,
        )
        if db is not None:
            db.write_manifest(manifest)
        else:
            assert writer is not None
            writer.commit(manifest)
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        if db is not None and conn.dialect.name != "postgresql":
            # MySQL/MariaDB committed each CREATE TABLE ... AS already: remove what was made
            with suppress(Exception):
                db.delete(backup_id)
        audit.write("backup_failed", backup_id=backup_id, error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, SafetyError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, sa.exc.DBAPIError):
            raise  # the step's own transaction is now unusable: let the database error through
        raise SnapshotError(f"snapshot {backup_id} failed: {type(exc).__name__}: {exc}") from exc
    elapsed = time.monotonic() - started
    limit = config.max_snapshot_bytes
    if limit is not None and manifest.total_bytes > limit:  # only reached with oversize = warn
        log.warning("snapshot %s is %d bytes, over max_snapshot_bytes (%d); kept because oversize = warn",
                    backup_id, manifest.total_bytes, limit)  # fmt: skip
        audit.write("snapshot_oversize", backup_id=backup_id, bytes=manifest.total_bytes, limit=limit)
    data_bytes = sum(t.raw_bytes for t in manifest.tables if t.format != MOVED)
    throughput.record(config.backup_dir, store.name, data_bytes, elapsed)
    audit.write("backup_completed", backup_id=backup_id, kind=request.kind, rows=manifest.total_rows,
                bytes=manifest.total_bytes, seconds=round(time.monotonic() - started, 3),
                moved=[t.key for t in manifest.tables if t.format == MOVED])  # fmt: skip
    apply_retention(store, config, audit, protect=request.protect | {backup_id})
    return manifest


def _table_facts(
    conn: sa.Connection, req: SnapshotRequest, catalog: LiveCatalog, *, ddl: bool = True
) -> tuple[TableRef, list[str], list[str], dict[str, Any]]:
    """The table, the columns to copy, its primary key and its full definition."""
    columns = list(req.columns) if req.columns is not None else catalog.columns(req.table)
    return req.table, columns, catalog.primary_key(req.table), table_definition(conn, req.table, ddl=ddl)


def _db_snapshot_table(
    conn: sa.Connection,
    db: DatabaseStore,
    backup_id: str,
    req: SnapshotRequest,
    index: int,
    catalog: LiveCatalog,
    config: SafetyConfig,
    moved: bool,
    written_before: int,
) -> TableSnapshot:
    ref, columns, pk, definition = _table_facts(conn, req, catalog, ddl=not moved)
    name = snapshot_table_name(backup_id, index)
    if moved:
        rows, checksum, size = -1, PENDING, 0
    else:
        db.copy_table_as(name, ref, columns, req.where)
        rows, checksum = db.checksum(name, columns)
        size = db.table_bytes([name])
        limit = config.max_snapshot_bytes
        if limit is not None and written_before + size > limit and config.oversize == "error":
            raise SnapshotTooLarge(written_before + size, limit, ref.key)
    return TableSnapshot(
        name=ref.name, schema=ref.schema, columns=tuple(columns) if req.columns is not None else None,
        where=req.where, primary_key=tuple(pk), rows=rows, bytes=size, raw_bytes=size, checksum=checksum,
        file=name, format=MOVED if moved else COPIED, stored_columns=tuple(columns), reasons=req.reasons,
        definition=definition,
    )  # fmt: skip


class _Budget:
    """``max_snapshot_bytes`` over every table of a backup, also while several are written at once."""

    def __init__(self, config: SafetyConfig) -> None:
        self.limit = config.max_snapshot_bytes if config.oversize == "error" else None
        self._stored: dict[int, int] = {}
        self._lock = threading.Lock()

    def update(self, index: int, stored: int, table: str, *, check: bool = True) -> None:
        if self.limit is None:
            return
        with self._lock:
            self._stored[index] = stored
            total = sum(self._stored.values())
        if check and total > self.limit:
            raise SnapshotTooLarge(total, self.limit, table)


def _files_snapshots(
    conn: sa.Connection,
    request: BackupRequest,
    backup_id: str,
    catalog: LiveCatalog,
    wr: BackupWriter,
    config: SafetyConfig,
    audit: AuditLog,
    progress: ProgressFn | None,
) -> list[TableSnapshot]:
    """Every table into the files store: one after the other on the migration's connection, or
    (PostgreSQL, several large tables) on several connections sharing its snapshot (:mod:`.parallel`)."""
    eng = engine_for(conn)
    budget = _Budget(config)
    decision = parallel.decide(conn, request.tables, eng, config.parallel_snapshot_workers,
                               config.parallel_snapshot_min_rows)  # fmt: skip
    if decision.reason:
        log.info("snapshot %s: one table after the other: %s", backup_id, decision.reason)
        audit.write("snapshot_serial", backup_id=backup_id, reason=decision.reason)
    plan = decision.plan
    if plan is None:
        out = []
        for index, req in enumerate(request.tables, start=1):
            facts = _table_facts(conn, req, catalog)
            out.append(_snapshot_table(conn, req.table, req, facts, index, wr.open_table(index, eng.format), eng,
                                       config, budget, progress))  # fmt: skip
        return out
    facts_of = [_table_facts(conn, req, catalog) for req in request.tables]
    files = [wr.open_table(index, eng.format) for index in range(1, len(request.tables) + 1)]
    lock = threading.Lock()

    def locked_progress(table: str, raw: int, rows: int) -> None:
        assert progress is not None
        with lock:
            progress(table, raw, rows)

    def copy(c: sa.Connection, pos: int) -> TableSnapshot:
        return _snapshot_table(c, plan.tables[pos], request.tables[pos], facts_of[pos], pos + 1, files[pos], eng,
                               config, budget, locked_progress if progress is not None else None)  # fmt: skip

    started = time.monotonic()
    result = parallel.copy_parallel(conn, plan, copy, config.lock_timeout)
    audit.write("snapshot_parallel", backup_id=backup_id, connections=len(result.backend_pids),
                backend_pids=list(result.backend_pids), tables=[r.table.key for r in request.tables],
                estimated_rows=list(plan.estimates), seconds=round(time.monotonic() - started, 3))  # fmt: skip
    log.info("snapshot %s: %d tables on %d connections sharing one snapshot", backup_id, len(request.tables),
             len(result.backend_pids))  # fmt: skip
    return list(result.results)


def _snapshot_table(
    conn: sa.Connection,
    source: TableRef,
    req: SnapshotRequest,
    facts: tuple[TableRef, list[str], list[str], dict[str, Any]],
    index: int,
    file: tuple[str, BinaryIO],
    eng: Engine,
    config: SafetyConfig,
    budget: _Budget,
    progress: ProgressFn | None,
) -> TableSnapshot:
    """Copy one table (``source``: the name this connection reads it by) into its open file."""
    ref, columns, pk, definition = facts
    file_name, fh = file

    def on_progress(raw: int, stored: int) -> None:
        budget.update(index, stored, ref.key)
        if progress is not None:
            progress(ref.key, raw, -1)

    sink = SnapshotSink(fh, level=config.compression_level, on_progress=on_progress)
    rows = eng.dump(conn, source, columns, req.where, pk, sink)
    checksum, raw_bytes, stored = sink.finish()
    fh.flush()
    budget.update(index, stored, ref.key, check=False)  # the tables still being written count it
    if progress is not None:
        progress(ref.key, raw_bytes, rows)
    return TableSnapshot(
        name=ref.name,
        schema=ref.schema,
        columns=tuple(columns) if req.columns is not None else None,
        where=req.where,
        primary_key=tuple(pk),
        rows=rows,
        bytes=stored,
        raw_bytes=raw_bytes,
        checksum=checksum,
        file=file_name,
        format=eng.format,
        stored_columns=tuple(columns),
        reasons=req.reasons,
        definition=definition,
    )


def apply_retention(
    store: BackupStore | DatabaseStore,
    config: SafetyConfig,
    audit: AuditLog,
    *,
    protect: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Keep the newest ``keep`` complete backups; remove older ones and interrupted folders."""
    removed: list[str] = []
    if config.keep:
        for manifest in store.list()[config.keep:]:
            if manifest.id not in protect:
                freed = store.delete(manifest.id)
                removed.append(manifest.id)
                audit.write("backup_pruned", backup_id=manifest.id, bytes=freed, reason=f"keep = {config.keep}")
    for inc in store.incomplete():
        if inc.removable and inc.id not in protect:
            store.delete(inc.id)
            removed.append(inc.id)
            audit.write("backup_pruned", backup_id=inc.id, reason=inc.reason)
    return removed
