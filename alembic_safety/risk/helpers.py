"""Helpers shared by the rules.  Everything here tolerates odd input: ops with None names,
SQLAlchemy constructs in op.execute, custom ops, types given as classes."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
import sqlglot
from alembic.operations import ops as alembic_ops
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine
from sqlglot import exp

from ..record import RecordedStep, flatten, sql_text
from ..sqlinfo import OPAQUE, SqlEffect, TableRef, sqlglot_dialect
from .base import LARGE_TABLE_ROWS, RuleContext


def _str(value: object) -> str | None:
    """A usable name, or None (``None``, empty, not a string)."""
    return str(value) if isinstance(value, str) and value else None


def _ref(op: object, attr: str = "table_name", schema_attr: str = "schema") -> TableRef:
    schema = getattr(op, schema_attr, None)
    return TableRef(_str(getattr(op, attr, None)) or "?", _str(schema))


def _fk_refs(op: alembic_ops.CreateForeignKeyOp) -> tuple[TableRef, TableRef]:
    kw = op.kw if isinstance(getattr(op, "kw", None), dict) else {}
    source = TableRef(_str(op.source_table) or "?", _str(kw.get("source_schema")))
    referent = TableRef(_str(op.referent_table) or "?", _str(kw.get("referent_schema")))
    return source, referent


def _kw(op: object) -> dict[str, Any]:
    kw = getattr(op, "kw", None)
    return kw if isinstance(kw, dict) else {}


def _names(cols: object) -> list[str] | None:
    """Plain column names, or None when any of them is an expression (or there are none)."""
    if not isinstance(cols, (list, tuple)) or not cols:
        return None
    names: list[str] = []
    for c in cols:
        name = c if isinstance(c, str) else (c.name if isinstance(c, sa.ColumnClause) else None)
        if not isinstance(name, str) or not name:
            return None
        names.append(name)
    return names


@functools.cache
def _dialect(name: str) -> Dialect:
    try:
        dialect: Dialect = sa.URL.create(name).get_dialect()()
    except Exception:
        dialect = DefaultDialect()
    return dialect


def _sql_string(op: alembic_ops.ExecuteSQLOp, dialect: str) -> str:
    """The text of an ``op.execute``; "" when it cannot be produced."""
    try:
        return sql_text(op, _dialect(dialect))
    except Exception:
        return ""


def _clause_sql(value: object, dialect: str) -> str | None:
    """SQL text of a string, ``sa.text()`` or expression (a CHECK condition, a default)."""
    if isinstance(value, str):
        return value
    if isinstance(value, sa.TextClause):
        return value.text
    if isinstance(value, ClauseElement):
        try:
            return str(value.compile(dialect=_dialect(dialect), compile_kwargs={"literal_binds": True}))
        except Exception:
            return None
    return None


@functools.lru_cache(maxsize=64)
def _parse(sql: str, dialect: str) -> tuple[Any, ...]:
    """sqlglot trees of the statements (cached: several rules read the same SQL; never mutated)."""
    try:
        return tuple(s for s in sqlglot.parse(sql, read=sqlglot_dialect(dialect)) if s is not None)
    except Exception:
        return ()


def _walk(ops: Iterable[Any], in_batch: bool = False) -> Iterator[tuple[alembic_ops.MigrateOperation, bool]]:
    """Ops in :func:`record.flatten` order, each with whether it sits in a batch block."""
    for op in ops:
        if isinstance(op, alembic_ops.OpContainer):
            yield from _walk(list(op.ops), in_batch or isinstance(op, alembic_ops.ModifyTableOps))
        else:
            yield op, in_batch


def _statements(step: RecordedStep, dialect: str) -> Iterator[tuple[SqlEffect, Any]]:
    """Each ``op.execute`` statement's effect with its sqlglot tree (None when not parsable)."""
    for index, op in enumerate(flatten(step.ops)):
        if not isinstance(op, alembic_ops.ExecuteSQLOp):
            continue
        effects = step.effects_for(index)
        parsed: list[Any] = list(_parse(_sql_string(op, dialect), dialect)) if effects else []
        if len(parsed) != len(effects):
            parsed = [None] * len(effects)
        yield from zip(effects, parsed, strict=True)


def _sqlglot_table(node: Any) -> TableRef | None:
    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table) or not node.name:
        return None
    return TableRef(node.name, node.db or None)


def _alter_actions(tree: Any) -> Iterator[tuple[TableRef, Any]]:
    """(table, action) of an ``ALTER TABLE`` sqlglot tree."""
    if isinstance(tree, exp.Alter) and (tree.args.get("kind") or "").upper() == "TABLE":
        table = _sqlglot_table(tree.this)
        if table is not None:
            for action in tree.args.get("actions") or []:
                yield table, action


def _has_where(tree: Any) -> bool | None:
    """Whether a parsed DELETE/UPDATE has a WHERE (None: not parsed)."""
    if tree is None:
        return None
    return tree.args.get("where") is not None


def _created_tables(step: RecordedStep) -> set[str]:
    return {_ref(op).key for op in flatten(step.ops) if isinstance(op, alembic_ops.CreateTableOp)}


