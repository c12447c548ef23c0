"""A drop becomes a move.

While a step runs with the database store, the implementation of ``op.drop_table`` (and of
``op.execute`` for a plain ``DROP TABLE``) is replaced (``Operations.implementation_for(...,
replace=True)``, restored afterwards).  A table the snapshot plan marked for moving is renamed
into the snapshot schema instead of being dropped: O(1) whatever its size, and its data,
indexes, constraints, triggers and owned sequences go with it.  The rest of the revision sees
what a real drop leaves: the name is free, and foreign keys *from* the moved table to live
tables are dropped (their definitions are in the manifest), so later drops of the referenced
tables work.  Where a real ``DROP TABLE`` would fail — views or foreign keys of other tables
depend on it (PostgreSQL), or triggers stop a cross-database rename (MySQL) — the table is
copied instead and the original drop runs, so the revision fails or succeeds exactly as it
would without alembic-safety.  A PostgreSQL table with a column of a user-defined type (enum,
domain, citext, ...) is copied too: moved, it would keep the type alive, and the ``DROP TYPE``
that usually follows the drop in the same revision would fail; the copy stores such columns as
text (:func:`.dbstore.user_typed_columns`).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.sql.ddl import ExecutableDDLElement

from .. import _compat
from ..sqlinfo import TableRef, analyze_sql
from .dbstore import COPIED, MOVED, DatabaseStore, user_typed_columns
from .manifest import Manifest
from .policy import movable_sql_drop


class SetSchema(ExecutableDDLElement):
    """PostgreSQL ``ALTER TABLE <table> SET SCHEMA <schema>``; MySQL ``RENAME TABLE a TO b``."""

    def __init__(self, table: sa.TableClause, schema: str, new_name: str) -> None:
        self.table = table
        self.schema = schema
        self.new_name = new_name


@compiles(SetSchema)
def _set_schema(element: SetSchema, compiler: DDLCompiler, **kw: Any) -> str:
    prep = compiler.preparer
    if compiler.dialect.name in ("mysql", "mariadb"):
        target = prep.format_table(sa.table(element.new_name, schema=element.schema))
        return f"RENAME TABLE {prep.format_table(element.table)} TO {target}"
    return f"ALTER TABLE {prep.format_table(element.table)} SET SCHEMA {prep.quote_schema(element.schema)}"


@dataclass
class PlannedMove:
    table: TableRef
    snapshot_name: str
    columns: list[str]
    foreign_keys: list[dict[str, Any]]
    done: str = ""  # "", "moved", "copied"
    blockers: list[str] = field(default_factory=list)  # why it was copied instead


@dataclass
class Mover:
    """The moves planned for one step; looked up by the running MigrationContext."""

    store: DatabaseStore
    plans: dict[TableRef, PlannedMove]
    resolve: Callable[[TableRef], TableRef | None]
    log: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def plan_for(self, ref: TableRef) -> PlannedMove | None:
        canonical = self.resolve(ref)
        plan = self.plans.get(canonical) if canonical is not None else None
        return plan if plan is not None and not plan.done else None

    def blockers(self, conn: sa.Connection, ref: TableRef) -> list[str]:
        """Why a real DROP TABLE would fail or a rename cannot stand in for it."""
        prep = conn.dialect.identifier_preparer
        if conn.dialect.name == "postgresql":
            qualified = prep.format_table(sa.table(ref.name, schema=ref.schema))
            rows = conn.execute(sa.text(
                "SELECT 'view ' || r.ev_class::regclass::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
                "WHERE d.refobjid = to_regclass(:t) AND r.ev_class <> to_regclass(:t) "
                "UNION SELECT 'foreign key ' || conname || ' of ' || conrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = to_regclass(:t) AND conrelid <> confrelid"
            ), {"t": qualified})  # fmt: skip
            # a moved table keeps its column types: it would keep the types alive, and the
            # revision's own DROP TYPE after the drop would fail — the copy stores them as text
            typed = [f"column {c} uses type {t}" for c, t in user_typed_columns(conn, ref).items()]
            return [r[0] for r in rows] + typed
        schema = ref.schema or conn.exec_driver_sql("SELECT DATABASE()").scalar_one()
        rows = conn.execute(sa.text(
            "SELECT CONCAT('foreign key ', constraint_name, ' of ', table_name) "
            "FROM information_schema.key_column_usage "
            "WHERE referenced_table_schema = :s AND referenced_table_name = :t AND table_name <> :t "
            "UNION SELECT CONCAT('trigger ', trigger_name) FROM information_schema.triggers "
            "WHERE event_object_schema = :s AND event_object_table = :t"
        ), {"s": schema, "t": ref.name})  # fmt: skip
        return [r[0] for r in rows]

    def run(self, operations: Operations, plan: PlannedMove, original: Callable[[], Any]) -> Any:
        mctx = operations.migration_context
        conn = mctx.connection
        ref = plan.table
        blockers = [] if mctx.as_sql or conn is None else self.blockers(conn, ref)
        if blockers:
            # a real drop would fail (or cascade): copy the data, then let the real drop decide
            self.store.copy_table_as(plan.snapshot_name, ref, plan.columns, None)
            plan.done = "copied"
            plan.blockers = blockers
            self.log.append(f"{ref.key}: copied, not moved ({'; '.join(blockers)})")
            return original()
        for fk in plan.foreign_keys:
            if fk.get("name"):
                operations.drop_constraint(fk["name"], ref.name, type_="foreignkey", schema=ref.schema)
        impl = mctx.impl
        if mctx.dialect.name == "postgresql":
            if conn is not None and not mctx.as_sql:
                rename_companions(conn, ref, plan.snapshot_name)
            impl.rename_table(ref.name, plan.snapshot_name, schema=ref.schema)
            renamed = sa.table(plan.snapshot_name, schema=ref.schema)
            impl.execute(SetSchema(renamed, self.store.schema, plan.snapshot_name))
        else:
            impl.execute(SetSchema(sa.table(ref.name, schema=ref.schema), self.store.schema, plan.snapshot_name))
        plan.done = "moved"
        self.log.append(f"{ref.key}: moved to {self.store.schema}.{plan.snapshot_name}")
        return None


def companion_name(snapshot_name: str, original: str) -> str:
    """The name an index or owned sequence of a moved table gets in the snapshot schema, where
    index and sequence names must be unique: the next move of a same-named table (after a
    rollback re-created it) would collide with the originals."""
    digest = hashlib.sha256(original.encode()).hexdigest()[:8]
    return f"{snapshot_name[:50]}_{digest}"


_COMPANIONS = sa.text(
    "SELECT 'INDEX', c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = to_regclass(:t) "
    "UNION ALL SELECT 'SEQUENCE', s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
    "WHERE s.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.refobjid = to_regclass(:t) "
    "AND d.deptype IN ('a', 'i')"
)


def companions(conn: sa.Connection, ref: TableRef) -> list[tuple[str, str]]:
    """(kind, name) of the indexes and owned sequences of a PostgreSQL table."""
    qualified = conn.dialect.identifier_preparer.format_table(sa.table(ref.name, schema=ref.schema))
    return [(str(k), str(n)) for k, n in conn.execute(_COMPANIONS, {"t": qualified})]


def rename_companions(conn: sa.Connection, ref: TableRef, snapshot_name: str,
                      names: Callable[[str], str | None] | None = None) -> None:  # fmt: skip
    """Rename a table's indexes (with the constraints they back) and owned sequences: to
    :func:`companion_name` (``names`` None), or to what ``names`` maps each current name to."""
    prep = conn.dialect.identifier_preparer
    schema = ref.schema or conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    for kind, name in companions(conn, ref):
        new = companion_name(snapshot_name, name) if names is None else names(name)
        if not new or new == name:
            continue
        target = prep.format_table(sa.table(name, schema=schema))
        conn.exec_driver_sql(f"ALTER {kind} {target} RENAME TO {prep.quote(new)}")


_MOVERS: weakref.WeakKeyDictionary[MigrationContext, Mover] = weakref.WeakKeyDictionary()


def _drop_table(operations: Operations, operation: alembic_ops.DropTableOp) -> Any:
    original = _compat.original_implementation(alembic_ops.DropTableOp)
    mover = _MOVERS.get(operations.migration_context)
    plan = mover.plan_for(TableRef(operation.table_name, operation.schema)) if mover else None
    if mover is None or plan is None:
        return original(operations, operation)
    return mover.run(operations, plan, lambda: original(operations, operation))


def _execute_sql(operations: Operations, operation: alembic_ops.ExecuteSQLOp) -> Any:
    original = _compat.original_implementation(alembic_ops.ExecuteSQLOp)
    mover = _MOVERS.get(operations.migration_context)
    if mover is None or not isinstance(operation.sqltext, str):
        return original(operations, operation)
    effects = tuple(analyze_sql(operation.sqltext, operations.migration_context.dialect.name))
    touched = [t for e in effects for t in e.tables]
    plans = [mover.plan_for(t) for t in touched]
    if not movable_sql_drop(operation, effects) or any(p is None for p in plans):
        # not a shape the move stands in for: whatever planned table it touches is copied first
        for plan in plans:
            if plan is not None:
                mover.store.copy_table_as(plan.snapshot_name, plan.table, plan.columns, None)
                plan.done = "copied"
        return original(operations, operation)
    for plan in plans:
        assert plan is not None
        mover.run(operations, plan, lambda: original(operations, operation))
        if plan.done == "copied":
            break  # the original statement ran and dropped (or failed on) all of them
    return None


@contextmanager
def drops_become_moves(mctx: MigrationContext, mover: Mover) -> Iterator[None]:
    """Replace the drop implementations for the duration of one step."""
    _MOVERS[mctx] = mover
    with _compat.implementations_replaced({alembic_ops.DropTableOp: _drop_table,
                                           alembic_ops.ExecuteSQLOp: _execute_sql}):  # fmt: skip
        try:
            yield
        finally:
            _MOVERS.pop(mctx, None)


def finish_moves(mover: Mover, manifest: Manifest) -> Manifest:
    """After the step: record what became of each planned move in the catalogue (moved: its
    size; copied instead: its checksum; never dropped: the entry goes, nothing was at risk)."""
    tables = []
    lost: list[str] = []
    insp = sa.inspect(mover.store.conn)
    for t in manifest.tables:
        plan = mover.plans.get(TableRef(t.name, t.schema)) if t.format == MOVED else None
        if plan is None and t.format == MOVED:
            continue
        if plan is not None and not plan.done:
            if not insp.has_table(t.name, schema=t.schema):
                lost.append(t.key)  # dropped some way the move did not see: say so, loudly
            continue
        if plan is None:
            tables.append(t)
        elif plan.done == "moved":
            size = mover.store.table_bytes([t.file])
            tables.append(replace(t, bytes=size, raw_bytes=size, reasons=(*t.reasons, "moved, not copied")))
        elif plan.done == "copied":
            rows, checksum = mover.store.checksum(t.file, list(t.stored_columns))
            size = mover.store.table_bytes([t.file])
            why = (f"copied, not moved: {'; '.join(plan.blockers)}",) if plan.blockers else ()
            tables.append(replace(t, format=COPIED, rows=rows, checksum=checksum, bytes=size, raw_bytes=size,
                                  reasons=(*t.reasons, *why)))  # fmt: skip
    notes = tuple(f"{key} was dropped without passing through the move: it is NOT in this backup"
                  for key in lost)  # fmt: skip
    mover.lost = lost
    finished = replace(manifest, tables=tuple(tables), notes=(*manifest.notes, *notes))
    if not tables and not lost:
        mover.store.delete(manifest.id)
    elif finished != manifest:
        mover.store.write_manifest(finished, replace=True)
    return finished
