"""Roll revisions back with their data: ``alembic-safety rollback BACKUP_ID``.

Plan first, then act (Django's rule): :func:`plan_rollback` reads the database and the backups
and decides every step — which revisions are downgraded (newest first), which backup brings
each one's data back, what data written since the backup is kept or lost, how long it should
take — and derives a confirmation code from the backup id, the current head and the mode.
:func:`execute_rollback` runs exactly that plan once given the code:

1. verify the checksums of every backup used (a corrupted or incomplete one is refused);
2. take a ``pre-rollback`` backup of the current state of every affected table;
3. per revision, newest first: its own ``downgrade()`` (alembic-safety's hooks do not snapshot
   it again), then converge the touched tables to the definitions recorded in the backup (a
   dropped table is moved back or re-created, a dropped column re-added), then
4. restore the data (``merge`` or ``replace``; triggers and foreign-key checks off for the
   restore only where the database allows it);
5. reset the sequences behind restored keys (PostgreSQL);
6. run the integrity checks and compare the restored rows with the backup;
7. write the audit events and an incident report (markdown) into ``backup_dir``.

On PostgreSQL steps 2–6 run in one transaction on the migration connection env.py opens: any
failure leaves the database exactly as it was.  MySQL/MariaDB and SQLite commit DDL as it runs:
there the pre-rollback backup is committed first and the rollback stops at the first failure,
naming that backup.  This module never prints; ``cli.py`` renders what it returns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alembic.context as alembic_context
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory

from . import _compat, templating
from .audit import AuditLog, isoformat, redact_url, utcnow
from .checks import CheckFinding, run_checks
from .checks.step import full_context
from .errors import BackupCorrupt, ConfirmationRequired, RollbackFailed, SafetyError, UsageError
from .notify import notify
from .project import Project, find_backup, with_database
from .record import record
from .rollback_plan import (
    CHECKS,
    CONVERGE,
    DOWNGRADE,
    PRE_BACKUP,
    REPORT,
    RESTORE,
    SEQUENCES,
    VERIFY,
    RevisionPart,
    RollbackStep,
    rollback_run_steps,
)
from .snapshot import poststate, throughput
from .snapshot.backup import BackupRequest, database_store, take_backup
from .snapshot.crypto import cipher_for_backup, cipher_from_env
from .snapshot.dbstore import MOVED, DatabaseStore, DeclaredType, restore_casts
from .snapshot.fastload import bulk_reload
from .snapshot.identity import check_same_database
from .snapshot.manifest import Manifest, TableSnapshot
from .snapshot.policy import SnapshotRequest, risks_of
from .snapshot.reflect import LiveCatalog
from .snapshot.restore import restore_table, verify_backup
from .snapshot.scope import check_scope, step_schemas
from .snapshot.store import FileStore, new_backup_id
from .sqlinfo import TableRef

MODES = ("merge", "replace")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed by hand
STAGING_PREFIX = "alembic_safety_restore_"


# -- the plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataEffect:
    """What happens to data of one table: ``kept`` (written since the backup, stays), ``lost``
    (removed or overwritten; the pre-rollback backup keeps it) or ``restored`` (comes back)."""

    table: str
    effect: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"table": self.table, "effect": self.effect, "detail": self.detail}


@dataclass(frozen=True)
class RevisionRollback:
    revision: str
    down_revision: str | None
    backup_id: str | None  # its pre-revision backup (None: none found — nothing was at risk, or pruned)
    downgrade: str  # "own" (its downgrade() does something) or "empty" (pass/missing: converge rebuilds)
    tables: tuple[str, ...]  # tables whose data comes back from the backup

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "down_revision": self.down_revision, "backup_id": self.backup_id,
                "downgrade": self.downgrade, "tables": list(self.tables)}  # fmt: skip


@dataclass(frozen=True)
class RollbackPlan:
    """Everything the rollback will do, decided before anything is touched.  ``as_dict`` is the
    ``rollback --dry-run --format json`` contract."""

    backup_id: str
    mode: str
    dialect: str
    database: str  # URL, password hidden
    current: tuple[str, ...]  # the database's heads when planned
    target: str | None  # the revision the database ends at (None: base)
    revisions: tuple[RevisionRollback, ...]  # newest first
    steps: tuple[RollbackStep, ...]
    data: tuple[DataEffect, ...]
    pre_rollback_tables: tuple[str, ...]
    transactional: bool  # PostgreSQL: steps 2-6 in one transaction
    estimated_seconds: float
    confirmation_code: str
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id, "mode": self.mode, "dialect": self.dialect, "database": self.database,
            "current": list(self.current), "target": self.target,
            "revisions": [r.as_dict() for r in self.revisions], "steps": [s.as_dict() for s in self.steps],
            "data": [d.as_dict() for d in self.data], "pre_rollback_tables": list(self.pre_rollback_tables),
            "transactional": self.transactional, "estimated_seconds": self.estimated_seconds,
            "confirmation_code": self.confirmation_code, "notes": list(self.notes),
        }  # fmt: skip


def confirmation_code(backup_id: str, current: Sequence[str], mode: str) -> str:
    """Six characters derived from the backup id, the current head(s) and the mode: the same
    plan always has the same code, and a code stops working once the database moved on."""
    return code_for(backup_id, "+".join(sorted(current)), mode)


def code_for(*parts: str) -> str:
    """Six characters derived from ``parts``: a plan's confirmation code (also sql-rollback's)."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return "".join(_CODE_ALPHABET[b % len(_CODE_ALPHABET)] for b in digest[:6])


@dataclass
class _Stores:
    db: DatabaseStore | None
    files: FileStore

    def all(self) -> list[Manifest]:
        out = (self.db.list() if self.db is not None and self.db.exists() else []) + self.files.list()
        return sorted(out, key=lambda m: m.id, reverse=True)

    def find(self, backup_id: str) -> tuple[DatabaseStore | FileStore, Manifest]:
        stores: list[DatabaseStore | FileStore] = [*([self.db] if self.db is not None else []), self.files]
        store, manifest = find_backup(stores, backup_id)
        return store, manifest

    def holder(self, manifest: Manifest) -> DatabaseStore | FileStore:
        return self.db if manifest.store == "database" and self.db is not None else self.files


def _stores(conn: sa.Connection, project: Project) -> _Stores:
    db = database_store(conn, project.config) if project.config.store != "files" else None
    return _Stores(db, FileStore(project.config.backup_dir))


