"""CHK1xx: the schema after a step is what its recorded operations say it should be."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alembic.operations import ops as alembic_ops

from ..record import RecordedStep, flatten
from ..sqlinfo import OPAQUE, SCHEMA, TableRef
from .base import Check, CheckContext, CheckFinding


@dataclass(frozen=True)
class Expectations:
    """Tables and columns that must exist, or be gone, once the step has run."""

    tables: frozenset[TableRef]
    no_tables: frozenset[TableRef]
    columns: frozenset[tuple[TableRef, str]]
    no_columns: frozenset[tuple[TableRef, str]]


NOTHING = Expectations(frozenset(), frozenset(), frozenset(), frozenset())


def expectations(step: RecordedStep) -> Expectations:
    """What the step's operations promise, in order (a table created and dropped again is not
    expected either way).  Tables that SQL given to ``op.execute`` names (other than a plain
    ``DROP TABLE``) get no expectation: the SQL may rename or recreate them; a step whose
    recording is incomplete or whose SQL cannot be read promises nothing."""
    if not step.complete:
        return NOTHING
    tables: dict[TableRef, bool] = {}
    columns: dict[tuple[TableRef, str], bool] = {}
    vague: set[TableRef] = set()
    for index, op in enumerate(flatten(step.ops)):
        schema = getattr(op, "schema", None)
        if isinstance(op, alembic_ops.CreateTableOp):
            tables[TableRef(op.table_name, schema)] = True
        elif isinstance(op, alembic_ops.DropTableOp):
            t = TableRef(op.table_name, schema)
            tables[t] = False
            for key in [k for k in columns if k[0] == t]:
                del columns[key]
        elif isinstance(op, alembic_ops.RenameTableOp):
            tables[TableRef(op.table_name, schema)] = False
            tables[TableRef(op.new_table_name, schema)] = True
        elif isinstance(op, alembic_ops.AddColumnOp):
            columns[(TableRef(op.table_name, schema), op.column.name)] = True
        elif isinstance(op, alembic_ops.DropColumnOp):
            columns[(TableRef(op.table_name, schema), op.column_name)] = False
        elif isinstance(op, alembic_ops.AlterColumnOp) and op.modify_name is not None:
            columns[(TableRef(op.table_name, schema), op.column_name)] = False
            columns[(TableRef(op.table_name, schema), op.modify_name)] = True
        elif isinstance(op, alembic_ops.ExecuteSQLOp):
            for effect in step.effects_for(index):
                if effect.kind == OPAQUE and not effect.tables:
                    return NOTHING
                if effect.statement == "DROP TABLE" and effect.kind != SCHEMA:
                    for t in effect.tables:
                        tables[t] = False
                else:
                    vague.update(effect.tables)
    tables = {t: v for t, v in tables.items() if t not in vague}
    columns = {k: v for k, v in columns.items() if k[0] not in vague and tables.get(k[0], True)}
    return Expectations(
        frozenset(t for t, v in tables.items() if v), frozenset(t for t, v in tables.items() if not v),
        frozenset(k for k, v in columns.items() if v), frozenset(k for k, v in columns.items() if not v),
    )  # fmt: skip


class StepTables(Check):
    """After a step, the tables it created (or renamed to) exist and the tables it dropped (or
    renamed away) are gone.  A mismatch means the revision did not do what its operations say:
    an event trigger or a rule intervened, a dialect silently skipped an operation, or code in
    the revision undid its own work.  Runs after each step only (the recorded operations say
    what to expect).

    Bad: a revision whose ``op.create_table("invoices")`` is undone by something else running
    in the same step — the version moves on while the table is missing.

    Good: operations that leave the schema exactly as they describe; SQL that renames or
    recreates tables is left out of the comparison for the tables it names.
    """

    code = "CHK101"
    name = "schema.step-tables"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        if ctx.step is None:
            return
        exp = expectations(ctx.step.recorded)
        for t in sorted(exp.tables, key=lambda r: r.key):
            if ctx.catalog.resolve(t) is None:
                yield self.finding(f"the step's operations create {t.key}, but it does not exist after the step", t)
        for t in sorted(exp.no_tables, key=lambda r: r.key):
            if ctx.catalog.resolve(t) is not None:
                yield self.finding(f"the step's operations drop {t.key}, but it still exists after the step", t)


class StepColumns(Check):
    """After a step, the columns it added (or renamed to) exist and the ones it dropped (or
    renamed away) are gone.  Runs after each step only.

    Bad: ``op.add_column("orders", sa.Column("note", sa.Text()))`` on MySQL inside a revision
    that also runs a statement failing half-way, or an operation a dialect skips silently —
    the version says the column is there, the table says otherwise.

    Good: the table after the step has exactly the columns the operations describe.
    """

    code = "CHK102"
    name = "schema.step-columns"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        if ctx.step is None:
            return
        exp = expectations(ctx.step.recorded)
        fold = ctx.dialect != "postgresql"
        wanted = sorted(exp.columns | exp.no_columns, key=lambda k: (k[0].key, k[1]))
        seen: dict[TableRef, set[str]] = {}
        for t, col in wanted:
            real = ctx.catalog.resolve(t)
            if real is None:
                continue  # the table's own presence is CHK101's question
            if real not in seen:
                names = [c["name"] for c in ctx.catalog.live.inspector.get_columns(real.name, schema=real.schema)]
                seen[real] = {n.lower() for n in names} if fold else set(names)
            present = (col.lower() if fold else col) in seen[real]
            if (t, col) in exp.columns and not present:
                yield self.finding(f"the step's operations add column {col}, but {real.key} has no such column", real)
            elif (t, col) in exp.no_columns and present:
                yield self.finding(f"the step's operations drop column {col}, but {real.key} still has it", real)
