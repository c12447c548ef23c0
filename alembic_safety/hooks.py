"""env.py glue: ``alembic_safety.install(context)``.

After ``context.configure(...)`` the call

* wraps every revision's ``upgrade``/``downgrade`` (public attributes only:
  ``context.script.walk_revisions()``, ``Script.module``) so that, before each step runs,
  its operations are recorded offline, the data they put at risk is snapshotted on the
  migration's own connection, inside its transaction, and only then the step runs;
* registers an ``on_version_apply`` callback: the after-step seam (audit now; the integrity
  checks plug in here through :data:`AFTER_STEP_HOOKS`).

It is idempotent: modules are wrapped once per process, and each wrapper looks up the safety
session of the MigrationContext that is running it, so several configure/run cycles (multidb
env.py, tests running alembic in-process) each use their own settings.  In offline ``--sql``
mode nothing can be read, so the snapshot statements are written into the script instead.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script

from . import _compat
from .audit import AuditLog, redact_url
from .checks.step import LIVE_BEFORE_KEY, checks_after_step, checks_before_step
from .config import SafetyConfig, from_alembic_config
from .errors import SafetyError
from .offline import database_store_statements, files_store_statements
from .record import RecordedStep, offline_context, record
from .snapshot.backup import BackupRequest, database_store, snapshot_schema, take_backup
from .snapshot.dbstore import MOVED, DatabaseStore
from .snapshot.manifest import Manifest
from .snapshot.moves import Mover, PlannedMove, drops_become_moves, finish_moves
from .snapshot.policy import SnapshotRequest, is_pure_drop, plan_snapshot, risks_of
from .snapshot.poststate import keep_snapshot_keys, record_post_state
from .snapshot.reflect import SAFETY_SCHEMA, LiveCatalog
from .snapshot.store import new_backup_id
from .sqlinfo import TableRef

log = logging.getLogger("alembic.safety")  # shown wherever alembic's own INFO lines are


@dataclass(frozen=True)
class StepInfo:
    """What the after-step hooks learn about a finished step."""

    revision: str
    direction: str
    revision_from: str | None
    revision_to: str | None
    recorded: RecordedStep | None
    backup: Manifest | None
    seconds: float
    state: dict[str, Any] = field(default_factory=dict, compare=False)  # what the before-step hooks kept


@dataclass(frozen=True)
class StepStart:
    """What the before-step hooks learn about a step about to run (after its snapshot)."""

    revision: str
    direction: str
    recorded: RecordedStep
    backup: Manifest | None
    state: dict[str, Any]  # scratch space handed on to the after-step hooks (StepInfo.state)


BeforeStepHook = Callable[["SafetySession", MigrationContext, StepStart], None]
# Called on the migration's connection after the step's snapshot, right before the step runs
# (online runs only).  Raising refuses the step before it starts.
AfterStepHook = Callable[["SafetySession", MigrationContext, StepInfo], None]
# Called inside the step's transaction, after the step and the version update, before commit.
# Raising refuses the step (the transaction rolls back where the database allows it).
# The integrity checks (alembic_safety.checks) are registered here, then the post-step state of
# UPDATE-type snapshots (alembic_safety.snapshot.poststate; rollback --mode merge compares with it).
BEFORE_STEP_HOOKS: list[BeforeStepHook] = [checks_before_step, keep_snapshot_keys]
AFTER_STEP_HOOKS: list[AfterStepHook] = [checks_after_step, record_post_state]

_SESSIONS: weakref.WeakKeyDictionary[MigrationContext, SafetySession] = weakref.WeakKeyDictionary()
_WRAPPED = _compat.WRAPPED_ATTRIBUTE


@dataclass
class _Pending:
    started: float
    recorded: RecordedStep | None
    backup: Manifest | None
    mover: Mover | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class SafetySession:
    """One configured migration run: its settings, audit log and the steps under way."""

    config: SafetyConfig
    environment: Any
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    pending: dict[tuple[str, bool], _Pending] = field(default_factory=dict)
    backups: list[str] = field(default_factory=list)

    mirror: Callable[[dict[str, Any]], None] | None = None  # the database store's events table
    # kept for the run: the recording target (it never executes anything) and the database store
    # once it exists (its schema and catalogue are not looked up again before every backup)
    _recording: MigrationContext | None = None
    _db: DatabaseStore | None = None

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.config.audit_path, self.mirror)

    # -- before the step ---------------------------------------------------------------------
    def run_step(self, mctx: MigrationContext, script: Script, upgrade: bool,
                 fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # fmt: skip
        direction = "upgrade" if upgrade else "downgrade"
        down = _rev_str(script.down_revision)
        rev_from, rev_to = (down, script.revision) if upgrade else (script.revision, down)
        started = time.monotonic()
        if self._recording is None:
            self._recording = offline_context(mctx.dialect, _recording_opts(mctx))
        recorded = record(fn, mctx.dialect, args=args, kwargs=kwargs, environment=self.environment,
                          offline_mode=mctx.as_sql, context=self._recording)  # fmt: skip
        report = risks_of(recorded)
        for reason in report.opaque:
            self.audit.write("step_opaque", revision=script.revision, direction=direction, reason=reason)
        backup: Manifest | None = None
        mover: Mover | None = None
        state: dict[str, Any] = {}
        if mctx.as_sql:
            mover = self._emit_offline(mctx, report, script, direction, rev_from, rev_to)
        else:
            backup, mover = self._snapshot(mctx, report, script, direction, rev_from, rev_to, state)
        pending = self.pending[(script.revision, upgrade)] = _Pending(started, recorded, backup, mover, state=state)
        if not mctx.as_sql:
            start = StepStart(script.revision, direction, recorded, backup, pending.state)
            for before in BEFORE_STEP_HOOKS:
                before(self, mctx, start)
            state.pop(LIVE_BEFORE_KEY, None)  # read before the step: stale once it runs
        try:
            if mover is None:
                return fn(*args, **kwargs)
            with drops_become_moves(mctx, mover):
                return fn(*args, **kwargs)
        except BaseException as exc:
            self.audit.write(
                "revision_failed", revision=script.revision, direction=direction,
                revision_from=rev_from, revision_to=rev_to, run_id=self.run_id,
                backup_id=backup.id if backup else None, error=f"{type(exc).__name__}: {exc}",
                seconds=round(time.monotonic() - started, 3),
                note=_rollback_note(mctx),
            )  # fmt: skip
            raise

    def _snapshot(self, mctx: MigrationContext, report: Any, script: Script, direction: str, rev_from: str | None,
                  rev_to: str | None, state: dict[str, Any]) -> tuple[Manifest | None, Mover | None]:  # fmt: skip
        conn = mctx.connection
        if conn is None:
            raise SafetyError(
                "alembic-safety needs a connection: call install(context) after context.configure(connection=...)"
            )
        if self.config.snapshot == "at-risk" and not report.risks and not report.opaque:
            log.info("%s %s: nothing at risk, no snapshot", direction, script.revision)
            return None, None  # nothing to look up: the policy asks for nothing whatever exists
        catalog = LiveCatalog(conn, version_table=mctx.version_table, version_schema=mctx.version_table_schema,
                              safety_schema=snapshot_schema(conn, self.config.snapshot_schema))  # fmt: skip
        state[LIVE_BEFORE_KEY] = catalog  # the before-step checks read the same moment: names read once
        requests, notes = plan_snapshot(report, self.config, catalog, dialect_name=conn.dialect.name)
        for note in notes:
            log.info("%s", note)
        if not requests:
            log.info("%s %s: nothing at risk, no snapshot", direction, script.revision)
            return None, None
        db = self._db if self._db is not None and self._db.conn is conn else database_store(conn, self.config)
        if db is not None:
            db.ensure()
            self._db = db
            self.mirror = db.record_event
        move = frozenset(r.table for r in requests if is_pure_drop(r)) if db is not None else frozenset()
        manifest = take_backup(
            conn,
            BackupRequest(tuple(requests), "pre-revision", name=_slug(script), revision_from=rev_from,
                          revision_to=rev_to, direction=direction, notes=tuple(notes),
                          protect=frozenset(self.backups)),
            self.config, audit=self.audit, move=move, db=db, catalog=catalog,
        )  # fmt: skip
        if manifest is None:
            return None, None
        self.backups.append(manifest.id)
        log.info("snapshot %s: %s (%d rows, %d bytes)", manifest.id,
                 ", ".join(_describe(t) for t in requests if t.table not in move), manifest.total_rows,
                 manifest.total_bytes)  # fmt: skip
        if not move or db is None:
            return manifest, None
        plans = {
            TableRef(t.name, t.schema): PlannedMove(TableRef(t.name, t.schema), t.file, list(t.stored_columns),
                                                    list(t.definition.get("foreign_keys") or []))
            for t in manifest.tables if t.format == MOVED
        }  # fmt: skip
        log.info("drops become moves: %s", ", ".join(k.key for k in plans))
        return manifest, Mover(db, plans, catalog.resolve)

    def _emit_offline(self, mctx: MigrationContext, report: Any, script: Script, direction: str,
                      rev_from: str | None, rev_to: str | None) -> Mover | None:  # fmt: skip
        """Offline: nothing can be read, so write the snapshot statements into the script."""
        if self.config.snapshot == "none":
            return None
        use_db = self.config.store_for(mctx.dialect.name) == "database"
        copies: dict[TableRef, str | None] = {}
        drops: dict[TableRef, bool] = {}
        for risk in report.risks:
            if not self.config.wants_table(risk.table.key):
                continue
            pure = risk.columns is None and risk.where is None and (
                risk.reason.startswith("drop_table ") or risk.reason == "DROP TABLE")
            drops[risk.table] = drops.get(risk.table, True) and pure
            prev = copies.get(risk.table, risk.where)
            copies[risk.table] = None if prev is None or risk.where is None else (
                prev if prev == risk.where else f"({prev}) OR ({risk.where})")
        if self.config.snapshot in ("touched", "all") or report.opaque:
            for t in report.named:
                if self.config.wants_table(t.key):
                    copies[t] = None
                    drops[t] = False
        moves = [t for t, pure in drops.items() if pure] if use_db else []
        for t in moves:
            copies.pop(t, None)
        backup_id = new_backup_id(rev_to if direction == "upgrade" else rev_from, _slug(script))
        header = [f"alembic-safety: snapshot before {direction} {rev_from} -> {rev_to} (backup {backup_id})"]
        header += [f"opaque: {why}" for why in report.opaque]
        if report.opaque and not report.named:
            header.append("the step names no table: snapshot every table by hand before running it")
        header += [f"{t.key}: its drop moves it into the snapshot schema" for t in moves]
        if not copies and not moves:
            header.append("nothing at risk")
        _compat.emit_offline_comment(mctx, "\n".join(header))
        if not copies and not moves:
            return None
        mover: Mover | None = None
        if use_db:
            schema = self.config.snapshot_schema or _offline_schema(mctx, self.environment)
            plan = database_store_statements(
                mctx.dialect, schema, backup_id, copies, moves, kind="pre-revision", name=_slug(script),
                revision_from=rev_from, revision_to=rev_to, direction=direction, notes=tuple(report.opaque))
            statements: list[str] = list(plan.statements)
            if plan.moves:
                store = DatabaseStore(None, schema)
                mover = Mover(store, {t: PlannedMove(t, n, [], []) for t, n in plan.moves.items()}, lambda r: r)
        else:
            statements = files_store_statements(mctx.dialect, backup_id, copies)
        for stmt in statements:
            _compat.emit_offline(mctx, stmt)
        self.audit.write("offline_snapshot_emitted", backup_id=backup_id, revision=script.revision,
                         direction=direction, tables=[t.key for t in copies], moved=[t.key for t in moves])  # fmt: skip
        return mover

    # -- after the step ----------------------------------------------------------------------
    def after_step(self, ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: Any) -> None:
        if step.is_stamp:
            return
        revision = step.up_revision_id
        if revision is None:  # alembic: never for a migration step; nothing was pending under it
            return
        pending = self.pending.pop((revision, step.is_upgrade), None)
        if pending is None:
            return
        if pending.mover is not None and pending.backup is not None:
            pending.backup = finish_moves(pending.mover, pending.backup)
            for key in pending.mover.lost:
                log.error("%s was dropped without passing through the move: it is NOT in backup %s",
                          key, pending.backup.id)  # fmt: skip
                self.audit.write("backup_incomplete", backup_id=pending.backup.id, table=key,
                                 reason="dropped without passing through the move")  # fmt: skip
        direction = "upgrade" if step.is_upgrade else "downgrade"
        down = _rev_str(step.down_revision_ids)
        rev_from, rev_to = (down, revision) if step.is_upgrade else (revision, down)
        info = StepInfo(revision, direction, rev_from, rev_to, pending.recorded, pending.backup,
                        time.monotonic() - pending.started, pending.state)  # fmt: skip
        for hook in AFTER_STEP_HOOKS:
            hook(self, ctx, info)
        self.audit.write(
            "revision_applied", routine=pending.backup is None, revision=revision, direction=direction,
            revision_from=rev_from,
            revision_to=rev_to, seconds=round(info.seconds, 3), run_id=self.run_id,
            backup_id=pending.backup.id if pending.backup else None, offline=ctx.as_sql,
            database=None if ctx.as_sql or ctx.connection is None else redact_url(ctx.connection.engine.url),
        )  # fmt: skip


def _offline_schema(mctx: MigrationContext, environment: Any) -> str:
    """The default snapshot schema when nothing can be asked of the database."""
    if mctx.dialect.name not in ("mysql", "mariadb"):
        return SAFETY_SCHEMA
    try:
        url = sa.make_url(environment.config.get_main_option("sqlalchemy.url") or "")
    except Exception:
        return SAFETY_SCHEMA
    return f"{SAFETY_SCHEMA}_{url.database}"[:64] if url.database else SAFETY_SCHEMA


def _recording_opts(mctx: MigrationContext) -> dict[str, Any]:
    opts = {k: v for k, v in mctx.opts.items() if k in ("render_as_batch", "target_metadata", "version_table")}
    return opts


def _rollback_note(mctx: MigrationContext) -> str:
    if mctx.impl.transactional_ddl and not mctx.as_sql:
        return "the step's transaction rolls back; with one transaction for all steps, earlier steps too"
    return "this database commits DDL implicitly: the step may be partially applied"


def _rev_str(rev: Any) -> str | None:
    if rev is None:
        return None
    if isinstance(rev, (tuple, list)):
        return "+".join(rev) if rev else None
    return str(rev)


def _slug(script: Script) -> str:
    doc = (script.doc or "").strip().splitlines()
    return doc[0][:24] if doc else ""


def _describe(req: SnapshotRequest) -> str:
    what = req.table.key
    if req.columns is not None:
        what += f"({', '.join(req.columns)})"
    if req.where is not None:
        what += f" WHERE {req.where}"
    return what


def _wrap(script: Script, upgrade: bool, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def step(*args: Any, **kwargs: Any) -> Any:
        mctx = _compat.current_migration_context()
        session = _SESSIONS.get(mctx) if mctx is not None else None
        if session is None or mctx is None:
            return fn(*args, **kwargs)
        return session.run_step(mctx, script, upgrade, fn, args, kwargs)

    setattr(step, _WRAPPED, fn)
    return step


def _wrap_scripts(script_dir: Any) -> int:
    count = 0
    for script in script_dir.walk_revisions("base", "heads"):
        module = script.module
        for attr, upgrade in (("upgrade", True), ("downgrade", False)):
            fn = getattr(module, attr, None)
            if callable(fn) and not hasattr(fn, _WRAPPED):
                setattr(module, attr, _wrap(script, upgrade, fn))
                count += 1
    return count


def install(context: Any) -> SafetySession | None:
    """Turn on alembic-safety for this migration run; call it right after
    ``context.configure(...)`` in env.py.  Returns the session (None when disabled)."""
    env = _compat.environment_context(context)
    if env is None:
        raise SafetyError("alembic_safety.install(context) must be called from env.py, during an alembic command")
    try:
        mctx = env.get_context()
    except Exception as exc:
        raise SafetyError("call alembic_safety.install(context) after context.configure(...) in env.py") from exc
    existing = _SESSIONS.get(mctx)
    if existing is not None:
        return existing
    config = from_alembic_config(env.config, x_args=env.get_x_argument(as_dictionary=True))
    if not config.enabled:
        return None
    session = SafetySession(config=config, environment=env)
    _SESSIONS[mctx] = session
    _wrap_scripts(env.script)
    _compat.add_version_apply_callback(mctx, _after_step)
    return session


def _after_step(*, ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: Any) -> None:
    session = _SESSIONS.get(ctx)
    if session is not None:
        session.after_step(ctx, step, heads, run_args)