def _own(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A revision's own function, not alembic-safety's wrapper (so the rollback's downgrades
    are not snapshotted again: the pre-rollback backup already holds what they change)."""
    return _compat.own_function(fn)


def _down(script: Script) -> str | None:
    down = script.down_revision
    if isinstance(down, (tuple, list)):
        raise UsageError(f"revision {script.revision} merges {', '.join(down)}: rolling back a merge revision is "
                         "not supported yet; downgrade it with alembic, then roll back each branch")  # fmt: skip
    return down


@dataclass(frozen=True)
class _Facts:
    """What the plan read, kept for execution."""

    plan: RollbackPlan
    manifests: dict[str, Manifest]  # revision -> its backup


def _gather(project: Project, conn: sa.Connection, mctx: MigrationContext, backup_id: str, mode: str) -> _Facts:
    if mode not in MODES:
        raise UsageError(f"--mode must be merge or replace, not {mode!r}")
    stores = _stores(conn, project)
    _, chosen = stores.find(backup_id)
    if chosen.kind != "pre-revision" or chosen.direction != "upgrade" or not chosen.revision_to:
        raise UsageError(f"backup {chosen.id} is a {chosen.kind} backup"
                         f"{' of a downgrade' if chosen.direction == 'downgrade' else ''}: rollback takes the "
                         "pre-revision backup of an upgrade (see 'alembic-safety backups')")  # fmt: skip
    script_dir = project.script()
    current = tuple(mctx.get_current_heads())
    if len(current) != 1:
        raise UsageError(f"the database is at {len(current)} heads ({', '.join(current) or 'none'}); "
                         "rollback needs a single current revision")  # fmt: skip
    if "+" in chosen.revision_to:
        raise UsageError(f"backup {chosen.id} belongs to a merge step ({chosen.revision_to}); not supported yet")
    try:
        scripts = list(script_dir.iterate_revisions(current[0], chosen.revision_from or "base"))
    except Exception as exc:
        raise UsageError(f"cannot walk from {current[0]} down to {chosen.revision_from or 'base'}: {exc}") from exc
    scripts = [s for s in scripts if s.revision != chosen.revision_from]
    if chosen.revision_to not in {s.revision for s in scripts}:
        raise UsageError(f"revision {chosen.revision_to} of backup {chosen.id} is not applied (the database is at "
                         f"{current[0]}): nothing to roll back")  # fmt: skip
    # each revision's own backup: the newest pre-revision backup of its upgrade since the chosen one
    candidates = [m for m in stores.all() if m.kind == "pre-revision" and m.direction == "upgrade"]
    manifests: dict[str, Manifest] = {}
    notes: list[str] = []
    for s in scripts:
        if s.revision == chosen.revision_to:
            manifests[s.revision] = chosen
            continue
        mine = [m for m in candidates if m.revision_to == s.revision and m.id > chosen.id]
        if mine:
            manifests[s.revision] = mine[0]
        else:
            notes.append(f"no pre-revision backup of {s.revision} newer than {chosen.id}: its upgrade put nothing "
                         "at risk, or the backup was pruned — its downgrade runs, no data comes back for it")
    insp = sa.inspect(conn)
    for s in scripts:  # never restore into another database, nor beyond what the revision could snapshot
        if s.revision in manifests:
            _check_target(project, conn, mctx, s, manifests[s.revision], insp.default_schema_name)
    dialect = conn.dialect.name
    transactional = bool(mctx.impl.transactional_ddl) and dialect == "postgresql"
    revisions: list[RevisionRollback] = []
    parts: list[RevisionPart] = []
    data: list[DataEffect] = []
    affected: dict[TableRef, None] = {}
    total_bytes = 0
    rate, _ = throughput.rate(project.config.backup_dir, "database" if stores.db is not None else "files")
    for s in scripts:
        down = _down(s)
        fn = getattr(s.module, "downgrade", None)
        recorded = record(_own(fn), mctx.dialect, environment=_compat.environment_context(alembic_context),
                          context_opts={"version_table": mctx.version_table}) if callable(fn) else None  # fmt: skip
        usable = recorded is not None and bool(recorded.ops or recorded.opaque)
        if recorded is not None:
            report = risks_of(recorded)
            for risk in report.risks:
                if insp.has_table(risk.table.name, schema=risk.table.schema):
                    affected[risk.table] = None
                    what = (f"columns {', '.join(risk.columns)}" if risk.columns
                            else "rows" if risk.where else "the table")  # fmt: skip
                    data.append(DataEffect(risk.table.key, "lost", f"the downgrade of {s.revision} destroys {what} "
                                           f"({risk.reason}); the pre-rollback backup keeps them"))  # fmt: skip
        manifest = manifests.get(s.revision)
        restored: list[TableRef] = []
        moved: list[TableRef] = []
        seconds = 0.0
        if manifest is not None:
            for t in manifest.tables:
                ref = TableRef(t.name, t.schema)
                exists = insp.has_table(t.name, schema=t.schema)
                if exists:
                    affected[ref] = None
                if t.format == MOVED and not exists and not _downgrade_creates(recorded, ref):
                    moved.append(ref)
                else:
                    restored.append(ref)
                    total_bytes += max(t.raw_bytes, 0)
                    seconds += max(t.raw_bytes, 0) / rate
                data += _data_effects(conn, t, mode, exists)
                data += [DataEffect(t.key, effect, detail) for effect, detail
                         in poststate.plan_effects(conn, stores.holder(manifest), manifest, t, mode)]  # fmt: skip
        revisions.append(RevisionRollback(s.revision, down, manifest.id if manifest else None,
                                          "own" if usable else "empty",
                                          tuple(r.key for r in restored + moved)))  # fmt: skip
        parts.append(RevisionPart(s.revision, down, tuple(restored), tuple(moved), usable, round(seconds * 2, 3)))
    pre_tables = [t for t in affected if insp.has_table(t.name, schema=t.schema)]
    backups = [m.id for m in manifests.values()]
    verify_seconds = sum(m.total_bytes for m in manifests.values()) / rate
    pre_seconds = sum(_estimated_bytes(conn, t) for t in pre_tables) / rate
    steps = rollback_run_steps(parts, backups=backups, pre_backup=pre_tables, transactional=transactional,
                               verify_seconds=verify_seconds, pre_backup_seconds=pre_seconds)  # fmt: skip
    if not transactional:
        notes.append(f"{dialect} commits DDL as it runs: the rollback is not one transaction. The pre-rollback backup "
                     "is committed first; at the first failure the rollback stops and names it")  # fmt: skip
    if dialect == "sqlite":
        notes.append("SQLite cannot turn triggers off: triggers on restored tables fire during the restore")
    elif dialect in ("mysql", "mariadb"):
        notes.append("foreign-key checks are off during the restore; MySQL/MariaDB cannot turn triggers off, "
                     "triggers on restored tables fire")  # fmt: skip
    target = _down(scripts[-1])
    plan = RollbackPlan(
        backup_id=chosen.id, mode=mode, dialect=dialect, database=redact_url(conn.engine.url), current=current,
        target=target, revisions=tuple(revisions), steps=tuple(steps), data=tuple(data),
        pre_rollback_tables=tuple(t.key for t in pre_tables), transactional=transactional,
        estimated_seconds=round(sum(st.seconds for st in steps), 3),
        confirmation_code=confirmation_code(chosen.id, current, mode), notes=tuple(notes),
    )  # fmt: skip
    return _Facts(plan, manifests)


def _check_target(project: Project, conn: sa.Connection, mctx: MigrationContext, script: Script,
                  manifest: Manifest, default_schema: str | None) -> None:  # fmt: skip
    """Refuse a backup of another database (exit 2), an encrypted one without its key (exit 2),
    and a manifest naming tables beyond the schemas the revision's upgrade can snapshot (exit 1):
    checked at plan time, before any change."""
    check_same_database(manifest.id, manifest.source, conn)
    if manifest.encryption is not None:
        cipher_for_backup(manifest.id, manifest.encryption, cipher_from_env(project.config.encryption_key_env))
    fn = getattr(script.module, "upgrade", None)
    if not callable(fn):
        return
    step = record(_own(fn), mctx.dialect, environment=_compat.environment_context(alembic_context),
                  context_opts={"version_table": mctx.version_table})  # fmt: skip
    check_scope(manifest, step_schemas(step, default_schema), default_schema, conn.dialect.name)


def _downgrade_creates(recorded: Any, ref: TableRef) -> bool:
    from alembic.operations import ops as alembic_ops

    if recorded is None:
        return False
    return any(isinstance(o, alembic_ops.CreateTableOp) and o.table_name == ref.name for o in recorded.ops)


def _estimated_bytes(conn: sa.Connection, ref: TableRef) -> int:
    if conn.dialect.name != "postgresql":
        return 0
    qualified = conn.dialect.identifier_preparer.format_table(sa.table(ref.name, schema=ref.schema))
    value = conn.execute(sa.text("SELECT pg_total_relation_size(to_regclass(:t))"), {"t": qualified}).scalar()
    return int(value or 0)


def _count(conn: sa.Connection, ref: TableRef, where: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(sa.table(ref.name, schema=ref.schema))
    if where is not None:
        query = query.where(sa.literal_column(where))
    return int(conn.execute(query).scalar_one())


def _is_update(t: TableSnapshot) -> bool:
    """Whether the step changed rows in place (rather than only deleting or dropping)."""
    return any(not r.startswith(("DELETE", "TRUNCATE", "drop_table", "DROP TABLE", "drop_column", "MERGE"))
               for r in t.reasons)  # fmt: skip


def _data_effects(conn: sa.Connection, t: TableSnapshot, mode: str, exists: bool) -> list[DataEffect]:
    what = (f"columns {', '.join(c for c in t.columns if c not in t.primary_key)}" if t.columns is not None
            else "rows" + (f" WHERE {t.where}" if t.where else ""))  # fmt: skip
    rows = "all" if t.rows < 0 else str(t.rows)  # a moved table is counted when verified
    out = [DataEffect(t.key, "restored", f"{what} of {rows} row(s) come back from the backup")]
    if not exists:
        return out
    now = _count(conn, TableRef(t.name, t.schema))
    whole = t.where is None
    if mode == "replace":
        if whole and t.primary_key:
            out.append(DataEffect(t.key, "lost", f"rows not in the backup are removed (the table has {now} rows "
                                  f"now, the backup {rows}); rows of other tables that reference them are left "
                                  "orphaned, and the integrity checks report them"))  # fmt: skip
        out.append(DataEffect(t.key, "lost", "changes made since the backup to the restored "
                              f"{'rows' if t.columns is None else 'columns'} are overwritten"))  # fmt: skip
    else:
        out.append(DataEffect(t.key, "kept", f"rows written since the backup stay (the table has {now} rows now, "
                              f"the backup {rows})"))  # fmt: skip
        if _is_update(t) and not poststate.wants_post(t):  # with a post-step state: poststate.plan_effects
            out.append(DataEffect(t.key, "lost", "rows the revision updated get their old values back; a change made "
                                  "to them since the deploy is overwritten (no post-step state is recorded) "
                                  "and reported"))  # fmt: skip
        elif t.columns is None:
            out.append(DataEffect(t.key, "kept", "a row written since with the key of a restored row stays "
                                  "(reported as a conflict)"))  # fmt: skip
    return out


def plan_rollback(project: Project, backup_id: str, mode: str = "merge") -> RollbackPlan:
    """Decide the rollback to the state before ``backup_id``'s revision; changes nothing."""

    def work(conn: sa.Connection, mctx: MigrationContext) -> RollbackPlan:
        return _gather(project, conn, mctx, backup_id, mode).plan

    plans = with_database(project, work)
    if len(plans) != 1:
        raise UsageError("rollback needs one database; this env.py configures several (multidb)")
    return plans[0]


# -- the result ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableOutcome:
    table: str
    backup_id: str
    how: str  # "moved back", "restored", "re-created and restored"
    rows_in_backup: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0  # rows written since with a restored key, kept (merge)
    overwritten: int = 0  # rows changed since the step whose old values came back
    matching: int = -1  # backup rows now in the table exactly as in the backup (-1: not compared)
    ok: bool = True
    detail: str = ""
    changed_since: int = 0  # merge: rows changed again since the deploy (post-step state), kept
    changed_since_keys: tuple[str, ...] = ()  # a sample of their keys

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "backup_id": self.backup_id, "how": self.how,
                "rows_in_backup": self.rows_in_backup, "inserted": self.inserted, "updated": self.updated,
                "deleted": self.deleted, "conflicts": self.conflicts, "overwritten": self.overwritten,
                "matching": self.matching, "ok": self.ok, "detail": self.detail,
                "changed_since": self.changed_since, "changed_since_keys": list(self.changed_since_keys)}  # fmt: skip


