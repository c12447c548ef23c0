"""Does the downgrade undo the upgrade?  Compared by table, column, index and constraint names;
:func:`reversibility` sums it up per revision."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from alembic.operations import ops as alembic_ops
from sqlglot import exp

from ..record import RecordedStep, flatten
from ..sqlinfo import TableRef
from .base import Finding, RuleContext, _run, all_rules
from .helpers import (
    _CONSTRAINT_OPS,
    _constraint_table,
    _enum_additions,
    _is_noop_alter,
    _parse,
    _ref,
    _sql_string,
    _str,
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NAME_ATTRS = ("table_name", "column_name", "index_name", "constraint_name", "new_table_name", "modify_name",
               "source_table", "referent_table")  # fmt: skip


@dataclass
class _Undoes:
    """What a downgrade does, indexed for matching against the upgrade."""

    dropped_tables: set[str] = field(default_factory=set)
    created_tables: set[str] = field(default_factory=set)
    dropped_columns: set[tuple[str, str]] = field(default_factory=set)
    added_columns: set[tuple[str, str]] = field(default_factory=set)
    altered_columns: set[tuple[str, str]] = field(default_factory=set)
    dropped_indexes: set[str] = field(default_factory=set)
    index_drops_on: set[str] = field(default_factory=set)  # tables named by a drop_index ("" = none named)
    created_indexes: set[str] = field(default_factory=set)
    dropped_constraints: set[str] = field(default_factory=set)
    constraint_drops_on: set[str] = field(default_factory=set)
    created_constraints: set[str] = field(default_factory=set)
    renamed_tables: set[tuple[str, str]] = field(default_factory=set)
    commented_tables: set[str] = field(default_factory=set)
    op_types: set[type] = field(default_factory=set)
    sql_words: set[str] = field(default_factory=set)  # identifiers in the downgrade's raw SQL
    names: set[str] = field(default_factory=set)  # every name the downgrade mentions, lowercased

    @classmethod
    def of(cls, step: RecordedStep, dialect: str) -> _Undoes:
        u = cls()
        for op in flatten(step.ops):
            u.op_types.add(type(op))
            u.names |= {n.lower() for n in (_str(getattr(op, a, None)) for a in _NAME_ATTRS) if n}
            u.names |= {n.lower() for n in [_str(getattr(getattr(op, "column", None), "name", None))] if n}
            t = _ref(op).key
            if isinstance(op, alembic_ops.DropTableOp):
                u.dropped_tables.add(t)
            elif isinstance(op, alembic_ops.CreateTableOp):
                u.created_tables.add(t)
            elif isinstance(op, alembic_ops.DropColumnOp):
                u.dropped_columns.add((t, str(op.column_name)))
            elif isinstance(op, alembic_ops.AddColumnOp):
                u.added_columns.add((t, str(getattr(op.column, "name", ""))))
            elif isinstance(op, alembic_ops.AlterColumnOp):
                u.altered_columns.add((t, str(op.column_name)))
                if op.modify_name:
                    u.altered_columns.add((t, str(op.modify_name)))
            elif isinstance(op, alembic_ops.DropIndexOp):
                u.dropped_indexes.add(str(op.index_name))
                u.index_drops_on.add(t if _str(op.table_name) else "")
            elif isinstance(op, alembic_ops.CreateIndexOp):
                u.created_indexes.add(str(op.index_name))
            elif isinstance(op, alembic_ops.DropConstraintOp):
                u.dropped_constraints.add(str(op.constraint_name))
                u.constraint_drops_on.add(t)
            elif isinstance(op, _CONSTRAINT_OPS):
                u.created_constraints.add(str(op.constraint_name))
            elif isinstance(op, alembic_ops.RenameTableOp):
                u.renamed_tables.add((t, TableRef(str(op.new_table_name), _str(op.schema)).key))
            elif isinstance(op, (alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)):
                u.commented_tables.add(t)
            elif isinstance(op, alembic_ops.ExecuteSQLOp):
                u.sql_words |= {w.lower() for w in _WORD.findall(_sql_string(op, dialect))}
        u.names |= u.sql_words
        return u

    def said(self, *names: object) -> bool:
        """Whether the downgrade's raw SQL mentions every one of ``names``."""
        words = [n.lower() for n in names if isinstance(n, str) and n]
        return bool(words) and all(w.split(".")[-1] in self.sql_words for w in words)

    def table_gone_or_back(self, table: str) -> bool:
        return table in self.dropped_tables or table in self.created_tables


def _ddl_target_names(tree: Any) -> set[str]:
    """The object a DDL statement creates, alters, drops or comments on (not the tables a view
    reads or an index is built on)."""
    if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Index):
        return {tree.this.name.lower()} if tree.this.name else set()
    targets = list(tree.args.get("tables") or []) if isinstance(tree, exp.Drop) else []
    if not targets and isinstance(tree.this, exp.Expr):
        found = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
        targets = [found] if found is not None else []
    return {t.name.lower() for t in targets if isinstance(t, exp.Expr) and t.name}