def _added_columns(step: RecordedStep) -> dict[tuple[str, str], sa.Column[Any]]:
    out: dict[tuple[str, str], sa.Column[Any]] = {}
    for op in flatten(step.ops):
        column = getattr(op, "column", None)
        if isinstance(op, alembic_ops.AddColumnOp) and isinstance(column, sa.Column) and _str(column.name):
            out[(_ref(op).key, column.name)] = column
    return out


def _writes_to(ctx: RuleContext, table: TableRef) -> bool:
    """Whether the step writes rows of ``table`` (or may: opaque SQL, the connection)."""
    if ctx.upgrade.opaque:
        return True
    for op in flatten(ctx.upgrade.ops):
        if isinstance(op, alembic_ops.BulkInsertOp) and getattr(getattr(op, "table", None), "name", None) == table.name:
            return True
    for effect, _ in _statements(ctx.upgrade, ctx.dialect):
        if effect.kind == OPAQUE or (table in effect.tables and effect.statement in ("UPDATE", "INSERT", "MERGE")):
            return True
        if effect.statement == "INSERT":  # plain INSERTs name no table in their effect
            return True
    return False


def _type(value: Any) -> TypeEngine[Any] | None:
    if value is None:
        return None
    try:
        t = sqltypes.to_instance(value)
    except Exception:
        return None
    return t if isinstance(t, TypeEngine) else None


def _type_str(t: TypeEngine[Any] | None, dialect: str) -> str:
    if t is None:
        return "an unknown type"
    try:
        return str(t.compile(dialect=_dialect(dialect)))
    except Exception:
        try:
            return str(t)
        except Exception:
            return type(t).__name__


_VOLATILE = re.compile(
    r"\b(random|gen_random_uuid|gen_random_bytes|uuid_generate_v1|uuid_generate_v1mc|uuid_generate_v4|uuidv4|"
    r"uuidv7|clock_timestamp|timeofday|nextval|setseed|txid_current|pg_current_xact_id)\s*\(",
    re.IGNORECASE,
)


def _volatile_call(column: sa.Column[Any], dialect: str) -> str | None:
    """The volatile function a column's server default calls, if any.  A plain string default is
    a quoted constant, never a call; string literals inside SQL defaults are ignored."""
    arg = getattr(column.server_default, "arg", None)
    if arg is None or isinstance(arg, str):
        return None
    text = _clause_sql(arg, dialect)
    if text is None:
        return None
    m = _VOLATILE.search(re.sub(r"'(?:[^']|'')*'", "''", text))
    return m.group(1) if m else None


def _fills_itself(column: sa.Column[Any], dialect: str) -> bool:
    """Identity, computed and serial columns give every existing row a value."""
    if column.identity is not None or column.computed is not None:
        return True
    return (dialect == "postgresql" and column.primary_key and isinstance(_type(column.type), sqltypes.Integer)
            and column.autoincrement in (True, "auto"))  # fmt: skip


def _rows(ctx: RuleContext, table: TableRef) -> int | None:
    try:
        n = ctx.facts.rows(table)
    except Exception:
        return None
    return n if isinstance(n, int) else None


def _ask(fn: Any, *args: Any) -> int | None:
    try:
        n = fn(*args)
    except Exception:
        return None
    return n if isinstance(n, int) else None


def _rows_text(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _violate(n: int) -> str:
    return f"{_rows_text(n)} {'violates' if n == 1 else 'violate'} it"


def _size_severity(rows: int | None) -> str | None:
    """Lock/rewrite rules: medium on a large table, low when the size is unknown, none below."""
    if rows is None:
        return "low"
    return "medium" if rows >= LARGE_TABLE_ROWS else None


def _size_text(rows: int | None) -> str:
    if rows is None:
        return "could not check the row count"
    return f"the table has about {_rows_text(rows)}"


_ENUM_ADD_VALUE = re.compile(r"\bALTER\s+TYPE\s+(\S+)\s+ADD\s+VALUE\b", re.IGNORECASE)


def _enum_additions(ctx: RuleContext) -> list[str]:
    """Enum types an ``ALTER TYPE ... ADD VALUE`` in the upgrade extends."""
    out: list[str] = []
    for op in flatten(ctx.upgrade.ops):
        if isinstance(op, alembic_ops.ExecuteSQLOp):
            out += [m.group(1) for m in _ENUM_ADD_VALUE.finditer(_sql_string(op, ctx.dialect))]
    return out


def _is_noop_alter(op: alembic_ops.AlterColumnOp) -> bool:
    return (op.modify_type is None and op.modify_nullable is None and op.modify_server_default is False
            and op.modify_name is None and op.modify_comment is False and not _kw(op))  # fmt: skip


def _sets_not_null(op: object) -> bool:
    return (isinstance(op, alembic_ops.AlterColumnOp) and op.modify_nullable is False
            and op.existing_nullable is not False)  # fmt: skip


_CONSTRAINT_OPS = (alembic_ops.CreateUniqueConstraintOp, alembic_ops.CreateCheckConstraintOp,
                   alembic_ops.CreateForeignKeyOp, alembic_ops.CreatePrimaryKeyOp)  # fmt: skip


def _constraint_table(op: object) -> TableRef:
    if isinstance(op, alembic_ops.CreateForeignKeyOp):
        return _fk_refs(op)[0]
    return _ref(op)
