"""Live facts: the :class:`~.base.Facts` protocol answered from a database connection."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..sqlinfo import TableRef
from .base import _one_line


class LiveFacts:
    """Facts read through a SQLAlchemy Connection; every question it cannot answer (missing
    table or column, a timeout, a type mismatch in a foreign key) answers None and is listed in
    ``unknown``.

    - ``rows``: PostgreSQL ``pg_class.reltuples`` when positive (an estimate, free), otherwise
      ``count(*)``; MySQL/MariaDB ``information_schema.TABLES.TABLE_ROWS`` when positive,
      otherwise ``count(*)``; other databases ``count(*)``.  Cached per table.
    - ``null_count``: rows where the column is NULL.
    - ``duplicate_count``: rows whose (non-NULL) key occurs more than once — every row of
      each duplicated group.
    - ``check_violations``: rows for which the condition is false (NULL passes, as in CHECK).
    - ``orphan_count``: rows with every key column set and no matching referenced row.

    Identifiers are quoted by SQLAlchemy (``sa.table``/``sa.column``), never formatted into
    SQL.  On PostgreSQL each query runs in a SAVEPOINT under ``statement_timeout`` (so a
    failure or timeout leaves the caller's transaction usable); elsewhere a failed query does
    not abort the transaction.
    """

    def __init__(self, conn: sa.Connection, timeout_seconds: float | None = 30.0) -> None:
        self.conn = conn
        self.timeout_seconds = timeout_seconds
        self.unknown: list[str] = []
        self._rows: dict[TableRef, int | None] = {}

    @property
    def _name(self) -> str:
        return str(self.conn.dialect.name)

    def _miss(self, what: str, exc: BaseException | None = None) -> None:
        text = what if exc is None else f"{what} ({type(exc).__name__}: {_one_line(exc)[:120]})"
        if text not in self.unknown:
            self.unknown.append(text)

    def _scalar(self, what: str, stmt: sa.Executable) -> Any:
        try:
            if self._name != "postgresql":
                return self.conn.execute(stmt).scalar()
            with self.conn.begin_nested():
                previous = None
                if self.timeout_seconds:
                    previous = self.conn.execute(sa.select(sa.func.current_setting("statement_timeout"))).scalar()
                    ms = str(max(1, int(self.timeout_seconds * 1000)))
                    self.conn.execute(sa.select(sa.func.set_config("statement_timeout", ms, True)))
                value = self.conn.execute(stmt).scalar()
                if previous is not None:
                    self.conn.execute(sa.select(sa.func.set_config("statement_timeout", str(previous), True)))
                return value
        except Exception as exc:
            self._miss(what, exc)
            return None

    def _count(self, what: str, stmt: sa.Executable) -> int | None:
        value = self._scalar(what, stmt)
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            self._miss(what)
            return None

    @staticmethod
    def _table(ref: TableRef, *columns: str) -> sa.TableClause:
        return sa.table(ref.name, *(sa.column(c) for c in dict.fromkeys(columns)), schema=ref.schema)

    def rows(self, table: TableRef) -> int | None:
        if table not in self._rows:
            self._rows[table] = self._count_rows(table)
        return self._rows[table]

    def _count_rows(self, table: TableRef) -> int | None:
        what = f"row count of {table.key}"
        estimate: Any = None
        if self._name == "postgresql":
            qualified = self.conn.dialect.identifier_preparer.format_table(self._table(table))
            stmt = sa.text("SELECT c.reltuples FROM pg_class c WHERE c.oid = to_regclass(:name)").bindparams(
                name=qualified)  # fmt: skip
            estimate = self._scalar(what, stmt)
            if estimate is None and what not in self.unknown:
                exists = self._scalar(what, sa.text("SELECT to_regclass(:name) IS NOT NULL").bindparams(name=qualified))
                if exists is False:
                    self._miss(f"{what} (no such table)")
                    return None
        elif self._name in ("mysql", "mariadb"):
            count_col: sa.ColumnClause[Any] = sa.column("TABLE_ROWS")
            schema_col: sa.ColumnClause[Any] = sa.column("TABLE_SCHEMA")
            name_col: sa.ColumnClause[Any] = sa.column("TABLE_NAME")
            info = sa.table("TABLES", count_col, schema_col, name_col, schema="information_schema")
            schema = sa.literal(table.schema) if table.schema else sa.func.database()
            query = sa.select(count_col).select_from(info).where(schema_col == schema, name_col == table.name)
            estimate = self._scalar(what, query)
        try:
            if estimate is not None and float(estimate) > 0:
                return round(float(estimate))
        except (TypeError, ValueError):
            pass
        return self._count(what, sa.select(sa.func.count()).select_from(self._table(table)))

    def null_count(self, table: TableRef, column: str) -> int | None:
        t = self._table(table, column)
        return self._count(f"NULLs in {table.key}.{column}",
                           sa.select(sa.func.count()).select_from(t).where(t.c[column].is_(None)))  # fmt: skip

    def duplicate_count(self, table: TableRef, columns: list[str]) -> int | None:
        what = f"duplicates in {table.key}({', '.join(columns)})"
        if not columns:
            self._miss(what)
            return None
        t = self._table(table, *columns)
        keys = [t.c[c] for c in dict.fromkeys(columns)]
        groups = (sa.select(sa.func.count().label("n")).select_from(t).where(*(k.is_not(None) for k in keys))
                  .group_by(*keys).having(sa.func.count() > 1).subquery("dup"))  # fmt: skip
        return self._count(what, sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0)))

    def check_violations(self, table: TableRef, condition: str) -> int | None:
        what = f"rows of {table.key} violating CHECK ({condition})"
        t = self._table(table)
        # the condition is the revision's own SQL; the table name is quoted by SQLAlchemy
        violated = sa.text("NOT (" + condition + ")")
        return self._count(what, sa.select(sa.func.count()).select_from(t).where(violated))

    def orphan_count(self, table: TableRef, columns: list[str], referred: TableRef,
                     referred_columns: list[str]) -> int | None:  # fmt: skip
        what = f"rows of {table.key}({', '.join(columns)}) without a match in {referred.key}"
        if not columns or len(columns) != len(referred_columns):
            self._miss(what)
            return None
        child = self._table(table, *columns).alias("child")
        parent = self._table(referred, *referred_columns).alias("parent")
        match = sa.and_(*(parent.c[r] == child.c[c] for c, r in zip(columns, referred_columns, strict=True)))
        stmt = (sa.select(sa.func.count()).select_from(child)
                .where(*(child.c[c].is_not(None) for c in columns))
                .where(~sa.exists().where(match)))  # fmt: skip
        return self._count(what, stmt)