def _raw_ddl(op: alembic_ops.ExecuteSQLOp, dialect: str) -> tuple[str, set[str], bool] | None:
    """Schema changes in an ``op.execute``: (what, the names they touch, whether a snapshot
    converges them — only drops of tables and columns and column changes do); None for data."""
    what: list[str] = []
    names: set[str] = set()
    convergeable = True
    for tree in _parse(_sql_string(op, dialect), dialect):
        if isinstance(tree, exp.Command):
            keyword = str(tree.this or "").upper()
            if keyword not in ("CREATE", "ALTER", "DROP", "COMMENT"):
                continue
            convergeable = False
            rest = tree.expression if isinstance(tree.expression, str) else ""
            what.append(" ".join(f"{keyword} {rest}".split()[:3]))
            continue
        if not isinstance(tree, (exp.Create, exp.Alter, exp.Drop, exp.Comment)):
            continue
        kind = str(tree.args.get("kind") or "").upper()
        what.append(f"{type(tree).__name__.upper()} {kind}".strip())
        names |= _ddl_target_names(tree)
        drops_data = (isinstance(tree, exp.Drop) and kind == "TABLE") or (
            isinstance(tree, exp.Alter)
            and all(
                isinstance(a, (exp.Drop, exp.AlterColumn, exp.ModifyColumn)) for a in tree.args.get("actions") or [None]
            )
        )
        convergeable = convergeable and drops_data
    if not what:
        return None
    return "raw " + ", ".join(dict.fromkeys(what)), names, convergeable


def _undo_needs(op: alembic_ops.MigrateOperation, dialect: str = "") -> str | None:
    """What the downgrade must undo for this upgrade op (None: nothing, e.g. data SQL)."""
    t = _ref(op).key
    if isinstance(op, alembic_ops.CreateTableOp):
        return f"create table {t}"
    if isinstance(op, alembic_ops.DropTableOp):
        return f"drop table {t}"
    if isinstance(op, alembic_ops.AddColumnOp):
        return f"add column {t}.{getattr(op.column, 'name', '?')}"
    if isinstance(op, alembic_ops.DropColumnOp):
        return f"drop column {t}.{op.column_name}"
    if isinstance(op, alembic_ops.AlterColumnOp):
        if _is_noop_alter(op):
            return None
        return f"alter column {t}.{op.column_name}"
    if isinstance(op, alembic_ops.CreateIndexOp):
        return f"create index {op.index_name or '(unnamed)'} on {t}"
    if isinstance(op, alembic_ops.DropIndexOp):
        return f"drop index {op.index_name}"
    if isinstance(op, _CONSTRAINT_OPS):
        return f"create constraint {op.constraint_name or '(unnamed)'} on {_constraint_table(op).key}"
    if isinstance(op, alembic_ops.DropConstraintOp):
        return f"drop constraint {op.constraint_name} on {t}"
    if isinstance(op, alembic_ops.RenameTableOp):
        return f"rename table {t} to {op.new_table_name}"
    if isinstance(op, (alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)):
        return f"change the comment of table {t}"
    if isinstance(op, alembic_ops.ExecuteSQLOp):
        ddl = _raw_ddl(op, dialect)
        return None if ddl is None else ddl[0]
    if isinstance(op, alembic_ops.BulkInsertOp):
        return None
    return f"{type(op).__name__}"


def _undone(op: alembic_ops.MigrateOperation, u: _Undoes, dialect: str = "") -> bool:
    t = _ref(op).key
    if isinstance(op, alembic_ops.ExecuteSQLOp):  # raw DDL: undone when the downgrade names what it touched
        ddl = _raw_ddl(op, dialect)
        return ddl is None or all(n in u.names for n in ddl[1])
    if isinstance(op, alembic_ops.CreateTableOp):
        return t in u.dropped_tables or u.said(op.table_name)
    if isinstance(op, alembic_ops.DropTableOp):
        return t in u.created_tables or u.said(op.table_name)
    if isinstance(op, alembic_ops.AddColumnOp):
        name = str(getattr(op.column, "name", ""))
        return (t, name) in u.dropped_columns or u.table_gone_or_back(t) or u.said(op.table_name, name)
    if isinstance(op, alembic_ops.DropColumnOp):
        return (
            (t, str(op.column_name)) in u.added_columns
            or t in u.created_tables
            or u.said(op.table_name, op.column_name)
        )
    if isinstance(op, alembic_ops.AlterColumnOp):
        cols = {(t, str(op.column_name)), (t, str(op.modify_name))}
        return bool(cols & u.altered_columns) or u.table_gone_or_back(t) or u.said(op.table_name, op.column_name)
    if isinstance(op, alembic_ops.CreateIndexOp):
        if _str(op.index_name):
            return str(op.index_name) in u.dropped_indexes or t in u.dropped_tables or u.said(op.index_name)
        return t in u.dropped_tables or bool(u.index_drops_on & {t, ""})
    if isinstance(op, alembic_ops.DropIndexOp):
        return str(op.index_name) in u.created_indexes or t in u.created_tables or u.said(op.index_name)
    if isinstance(op, _CONSTRAINT_OPS):
        table = _constraint_table(op).key
        if _str(op.constraint_name):
            return (str(op.constraint_name) in u.dropped_constraints or table in u.dropped_tables
                    or u.said(op.constraint_name))  # fmt: skip
        return table in u.dropped_tables or table in u.constraint_drops_on
    if isinstance(op, alembic_ops.DropConstraintOp):
        return (not _str(op.constraint_name) or str(op.constraint_name) in u.created_constraints
                or t in u.created_tables or u.said(op.constraint_name))  # fmt: skip
    if isinstance(op, alembic_ops.RenameTableOp):
        new = TableRef(str(op.new_table_name), _str(op.schema)).key
        return (new, t) in u.renamed_tables or u.said(op.new_table_name, op.table_name)
    if isinstance(op, (alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)):
        return t in u.commented_tables or u.table_gone_or_back(t)
    try:  # a custom op: undone when the downgrade holds an op of its reverse's kind
        return type(op.reverse()) in u.op_types
    except Exception:
        return True  # cannot tell; not reported


