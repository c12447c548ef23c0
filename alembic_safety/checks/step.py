"""The checks in a migration run (registered in ``hooks.py``) and the contexts they run in.

Before each step (after its snapshot): the row counts the row-count guard compares with.
After each step, inside its transaction, before commit: every ``step`` check with its
policy on the tables the step touched and their foreign-key neighbours.  A finding with
policy ``error`` refuses the step (:class:`~alembic_safety.errors.CheckFailed`); warnings go
to the ``alembic.safety`` logger and the audit log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext

from ..config import SafetyConfig
from ..errors import CheckFailed
from ..record import RecordedStep, flatten
from ..snapshot.backup import snapshot_schema
from ..snapshot.manifest import Manifest
from ..snapshot.policy import risks_of
from ..snapshot.reflect import LiveCatalog
from ..sqlinfo import TableRef
from .base import CheckContext, CheckFinding, CheckRun, StepFacts, policies, run_checks
from .catalog import DbCatalog
from .data import RowCount, measure

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

    from ..hooks import SafetySession, StepInfo, StepStart

log = logging.getLogger("alembic.safety")
BEFORE_KEY = "checks.before"
# StepStart.state: the snapshot's LiveCatalog, read before the step like the row counts; hooks.py
# removes it once the before-step hooks have run (after the step's DDL its answers are stale)
LIVE_BEFORE_KEY = "checks.live-before"


def catalog_for(conn: sa.Connection, mctx: MigrationContext | None, config: SafetyConfig,
                live: LiveCatalog | None = None) -> DbCatalog:  # fmt: skip
    """The checks' catalogue; ``live``: the snapshot's table-name catalogue of the same moment
    (before the step), so its names are not read twice."""
    return DbCatalog(conn, version_table=mctx.version_table if mctx is not None else "alembic_version",
                     version_schema=mctx.version_table_schema if mctx is not None else None,
                     safety_schema=snapshot_schema(conn, config.snapshot_schema), live=live)  # fmt: skip


def created_tables(step: RecordedStep) -> frozenset[TableRef]:
    """Tables the step creates from nothing: the first operation that names them is
    ``create_table`` (without ``if_not_exists``), so they did not exist before the step (the
    create would fail).  A table renamed away, dropped or named by SQL before its
    ``create_table``, or named by a part of the step that could not be recorded, is not one."""
    seen: set[TableRef] = {t for o in step.opaque for t in o.tables}
    out: set[TableRef] = set()
    for index, op in enumerate(flatten(step.ops)):
        schema = getattr(op, "schema", None)
        names = [TableRef(n, schema) for n in (getattr(op, "table_name", None), getattr(op, "new_table_name", None),
                                               getattr(op, "referent_table", None)) if isinstance(n, str)]
        if isinstance(op, alembic_ops.ExecuteSQLOp):
            names += [t for effect in step.effects_for(index) for t in effect.tables]
        for t in names:
            if t in seen:
                continue
            seen.add(t)
            if (isinstance(op, alembic_ops.CreateTableOp) and not getattr(op, "if_not_exists", False)
                    and t == TableRef(op.table_name, schema)):  # fmt: skip
                out.add(t)
    return frozenset(out)


# operations that shape a table without putting a row into it
_SHAPING = (alembic_ops.CreateTableOp, alembic_ops.CreateIndexOp, alembic_ops.CreateForeignKeyOp,
            alembic_ops.CreateUniqueConstraintOp, alembic_ops.CreateCheckConstraintOp,
            alembic_ops.CreatePrimaryKeyOp, alembic_ops.AddColumnOp, alembic_ops.AlterColumnOp,
            alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)  # fmt: skip


def _sequence_start_set(op: alembic_ops.MigrateOperation) -> bool:
    """Whether a created table's or added column's sequence starts where the step says (CHK302
    may then have something to say about it)."""
    columns = list(getattr(op, "columns", None) or [])
    column = getattr(op, "column", None)
    if column is not None:
        columns.append(column)
    for c in columns:
        if not isinstance(c, sa.Column):
            continue
        identity = getattr(c, "identity", None)
        if identity is not None and getattr(identity, "start", None) is not None:
            return True
        if isinstance(c.default, sa.Sequence) and c.default.start is not None:
            return True
    return False


def leaves_rows_alone(step: RecordedStep) -> bool:
    """The step only created tables from nothing (:func:`created_tables`) and shaped them —
    indexes, constraints, columns, comments — and otherwise only added nullable (or defaulted)
    columns without a foreign key, built plain indexes and set comments on existing tables; and
    the whole of it was recorded: no SQL, no rows, nothing opaque.  Such a step cannot remove a
    row, break a constraint the database did not check, or leave an index invalid: the new tables
    are empty, the old ones keep every row as it was, and the schema checks (CHK1xx) would only
    confirm DDL that just succeeded.  So the step checks read nothing before or after it.  A step
    that sets a sequence's start is not one (CHK302 judges that)."""
    if not step.complete or step.opaque or not step.ops:
        return False
    fresh = created_tables(step)
    for op in flatten(step.ops):
        if not isinstance(op, _SHAPING) or _sequence_start_set(op):
            return False
        if _shaped_table(op) in fresh:
            continue
        if not _harmless_on_existing(op):
            return False
    return True


