"""From recorded operations to what a snapshot must hold (DESIGN.md §4).

| operation | snapshot |
|---|---|
| drop table, truncate, DELETE without a parsable WHERE, unparsable or opaque SQL | whole table(s) |
| drop column, alter column type/nullability, UPDATE t SET c ... | primary key + affected columns |
| DELETE/UPDATE ... WHERE p (parsable) | the rows matching p |
| create table/index/constraint, add column, bulk insert | none |

:func:`risks_of` is pure (ops in, risks out); :func:`plan_snapshot` applies the policy, the
include/exclude lists and the live catalogue (which tables and columns exist before the step,
their primary keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from alembic.operations import ops as alembic_ops

from ..config import SafetyConfig
from ..record import RecordedStep, flatten
from ..sqlinfo import COLUMNS, OPAQUE, ROWS, WHOLE, SqlEffect, TableRef, where_columns

# Operations that create or describe schema and cannot lose a row or a value.
_SAFE_OPS = (
    alembic_ops.CreateTableOp, alembic_ops.AddColumnOp, alembic_ops.CreateIndexOp,
    alembic_ops.DropIndexOp, alembic_ops.AddConstraintOp, alembic_ops.DropConstraintOp,
    alembic_ops.BulkInsertOp, alembic_ops.RenameTableOp, alembic_ops.CreateTableCommentOp,
    alembic_ops.DropTableCommentOp,
)  # fmt: skip


@dataclass(frozen=True)
class Risk:
    """Data one operation may destroy in one table."""

    table: TableRef
    columns: tuple[str, ...] | None  # None: every column
    where: str | None  # None: every row
    reason: str


@dataclass(frozen=True)
class RiskReport:
    risks: tuple[Risk, ...]
    named: tuple[TableRef, ...]  # every table the step names, in order of appearance
    opaque: tuple[str, ...]  # why parts of the step could not be read
    incomplete: bool = False  # the recording stopped early: the rest of the step is unknown


@dataclass(frozen=True)
class SnapshotRequest:
    """One table to snapshot: whole (columns None), some columns, and/or the rows of a WHERE."""

    table: TableRef
    columns: tuple[str, ...] | None
    where: str | None
    reasons: tuple[str, ...]


class Catalog(Protocol):
    """What exists in the database before the step."""

    def resolve(self, ref: TableRef) -> TableRef | None:
        """The canonical reference of an existing table, or None when it does not exist."""

    def tables(self, schemas: Iterable[str | None]) -> list[TableRef]: ...

    def columns(self, ref: TableRef) -> list[str]:
        """Insertable (non-generated) columns, in table order."""

    def primary_key(self, ref: TableRef) -> list[str]: ...


def _ref(table_name: str, schema: str | None) -> TableRef:
    return TableRef(table_name, schema)


def risks_of(step: RecordedStep) -> RiskReport:
    risks: list[Risk] = []
    named: list[TableRef] = []
    opaque: list[str] = [o.reason for o in step.opaque]

    def name(ref: TableRef) -> None:
        if ref not in named:
            named.append(ref)

    for o in step.opaque:
        for t in o.tables:
            name(t)
    for index, op in enumerate(flatten(step.ops)):
        table_name = getattr(op, "table_name", None)
        schema = getattr(op, "schema", None)
        if isinstance(table_name, str):
            name(_ref(table_name, schema))
        if isinstance(op, alembic_ops.DropTableOp):
            risks.append(Risk(_ref(op.table_name, op.schema), None, None, f"drop_table {op.table_name}"))
        elif isinstance(op, alembic_ops.DropColumnOp):
            risks.append(
                Risk(_ref(op.table_name, op.schema), (op.column_name,), None, f"drop_column {op.column_name}")
            )
        elif isinstance(op, alembic_ops.AlterColumnOp):
            if op.modify_type is not None or op.modify_nullable is not None:
                what = "type" if op.modify_type is not None else "nullability"
                risks.append(
                    Risk(_ref(op.table_name, op.schema), (op.column_name,), None,
                         f"alter_column {op.column_name} ({what})")
                )  # fmt: skip
        elif isinstance(op, alembic_ops.ExecuteSQLOp):
            effects = step.effects_for(index)
            for effect in effects:
                for t in effect.tables:
                    name(t)
                if effect.kind == WHOLE:
                    reason = effect.reason
                    if reason == "DROP TABLE" and not movable_sql_drop(op, effects):
                        reason = "DROP TABLE (inside other SQL: copied, not moved)"
                    risks.extend(Risk(t, None, None, reason) for t in effect.tables)
                elif effect.kind == ROWS:
                    risks.extend(Risk(t, None, effect.where, effect.reason) for t in effect.tables)
                elif effect.kind == COLUMNS:
                    risks.extend(
                        Risk(t, effect.columns, effect.where, f"{effect.reason} {', '.join(effect.columns)}")
                        for t in effect.tables
                    )
                elif effect.kind == OPAQUE:
                    if effect.tables:
                        risks.extend(Risk(t, None, None, effect.reason) for t in effect.tables)
                    else:
                        opaque.append(effect.reason)
        elif not isinstance(op, _SAFE_OPS):
            opaque.append(f"operation {type(op).__name__} is not known to alembic-safety")
    return RiskReport(tuple(risks), tuple(named), tuple(opaque), incomplete=not step.complete)


def _cascades(wanted: list[SnapshotRequest], catalog: Catalog) -> list[SnapshotRequest]:
    """Rows other tables lose through ON DELETE CASCADE / SET NULL / SET DEFAULT foreign keys
    when a step deletes or truncates rows: those tables are snapshotted whole (transitively)."""
    referencing = getattr(catalog, "referencing", None)
    if referencing is None:
        return []
    out: list[SnapshotRequest] = []
    todo = [r.table for r in wanted if any(x.startswith(("DELETE", "TRUNCATE", "MERGE")) for x in r.reasons)]
    seen = set(todo)
    while todo:
        parent = catalog.resolve(todo.pop())
        if parent is None:
            continue
        for child, action in referencing(parent):
            if child not in seen:
                seen.add(child)
                todo.append(child)
                out.append(SnapshotRequest(child, None, None, (f"ON DELETE {action} from {parent.key}",)))
    return out


def movable_sql_drop(op: alembic_ops.ExecuteSQLOp, effects: tuple[SqlEffect, ...]) -> bool:
    """Whether ``op.execute`` is exactly one plain ``DROP TABLE`` the move can stand in for (a
    string, one statement, no CASCADE) — the shape the replaced implementation handles."""
    return (isinstance(op.sqltext, str) and len(effects) == 1 and effects[0].statement == "DROP TABLE"
            and "CASCADE" not in op.sqltext.upper())  # fmt: skip


def _merge(a: SnapshotRequest, b: SnapshotRequest) -> SnapshotRequest:
    columns = None if a.columns is None or b.columns is None else tuple(dict.fromkeys(a.columns + b.columns))
    where = None if a.where is None or b.where is None else (
        a.where if a.where == b.where else f"({a.where}) OR ({b.where})"
    )
    return SnapshotRequest(a.table, columns, where, tuple(dict.fromkeys(a.reasons + b.reasons)))


def plan_snapshot(
    report: RiskReport,
    config: SafetyConfig,
    catalog: Catalog,
    *,
    dialect_name: str,
    skip: Iterable[TableRef] = (),
) -> tuple[list[SnapshotRequest], list[str]]:
    """Apply the policy; returns the requests and notes worth auditing (what was left out, why)."""
    notes: list[str] = []
    policy = config.snapshot
    if policy == "none":
        return [], ["snapshot = none: nothing is snapshotted"]
    wanted: list[SnapshotRequest] = []
    schemas = {None} | {t.schema for t in report.named}
    if policy == "all":
        wanted = [SnapshotRequest(t, None, None, ("snapshot = all",)) for t in catalog.tables(schemas)]
    elif policy == "touched":
        wanted = [SnapshotRequest(t, None, None, ("snapshot = touched",)) for t in report.named]
    else:
        wanted = [SnapshotRequest(r.table, r.columns, r.where, (r.reason,)) for r in report.risks]
    if report.opaque and policy in ("at-risk", "touched"):
        why = "; ".join(report.opaque)
        if report.incomplete:
            # what the step does after the point where recording stopped is unknown: the tables
            # named before it prove nothing about the rest
            wanted += [SnapshotRequest(t, None, None, (f"opaque: {why}",)) for t in catalog.tables(schemas)]
            notes.append(f"recording stopped early ({why}): every table is snapshotted")
        elif report.named:
            wanted += [SnapshotRequest(t, None, None, (f"opaque: {why}",)) for t in report.named]
            notes.append(f"opaque step ({why}): every table it names is snapshotted whole")
        else:
            wanted += [SnapshotRequest(t, None, None, (f"opaque: {why}",)) for t in catalog.tables(schemas)]
            notes.append(f"opaque step ({why}) names no table: every table is snapshotted")

    wanted += _cascades(wanted, catalog)
    skipped = set(skip)
    merged: dict[TableRef, SnapshotRequest] = {}
    for req in wanted:
        table = catalog.resolve(req.table)
        if table is None:
            continue  # created by this step (or earlier in it): nothing to lose yet
        if table in skipped:
            continue
        if not config.wants_table(table.key):
            notes.append(f"{table.key} is excluded by include_tables/exclude_tables: not snapshotted")
            skipped.add(table)
            continue
        req = SnapshotRequest(table, req.columns, req.where, req.reasons)
        merged[table] = _merge(merged[table], req) if table in merged else req

    result: list[SnapshotRequest] = []
    for table, req in merged.items():
        existing = catalog.columns(table)
        columns = req.columns
        where = req.where
        if where is not None:
            used = where_columns(where, dialect_name)
            if used is None or not used <= set(existing):
                notes.append(f"{table.key}: the WHERE cannot be evaluated before the step; all rows kept")
                where = None
        if columns is not None:
            present = [c for c in existing if c in set(columns)]
            if not present:
                continue  # only columns the step itself adds: nothing to lose yet
            pk = catalog.primary_key(table)
            if not pk:
                notes.append(f"{table.key} has no primary key: snapshotted whole")
                columns = None
            else:
                keep = set(pk) | set(present)
                columns = tuple(c for c in existing if c in keep)
                if set(columns) >= set(existing):
                    columns = None
        result.append(SnapshotRequest(table, columns, where, req.reasons))
    return result, notes


def is_pure_drop(req: SnapshotRequest) -> bool:
    """A whole table at risk only because the step drops it: it can be moved, not copied."""
    return req.columns is None and req.where is None and all(
        r.startswith("drop_table ") or r == "DROP TABLE" for r in req.reasons)
