"""Reverse a revision's recorded operations, enriched with the schema it started from.

Alembic's own ``reverse()`` trusts what the op object carries, and a hand-written op carries
little: ``op.drop_table("t")`` reverses to a ``create_table`` with no columns,
``op.drop_index("ix")`` to an index on a dummy column, ``alter_column`` without ``existing_*``
to a no-op, a column rename to nothing.  Here every drop/alter op is first rebuilt from the
reflected *pre-state* (``DropTableOp.from_table``, ``DropColumnOp.from_column_and_tablename``,
``DropIndexOp.from_index``, ``CreateForeignKeyOp.from_constraint`` ...), the names the database
gave unnamed constraints are read from the *post-state*, and renames are reversed by hand.
What cannot be reversed becomes a :class:`Note` (``manual``: a human decides; ``irreversible``:
the generated downgrade raises there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops as alembic_ops
from sqlalchemy.dialects import postgresql
from sqlglot import exp

from ..record import RecordedStep, sql_text
from .schema import SchemaState


@dataclass(frozen=True)
class Note:
    """Something the generated downgrade cannot do by itself."""

    kind: str  # "manual" | "irreversible"
    text: str


DownItem = alembic_ops.MigrateOperation | Note


@dataclass(frozen=True)
class Before:
    """What the reversers consult: the schema reflected before and after the revision."""

    metadata: sa.MetaData
    after: sa.MetaData
    dialect: sa.Dialect
    state: SchemaState | None = None
    enums: frozenset[str] = frozenset()  # enum type names (schema-qualified when not default)


@dataclass
class _Seen:
    """What earlier ops of the same revision created (the pre-state does not have it yet)."""

    tables: dict[str, sa.Table] = field(default_factory=dict)
    columns: dict[tuple[str, str], sa.Column[Any]] = field(default_factory=dict)
    dropped_indexes: set[str] = field(default_factory=set)
    dropped_constraints: set[str] = field(default_factory=set)


def _key(table: str, schema: str | None) -> str:
    return f"{schema}.{table}" if schema else table


def reverse_step(recorded: RecordedStep, before: Before) -> tuple[DownItem, ...]:
    """The downgrade of ``recorded`` (an upgrade), in the order it must run."""
    seen = _Seen()
    for op in _walk(recorded.ops):
        if isinstance(op, alembic_ops.DropIndexOp) and op.index_name:
            seen.dropped_indexes.add(str(op.index_name))
        elif isinstance(op, alembic_ops.DropConstraintOp) and op.constraint_name:
            seen.dropped_constraints.add(str(op.constraint_name))
    out: list[DownItem] = []
    index = 0
    for op in recorded.ops:
        if isinstance(op, alembic_ops.ModifyTableOps):
            inner: list[DownItem] = []
            for sub in op.ops:
                inner = _reverse_one(sub, before, seen, recorded, index, op.table_name, op.schema) + inner
                index += 1
            batch_ops = [i for i in inner if not isinstance(i, Note)]
            notes = [i for i in inner if isinstance(i, Note)]
            block: list[DownItem] = []
            block.extend(notes)
            if batch_ops:
                block.append(alembic_ops.ModifyTableOps(op.table_name, batch_ops, schema=op.schema))
            out = block + out
        else:
            out = _reverse_one(op, before, seen, recorded, index, None, None) + out
            index += 1
    head: list[DownItem] = []
    for opaque in recorded.opaque:
        head.append(Note("manual", f"the upgrade could not be fully recorded ({opaque.reason}); check what it "
                                   "did by hand and undo it here"))  # fmt: skip
    return tuple(head + out)


def _walk(ops: Iterable[alembic_ops.MigrateOperation]) -> Iterator[alembic_ops.MigrateOperation]:
    for op in ops:
        if isinstance(op, alembic_ops.OpContainer):
            yield from _walk(op.ops)
        else:
            yield op


# -- one operation -----------------------------------------------------------------------------
def _reverse_one(op: alembic_ops.MigrateOperation, before: Before, seen: _Seen, recorded: RecordedStep,
                 index: int, batch_table: str | None, batch_schema: str | None) -> list[DownItem]:  # fmt: skip
    table_name = str(getattr(op, "table_name", None) or getattr(op, "source_table", None) or batch_table or "")
    schema = getattr(op, "schema", None) or batch_schema
    if isinstance(op, alembic_ops.CreateTableOp):
        return _reverse_create_table(op, before, seen)
    if isinstance(op, alembic_ops.DropTableOp):
        return _reverse_drop_table(op, before, seen)
    if isinstance(op, alembic_ops.RenameTableOp):
        return [alembic_ops.RenameTableOp(op.new_table_name, op.table_name, schema=op.schema)]
    if isinstance(op, alembic_ops.AddColumnOp):
        seen.columns[(_key(table_name, schema), op.column.name)] = op.column
        return [alembic_ops.DropColumnOp(table_name, op.column.name, schema=schema)]
    if isinstance(op, alembic_ops.DropColumnOp):
        return _reverse_drop_column(op, table_name, schema, before, seen)
    if isinstance(op, alembic_ops.AlterColumnOp):
        return _reverse_alter_column(op, table_name, schema, before, seen)
    if isinstance(op, alembic_ops.CreateIndexOp):
        return [alembic_ops.DropIndexOp(str(op.index_name), table_name=table_name or None, schema=schema)]
    if isinstance(op, alembic_ops.DropIndexOp):
        return _reverse_drop_index(op, table_name, schema, before, seen)
    if isinstance(op, alembic_ops.AddConstraintOp):
        return _reverse_add_constraint(op, table_name, schema, before)
    if isinstance(op, alembic_ops.DropConstraintOp):
        return _reverse_drop_constraint(op, table_name, schema, before)
    if isinstance(op, alembic_ops.CreateTableCommentOp | alembic_ops.DropTableCommentOp):
        return _reverse_comment(table_name, schema, before)
    if isinstance(op, alembic_ops.BulkInsertOp):
        table = getattr(op.table, "name", None) or table_name
        schema = getattr(op.table, "schema", None) or schema
        return [Note("manual", f"the upgrade inserted {len(op.rows)} row(s) into {_key(table, schema)} with "
                               "bulk_insert; delete them here if the downgrade must remove them")]  # fmt: skip
    if isinstance(op, alembic_ops.ExecuteSQLOp):
        return _reverse_sql(op, before, recorded, index)
    return [Note("manual", f"no reverse is known for {type(op).__name__}; undo it by hand")]


def _table(before: Before, seen: _Seen, name: str, schema: str | None) -> sa.Table | None:
    key = _key(name, schema)
    table = before.metadata.tables.get(key)
    return table if table is not None else seen.tables.get(key)


def _reverse_create_table(op: alembic_ops.CreateTableOp, before: Before, seen: _Seen) -> list[DownItem]:
    table = op.to_table()
    seen.tables[_key(op.table_name, op.schema)] = table
    out: list[DownItem] = [alembic_ops.DropTableOp(op.table_name, schema=op.schema)]
    if before.dialect.name == "postgresql":
        for column in table.columns:
            typ = column.type
            name = getattr(typ, "name", None)
            if isinstance(typ, sa.Enum) and name and getattr(typ, "create_type", True) is not False:
                type_schema = getattr(typ, "schema", None) or op.schema
                qualified = _key(name, type_schema)
                if qualified not in before.enums:
                    out.append(_execute(exp.Drop(tables=[exp.to_table(qualified)], kind="TYPE", exists=True), before))
    return out


def _reverse_drop_table(op: alembic_ops.DropTableOp, before: Before, seen: _Seen) -> list[DownItem]:
    table = _table(before, seen, op.table_name, op.schema)
    if table is None:
        return [Note("irreversible", f"the upgrade drops table {_key(op.table_name, op.schema)}, which did not "
                                     "exist before it: its definition is unknown")]  # fmt: skip
    rebuilt = _portable_table(table, before)
    out: list[DownItem] = [alembic_ops.CreateTableOp.from_table(rebuilt)]
    for index in sorted(rebuilt.indexes, key=lambda i: str(i.name)):
        out.append(_create_index(index))
    return out


def _reverse_drop_column(op: alembic_ops.DropColumnOp, table_name: str, schema: str | None, before: Before,
                         seen: _Seen) -> list[DownItem]:  # fmt: skip
    key = _key(table_name, schema)
    table = _table(before, seen, table_name, schema)
    column = table.c.get(op.column_name) if table is not None else seen.columns.get((key, op.column_name))
    if column is None:
        return [Note("irreversible", f"the upgrade drops column {key}.{op.column_name}, whose definition is "
                                     "unknown (not in the schema before the revision)")]  # fmt: skip
    out: list[DownItem] = [alembic_ops.AddColumnOp(table_name, _portable_column(column, table, before), schema=schema)]
    if not column.nullable and column.server_default is None and column.default is None:
        out.insert(0, Note("manual", f"{key}.{op.column_name} is NOT NULL without a default: re-adding it fails "
                                     "while the table has rows; 'alembic-safety rollback <backup id>' restores "
                                     "the column with its data"))  # fmt: skip
    if table is not None:
        out += _implicitly_dropped(table, op.column_name, before, seen)
    return out


def _implicitly_dropped(table: sa.Table, column: str, before: Before, seen: _Seen) -> list[DownItem]:
    """Indexes and constraints the database dropped together with the column."""
    after = before.after.tables.get(table.key)
    after_index_names = {i.name for i in after.indexes} if after is not None else set()
    after_constraint_names = {c.name for c in after.constraints} if after is not None else set()
    out: list[DownItem] = []
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        names = {c.name for c in index.columns}
        if column in names and index.name not in after_index_names and str(index.name) not in seen.dropped_indexes:
            out.append(_create_index(index))
    for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
        if isinstance(constraint, sa.PrimaryKeyConstraint) or constraint.name is None:
            continue
        if constraint.name in after_constraint_names or str(constraint.name) in seen.dropped_constraints:
            continue
        if isinstance(constraint, sa.ForeignKeyConstraint | sa.UniqueConstraint):
            if column not in {c.name for c in constraint.columns}:
                continue
        elif isinstance(constraint, sa.CheckConstraint):
            if not re.search(rf"\b{re.escape(column)}\b", str(constraint.sqltext)):
                continue
        else:
            continue
        out.append(_add_constraint_op(constraint))
    return out


def _create_index(index: sa.Index) -> alembic_ops.CreateIndexOp:
    op = alembic_ops.CreateIndexOp.from_index(index)
    op.unique = bool(op.unique)  # SQLite reflects 1/0
    return op


def _add_constraint_op(constraint: Any) -> alembic_ops.AddConstraintOp:
    if isinstance(constraint, sa.ForeignKeyConstraint):
        return alembic_ops.CreateForeignKeyOp.from_constraint(constraint)
    if isinstance(constraint, sa.UniqueConstraint):
        return alembic_ops.CreateUniqueConstraintOp.from_constraint(constraint)
    if isinstance(constraint, sa.CheckConstraint):
        return alembic_ops.CreateCheckConstraintOp.from_constraint(constraint)
    return alembic_ops.CreatePrimaryKeyOp.from_constraint(constraint)


def _reverse_alter_column(op: alembic_ops.AlterColumnOp, table_name: str, schema: str | None, before: Before,
                          seen: _Seen) -> list[DownItem]:  # fmt: skip
    key = _key(table_name, schema)
    table = _table(before, seen, table_name, schema)
    column = table.c.get(op.column_name) if table is not None else None
    column = column if column is not None else seen.columns.get((key, op.column_name))
    if column is None:
        return [Note("manual", f"the upgrade alters {key}.{op.column_name}, whose previous definition is unknown; "
                               "write its reverse by hand")]  # fmt: skip
    old_type = column.type
    old_default = _default_text(column)
    kw: dict[str, Any] = {}
    new_name = op.modify_name or op.column_name
    new_type = op.modify_type if op.modify_type is not None else old_type
    new_nullable = op.modify_nullable if op.modify_nullable is not None else column.nullable
    new_default = (_as_text(op.modify_server_default, before.dialect) if op.modify_server_default is not False
                   else old_default)  # fmt: skip
    new_comment = op.modify_comment if op.modify_comment is not False else column.comment
    if op.modify_type is not None:
        kw["type_"] = old_type
        if before.dialect.name == "postgresql":
            preparer = before.dialect.identifier_preparer
            compiled = old_type.compile(dialect=before.dialect)
            kw["postgresql_using"] = f"{preparer.quote(str(column.name))}::{compiled}"
    if op.modify_nullable is not None:
        kw["nullable"] = column.nullable
    if op.modify_server_default is not False:
        kw["server_default"] = old_default
    if op.modify_comment is not False:
        kw["comment"] = column.comment
    if op.modify_name:
        kw["new_column_name"] = op.column_name
    if not kw:
        return []
    return [alembic_ops.AlterColumnOp(
        table_name, str(new_name), schema=schema,
        existing_type=new_type, existing_nullable=new_nullable,
        existing_server_default=new_default, existing_comment=new_comment,
        modify_type=kw.get("type_"), modify_nullable=kw.get("nullable"),
        modify_server_default=kw.get("server_default", False),
        modify_comment=kw.get("comment", False),
        modify_name=kw.get("new_column_name"),
        **({"postgresql_using": kw["postgresql_using"]} if "postgresql_using" in kw else {}),
    )]  # fmt: skip


def _as_text(default: Any, dialect: sa.Dialect) -> Any:
    """A server default as given to an op (a plain string is a literal value) -> sa.text, which
    Alembic renders faithfully (a bare string is written into the code unquoted)."""
    if isinstance(default, str):
        literal = sa.literal(default).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        return sa.DefaultClause(sa.text(str(literal)))
    if isinstance(default, sa.TextClause):
        return sa.DefaultClause(default)
    return default


def _default_text(column: sa.Column[Any]) -> Any:
    default = column.server_default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    # a DefaultClause around sa.text(...) renders as sa.text(...); Alembic writes a bare string
    # (or a bare TextClause) into the code unquoted
    if isinstance(arg, str):
        return sa.DefaultClause(sa.text(arg))
    if arg is not None:
        return sa.DefaultClause(sa.text(str(getattr(arg, "text", arg))))
    return None


def _reverse_drop_index(op: alembic_ops.DropIndexOp, table_name: str, schema: str | None, before: Before,
                        seen: _Seen) -> list[DownItem]:  # fmt: skip
    name = str(op.index_name)
    for table in before.metadata.tables.values():
        if table_name and table.name != table_name:
            continue
        for index in table.indexes:
            if index.name == name:
                return [_create_index(index)]
        if before.dialect.name in ("mysql", "mariadb"):
            for constraint in table.constraints:
                if isinstance(constraint, sa.UniqueConstraint) and constraint.name == name:
                    return [alembic_ops.CreateUniqueConstraintOp.from_constraint(constraint)]
    return [Note("irreversible", f"the upgrade drops index {name}, which is not in the schema before the "
                                 "revision: its definition is unknown")]  # fmt: skip


def _post_constraint_name(op: alembic_ops.AddConstraintOp, table_name: str, schema: str | None,
                          before: Before) -> str | None:  # fmt: skip
    """The name the database (or the naming convention) gave a constraint created unnamed."""
    after = before.after.tables.get(_key(table_name, schema))
    if after is None:
        return None
    pre = before.metadata.tables.get(_key(table_name, schema))
    pre_names = {c.name for c in pre.constraints} if pre is not None else set()
    if isinstance(op, alembic_ops.CreateForeignKeyOp):
        wanted: tuple[type, tuple[str, ...]] = (sa.ForeignKeyConstraint, tuple(op.local_cols))
    elif isinstance(op, alembic_ops.CreateUniqueConstraintOp):
        wanted = (sa.UniqueConstraint, tuple(op.columns))
    elif isinstance(op, alembic_ops.CreatePrimaryKeyOp):
        wanted = (sa.PrimaryKeyConstraint, tuple(op.columns))
    elif isinstance(op, alembic_ops.CreateCheckConstraintOp):
        wanted = (sa.CheckConstraint, ())
    else:
        return None
    for constraint in after.constraints:
        if not isinstance(constraint, wanted[0]) or constraint.name in pre_names or constraint.name is None:
            continue
        cols = tuple(c.name for c in getattr(constraint, "columns", ()))
        if not wanted[1] or cols == wanted[1]:
            return str(constraint.name)
    if isinstance(op, alembic_ops.CreateUniqueConstraintOp):  # MySQL and SQLite report them as indexes
        for index in after.indexes:
            if index.unique and tuple(c.name for c in index.columns) == wanted[1] and index.name:
                return str(index.name)
    return None


_CONSTRAINT_TYPE = {
    alembic_ops.CreateForeignKeyOp: "foreignkey",
    alembic_ops.CreateUniqueConstraintOp: "unique",
    alembic_ops.CreateCheckConstraintOp: "check",
    alembic_ops.CreatePrimaryKeyOp: "primary",
}


def _reverse_add_constraint(op: alembic_ops.AddConstraintOp, table_name: str, schema: str | None,
                            before: Before) -> list[DownItem]:  # fmt: skip
    name = getattr(op, "constraint_name", None)
    name = str(name) if name is not None else _post_constraint_name(op, table_name, schema, before)
    if name is None:
        return [Note("manual", f"the upgrade creates an unnamed constraint on {_key(table_name, schema)} whose "
                               "name the database chose; drop it by that name")]  # fmt: skip
    return [alembic_ops.DropConstraintOp(name, table_name, type_=_CONSTRAINT_TYPE.get(type(op)), schema=schema)]


def _reverse_drop_constraint(op: alembic_ops.DropConstraintOp, table_name: str, schema: str | None,
                             before: Before) -> list[DownItem]:  # fmt: skip
    if op.constraint_name is None:
        return [Note("irreversible", f"the upgrade drops an unnamed constraint on {_key(table_name, schema)} "
                                     "(drop_constraint(None, ...) fails at runtime): name it")]  # fmt: skip
    table = before.metadata.tables.get(_key(table_name, schema))
    if table is not None:
        for constraint in table.constraints:
            if constraint.name == op.constraint_name:
                return [_add_constraint_op(constraint)]
        if before.dialect.name in ("mysql", "mariadb", "sqlite"):
            for index in table.indexes:
                if index.name == op.constraint_name and index.unique:
                    cols = [c.name for c in index.columns]
                    return [alembic_ops.CreateUniqueConstraintOp(str(index.name), table_name, cols, schema=schema)]
    return [Note("irreversible", f"the upgrade drops constraint {op.constraint_name} on "
                                 f"{_key(table_name, schema)}, which is not in the schema before the revision")]


def _reverse_comment(table_name: str, schema: str | None, before: Before) -> list[DownItem]:
    table = before.metadata.tables.get(_key(table_name, schema))
    previous = table.comment if table is not None else None
    if previous:
        return [alembic_ops.CreateTableCommentOp(table_name, previous, schema=schema)]
    return [alembic_ops.DropTableCommentOp(table_name, schema=schema)]


def _reverse_sql(op: alembic_ops.ExecuteSQLOp, before: Before, recorded: RecordedStep, index: int) -> list[DownItem]:
    try:
        text = sql_text(op, before.dialect)
    except Exception as exc:
        return [Note("manual", f"an op.execute() construct could not be compiled ({type(exc).__name__}); "
                               "undo it by hand")]  # fmt: skip
    from .sql import reverse_sql  # the SQL reverser is only needed when the step has raw SQL

    items = reverse_sql(text, before.dialect.name, before.state)
    out: list[DownItem] = []
    for item in items:
        if item.kind == "sql":
            out.append(alembic_ops.ExecuteSQLOp(item.text))
        else:
            where = f" (for: {item.source})" if item.source else ""
            out.append(Note(item.kind, item.text + where))
    return out


def _execute(node: exp.Expression, before: Before) -> alembic_ops.ExecuteSQLOp:
    dialect = {"postgresql": "postgres", "mariadb": "mysql"}.get(before.dialect.name, before.dialect.name)
    return alembic_ops.ExecuteSQLOp(node.sql(dialect=dialect))


# -- making reflected objects render into runnable code ----------------------------------------
def _portable_table(table: sa.Table, before: Before) -> sa.Table:
    """A copy of a reflected table whose rendering recreates it: owned-sequence defaults become
    SERIAL again, enum types that still exist are not created twice."""
    md = sa.MetaData()
    copy = table.to_metadata(md)
    for column in copy.columns:
        _fix_column(column, copy, before)
    # foreign keys must point at tables by name only; to_metadata keeps them as strings
    return copy


def _portable_column(column: sa.Column[Any], table: sa.Table | None, before: Before) -> sa.Column[Any]:
    copy = column._copy()
    if table is not None:
        _fix_column(copy, table, before)
    return copy


_NEXTVAL = re.compile(r"^nextval\('(?:\"?[\w]+\"?\.)?\"?(\w+)\"?'(?:::regclass)?\)$")


def _fix_column(column: sa.Column[Any], table: sa.Table, before: Before) -> None:
    if before.dialect.name != "postgresql":
        return
    default = _default_text(column)
    text = getattr(getattr(default, "arg", None), "text", None)
    if isinstance(text, str):
        m = _NEXTVAL.match(text.strip())
        owned = m is not None and m.group(1) == f"{table.name}_{column.name}_seq"
        if owned and column.primary_key and isinstance(column.type, sa.Integer):
            column.server_default = None
            column.autoincrement = True
    if isinstance(column.type, postgresql.ENUM):
        column.type.create_type = False