@dataclass(frozen=True)
class StepLog:
    order: int
    kind: str
    action: str
    seconds: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"order": self.order, "kind": self.kind, "action": self.action, "seconds": self.seconds,
                "detail": self.detail}  # fmt: skip


@dataclass(frozen=True)
class RollbackResult:
    plan: RollbackPlan
    pre_rollback_id: str | None
    revision: str | None  # where the database is now
    tables: tuple[TableOutcome, ...]
    findings: tuple[CheckFinding, ...]
    steps: tuple[StepLog, ...]
    converged: tuple[str, ...]  # what the converge step changed
    differences: tuple[str, ...]  # what still differs from the recorded definitions
    report_path: str
    seconds: float
    dry_run: bool = False  # --dry-run --execute-in-transaction: ran, then rolled back; nothing changed

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and not any(f.severity == "error" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "backup_id": self.plan.backup_id, "mode": self.plan.mode,
                "pre_rollback_id": self.pre_rollback_id, "revision": self.revision,
                "tables": [t.as_dict() for t in self.tables], "findings": [f.as_dict() for f in self.findings],
                "steps": [s.as_dict() for s in self.steps], "converged": list(self.converged),
                "differences": list(self.differences), "report": self.report_path,
                "seconds": round(self.seconds, 3), "dry_run": self.dry_run}  # fmt: skip


