"""``alembic-safety plan``: what each pending revision does, destroys, snapshots and how it is
rolled back — without changing the database.

Each revision's ``upgrade()``/``downgrade()`` is recorded offline (:mod:`.record`), judged by
the risk rules (:mod:`.risk`), run through the snapshot policy for a forecast, and given the
rollback steps the rollback command will execute (:mod:`.rollback_plan`).  With a reachable
database, live facts sharpen it (row counts, sizes, violating rows); without one it still works
and lists the facts it could not know.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from . import _compat, risk
from .errors import DatabaseUnavailable, UsageError
from .project import Project, with_database
from .record import RecordedStep, flatten, record, sql_text
from .rollback_plan import RollbackStep, rollback_steps
from .snapshot import throughput
from .snapshot.backup import snapshot_schema
from .snapshot.policy import RiskReport, is_pure_drop, plan_snapshot, risks_of
from .snapshot.reflect import LiveCatalog
from .sqlinfo import TableRef


@dataclass(frozen=True)
class SnapshotForecast:
    ref: TableRef
    columns: tuple[str, ...] | None
    where: str | None
    rows_estimate: int | None
    bytes_estimate: int | None
    seconds_estimate: float | None
    note: str = ""
    moved: bool = False

    @property
    def table(self) -> str:
        return self.ref.key

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "columns": list(self.columns) if self.columns is not None else None,
                "where": self.where, "rows_estimate": self.rows_estimate, "bytes_estimate": self.bytes_estimate,
                "seconds_estimate": self.seconds_estimate}  # fmt: skip


@dataclass(frozen=True)
class RevisionPlan:
    revision: str
    down_revision: str | list[str] | None
    message: str
    operations: tuple[str, ...]
    findings: tuple[risk.Finding, ...]
    reversible: str
    snapshot: tuple[SnapshotForecast, ...]
    rollback_steps: tuple[RollbackStep, ...]
    path: str

    @property
    def worst(self) -> str | None:
        return risk.worst(self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision, "down_revision": self.down_revision, "message": self.message,
            "operations": list(self.operations), "findings": [f.as_dict() for f in self.findings],
            "reversible": self.reversible, "snapshot": [s.as_dict() for s in self.snapshot],
            "rollback_steps": [{"order": s.order, "action": s.action, "critical": s.critical}
                               for s in self.rollback_steps],
        }  # fmt: skip


@dataclass(frozen=True)
class Plan:
    revisions: tuple[RevisionPlan, ...]
    unknown_facts: tuple[str, ...]
    dialect: str
    connected: bool

    def as_dict(self) -> dict[str, Any]:
        return {"revisions": [r.as_dict() for r in self.revisions], "unknown_facts": list(self.unknown_facts)}

    def fails(self, threshold: str) -> bool:
        """Whether a finding that is not allowed reaches ``threshold`` (high|medium|never)."""
        return any(risk.RANK[r.worst] >= risk.RANK[threshold] for r in self.revisions if r.worst)


# -- describing operations ---------------------------------------------------------------------
def _t(op: Any) -> str:
    schema = getattr(op, "schema", None)
    name = getattr(op, "table_name", None) or "?"
    return f"{schema}.{name}" if schema else str(name)


def describe_op(op: alembic_ops.MigrateOperation, dialect: sa.Dialect) -> str:
    """One line per operation, marked ``+`` (adds), ``-`` (removes) or ``~`` (changes); never
    raises (a description is not worth a crashed plan)."""
    try:
        return _describe(op, dialect)
    except Exception:
        return f"~ {type(op).__name__}"


def _describe(op: alembic_ops.MigrateOperation, dialect: sa.Dialect) -> str:
    o: Any = op
    if isinstance(op, alembic_ops.CreateTableOp):
        return f"+ create table {_t(o)}"
    if isinstance(op, alembic_ops.DropTableOp):
        return f"- drop table {_t(o)}"
    if isinstance(op, alembic_ops.AddColumnOp):
        return f"+ add column {_t(o)}.{o.column.name}"
    if isinstance(op, alembic_ops.DropColumnOp):
        return f"- drop column {_t(o)}.{o.column_name}"
    if isinstance(op, alembic_ops.AlterColumnOp):
        what = [w for w, v in (("type", o.modify_type), ("nullable", o.modify_nullable),
                               ("default", o.modify_server_default), ("name", o.modify_name),
                               ("comment", o.modify_comment)) if v is not None and v is not False]  # fmt: skip
        return f"~ alter column {_t(o)}.{o.column_name} ({', '.join(what) or 'nothing'})"
    if isinstance(op, alembic_ops.CreateIndexOp):
        return f"+ create index {o.index_name} on {_t(o)}"
    if isinstance(op, alembic_ops.DropIndexOp):
        return f"- drop index {o.index_name}"
    if isinstance(op, alembic_ops.AddConstraintOp):
        return f"+ add {type(op).__name__.replace('Create', '').replace('Op', '').lower()} " \
               f"{getattr(o, 'constraint_name', None) or '(unnamed)'} on {_t(o)}"  # fmt: skip
    if isinstance(op, alembic_ops.DropConstraintOp):
        return f"- drop constraint {o.constraint_name or '(unnamed)'} on {_t(o)}"
    if isinstance(op, alembic_ops.RenameTableOp):
        return f"~ rename table {_t(o)} -> {o.new_table_name}"
    if isinstance(op, alembic_ops.BulkInsertOp):
        return f"+ insert {len(o.rows)} row(s) into {o.table.name}"
    if isinstance(op, alembic_ops.ExecuteSQLOp):
        try:
            text = " ".join(sql_text(o, dialect).split())
        except Exception:
            text = "(a SQL construct that cannot be rendered)"
        return f"~ execute: {text[:100]}{'…' if len(text) > 100 else ''}"
    return f"~ {type(op).__name__}"


# -- estimates ---------------------------------------------------------------------------------
def _estimate(conn: sa.Connection, table: TableRef, columns: tuple[str, ...] | None) -> tuple[int | None, int | None]:
    """Rows and bytes of (the given columns of) a table, from statistics where they exist."""
    prep = conn.dialect.identifier_preparer
    qualified = prep.format_table(sa.table(table.name, schema=table.schema))
    if conn.dialect.name == "postgresql":
        row = conn.execute(sa.text("SELECT c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
                                   "WHERE c.oid = to_regclass(:t)"), {"t": qualified}).first()  # fmt: skip
        if row is None:
            return None, None
        rows, size = int(row[0]), int(row[1])
        if rows < 0:  # never analysed: count (cheap for the small tables that are never analysed)
            rows = int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(table.name, schema=table.schema)))
                       .scalar_one())  # fmt: skip
        if columns is not None:
            widths: dict[str, int] = dict(conn.execute(sa.text(
                "SELECT attname, avg_width FROM pg_stats WHERE tablename = :t AND schemaname = "
                "coalesce(:s, current_schema())"), {"t": table.name, "s": table.schema}).all())  # fmt: skip
            if widths and all(c in widths for c in columns):
                size = rows * (sum(int(widths[c]) for c in columns) + 24)
        return rows, size
    if conn.dialect.name in ("mysql", "mariadb"):
        t = sa.table("tables", sa.column("table_schema"), sa.column("table_name"), sa.column("table_rows"),
                     sa.column("data_length"), schema="information_schema")  # fmt: skip
        schema = table.schema or conn.exec_driver_sql("SELECT DATABASE()").scalar()
        row = conn.execute(sa.select(t.c.table_rows, t.c.data_length).where(
            t.c.table_schema == schema, t.c.table_name == table.name)).first()
        return (int(row[0] or 0), int(row[1] or 0)) if row else (None, None)
    count = conn.execute(sa.select(sa.func.count()).select_from(sa.table(table.name, schema=table.schema))).scalar()
    pages: Any = None
    if conn.dialect.name == "sqlite":
        try:  # the dbstat virtual table, where SQLite was built with it
            with conn.begin_nested():
                pages = conn.execute(sa.text("SELECT sum(pgsize) FROM dbstat WHERE name = :t"),
                                     {"t": table.name}).scalar()  # fmt: skip
        except sa.exc.DBAPIError:
            pages = None
    return int(count or 0), (int(pages) if pages is not None else None)


# -- the analysis ------------------------------------------------------------------------------
def _unwrapped(module: Any, name: str) -> Callable[..., Any] | None:
    fn = getattr(module, name, None)
    if not callable(fn):
        return None
    return _compat.own_function(fn)


def _revisions(script: ScriptDirectory, range_: str | None, current: tuple[str, ...] | None) -> list[Script]:
    try:
        if range_ is None:
            lower: Any = current if current else "base"
            upper: Any = "heads"
        elif ":" in range_:
            lo, _, hi = range_.partition(":")
            lower = lo or "base"
            upper = hi or "heads"
            if "current" in (lower, upper):
                if current is None:
                    raise UsageError("'current' in the range needs the database, which is not reachable")
                lower = current or "base" if lower == "current" else lower
                upper = current or "base" if upper == "current" else upper
        else:
            return [script.get_revision(range_)] if range_ not in ("heads", "head") else [
                script.get_revision(h) for h in script.get_heads()]
        revs = list(script.revision_map.iterate_revisions(upper, lower, implicit_base=True))
    except (CommandError, RevisionError, KeyError, ValueError) as exc:
        raise UsageError(f"bad revision range {range_!r}: {str(exc).splitlines()[0]}") from exc
    if not revs and range_ is not None and lower != upper:
        raise UsageError(f"bad revision range {range_!r}: {upper} is not above {lower}; write it as from:to")
    return [r for r in reversed(revs) if isinstance(r, Script)]


def _static_dialect(project: Project) -> tuple[sa.Dialect, list[str]]:
    url = project.alembic.get_main_option("sqlalchemy.url")
    try:
        if url:
            return sa.make_url(url).get_dialect()(), []
    except Exception:
        pass
    from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2

    fallback: sa.Dialect = PGDialect_psycopg2()  # type: ignore[no-untyped-call]
    return fallback, ["the database dialect (no usable sqlalchemy.url): analysed as PostgreSQL"]


def analyse(project: Project, range_: str | None = None, *, live: bool = True) -> Plan:
    """Plan the revisions in ``range_`` (default: pending ones, current -> heads).  ``live=False``
    never connects: the plan depends on the code alone (the runbooks use it, so they only
    change when a revision does)."""
    script = project.script()
    if not live:
        dialect, unknown = _static_dialect(project)
        return _build(project, _revisions(script, range_, None), dialect, risk.NoFacts(), None, None, unknown)

    def on_db(conn: sa.Connection, ctx: MigrationContext) -> Plan:
        current = tuple(ctx.get_current_heads())
        revisions = _revisions(script, range_, current)
        catalog = LiveCatalog(conn, version_table=ctx.version_table, version_schema=ctx.version_table_schema,
                              safety_schema=snapshot_schema(conn, project.config.snapshot_schema))  # fmt: skip
        facts = risk.LiveFacts(conn)
        return _build(project, revisions, conn.dialect, facts, catalog, conn, [])

    try:
        return with_database(project, on_db)[0]
    except DatabaseUnavailable as exc:
        dialect, unknown = _static_dialect(project)
        revisions = _revisions(script, range_, None)
        if range_ is None:
            unknown.append("the database's current revision (not reachable): every revision from base is analysed")
        unknown.insert(0, f"live facts: {exc.message}")
        return _build(project, revisions, dialect, risk.NoFacts(), None, None, unknown)


def _build(project: Project, revisions: list[Script], dialect: sa.Dialect, facts: Any,
           catalog: LiveCatalog | None, conn: sa.Connection | None, unknown: list[str]) -> Plan:  # fmt: skip
    store = project.config.store_for(dialect.name)
    rate, measured = throughput.rate(project.config.backup_dir, store)
    if not measured:
        unknown.append(f"snapshot throughput (no backup measured yet): assumed {rate // 1_000_000} MB/s")
    plans = [_plan_one(project, s, dialect, facts, catalog, conn, rate, store) for s in revisions]
    if conn is not None and len(revisions) > 1:
        unknown.append("the state between pending revisions: each forecast uses the tables as they are now")
    unknown += [u for u in getattr(facts, "unknown", []) if u not in unknown]
    return Plan(tuple(plans), tuple(unknown), dialect.name, conn is not None)


def _record(fn: Callable[..., Any] | None, dialect: sa.Dialect) -> RecordedStep | None:
    return None if fn is None else record(fn, dialect)


def _plan_one(project: Project, script: Script, dialect: sa.Dialect, facts: Any, catalog: LiveCatalog | None,
              conn: sa.Connection | None, rate: int, store: str) -> RevisionPlan:  # fmt: skip
    module = script.module
    upgrade = _record(_unwrapped(module, "upgrade"), dialect) or RecordedStep(ops=())
    downgrade = _record(_unwrapped(module, "downgrade"), dialect)
    try:
        source = Path(script.path).read_text(encoding="utf-8")
    except OSError:
        source = ""
    down_fn = _unwrapped(module, "downgrade")
    try:
        down_src = inspect.getsource(down_fn) if down_fn is not None else ""
    except (OSError, TypeError):
        down_src = ""
    ctx = risk.RuleContext(script.revision, upgrade, downgrade, down_src, dialect.name, facts)
    findings = risk.evaluate(ctx, risk.suppressions(source))
    report = risks_of(upgrade)
    snapshots = project.config.snapshot != "none"
    forecast = _forecast(report, project, catalog, conn, dialect.name, rate)
    moved = [f.ref for f in forecast if f.moved]
    restored = [f.ref for f in forecast if not f.moved and f.rows_estimate != 0]
    reversible = risk.reversibility(ctx, snapshots)
    down = script.down_revision
    down_revision: str | list[str] | None = list(down) if isinstance(down, (tuple, list)) else down
    steps = rollback_steps(script.revision, "+".join(down) if isinstance(down, (tuple, list)) else down,
                           restored=restored, moved=moved,
                           downgrade_usable=downgrade is not None and bool(downgrade.ops) and not downgrade.opaque,
                           transactional=dialect.name == "postgresql")  # fmt: skip
    return RevisionPlan(
        revision=script.revision, down_revision=down_revision, message=_first_line(script.doc),
        operations=tuple(describe_op(op, dialect) for op in flatten(upgrade.ops)),
        findings=tuple(findings), reversible=reversible, snapshot=tuple(forecast), rollback_steps=tuple(steps),
        path=str(script.path),
    )  # fmt: skip


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


def _forecast(report: RiskReport, project: Project, catalog: LiveCatalog | None, conn: sa.Connection | None,
              dialect_name: str, rate: int) -> list[SnapshotForecast]:  # fmt: skip
    if project.config.snapshot == "none":
        return []
    store = project.config.store_for(dialect_name)
    if catalog is None or conn is None:
        seen: dict[str, SnapshotForecast] = {}
        for r in report.risks:
            if project.config.wants_table(r.table.key) and r.table.key not in seen:
                seen[r.table.key] = SnapshotForecast(r.table, r.columns, r.where, None, None, None,
                                                     "not connected: sizes unknown")  # fmt: skip
        return list(seen.values())
    requests, _ = plan_snapshot(report, project.config, catalog, dialect_name=dialect_name)
    out = []
    for req in requests:
        rows, size = _estimate(conn, req.table, req.columns)
        pure_drop = is_pure_drop(req) and store == "database"
        note = "moved, not copied: O(1)" if pure_drop else ("upper bound: WHERE selectivity unknown" if req.where
                                                            else "")  # fmt: skip
        seconds = 0.0 if pure_drop else (round(size / rate, 2) if size is not None else None)
        out.append(SnapshotForecast(req.table, req.columns, req.where, rows, size, seconds, note, pure_drop))
    known = {r.table.key for r in requests}
    for r in report.risks:
        if r.table.key not in known and catalog.resolve(r.table) is None:
            out.append(SnapshotForecast(r.table, r.columns, r.where, 0, 0, 0.0,
                                        "does not exist yet (created by an earlier pending revision)"))  # fmt: skip
            known.add(r.table.key)
    return out

