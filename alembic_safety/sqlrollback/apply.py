"""``sql-rollback DIR --apply TARGET --url URL``: run the rollback scripts of every migration newer
than TARGET, newest first, in one transaction, after a backup of the tables they touch.

The plan comes first (:func:`plan_apply`): which scripts run, their statements, the manual
steps they leave to a human, the tables backed up, and a confirmation code that changes when
the database or the scripts do.  :func:`apply_plan` runs it only with that code, re-checks the
plan inside its transaction, and either commits everything or nothing.

Which migrations are applied: Supabase's ``supabase_migrations.schema_migrations`` table when
the database has it (its rows of the rolled-back versions are deleted in the same transaction,
as ``supabase migration repair --status reverted`` would); otherwise every forward file of the
folder counts as applied, and the plan says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..audit import AuditLog
from ..config import SafetyConfig
from ..errors import ConfirmationRequired, RollbackFailed, SafetyError, UsageError
from ..reverse.sql import shorten, split_statements
from ..rollback import code_for
from ..snapshot.backup import BackupRequest, take_backup
from ..snapshot.policy import SnapshotRequest
from ..snapshot.reflect import LiveCatalog
from ..sqlinfo import TableRef
from .folder import forward_files, read_header, read_text, rollback_paths, sha256, version
from .log import DIALECT
from .replay import replayable, scratch_engine

HISTORY_SCHEMA = "supabase_migrations"
HISTORY_TABLE = "schema_migrations"
_MANUAL = re.compile(r"^-- MANUAL: (.*)$", re.M)


@dataclass(frozen=True)
class ApplyStep:
    """One rollback script to run."""

    forward: str
    version: str
    script: Path
    statements: tuple[str, ...]  # as they run inside the transaction
    manual: tuple[str, ...]  # what the script leaves to a human (its -- MANUAL: lines)
    note: str  # "" or why this script deserves a look (edited by hand, not generated)

    def as_dict(self) -> dict[str, Any]:
        return {"forward": self.forward, "version": self.version, "script": str(self.script),
                "statements": list(self.statements), "manual": list(self.manual), "note": self.note}  # fmt: skip


@dataclass(frozen=True)
class ApplyPlan:
    folder: Path
    database: str  # the URL without its password
    target: str  # a version, or "base"
    steps: tuple[ApplyStep, ...]  # newest first
    tables: tuple[TableRef, ...]  # backed up before the first script runs
    history: bool  # the database has supabase_migrations.schema_migrations
    notes: tuple[str, ...]
    confirmation_code: str

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "database": self.database, "target": self.target,
                "steps": [s.as_dict() for s in self.steps], "tables": [t.key for t in self.tables],
                "history": self.history, "notes": list(self.notes),
                "confirmation_code": self.confirmation_code}  # fmt: skip


@dataclass(frozen=True)
class ApplyResult:
    plan: ApplyPlan
    backup_id: str | None
    statements: int


def resolve_target(forwards: Sequence[Path], target: str) -> str:
    """TARGET as a version: ``base`` (roll back everything), a version prefix or a file name."""
    wanted = target.strip().removesuffix(".sql")
    if wanted.lower() in ("base", "0"):
        return "base"
    for forward in forwards:
        if wanted in (version(forward), forward.name.removesuffix(".sql")):
            return version(forward)
    known = ", ".join(version(f) for f in forwards[-5:]) or "none"
    raise UsageError(f"unknown migration {target!r} in the folder: give a version (the newest: {known}), a file "
                     "name, or base")  # fmt: skip


def runnable_statements(script_text: str) -> tuple[str, ...]:
    """A rollback script's statements as they run inside one transaction: its BEGIN/COMMIT left
    out, CONCURRENTLY dropped (the statement then locks its table while it runs)."""
    out: list[str] = []
    for statement in split_statements(script_text, DIALECT):
        if re.match(r"^\s*(ROLLBACK|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b", statement, re.I):
            raise UsageError(f"the rollback script controls its transaction itself (`{shorten(statement, 60)}`); "
                             "--apply runs every script in one transaction: remove it")  # fmt: skip
        runnable = replayable(statement)
        if runnable is not None:
            out.append(runnable)
    return tuple(out)


def _step(forward: Path) -> ApplyStep:
    script, _ = rollback_paths(forward)
    if not script.exists():
        raise UsageError(f"{script.name} is missing: run 'alembic-safety sql-rollback {forward.parent}' first")
    text = read_text(script)
    header = read_header(text)
    note = ""
    if header is None:
        note = "not generated by alembic-safety: read it before you confirm"
    elif header.source != sha256(read_text(forward)):
        if header.edited:
            raise UsageError(f"{script.name} was edited by hand and {forward.name} changed since: review the script, "
                             "then regenerate it or fix its header's source-sha256")  # fmt: skip
        raise UsageError(f"{script.name} is stale ({forward.name} changed since): run 'alembic-safety sql-rollback "
                         f"{forward.parent}' first")  # fmt: skip
    elif header.edited:
        note = "edited by hand: runs as edited"
    return ApplyStep(forward.name, version(forward), script, runnable_statements(text),
                     tuple(m.strip() for m in _MANUAL.findall(text)), note)  # fmt: skip


def _touched(statements: Sequence[str]) -> list[TableRef]:
    """The tables the statements name (as targets or sources), in order, without repeats."""
    found: dict[TableRef, None] = {}
    for statement in statements:
        try:
            tree = sqlglot.parse_one(statement, read="postgres")
        except (SqlglotError, RecursionError, ValueError, IndexError):
            continue
        if tree is None:
            continue
        for table in tree.find_all(exp.Table):
            name = table.this
            if not isinstance(name, exp.Identifier) or not name.name:
                continue
            schema = table.args.get("db")
            found[TableRef(_fold(name), _fold(schema) if isinstance(schema, exp.Identifier) else None)] = None
    return list(found)


def _fold(ident: exp.Identifier) -> str:
    """A name as PostgreSQL's catalog holds it: unquoted names fold to lower case."""
    return str(ident.name) if ident.quoted else str(ident.name).lower()