def _convergeable(op: alembic_ops.MigrateOperation, dialect: str = "") -> bool:
    """Changes whose pre-state the snapshot records (the table's definition and the data), so a
    rollback restores them without a downgrade: dropped tables and columns, changed columns."""
    if isinstance(op, (alembic_ops.DropTableOp, alembic_ops.DropColumnOp)):
        return True
    if isinstance(op, alembic_ops.ExecuteSQLOp):
        ddl = _raw_ddl(op, dialect)
        return ddl is not None and ddl[2]
    return isinstance(op, alembic_ops.AlterColumnOp) and not op.modify_name


def _downgrade_raised(step: RecordedStep | None) -> str | None:
    if step is None:
        return None
    for o in step.opaque:
        if o.reason.startswith("the function raised"):
            return o.reason
    return None


def _downgrade_sees_connection(step: RecordedStep | None) -> bool:
    return step is not None and any(not o.reason.startswith("the function raised") for o in step.opaque)


def undo_gaps(ctx: RuleContext) -> list[tuple[alembic_ops.MigrateOperation, str]]:
    """Upgrade ops the downgrade does not undo, with what each did.  Every schema change is a gap
    when the downgrade is missing, does nothing or raises."""
    needs = [(op, what) for _, op in ctx.ops() if (what := _undo_needs(op, ctx.dialect)) is not None]
    down = ctx.downgrade
    if down is None or _downgrade_raised(down) is not None or (not down.ops and not down.opaque):
        return needs
    index = _Undoes.of(down, ctx.dialect)
    return [(op, what) for op, what in needs if not _undone(op, index, ctx.dialect)]


def _destroys(ctx: RuleContext) -> list[Finding]:
    """The findings of the data-destroying rules (SAF1xx) for this upgrade."""
    out: list[Finding] = []
    for rule_cls in all_rules():
        if rule_cls.code.startswith("SAF1"):
            out += _run(rule_cls, ctx)
    return out


def declared_irreversible(ctx: RuleContext) -> bool:
    """The downgrade raises ``alembic_safety.IrreversibleRevision`` (``generate`` writes that
    where an operation cannot be reversed at all)."""
    down = ctx.downgrade
    return down is not None and any("IrreversibleRevision" in o.reason for o in down.opaque)


def reversibility(ctx: RuleContext, snapshots: bool) -> str:
    """Whether a revision's upgrade can be taken back: ``"yes"``, ``"with-snapshot"`` or ``"no"``.

    - ``"yes"``: the downgrade undoes every schema change of the upgrade (compared by table,
      column, index and constraint names) and the upgrade destroys no data (no SAF1xx finding).
    - ``"with-snapshot"``: the schema comes back — the downgrade undoes the changes, or the only
      changes it leaves are ones the rollback converges from the snapshot's recorded table
      definitions (dropped tables, dropped columns, changed columns) — but data the upgrade
      destroys (drops, lossy retypes, DELETE/UPDATE/TRUNCATE, SQL or code that cannot be seen
      into) comes back only from the pre-revision snapshot.  Needs ``snapshots`` True.
    - ``"no"``: something cannot be taken back: the downgrade raises
      ``IrreversibleRevision``; an ``ALTER TYPE ... ADD VALUE`` (PostgreSQL
      cannot remove an enum value); a schema change the downgrade leaves in place — because it
      is missing, is ``pass``, raises or forgets it — that no snapshot restores (a created
      table, an added column or index, a rename, ...); or destroyed data with ``snapshots``
      False.  Anything not proven undoable counts as not undoable.
    """
    if _enum_additions(ctx) or declared_irreversible(ctx):
        return "no"
    gaps = undo_gaps(ctx)
    if any(not _convergeable(op, ctx.dialect) for op, _ in gaps):
        return "no"
    destroys = _destroys(ctx)
    if not gaps and not destroys:
        return "yes"
    return "with-snapshot" if snapshots else "no"