def _harmless_on_existing(op: alembic_ops.MigrateOperation) -> bool:
    if isinstance(op, (alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)):
        return True
    if isinstance(op, alembic_ops.CreateIndexOp):  # built in the step's transaction: valid, or the step failed
        return not any(k.endswith("_concurrently") and v for k, v in op.kw.items())
    if isinstance(op, alembic_ops.AddColumnOp):
        column = op.column
        return not column.foreign_keys and not column.constraints and (
            column.nullable is not False or column.server_default is not None)
    return False


def _shaped_table(op: alembic_ops.MigrateOperation) -> TableRef | None:
    if isinstance(op, alembic_ops.CreateForeignKeyOp):
        return TableRef(op.source_table, op.kw.get("source_schema"))
    name = getattr(op, "table_name", None)
    return TableRef(name, getattr(op, "schema", None)) if isinstance(name, str) else None


def _savepoint(conn: sa.Connection) -> Any:
    from contextlib import nullcontext

    return conn.begin_nested() if conn.dialect.name == "postgresql" else nullcontext()


def _shrinking(recorded: RecordedStep, catalog: DbCatalog) -> tuple[set[TableRef], bool]:
    """Tables the step may legitimately shrink (drops, deletes, truncates, opaque SQL naming
    them, and their ON DELETE cascades), and whether the step can be read at all."""
    report = risks_of(recorded)
    if report.incomplete:
        return set(), False
    out: set[TableRef] = set()
    todo = [r.table for r in report.risks if r.columns is None]
    while todo:
        t = catalog.resolve(todo.pop()) or TableRef("")
        if t.name and t not in out:
            out.add(t)
            todo += [child for child, _ in catalog.live.referencing(t)]
    return out, True