def _applied(conn: sa.Connection) -> set[str] | None:
    insp = sa.inspect(conn)
    if HISTORY_SCHEMA not in insp.get_schema_names() or not insp.has_table(HISTORY_TABLE, schema=HISTORY_SCHEMA):
        return None
    history = sa.table(HISTORY_TABLE, sa.column("version"), schema=HISTORY_SCHEMA)
    return {str(v) for v in conn.execute(sa.select(history.c.version)).scalars()}


def _plan(conn: sa.Connection, folder: Path, target: str, database: str) -> ApplyPlan:
    forwards = forward_files(folder)
    if not forwards:
        raise UsageError(f"{folder} holds no forward migration (NNNN_name.sql)")
    wanted = resolve_target(forwards, target)
    applied = _applied(conn)
    newer = [f for f in forwards if wanted == "base" or int(version(f)) > int(wanted)]
    notes: list[str] = []
    if applied is None:
        notes.append(f"the database has no {HISTORY_SCHEMA}.{HISTORY_TABLE}: every migration of the folder is "
                     "taken as applied")  # fmt: skip
    else:
        unknown = sorted(v for v in applied if v not in {version(f) for f in forwards}
                         and (wanted == "base" or (v.isdigit() and int(v) > int(wanted))))  # fmt: skip
        if unknown:
            raise UsageError(f"the database has migrations newer than {wanted} that {folder} does not hold: "
                             f"{', '.join(unknown)}; roll back with the folder they came from")  # fmt: skip
        newer = [f for f in newer if version(f) in applied]
    steps = tuple(_step(f) for f in reversed(newer))
    catalog = LiveCatalog(conn)
    tables: dict[TableRef, None] = {}
    for ref in _touched([s for step in steps for s in step.statements]):
        resolved = catalog.resolve(ref)
        if resolved is not None:
            tables[resolved] = None
    if any("CONCURRENTLY" in s.upper() for step in steps for s in split_statements(read_text(step.script), DIALECT)):
        notes.append("CONCURRENTLY statements run without it, inside the transaction: each locks its table while "
                     "it runs")  # fmt: skip
    code = code_for(database, wanted, *(f"{s.version}:{sha256(read_text(s.script))}" for s in steps),
                 *sorted(applied or ()))  # fmt: skip
    return ApplyPlan(folder, database, wanted, steps, tuple(tables), applied is not None, tuple(notes), code)