# -- execution -----------------------------------------------------------------------------------
@dataclass
class _Run:
    """The state of one execution, shared by its phases (and read by the failure report)."""

    project: Project
    plan: RollbackPlan
    audit: AuditLog
    started: float = field(default_factory=time.monotonic)
    step: str = ""
    pre_rollback_id: str | None = None
    log: list[StepLog] = field(default_factory=list)
    tables: list[TableOutcome] = field(default_factory=list)
    converged: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    findings: list[CheckFinding] = field(default_factory=list)
    restored_refs: list[TableRef] = field(default_factory=list)
    revision: str | None = None
    commit: Callable[[], None] | None = None  # where DDL commits as it runs: commit after each step
    rehearsal: bool = False  # --dry-run --execute-in-transaction: everything is rolled back at the end
    _order: int = 0

    @contextmanager
    def doing(self, kind: str, action: str) -> Iterator[list[str]]:
        self._order += 1
        self.step = f"{kind}: {action}"
        detail: list[str] = []
        started = time.monotonic()
        yield detail
        if self.commit is not None:
            self.commit()
        self.log.append(StepLog(self._order, kind, action, round(time.monotonic() - started, 3), "; ".join(detail)))
        self.audit.write("rollback_step", backup_id=self.plan.backup_id, kind=kind, action=action,
                         seconds=self.log[-1].seconds, detail=self.log[-1].detail)  # fmt: skip


def execute_rollback(project: Project, plan: RollbackPlan, confirm_code: str | None) -> RollbackResult:
    """Run ``plan`` once ``confirm_code`` matches its confirmation code; nothing happens without
    it.  Raises RollbackFailed (with the pre-rollback backup id) when a step fails."""
    if not confirm_code or confirm_code.strip().upper() != plan.confirmation_code:
        raise ConfirmationRequired(
            f"confirmation code {'missing' if not confirm_code else 'wrong'}: nothing was changed; run "
            f"'alembic-safety rollback {plan.backup_id} --dry-run' to see the plan and its code, then pass "
            "--confirm CODE")  # fmt: skip
    audit = project.audit
    run = _Run(project, plan, audit)
    audit.write("rollback_started", backup_id=plan.backup_id, mode=plan.mode, current=list(plan.current),
                target=plan.target, revisions=[r.revision for r in plan.revisions],
                transactional=plan.transactional)  # fmt: skip
    try:
        if plan.transactional:
            with_database(project, lambda conn, mctx: _in_transaction(mctx, lambda: _everything(run, conn, mctx)))
        else:
            with_database(project, lambda conn, mctx: _everything(run, conn, mctx, commit_each_step=True))
    except ConfirmationRequired:
        raise
    except BaseException as exc:
        message = _failure_message(run, exc)
        path = _write_report(run, failed=message)
        audit.write("rollback_failed", backup_id=plan.backup_id, step=run.step, error=message,
                    pre_rollback_id=run.pre_rollback_id, rolled_back=plan.transactional, report=str(path))  # fmt: skip
        notify(project.config, "rollback_failed", f"alembic-safety: rollback of {plan.backup_id} FAILED at step "
               f"{run.step}: {message}", audit, backup_id=plan.backup_id, error=message,
               pre_rollback_id=run.pre_rollback_id, rolled_back=plan.transactional)  # fmt: skip
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, BackupCorrupt):
            raise BackupCorrupt(f"{exc.message}; the rollback was refused, nothing was changed") from exc
        raise RollbackFailed(f"{message} (report: {path})", run.pre_rollback_id, plan.transactional) from exc
    path = _write_report(run, failed=None)
    result = RollbackResult(plan, run.pre_rollback_id, run.revision, tuple(run.tables), tuple(run.findings),
                            tuple(run.log), tuple(run.converged), tuple(run.differences), str(path),
                            time.monotonic() - run.started)  # fmt: skip
    audit.write("rollback_completed", backup_id=plan.backup_id, mode=plan.mode, ok=result.ok,
                pre_rollback_id=run.pre_rollback_id, revision=run.revision,
                tables=[t.as_dict() for t in run.tables], findings=[f.code for f in run.findings],
                seconds=round(result.seconds, 3), report=str(path))  # fmt: skip
    notify(project.config, "rollback_completed", f"alembic-safety: rollback of {plan.backup_id} "
           f"{'done' if result.ok else 'done, WITH PROBLEMS'}: the database is at {run.revision or 'base'}",
           audit, backup_id=plan.backup_id, mode=plan.mode, ok=result.ok, revision=run.revision,
           pre_rollback_id=run.pre_rollback_id)  # fmt: skip
    return result


def _failure_message(run: _Run, exc: BaseException) -> str:
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    why = f"{type(exc).__name__}: {first[0] if first else ''}" if not isinstance(exc, SafetyError) else str(exc)
    where = f"rollback of {run.plan.backup_id} failed at '{run.step or 'start'}' ({why})"
    if run.plan.transactional:
        return f"{where}; PostgreSQL rolled every change back: the database is as it was before the rollback"
    if run.pre_rollback_id:
        return (f"{where}; this database commits DDL as it runs, so the rollback stopped part-way: the state "
                f"before it is in backup {run.pre_rollback_id}")  # fmt: skip
    return f"{where}; the rollback stopped part-way (no pre-rollback backup had been taken yet)"


def _in_transaction(mctx: MigrationContext, fn: Callable[[], None]) -> None:
    """Run ``fn`` in the transaction alembic gives one migration step: env.py's own
    transaction, or one committed at the end (non-transactional DDL, transaction_per_migration)."""
    with _compat.step_transaction(mctx):
        fn()


