"""What exists in the database: the live catalogue for the snapshot policy, and the full
definition of each snapshotted table (so a dropped table or column can be recreated from the
backup alone)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Inspector
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import TypeEngine

from ..sqlinfo import TableRef


@contextmanager
def unknown_types_allowed() -> Iterator[None]:
    """Reflection of a column whose type SQLAlchemy does not know (an extension's type in
    another schema, such as Supabase's ``extensions.citext``) without its warning: such a type
    is read as PostgreSQL spells it where the DDL needs it (:func:`table_definition`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
        yield

SAFETY_SCHEMA = "alembic_safety"


class LiveCatalog:
    """The policy's view of the database, read through one Inspector (cached per instance)."""

    def __init__(self, conn: sa.Connection, *, version_table: str = "alembic_version",
                 version_schema: str | None = None, safety_schema: str = SAFETY_SCHEMA) -> None:  # fmt: skip
        self.conn = conn
        self.inspector: Inspector = sa.inspect(conn)
        self.default_schema = self.inspector.default_schema_name
        self._names: dict[str | None, list[str]] = {}
        self._columns: dict[TableRef, list[ReflectedColumn]] = {}
        self._skip = {TableRef(version_table, self._norm(version_schema))}
        self.safety_schema = safety_schema

    def _norm(self, schema: str | None) -> str | None:
        return None if schema is None or schema == self.default_schema else schema

    def _table_names(self, schema: str | None) -> list[str]:
        if schema not in self._names:
            try:
                self._names[schema] = list(self.inspector.get_table_names(schema=schema))
            except sa.exc.DBAPIError:
                raise
            except sa.exc.SQLAlchemyError:
                self._names[schema] = []
        return self._names[schema]

    def resolve(self, ref: TableRef) -> TableRef | None:
        schema = self._norm(ref.schema)
        names = self._table_names(schema)
        if ref.name in names:
            found = TableRef(ref.name, schema)
        else:
            # unquoted identifiers in SQL fold case (lower on PostgreSQL, any on MySQL/SQLite)
            folded = [n for n in names if n.lower() == ref.name.lower()]
            if len(folded) != 1:
                return None
            found = TableRef(folded[0], schema)
        return None if found in self._skip else found

    def tables(self, schemas: Iterable[str | None]) -> list[TableRef]:
        """Every table of these schemas (partitions left out: their parent holds their rows)."""
        out: list[TableRef] = []
        for schema in dict.fromkeys(self._norm(s) for s in schemas):
            if schema == self.safety_schema:
                continue
            partitions = self._partitions(schema)
            out += [TableRef(n, schema) for n in self._table_names(schema) if n not in partitions]
        return [t for t in out if t not in self._skip]

    def _partitions(self, schema: str | None) -> set[str]:
        if self.conn.dialect.name != "postgresql":
            return set()
        rows = self.conn.execute(sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relispartition AND n.nspname = coalesce(:s, current_schema())"), {"s": schema})  # fmt: skip
        return {r[0] for r in rows}

    def referencing(self, parent: TableRef) -> list[tuple[TableRef, str]]:
        """Tables whose foreign keys delete or change their rows when ``parent`` loses rows
        (ON DELETE CASCADE / SET NULL / SET DEFAULT), with the action."""
        dialect = self.conn.dialect.name
        if dialect == "postgresql":
            prep = self.conn.dialect.identifier_preparer
            qualified = prep.format_table(sa.table(parent.name, schema=parent.schema))
            rows = self.conn.execute(sa.text(
                "SELECT n.nspname, r.relname, c.confdeltype FROM pg_constraint c "
                "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
                "WHERE c.contype = 'f' AND c.confrelid = to_regclass(:t) AND c.conrelid <> c.confrelid "
                "AND c.confdeltype IN ('c', 'n', 'd')"), {"t": qualified}).all()  # fmt: skip
            names = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
            return [(TableRef(r[1], self._norm(r[0])), names[r[2]]) for r in rows]
        if dialect in ("mysql", "mariadb"):
            schema = parent.schema or self.conn.exec_driver_sql("SELECT DATABASE()").scalar()
            rc = sa.table("referential_constraints", sa.column("constraint_schema"), sa.column("table_name"),
                          sa.column("referenced_table_name"), sa.column("delete_rule"),
                          schema="information_schema")  # fmt: skip
            rows = self.conn.execute(sa.select(rc.c.table_name, rc.c.delete_rule).where(
                rc.c.constraint_schema == schema, rc.c.referenced_table_name == parent.name,
                rc.c.table_name != parent.name, rc.c.delete_rule.in_(["CASCADE", "SET NULL", "SET DEFAULT"]))).all()
            return [(TableRef(r[0], parent.schema), str(r[1])) for r in rows]
        out = []
        for name in self._table_names(parent.schema):
            if name == parent.name:
                continue
            for fk in self.inspector.get_foreign_keys(name, schema=parent.schema):
                action = str((fk.get("options") or {}).get("ondelete") or "").upper()
                if fk.get("referred_table") == parent.name and action in ("CASCADE", "SET NULL", "SET DEFAULT"):
                    out.append((TableRef(name, parent.schema), action))
        return out

    def _cols(self, ref: TableRef) -> list[ReflectedColumn]:
        if ref not in self._columns:
            with unknown_types_allowed():
                self._columns[ref] = list(self.inspector.get_columns(ref.name, schema=ref.schema))
        return self._columns[ref]

    def columns(self, ref: TableRef) -> list[str]:
        return [c["name"] for c in self._cols(ref) if not c.get("computed")]

    def primary_key(self, ref: TableRef) -> list[str]:
        pk = self.inspector.get_pk_constraint(ref.name, schema=ref.schema)
        return list(pk.get("constrained_columns") or [])


def _jsonable(value: Any, dialect: sa.Dialect) -> Any:
    if isinstance(value, TypeEngine):
        try:
            return value.compile(dialect=dialect)
        except Exception:
            return repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, dialect) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v, dialect) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _optional(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except NotImplementedError:
        return None


def table_definition(conn: sa.Connection, ref: TableRef, *, ddl: bool = True) -> dict[str, Any]:
    """Columns (types, nullability, defaults, comments, identity/generated), primary key,
    indexes, unique/check/foreign-key constraints, the table comment, and (``ddl``) the DDL that
    recreates the table and its indexes on this dialect.  A table that is moved aside keeps its
    own DDL, so its entry skips the second reflection the DDL needs (the move stays O(1))."""
    with unknown_types_allowed():
        return _table_definition(conn, ref, ddl=ddl)


def _table_definition(conn: sa.Connection, ref: TableRef, *, ddl: bool) -> dict[str, Any]:
    insp = sa.inspect(conn)
    d = conn.dialect
    name, schema = ref.name, ref.schema
    definition: dict[str, Any] = {
        "columns": _jsonable(insp.get_columns(name, schema=schema), d),
        "primary_key": _jsonable(insp.get_pk_constraint(name, schema=schema), d),
        "indexes": _jsonable(insp.get_indexes(name, schema=schema), d),
        "unique_constraints": _jsonable(_optional(insp.get_unique_constraints, name, schema=schema), d),
        "check_constraints": _jsonable(_optional(insp.get_check_constraints, name, schema=schema), d),
        "foreign_keys": _jsonable(insp.get_foreign_keys(name, schema=schema), d),
        "comment": _jsonable((_optional(insp.get_table_comment, name, schema=schema) or {}).get("text"), d),
    }
    if not ddl:
        return definition
    table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)  # FK targets too
    unknown = [c for c in table.columns if isinstance(c.type, sa.types.NullType)]
    if unknown and d.name == "postgresql":
        from .dbstore import DeclaredType, pg_column_types

        spelled = pg_column_types(conn, ref)
        for column in unknown:
            if column.name in spelled:
                column.type = DeclaredType(spelled[column.name][0])
    statements = [str(CreateTable(table).compile(dialect=d)).strip()]
    statements += [str(CreateIndex(ix).compile(dialect=d)).strip()
                   for ix in sorted(table.indexes, key=lambda i: str(i.name))]  # fmt: skip
    definition["ddl"] = statements
    return definition