def checks_before_step(session: SafetySession, mctx: MigrationContext, start: StepStart) -> None:
    """Count the rows of the tables the step touches but should not shrink (CHK205).  Tables
    the step creates from nothing (:func:`created_tables`) have no rows to count: a step that
    only creates tables reads nothing here."""
    config = session.config
    conn = mctx.connection
    if conn is None or config.checks == "off" or policies(config).get("CHK205") == "off":
        return
    report = risks_of(start.recorded)
    fresh = created_tables(start.recorded)
    named = [t for t in report.named if t not in fresh]
    if report.incomplete or not named or leaves_rows_alone(start.recorded):
        return
    try:
        with _savepoint(conn):
            catalog = catalog_for(conn, mctx, config, live=start.state.get(LIVE_BEFORE_KEY))
            shrink, readable = _shrinking(start.recorded, catalog)
            if not readable:
                return
            whole = _whole_snapshots(start.backup)
            before: dict[TableRef, RowCount] = {}
            for t in named:
                ref = catalog.resolve(t)
                if ref is None or ref in shrink or ref in before:
                    continue
                before[ref] = measure(catalog, ref, config.check_exact_rows, snapshot_rows=whole.get(ref))
            start.state[BEFORE_KEY] = before
    except Exception as exc:  # the guard is lost for this step; the step itself is not refused for it
        log.warning("checks: could not count rows before %s %s (%s: %s)", start.direction, start.revision,
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")  # fmt: skip


def _whole_snapshots(backup: Manifest | None) -> dict[TableRef, int]:
    if backup is None:
        return {}
    return {TableRef(t.name, t.schema): t.rows for t in backup.tables
            if t.columns is None and t.where is None and t.rows >= 0}  # fmt: skip


def step_context(conn: sa.Connection, mctx: MigrationContext | None, config: SafetyConfig,
                 step: StepFacts, *, batch: bool = True) -> CheckContext:  # fmt: skip
    """The step scope: the tables the step names (all tables when it cannot be read or names
    none while running opaque code), plus their foreign-key neighbours.  The tables it created
    from nothing (:func:`created_tables`) that hold no row go to ``CheckContext.empty``.

    ``batch``: find the empty ones (elsewhere than PostgreSQL, one ``EXISTS`` probe), and on
    PostgreSQL learn in one statement (:meth:`DbCatalog.prefetch`; a second one when the touched
    tables have foreign-key neighbours) which catalogue questions have an answer at all.  If
    that fails, call again with ``batch=False`` (in a new savepoint): every question is asked as
    the checks ask it, and no table is called empty."""
    catalog = catalog_for(conn, mctx, config)
    report = risks_of(step.recorded)
    if report.incomplete or (report.opaque and not report.named):
        touched = catalog.all_tables()
    else:
        touched = list(dict.fromkeys(r for r in (catalog.resolve(t) for t in report.named) if r is not None))
    fresh = [r for r in (catalog.resolve(t) for t in created_tables(step.recorded)) if r is not None and r in touched]
    if batch:
        catalog.prefetch(touched, fresh)
    tables = list(touched)
    if touched:
        for fk in catalog.foreign_keys(touched):
            for t in (fk.table, fk.referred):
                if t not in tables and catalog.resolve(t) is not None:
                    tables.append(t)
    if batch and len(tables) > len(touched):
        catalog.prefetch(tables, fresh)
    empty = catalog.empty(fresh) if batch else frozenset()
    return CheckContext(conn, "step", catalog, tuple(tables), tuple(touched), config, step, mctx, empty=empty)


def _checked(conn: sa.Connection, mctx: MigrationContext, config: SafetyConfig,
             step: StepFacts) -> tuple[CheckContext, CheckRun]:  # fmt: skip
    """The step context and its checks.  On PostgreSQL both in one savepoint, the catalogue read
    in one statement; when anything in it fails, the savepoint rolls back and it runs again the
    careful way: the catalogue read question by question (an error there refuses the step, as
    any error in an after-step hook does), each check in a savepoint of its own."""
    ctx: CheckContext | None = None
    if conn.dialect.name == "postgresql":
        try:
            with conn.begin_nested():
                ctx = step_context(conn, mctx, config, step)
                return ctx, run_checks(ctx, isolate=False)
        except Exception as exc:  # e.g. no privilege on a sequence, or a check that cannot run
            log.debug("checks: one savepoint for all was not enough (%s: %s); one savepoint per check",
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")  # fmt: skip
    if ctx is None:
        with _savepoint(conn):
            ctx = step_context(conn, mctx, config, step, batch=conn.dialect.name != "postgresql")
    return ctx, run_checks(ctx)


def full_context(conn: sa.Connection, mctx: MigrationContext | None, config: SafetyConfig,
                 script: ScriptDirectory | None, scope: str = "full") -> CheckContext:  # fmt: skip
    """Every table (health).  ``scope = "step"`` runs only the cheap checks, on every table."""
    catalog = catalog_for(conn, mctx, config)
    tables = tuple(catalog.all_tables())
    return CheckContext(conn, "full" if scope == "full" else "step", catalog, tables, tables, config, None, mctx,
                        script)  # fmt: skip


def checks_after_step(session: SafetySession, mctx: MigrationContext, info: StepInfo) -> None:
    """Run the step checks; refuse the step on an ``error`` finding."""
    config = session.config
    conn = mctx.connection
    if mctx.as_sql or conn is None or info.recorded is None or config.checks == "off":
        return
    step_name = f"{info.direction} {info.revision_from or 'base'} -> {info.revision_to or 'base'}"
    if leaves_rows_alone(info.recorded):
        log.info("checks after %s: the step only created or widened tables and left every row as it was: "
                 "nothing to read", step_name)  # fmt: skip
        return
    facts = StepFacts(info.revision, info.direction, info.recorded, info.state.get(BEFORE_KEY) or {})
    ctx, run = _checked(conn, mctx, config, facts)
    for f in run.warnings:
        log.warning("check %s", f.one_line())
        session.audit.write("check_warning", revision=info.revision, direction=info.direction, run_id=session.run_id,
                            **f.as_dict())  # fmt: skip
    if not run.errors:
        log.info("checks after %s: %d check(s) on %d table(s), %s in %.3f s", step_name, len(run.ran),
                 len(ctx.tables), "no problem" if not run.warnings else f"{len(run.warnings)} warning(s)",
                 run.seconds)  # fmt: skip
        return
    message = refusal_message(step_name, run, info, mctx, conn)
    session.audit.write("step_refused", revision=info.revision, direction=info.direction,
                        revision_from=info.revision_from, revision_to=info.revision_to, run_id=session.run_id,
                        backup_id=info.backup.id if info.backup else None,
                        findings=[f.as_dict() for f in run.errors], message=message)  # fmt: skip
    from ..notify import notify

    notify(config, "step_refused", message, session.audit, revision=info.revision, direction=info.direction,
           backup_id=info.backup.id if info.backup else None, findings=[f.one_line() for f in run.errors])  # fmt: skip
    raise CheckFailed(message, run.errors, info.backup.id if info.backup else None)


def step_rolls_back(conn: sa.Connection, mctx: MigrationContext) -> bool:
    """Whether refusing the step now undoes its schema changes: PostgreSQL; SQLite when env.py
    makes pysqlite transactional (the README's recipe, or Python 3.12's autocommit=False)."""
    if conn.dialect.name == "sqlite":
        raw: Any = conn.connection.dbapi_connection
        if getattr(raw, "autocommit", None) is False:
            return True
        return getattr(raw, "isolation_level", "") is None and bool(getattr(raw, "in_transaction", False))
    return bool(mctx.impl.transactional_ddl)


def refusal_message(step_name: str, run: CheckRun, info: StepInfo, mctx: MigrationContext,
                    conn: sa.Connection) -> str:  # fmt: skip
    shown = "; ".join(f.one_line() for f in run.errors[:5])
    more = f" (and {len(run.errors) - 5} more)" if len(run.errors) > 5 else ""
    backup = info.backup
    version = info.revision_from if info.direction == "upgrade" else info.revision
    if step_rolls_back(conn, mctx):
        if conn.dialect.name == "postgresql" and not mctx.opts.get("transaction_per_migration"):
            tail = ("the run's transaction rolls back: the version stays where this run started (earlier steps of "
                    "this run roll back too)")  # fmt: skip
        else:
            tail = f"the step's transaction rolls back and the version stays at {version or 'base'}"
        if backup is None:
            tail += "; no backup was taken (nothing was at risk)"
        elif backup.store == "database":
            tail += f"; backup {backup.id} rolls back with it (nothing needs restoring)"
        else:
            tail += f"; backup {backup.id} holds the data from before the step: alembic-safety show {backup.id}"
    else:
        why = ("pysqlite ran the step's DDL outside a transaction (see the README for the env.py recipe)"
               if conn.dialect.name == "sqlite" else "this database commits DDL implicitly")  # fmt: skip
        tail = f"{why}: the schema may be partially changed; the version stays at {version or 'base'}"
        if backup is None:
            tail += "; no backup was taken (nothing was at risk): undo the step's changes with its downgrade"
        else:
            tail += (f"; inspect backup {backup.id} with alembic-safety show {backup.id} and restore with "
                     f"alembic-safety rollback {backup.id}")  # fmt: skip
    return f"alembic-safety refused {step_name}: integrity check failed: {shown}{more}; {tail}"


__all__ = ["CheckFinding", "checks_after_step", "checks_before_step", "created_tables", "full_context",
           "step_context"]