def plan_apply(folder: Path, url: str, target: str) -> ApplyPlan:
    """What ``--apply TARGET`` would do on ``url``'s database; changes nothing."""
    engine = scratch_engine(url)
    database = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            try:
                return _plan(conn, folder, target, database)
            finally:
                conn.rollback()
    except sa.exc.OperationalError as exc:
        raise SafetyError(f"cannot reach {database}: {_first_line(exc)}") from exc
    finally:
        engine.dispose()


def apply_plan(plan: ApplyPlan, url: str, config: SafetyConfig, confirm_code: str | None) -> ApplyResult:
    """Run ``plan`` once ``confirm_code`` matches; one transaction: all or nothing."""
    if not confirm_code or confirm_code.strip().upper() != plan.confirmation_code:
        raise ConfirmationRequired(
            f"confirmation code {'missing' if not confirm_code else 'wrong'}: nothing was changed; run "
            f"'alembic-safety sql-rollback {plan.folder} --apply {plan.target} --url URL --dry-run' to see the plan "
            "and its code, then pass --confirm CODE")  # fmt: skip
    audit = AuditLog(config.audit_path)
    engine = scratch_engine(url)
    backup_id: str | None = None
    count = 0
    current = ""
    try:
        with engine.connect() as conn:
            try:
                again = _plan(conn, plan.folder, plan.target, plan.database)
                if again.confirmation_code != plan.confirmation_code:
                    raise ConfirmationRequired("the database or the rollback scripts changed since the plan was made "
                                               "(its confirmation code no longer matches): nothing was changed; "
                                               "look at the new plan with --dry-run")  # fmt: skip
                audit.write("sql_rollback_started", folder=str(plan.folder), target=plan.target,
                            versions=[s.version for s in plan.steps])  # fmt: skip
                if plan.tables:
                    request = BackupRequest(
                        tuple(SnapshotRequest(t, None, None, ("sql-rollback: before the rollback scripts",))
                              for t in plan.tables),
                        "pre-rollback", name="sql-rollback",
                        revision_from=plan.steps[0].version if plan.steps else None, revision_to=plan.target,
                        direction="downgrade",
                    )  # fmt: skip
                    manifest = take_backup(conn, request, config, audit=audit, db=None, catalog=LiveCatalog(conn))
                    backup_id = manifest.id if manifest is not None else None
                cursor = conn.connection.cursor()
                try:
                    for step in plan.steps:
                        current = step.script.name
                        for statement in step.statements:
                            cursor.execute(statement)
                            count += 1
                        if plan.history:
                            history = sa.table(HISTORY_TABLE, sa.column("version"), schema=HISTORY_SCHEMA)
                            conn.execute(sa.delete(history).where(history.c.version == step.version))
                finally:
                    cursor.close()
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
    except (ConfirmationRequired, UsageError):
        raise
    except Exception as exc:
        message = _first_line(exc)
        audit.write("sql_rollback_failed", folder=str(plan.folder), target=plan.target, script=current,
                    error=message, pre_rollback_id=backup_id)  # fmt: skip
        where = f" in {current}" if current else ""
        backup = f"; the pre-rollback backup {backup_id} is kept" if backup_id else ""
        raise RollbackFailed(f"sql-rollback failed{where}: {message}; the transaction was rolled back, the database "
                             f"is as it was{backup}", pre_rollback_id=backup_id, rolled_back=True) from exc  # fmt: skip
    finally:
        engine.dispose()
    audit.write("sql_rollback_completed", folder=str(plan.folder), target=plan.target,
                versions=[s.version for s in plan.steps], statements=count, pre_rollback_id=backup_id)  # fmt: skip
    return ApplyResult(plan, backup_id, count)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["ApplyPlan", "ApplyResult", "ApplyStep", "apply_plan", "plan_apply", "resolve_target",
           "runnable_statements"]  # fmt: skip