def _everything(run: _Run, conn: sa.Connection, mctx: MigrationContext, commit_each_step: bool = False) -> None:
    """Every step on one connection.  Where DDL commits as it runs, each step's data changes
    (the version stamp with them) are committed when the step ends, so the database never
    claims a revision its schema is not at."""
    if commit_each_step:
        run.commit = lambda: conn.commit() if conn.in_transaction() else None
    facts = _check_unchanged(run, conn, mctx)
    try:
        _prepare(run, conn, mctx, facts)
        _restore(run, conn, mctx, facts)
    except sa.exc.DBAPIError as exc:
        # a database error inside a step is not "cannot reach the database" (with_database's reading)
        first = str(exc.orig or exc).strip().splitlines()
        raise SafetyError(f"database error: {first[0] if first else type(exc).__name__}") from exc


def _check_unchanged(run: _Run, conn: sa.Connection, mctx: MigrationContext) -> _Facts:
    facts = _gather(run.project, conn, mctx, run.plan.backup_id, run.plan.mode)
    if facts.plan.confirmation_code != run.plan.confirmation_code or facts.plan.revisions != run.plan.revisions:
        raise ConfirmationRequired("the database or its backups changed since the plan was made (the "
                                   "confirmation code no longer matches): nothing was changed; plan again")  # fmt: skip
    return facts


def _prepare(run: _Run, conn: sa.Connection, mctx: MigrationContext, facts: _Facts) -> None:
    """Steps 1-2: verify every backup used, then back up the current state."""
    stores = _stores(conn, run.project)
    with run.doing(VERIFY, "verify the backups' checksums") as detail:
        for manifest in facts.manifests.values():
            store = stores.holder(manifest)
            results = store.verify(manifest) if isinstance(store, DatabaseStore) else verify_backup(store, manifest)
            results += poststate.verify(store, manifest, conn.dialect.name)
            bad = [r for r in results if not r.ok]
            if bad:
                raise BackupCorrupt(f"backup {manifest.id} failed verification ({bad[0].table}: {bad[0].detail})")
            detail.append(f"{manifest.id}: {len(results)} table(s) ok")
    if not run.plan.pre_rollback_tables:
        return
    with run.doing(PRE_BACKUP, "back up the current state of the affected tables") as detail:
        catalog = LiveCatalog(conn, version_table=mctx.version_table, version_schema=mctx.version_table_schema)
        refs = [catalog.resolve(_ref(key)) for key in run.plan.pre_rollback_tables]
        request = BackupRequest(
            tuple(SnapshotRequest(r, None, None, ("pre-rollback",)) for r in refs if r is not None),
            "pre-rollback", name=f"rollback {run.plan.backup_id[:22]}", revision_from=run.plan.current[0],
            revision_to=run.plan.target, direction="downgrade",
            notes=(f"taken by the rollback of backup {run.plan.backup_id} ({run.plan.mode})",),
            protect=frozenset(m.id for m in facts.manifests.values()),
        )  # fmt: skip
        db = stores.db
        if run.rehearsal and db is None:
            detail.append(f"dry run: not taken (the files store is outside the transaction); {len(refs)} table(s)")
            return
        if db is not None:
            db.ensure()
        audit = run.audit if run.rehearsal else AuditLog(run.project.config.audit_path,
                                                         db.record_event if db is not None else None)  # fmt: skip
        taken = take_backup(conn, request, run.project.config, audit=audit, db=db, catalog=catalog)
        if taken is not None:
            run.pre_rollback_id = taken.id
            detail.append(f"backup {taken.id}: {taken.total_rows} rows")


def _ref(key: str) -> TableRef:
    schema, _, name = key.rpartition(".")
    return TableRef(name, schema or None)


def _restore(run: _Run, conn: sa.Connection, mctx: MigrationContext, facts: _Facts) -> None:
    """Steps 3-6: per revision newest first downgrade, converge, restore; then sequences, checks."""
    stores = _stores(conn, run.project)
    script_dir: ScriptDirectory = getattr(mctx, "script", None) or run.project.script()
    ops = Operations(mctx)
    for part in run.plan.revisions:
        script = script_dir.get_revision(part.revision)
        assert script is not None
        # merge: rows changed again since the deploy are held before the downgrade touches them
        mine = facts.manifests.get(part.revision)
        holds = poststate.hold_changed(conn, stores.holder(mine), mine, run.plan.mode) if mine else poststate.Holds()
        before = _live_columns(conn)
        with run.doing(DOWNGRADE, f"downgrade {part.revision} -> {part.down_revision or 'base'}") as detail:
            fn = getattr(script.module, "downgrade", None)
            if callable(fn):
                _own(fn)()
            mctx.stamp(script_dir, part.down_revision or "base")
            detail.append("its own downgrade()" if part.downgrade == "own" else "downgrade() does nothing")
        found = facts.manifests.get(part.revision)
        if found is None:
            continue
        manifest = found
        store = stores.holder(manifest)
        if isinstance(store, DatabaseStore):
            manifest = store.get(manifest.id)  # verification sealed the checksums of moved tables
        with run.doing(CONVERGE, f"converge the tables of backup {manifest.id} to their recorded definitions"):
            moved_back, not_null = _converge(run, conn, ops, store, manifest, before)
        with run.doing(RESTORE, f"restore the data of backup {manifest.id} ({run.plan.mode})") as detail, \
                _triggers_off(conn, detail):
            for t in manifest.tables:
                ref = TableRef(t.name, t.schema)
                if t.file in moved_back:
                    run.tables.append(TableOutcome(t.key, manifest.id, "moved back", t.rows, matching=t.rows))
                    run.restored_refs.append(ref)
                    continue
                run.tables.append(holds.apply(conn, t, _restore_table(conn, store, manifest, t, run.plan.mode, before)))
                run.restored_refs.append(ref)
        _set_not_null(run, conn, ops, not_null)
    run.revision = run.plan.target
    if run.restored_refs:
        with run.doing(SEQUENCES, "reset sequences behind the restored keys") as detail:
            detail += _reset_sequences(conn, run.restored_refs, apply=not run.rehearsal)
    with run.doing(CHECKS, "integrity checks and comparison with the backups") as detail:
        ctx = full_context(conn, mctx, run.project.config, script_dir, "full")
        # restored under session_replication_role = replica: the database did not check them
        ctx = dataclasses.replace(ctx, unverified=frozenset(r.key for r in run.restored_refs))
        checked = run_checks(ctx)
        run.findings = list(checked.findings)
        detail.append(f"{len(checked.ran)} check(s), {len(checked.errors)} error(s), "
                      f"{len(checked.warnings)} warning(s)")
        bad = [t for t in run.tables if not t.ok]
        detail.append(f"{len(run.tables) - len(bad)} of {len(run.tables)} table(s) match their backup")
    with run.doing(REPORT, "audit events and incident report"):
        pass


