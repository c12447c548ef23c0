"""Dump and restore engines: how rows leave and re-enter one kind of database.

* :class:`PgCopyEngine` — PostgreSQL through psycopg2 or psycopg 3: ``COPY ... TO STDOUT
  (FORMAT binary)`` streamed straight into the compressing, hashing sink; restored with
  ``COPY ... FROM STDIN (FORMAT binary)``.
* :class:`GenericEngine` — any SQLAlchemy dialect (SQLite, MySQL/MariaDB, async drivers):
  rows streamed through SQLAlchemy in primary-key order as typed JSON lines
  (:mod:`.codec`).

Both stream: memory does not grow with the table.  Identifiers are quoted by SQLAlchemy.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect

from ..sqlinfo import TableRef
from .codec import decode_row, encode_row
from .streams import CHUNK, SnapshotSink

INSERT_BATCH = 1000


class Engine(Protocol):
    format: str

    def dump(
        self,
        conn: sa.Connection,
        table: TableRef,
        columns: list[str],
        where: str | None,
        order_by: list[str],
        sink: SnapshotSink,
    ) -> int: ...

    def restore(
        self, conn: sa.Connection, target: TableRef, columns: list[str], data: io.RawIOBase
    ) -> int: ...


def table_clause(ref: TableRef, columns: list[str] | tuple[str, ...] = ()) -> sa.TableClause:
    """A lightweight, untyped table: SQLAlchemy quotes the names, drivers see raw values."""
    return sa.table(ref.name, *(sa.column(c) for c in columns), schema=ref.schema)


def driver_connection(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection


def _pg_driver(conn: sa.Connection) -> str | None:
    if conn.dialect.name != "postgresql":
        return None
    raw = driver_connection(conn)
    module = type(raw).__module__
    if module.startswith("psycopg2"):
        return "psycopg2"
    if module.startswith("psycopg") and hasattr(raw, "cursor") and not hasattr(raw, "__aenter__"):
        return "psycopg"
    return None


def engine_for(conn: sa.Connection) -> Engine:
    driver = _pg_driver(conn)
    if driver is not None:
        return PgCopyEngine(driver)
    return GenericEngine()


def engine_for_format(fmt: str, conn: sa.Connection) -> Engine:
    if fmt == PgCopyEngine.format:
        driver = _pg_driver(conn)
        if driver is None:
            raise ValueError("a pg-copy-binary snapshot needs PostgreSQL through psycopg2 or psycopg")
        return PgCopyEngine(driver)
    if fmt == GenericEngine.format:
        return GenericEngine()
    raise ValueError(f"unknown snapshot format {fmt!r}")


class PgCopyEngine:
    format = "pg-copy-binary"

    def __init__(self, driver: str) -> None:
        self.driver = driver
        # named paramstyle: compiled text keeps '%' as written
        self._plain = PGDialect()  # type: ignore[no-untyped-call]

    def _source_sql(self, conn: sa.Connection, table: TableRef, columns: list[str], where: str | None) -> str:
        prep = conn.dialect.identifier_preparer
        partitioned = conn.execute(sa.text("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(:t)"),
                                   {"t": prep.format_table(table_clause(table))}).scalar()  # fmt: skip
        if where is None and not partitioned:  # COPY <table> cannot read a partitioned parent
            cols = ", ".join(prep.quote(c) for c in columns)
            return f"COPY {prep.format_table(table_clause(table))} ({cols}) TO STDOUT (FORMAT binary)"
        t = table_clause(table, columns)
        query = sa.select(*t.c)
        if where is not None:
            query = query.where(sa.literal_column(where))
        compiled = query.compile(dialect=self._plain, compile_kwargs={"literal_binds": True})
        return f"COPY ({compiled}) TO STDOUT (FORMAT binary)"

    def dump(
        self,
        conn: sa.Connection,
        table: TableRef,
        columns: list[str],
        where: str | None,
        order_by: list[str],
        sink: SnapshotSink,
    ) -> int:
        sql = self._source_sql(conn, table, columns, where)
        raw = driver_connection(conn)
        # a scan may start mid-table when another one runs (synchronized seqscans): the bytes,
        # and so the checksum, would differ between two dumps of the same rows
        prev = conn.exec_driver_sql("SELECT current_setting('synchronize_seqscans')").scalar_one()
        conn.exec_driver_sql("SET LOCAL synchronize_seqscans = off")
        try:
            with raw.cursor() as cur:
                if self.driver == "psycopg2":
                    cur.copy_expert(sql, sink.stream, size=CHUNK)
                else:
                    with cur.copy(sql) as copy:
                        for block in copy:
                            sink.write(block)
                rows = int(cur.rowcount)
        finally:
            conn.execute(sa.text("SELECT set_config('synchronize_seqscans', :v, true)"), {"v": prev})
        return rows

    def restore(self, conn: sa.Connection, target: TableRef, columns: list[str], data: io.RawIOBase) -> int:
        prep = conn.dialect.identifier_preparer
        cols = ", ".join(prep.quote(c) for c in columns)
        sql = f"COPY {prep.format_table(table_clause(target))} ({cols}) FROM STDIN (FORMAT binary)"
        raw = driver_connection(conn)
        with raw.cursor() as cur:
            if self.driver == "psycopg2":
                cur.copy_expert(sql, io.BufferedReader(data, CHUNK), size=CHUNK)
            else:
                with cur.copy(sql) as copy:
                    buf = io.BufferedReader(data, CHUNK)
                    while block := buf.read(CHUNK):
                        copy.write(block)
            return int(cur.rowcount)


class GenericEngine:
    format = "jsonl"

    def dump(
        self,
        conn: sa.Connection,
        table: TableRef,
        columns: list[str],
        where: str | None,
        order_by: list[str],
        sink: SnapshotSink,
    ) -> int:
        t = table_clause(table, columns + [c for c in order_by if c not in columns])
        query = sa.select(*(t.c[c] for c in columns))
        if where is not None:
            query = query.where(sa.literal_column(where))
        if order_by:
            query = query.order_by(*(t.c[c] for c in order_by))
        rows = 0
        result = conn.execute(query, execution_options={"yield_per": INSERT_BATCH})  # per query: on the
        # connection, execution_options() would change it in place for the rest of the migration
        try:
            for partition in result.partitions():
                for row in partition:
                    sink.write(encode_row(row))
                    rows += 1
        finally:
            result.close()
        return rows

    def restore(self, conn: sa.Connection, target: TableRef, columns: list[str], data: io.RawIOBase) -> int:
        t = table_clause(target, columns)
        insert = t.insert()
        count = 0
        batch: list[dict[str, Any]] = []
        for values in _lines(data):
            if len(values) != len(columns):
                raise ValueError(f"a row has {len(values)} values for {len(columns)} columns")
            batch.append(dict(zip(columns, values, strict=True)))
            if len(batch) >= INSERT_BATCH:
                conn.execute(insert, batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(insert, batch)
            count += len(batch)
        return count


def _lines(data: io.RawIOBase) -> Iterator[list[Any]]:
    reader = io.BufferedReader(data, CHUNK)
    for line in reader:
        if line.strip():
            yield decode_row(line)