def _live_columns(conn: sa.Connection) -> dict[TableRef, set[str]]:
    """The tables of the default schema (and the snapshot tables' schemas, by key) with their columns."""
    insp = sa.inspect(conn)
    out: dict[TableRef, set[str]] = {}
    for name in insp.get_table_names():
        out[TableRef(name, None)] = {c["name"] for c in insp.get_columns(name)}
    return out


def _has(before: dict[TableRef, set[str]], conn: sa.Connection, ref: TableRef) -> set[str] | None:
    if ref.schema is None:
        return before.get(ref)
    insp = sa.inspect(conn)
    if not insp.has_table(ref.name, schema=ref.schema):
        return None
    return {c["name"] for c in insp.get_columns(ref.name, schema=ref.schema)}


_NotNull = tuple[TableRef, dict[str, Any]]  # a re-added column to make NOT NULL after the restore


def _column_from(defn: dict[str, Any], nullable: bool | None = None) -> sa.Column[Any]:
    default = defn.get("default")
    return sa.Column(str(defn["name"]), DeclaredType(str(defn["type"])),
                     nullable=bool(defn.get("nullable", True)) if nullable is None else nullable,
                     server_default=sa.text(str(default)) if default is not None else None)  # fmt: skip


def _converge(run: _Run, conn: sa.Connection, ops: Operations, store: DatabaseStore | FileStore,
              manifest: Manifest, before: dict[TableRef, set[str]]) -> tuple[set[str], list[_NotNull]]:  # fmt: skip
    """Re-create what the downgrade left out: a dropped table (moved back whole, or created from
    its recorded DDL), a dropped column (added nullable; NOT NULL is set after the restore)."""
    moved_back: set[str] = set()
    not_null: list[_NotNull] = []
    missing = [t for t in manifest.tables if not sa.inspect(conn).has_table(t.name, schema=t.schema)]
    for t in _creation_order(missing):
        if t.format == MOVED and isinstance(store, DatabaseStore):
            store.move_back(manifest, t)
            manifest = store.get(manifest.id)
            moved_back.add(t.file)
            run.converged.append(f"{t.key}: moved back from the snapshot schema")
            continue
        ddl = t.definition.get("ddl") or []
        if not ddl:
            raise SafetyError(f"backup {manifest.id} holds no definition of {t.key}: cannot re-create it")
        for statement in ddl:
            conn.exec_driver_sql(str(statement))
        run.converged.append(f"{t.key}: re-created from the recorded definition")
    for t in manifest.tables:
        if t.file in moved_back:
            continue
        ref = TableRef(t.name, t.schema)
        live = {c["name"]: c for c in sa.inspect(conn).get_columns(t.name, schema=t.schema)}
        for col in t.definition.get("columns") or []:
            if col["name"] in live:
                if col["name"] in (t.columns or ()) and _type_text(conn, live[col["name"]]) != str(col["type"]):
                    _convert_type(run, conn, ops, t, col, live[col["name"]])
                continue
            ops.add_column(t.name, _column_from(col, nullable=True), schema=t.schema)
            run.converged.append(f"{t.key}: column {col['name']} re-added ({col['type']})")
            if not col.get("nullable", True):
                not_null.append((ref, col))
    return moved_back, not_null


def _convert_type(run: _Run, conn: sa.Connection, ops: Operations, t: TableSnapshot, col: dict[str, Any],
                  live: Any) -> None:  # fmt: skip
    """Change a column the revisions retyped (narrowed) back to its recorded type before its
    values come back: the backup holds the column's old values for every row it took, so the
    cast only has to carry rows written since (PostgreSQL: ``USING col::type``; a value that
    does not cast fails the step, and the transaction puts everything back)."""
    name, spec, now = str(col["name"]), str(col["type"]), _type_text(conn, live)
    kw: dict[str, Any] = {"existing_type": live["type"], "existing_nullable": bool(live.get("nullable", True))}
    if live.get("default") is not None:
        kw["existing_server_default"] = sa.text(str(live["default"]))
    if live.get("comment"):
        kw["existing_comment"] = live["comment"]
    if live.get("autoincrement") is True:
        kw["existing_autoincrement"] = True
    if conn.dialect.name == "postgresql":
        kw["postgresql_using"] = f"CAST({conn.dialect.identifier_preparer.quote(name)} AS {spec})"
    if conn.dialect.name == "sqlite":
        with ops.batch_alter_table(t.name, schema=t.schema) as batch:
            batch.alter_column(name, type_=DeclaredType(spec), **kw)
    else:
        ops.alter_column(t.name, name, type_=DeclaredType(spec), schema=t.schema, **kw)
    run.converged.append(f"{t.key}: column {name} back to {spec} (was {now}); its values come from the backup")


def _type_text(conn: sa.Connection, col: Any) -> str:
    try:
        return str(col["type"].compile(dialect=conn.dialect))
    except Exception:
        return str(col["type"])


def _creation_order(tables: list[TableSnapshot]) -> list[TableSnapshot]:
    """Referenced tables before the tables whose foreign keys point at them."""
    names = {t.name for t in tables}
    done: list[TableSnapshot] = []
    pending = list(tables)
    while pending:
        ready = [t for t in pending if all(fk.get("referred_table") not in names - {t.name} - {d.name for d in done}
                                           for fk in t.definition.get("foreign_keys") or [])]  # fmt: skip
        if not ready:
            ready = pending[:1]
        for t in ready:
            done.append(t)
            pending.remove(t)
    return done


def _set_not_null(run: _Run, conn: sa.Connection, ops: Operations, columns: list[_NotNull]) -> None:
    for ref, col in columns:
        c = sa.table(ref.name, sa.column(col["name"]), schema=ref.schema).c[col["name"]]
        nulls = conn.execute(sa.select(sa.func.count()).where(c.is_(None))).scalar_one()
        if nulls:
            run.differences.append(f"{ref.key}.{col['name']}: left nullable, {nulls} row(s) written since the "
                                   "backup have no value for it")  # fmt: skip
            continue
        default = col.get("default")
        if conn.dialect.name == "sqlite":
            with ops.batch_alter_table(ref.name, schema=ref.schema) as batch:
                batch.alter_column(col["name"], nullable=False, existing_type=DeclaredType(str(col["type"])))
        else:
            ops.alter_column(ref.name, col["name"], nullable=False, existing_type=DeclaredType(str(col["type"])),
                             existing_server_default=sa.text(str(default)) if default is not None else None,
                             schema=ref.schema)  # fmt: skip
        run.converged.append(f"{ref.key}: column {col['name']} NOT NULL again")


@contextmanager
def _triggers_off(conn: sa.Connection, detail: list[str]) -> Iterator[None]:
    """Triggers (and with them PostgreSQL's foreign-key checks) off for the restore only."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        prev = conn.exec_driver_sql("SELECT current_setting('session_replication_role')").scalar_one()
        changed = False
        try:
            with conn.begin_nested():
                conn.execute(sa.select(sa.func.set_config("session_replication_role", "replica", True)))
            changed = True
            detail.append("triggers off (session_replication_role = replica)")
        except sa.exc.DBAPIError:
            detail.append("triggers stay on (this role may not set session_replication_role)")
        yield
        if changed:  # setting it back needs the same privilege
            conn.execute(sa.select(sa.func.set_config("session_replication_role", prev, True)))
    elif dialect in ("mysql", "mariadb"):
        prev = conn.exec_driver_sql("SELECT @@foreign_key_checks").scalar_one()
        conn.exec_driver_sql("SET foreign_key_checks = 0")
        detail.append("foreign-key checks off (triggers cannot be turned off here)")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SET foreign_key_checks = {int(prev)}")
    else:
        yield


@contextmanager
def _source(conn: sa.Connection, store: DatabaseStore | FileStore, manifest: Manifest, t: TableSnapshot,
            index: int) -> Iterator[TableRef]:  # fmt: skip
    """The snapshot as a table SQL can read: the snapshot table itself (database store), or the
    file loaded into a staging table, verifying its checksum while loading (files store)."""
    if isinstance(store, DatabaseStore):
        yield TableRef(t.file, store.schema)
        return
    types = {str(c["name"]): str(c["type"]) for c in t.definition.get("columns") or []}
    missing = [c for c in t.stored_columns if c not in types]
    if missing:
        raise BackupCorrupt(f"backup {manifest.id}: {t.key} has no recorded type for {', '.join(missing)}")
    name = f"{STAGING_PREFIX}{index:03d}"
    staging = sa.Table(name, sa.MetaData(), *(sa.Column(c, DeclaredType(types[c])) for c in t.stored_columns))
    staging.drop(conn, checkfirst=True)  # left by a rollback that stopped part-way (not PostgreSQL)
    staging.create(conn)
    restore_table(conn, store, manifest, t, TableRef(name, None))
    yield TableRef(name, None)
    staging.drop(conn)  # after a failure: PostgreSQL rolls it back; elsewhere the next run drops it


def _key_match(a: Any, b: Any, key: Sequence[str]) -> Any:
    return sa.and_(*(a.c[k] == b.c[k] for k in key))


def _differs(a: Any, b: Any, cols: Sequence[str]) -> Any:
    return sa.or_(*(a.c[c].is_distinct_from(b.c[c]) for c in cols)) if cols else sa.false()


def _restore_table(conn: sa.Connection, store: DatabaseStore | FileStore, manifest: Manifest, t: TableSnapshot,
                   mode: str, before: dict[TableRef, set[str]]) -> TableOutcome:  # fmt: skip
    ref = TableRef(t.name, t.schema)
    stored = list(t.stored_columns)
    key = [k for k in t.primary_key if k in stored]
    cols = [c for c in stored if c not in key]
    live_before = _has(before, conn, ref)
    existed = live_before is not None
    re_added = [c for c in cols if existed and c not in (live_before or set())]
    whole_rows = t.where is None
    full_columns = t.columns is None
    index = manifest.tables.index(t) + 1
    with _source(conn, store, manifest, t, index) as src_ref:
        src = sa.table(src_ref.name, *(sa.column(c) for c in stored), schema=src_ref.schema)
        dst = sa.table(t.name, *(sa.column(c) for c in stored), schema=t.schema)
        in_backup = int(conn.execute(sa.select(sa.func.count()).select_from(src)).scalar_one())
        # the snapshot's values as the live columns' types (a user-defined type is stored as text)
        casts = restore_casts(conn, src_ref, ref, stored) if conn.dialect.name == "postgresql" else {}
        if casts:
            src = sa.select(*((sa.cast(src.c[c], DeclaredType(casts[c])) if c in casts else src.c[c]).label(c)
                              for c in stored)).subquery("snapshot")  # type: ignore[assignment]  # fmt: skip
        d = dst.alias("d")
        s = src.alias("s")
        if in_backup != t.rows and t.rows >= 0:
            raise BackupCorrupt(f"backup {manifest.id}: {t.key} holds {in_backup} rows, its manifest says {t.rows}")
        inserted = updated = deleted = conflicts = overwritten = 0
        if not key:
            # no primary key: the table is snapshotted whole; it ends exactly as in the backup
            deleted = int(conn.execute(sa.delete(dst)).rowcount) if existed else 0
            inserted = int(conn.execute(dst.insert().from_select(stored, sa.select(*src.c))).rowcount)
            return TableOutcome(t.key, manifest.id, "restored (no primary key: replaced whole)", in_backup,
                                inserted=inserted, deleted=deleted, matching=-1)  # fmt: skip
        # PostgreSQL, the table to end exactly as the snapshot: load the bare table, rebuild (fastload.py)
        fast = bulk_reload(conn, src_ref, ref, stored, key, mode=mode, whole=whole_rows and full_columns)
        if fast is not None:
            return TableOutcome(t.key, manifest.id, "restored" if existed else "re-created and restored", in_backup,
                                fast.added, fast.updated, fast.deleted, 0, fast.updated, fast.inserted,
                                fast.ok and fast.inserted == in_backup, f"{fast.inserted} of {in_backup} backup "
                                f"row(s) now exactly as in the backup; {fast.detail()}")  # fmt: skip
        present_differing = int(conn.execute(
            sa.select(sa.func.count()).select_from(s.join(d, _key_match(s, d, key)))
            .where(_differs(s, d, [c for c in cols if c not in re_added]))).scalar_one())  # fmt: skip
        if mode == "replace" and existed and whole_rows and (full_columns or cols):
            # rows not in a whole-table or full-column snapshot are removed
            gone = ~sa.exists(sa.select(sa.literal(1)).select_from(src).where(_key_match(src, dst, key)))
            deleted = int(conn.execute(sa.delete(dst).where(gone)).rowcount)
        restore_updates = mode == "replace" or not full_columns or _is_update(t)
        if cols:
            if restore_updates:
                overwritten = present_differing if existed else 0
                stmt = sa.update(dst).values({c: src.c[c] for c in cols}).where(
                    _key_match(src, dst, key), _differs(src, dst, cols))
                updated = int(conn.execute(stmt).rowcount)
            else:
                conflicts = present_differing
        if full_columns:
            absent = ~sa.exists(sa.select(sa.literal(1)).select_from(d).where(_key_match(d, src, key)))
            inserted = int(conn.execute(dst.insert().from_select(stored, sa.select(*src.c).where(absent))).rowcount)
        matching = int(conn.execute(
            sa.select(sa.func.count()).select_from(s.join(d, _key_match(s, d, key)))
            .where(sa.not_(_differs(s, d, cols)))).scalar_one())  # fmt: skip
    expected = in_backup - conflicts
    ok = matching == expected
    detail = f"{matching} of {in_backup} backup row(s) now exactly as in the backup"
    if conflicts:
        detail += f"; {conflicts} row(s) written since with a restored key were kept (merge)"
    if overwritten and mode == "merge":
        detail += f"; {overwritten} row(s) the revision changed got their old values back"
    if mode == "replace" and whole_rows and existed:
        now = _count(conn, ref)
        if now != in_backup:
            ok = False
            detail += f"; the table has {now} rows, the backup {in_backup}"
    how = "restored" if existed else "re-created and restored"
    return TableOutcome(t.key, manifest.id, how, in_backup, inserted, updated, deleted, conflicts, overwritten,
                        matching, ok, detail)  # fmt: skip


def _reset_sequences(conn: sa.Connection, tables: Sequence[TableRef], apply: bool = True) -> list[str]:
    """PostgreSQL: move each owned sequence past the largest restored value (restores insert
    explicit keys; MySQL/MariaDB and SQLite move their counters themselves).  ``apply=False``
    (a rehearsal) only says which would move: setval() is never rolled back."""
    if conn.dialect.name != "postgresql":
        return [f"{conn.dialect.name} moves its auto-increment counters itself"]
    prep = conn.dialect.identifier_preparer
    done = []
    for ref in dict.fromkeys(tables):
        qualified = prep.format_table(sa.table(ref.name, schema=ref.schema))
        for col in sa.inspect(conn).get_columns(ref.name, schema=ref.schema):
            seq = conn.execute(sa.select(sa.func.pg_get_serial_sequence(qualified, col["name"]))).scalar()
            if not seq:
                continue
            c = sa.table(ref.name, sa.column(col["name"]), schema=ref.schema).c[col["name"]]
            top = conn.execute(sa.select(sa.func.max(c))).scalar()
            last = conn.execute(sa.text("SELECT pg_sequence_last_value(CAST(:s AS regclass))"), {"s": seq}).scalar()
            if top is not None and (last is None or int(top) > int(last)):
                if apply:
                    conn.execute(sa.select(sa.func.setval(seq, int(top))))
                done.append(f"{seq} -> {int(top)}" if apply else f"{seq} would move to {int(top)}")
    return done or ["no sequence behind"]


# -- the incident report -------------------------------------------------------------------------
def _write_report(run: _Run, failed: str | None) -> Path:
    folder = run.project.config.backup_dir
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = new_backup_id(None, "")
    path = folder / f"rollback-{stamp}-{run.plan.backup_id[:22]}.md"
    text = templating.render(
        "rollback/incident.md.j2", plan=run.plan, failed=failed, pre_rollback_id=run.pre_rollback_id,
        steps=run.log, tables=run.tables, findings=run.findings, converged=run.converged,
        differences=run.differences, revision=run.revision, written_at=isoformat(utcnow()),
        seconds=round(time.monotonic() - run.started, 3),
    )  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 from the start, whatever the umask
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


# -- the rehearsal: --dry-run --execute-in-transaction --------------------------------------------
class _Rehearsed(Exception):
    """Raised once a rehearsal ran every step, so the transaction around it rolls back."""


class _Unrecorded(AuditLog):
    """A rehearsal's audit: its events are kept in memory (nothing it did persists, so nothing
    is logged as done); one ``rollback_rehearsed`` event is written at the end."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.events: list[dict[str, Any]] = []

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"ts": isoformat(utcnow()), "event": event, **fields}
        self.events.append(record)
        return record


def rehearse_rollback(project: Project, plan: RollbackPlan) -> RollbackResult:
    """Run every step of ``plan`` inside one PostgreSQL transaction and roll it back: what the
    rollback would do (rows restored per table, checks, comparison with the backups) with
    nothing changed.  Needs transactional DDL; no confirmation code (nothing changes), no
    incident report.  Sequences are not moved (setval() is never rolled back): the result says
    which would move.  With the files store the pre-rollback backup is not taken."""
    if not plan.transactional:
        raise UsageError(f"--dry-run --execute-in-transaction needs transactional DDL (PostgreSQL); "
                         f"{plan.dialect} commits DDL as it runs, so the rehearsal could not be undone; "
                         "use --dry-run alone")  # fmt: skip
    run = _Run(project, plan, _Unrecorded(project.config.audit_path), rehearsal=True)

    def work(conn: sa.Connection, mctx: MigrationContext) -> None:
        def body() -> None:
            _everything(run, conn, mctx)
            raise _Rehearsed  # out through env.py's transaction: everything above is rolled back

        _in_transaction(mctx, body)

    try:
        with_database(project, work)
    except _Rehearsed:
        pass
    except (ConfirmationRequired, KeyboardInterrupt):
        raise
    except BaseException as exc:
        if isinstance(exc, BackupCorrupt):
            raise BackupCorrupt(f"{exc.message}; the dry run was refused, nothing was changed") from exc
        raise RollbackFailed(f"dry run: {_failure_message(run, exc)}", None, True) from exc
    result = RollbackResult(plan, None, run.revision, tuple(run.tables), tuple(run.findings),
                            tuple(run.log), tuple(run.converged), tuple(run.differences), "",
                            time.monotonic() - run.started, dry_run=True)  # fmt: skip
    project.audit.write("rollback_rehearsed", backup_id=plan.backup_id, mode=plan.mode, ok=result.ok,
                        tables=[t.as_dict() for t in run.tables], findings=[f.code for f in run.findings],
                        seconds=round(result.seconds, 3))  # fmt: skip
    return result


__all__ = ["MODES", "DataEffect", "RevisionRollback", "RollbackPlan", "RollbackResult", "TableOutcome",
           "confirmation_code", "execute_rollback", "plan_rollback", "rehearse_rollback"]  # fmt: skip
