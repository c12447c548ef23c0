"""What the checks ask the database's catalogue: constraints with whether the database vouches
for every existing row (*trusted*), indexes, sequences, row counts and estimates, sizes, long
transactions and lock waits — per dialect.

Only constraints the database does not vouch for are verified row by row (a scan); the others
cost a catalogue lookup.  Untrusted are: on PostgreSQL, constraints added ``NOT VALID``
(``convalidated = false``), foreign keys whose triggers are disabled or while
``session_replication_role = replica``, unique indexes left invalid; on SQLite, foreign keys
(checked only while ``PRAGMA foreign_keys`` is on, and never for rows already there), CHECK and
NOT NULL constraints (skipped under ``PRAGMA ignore_check_constraints``, and not applied to old
rows when a table's SQL is edited); on MySQL/MariaDB, foreign keys (``foreign_key_checks = 0``)
and CHECK constraints (``check_constraint_checks = 0`` on MariaDB, ``NOT ENFORCED`` on MySQL).

Catalogue SQL is fixed text with bound parameters; table and column names in data queries are
quoted by SQLAlchemy (``sa.table``/``sa.column``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from ..snapshot.reflect import SAFETY_SCHEMA, LiveCatalog
from ..sqlinfo import TableRef

_PG_SYSTEM = ("pg_catalog", "information_schema", "pg_toast")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ForeignKey:
    name: str | None
    table: TableRef
    columns: tuple[str, ...]
    referred: TableRef
    referred_columns: tuple[str, ...]
    untrusted: str | None  # why the database may hold orphans; None: it vouches for every row


@dataclass(frozen=True)
class CheckConstraint:
    name: str | None
    table: TableRef
    condition: str  # the database's own text of the condition
    untrusted: str | None


@dataclass(frozen=True)
class NotNullColumn:
    table: TableRef
    column: str
    untrusted: str | None


@dataclass(frozen=True)
class BadIndex:
    """An index PostgreSQL does not use or maintain fully (``indisvalid``/``indisready`` false)."""

    name: str
    table: TableRef
    unique: bool
    columns: tuple[str, ...]  # empty when the index has expressions
    predicate: str | None  # a partial index's WHERE


@dataclass(frozen=True)
class OwnedSequence:
    table: TableRef
    column: str
    sequence: str
    next_value: int
    increment: int


@dataclass(frozen=True)
class TableSize:
    table: TableRef
    rows_estimate: int | None
    bytes: int | None


_PG_FILTER = "(:all OR {col} = ANY(ARRAY(SELECT to_regclass(x)::oid FROM unnest(:names) AS x)))"
_PG_ATTNAMES = ("ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(num, ord) JOIN pg_attribute a "
                "ON a.attrelid = {rel} AND a.attnum = k.num ORDER BY k.ord)")  # fmt: skip
_PG_REPLICA = "SELECT current_setting('session_replication_role')"
_PG_FOREIGN_KEYS = (
    "SELECT c.conname, c.convalidated, n.nspname, r.relname, fn.nspname, f.relname, "
    + _PG_ATTNAMES.format(keys="c.conkey", rel="c.conrelid") + ", "
    + _PG_ATTNAMES.format(keys="c.confkey", rel="c.confrelid") + ", "
    "EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgconstraint = c.oid AND t.tgenabled = 'D') "
    "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
    "JOIN pg_namespace n ON n.oid = r.relnamespace JOIN pg_class f ON f.oid = c.confrelid "
    "JOIN pg_namespace fn ON fn.oid = f.relnamespace "
    "WHERE c.contype = 'f' AND c.conparentid = 0 AND n.nspname <> :safety AND ("
    + _PG_FILTER.format(col="c.conrelid") + " OR " + _PG_FILTER.format(col="c.confrelid")
    + ") ORDER BY n.nspname, r.relname, c.conname"
)  # fmt: skip
_PG_UNTRUSTED_CHECKS = (
    "SELECT c.conname, n.nspname, r.relname, pg_get_expr(c.conbin, c.conrelid) FROM pg_constraint c "
    "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
    "WHERE c.contype = 'c' AND NOT c.convalidated AND " + _PG_FILTER.format(col="c.conrelid")
    + " ORDER BY n.nspname, r.relname, c.conname"
)  # fmt: skip
# NOT NULL ... NOT VALID exists from PostgreSQL 18 (contype 'n'); before, none is found
_PG_UNTRUSTED_NOT_NULL = (
    "SELECT n.nspname, r.relname, a.attname FROM pg_constraint c "
    "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
    "WHERE c.contype = 'n' AND NOT c.convalidated AND " + _PG_FILTER.format(col="c.conrelid")
)  # fmt: skip
_PG_BAD_INDEXES = (
    "SELECT i.relname, n.nspname, t.relname, x.indisunique, "
    "CASE WHEN x.indexprs IS NULL THEN " + _PG_ATTNAMES.format(keys="x.indkey::int2[]", rel="x.indrelid")
    + " ELSE ARRAY[]::text[] END, pg_get_expr(x.indpred, x.indrelid) "
    "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
    "JOIN pg_namespace n ON n.oid = t.relnamespace "
    "WHERE NOT (x.indisvalid AND x.indisready) AND n.nspname <> :safety AND "
    + _PG_FILTER.format(col="x.indrelid") + " ORDER BY n.nspname, t.relname, i.relname"
)  # fmt: skip
# driven by pg_depend's index on the referenced table; names looked up for the rows found only
# (a seven-way join took milliseconds to plan, every step)
_PG_OWNED_SEQUENCES = (
    "SELECT (SELECT nspname FROM pg_namespace WHERE oid = t.relnamespace), t.relname, "
    "(SELECT attname FROM pg_attribute WHERE attrelid = d.refobjid AND attnum = d.refobjsubid), "
    "(SELECT nspname FROM pg_namespace WHERE oid = s.relnamespace) || '.' || s.relname, "
    "pg_sequence_last_value(s.oid), q.seqstart, q.seqincrement "
    "FROM pg_depend d JOIN pg_sequence q ON q.seqrelid = d.objid JOIN pg_class s ON s.oid = d.objid "
    "JOIN pg_class t ON t.oid = d.refobjid "
    "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "AND t.relnamespace IS DISTINCT FROM to_regnamespace(:safety) AND " + _PG_FILTER.format(col="d.refobjid")
)  # fmt: skip
# One cheap statement per step: which of the tables the step created hold no row (a plain table
# without a single page: pg_relation_size reads the file's size, which grows as soon as a row is
# written, even by this transaction; a partitioned table has no pages of its own, its
# partitions hold the rows, so it is never called empty), and whether each catalogue question
# may have an answer for the scope (the data questions for the tables that may hold rows): the
# detailed queries run only then.  Each EXISTS is looser than its detailed query, never tighter.
_PG_PROBE = (
    "WITH scope AS (SELECT to_regclass(x)::oid AS oid FROM unnest(:names) AS x), "
    "fresh AS (SELECT c.oid, e.x FROM unnest(:new) AS e(x) JOIN pg_class c ON c.oid = to_regclass(e.x) "
    "  WHERE c.relkind = 'r' AND pg_relation_size(c.oid) = 0), "
    "filled AS (SELECT oid FROM scope EXCEPT SELECT oid FROM fresh) "
    "SELECT current_setting('session_replication_role'), ARRAY(SELECT x FROM fresh), "
    "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'f' "
    "  AND (c.conrelid IN (SELECT oid FROM scope) OR c.confrelid IN (SELECT oid FROM scope))), "
    "EXISTS (SELECT 1 FROM pg_index x WHERE NOT (x.indisvalid AND x.indisready) "
    "  AND x.indrelid IN (SELECT oid FROM scope)), "
    "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'c' AND NOT c.convalidated "
    "  AND c.conrelid IN (SELECT oid FROM filled)), "
    "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'n' AND NOT c.convalidated "
    "  AND c.conrelid IN (SELECT oid FROM filled)), "
    "EXISTS (SELECT 1 FROM pg_depend d JOIN pg_sequence q ON q.seqrelid = d.objid "
    "  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "  AND d.refobjid IN (SELECT oid FROM filled))"
)  # fmt: skip


class DbCatalog:
    """The checks' view of one connection, read after the step, in its transaction.

    Table names and the structure answers (foreign keys, untrusted constraints, bad indexes,
    owned sequences) are read once per instance and scope: make a new instance after DDL.  Row
    counts, estimates and sizes are read every time.  :meth:`prefetch` (PostgreSQL) learns in
    one statement which of those questions have an answer at all."""

    def __init__(self, conn: sa.Connection, *, version_table: str = "alembic_version",
                 version_schema: str | None = None, safety_schema: str = SAFETY_SCHEMA,
                 live: LiveCatalog | None = None) -> None:  # fmt: skip
        self.conn = conn
        self.live = live or LiveCatalog(conn, version_table=version_table, version_schema=version_schema,
                                        safety_schema=safety_schema)  # fmt: skip
        self.safety_schema = safety_schema
        self.dialect = str(conn.dialect.name)
        self.mariadb = bool(getattr(conn.dialect, "is_mariadb", False))
        self._memo: dict[tuple[str, frozenset[TableRef] | None], Any] = {}
        self._replica: str | None = None  # session_replication_role, once read

    # -- tables ------------------------------------------------------------------------------
    def resolve(self, ref: TableRef) -> TableRef | None:
        return self.live.resolve(ref)

    def all_tables(self) -> list[TableRef]:
        """Every user table: all non-system schemas on PostgreSQL, the current database elsewhere."""
        schemas: list[str | None] = [None]
        if self.dialect == "postgresql":
            names = self.live.inspector.get_schema_names()
            schemas += [s for s in names if not s.startswith(_PG_SYSTEM) and s != self.safety_schema]
        return self.live.tables(schemas)

    def _qualified(self, ref: TableRef) -> str:
        return str(self.conn.dialect.identifier_preparer.format_table(sa.table(ref.name, schema=ref.schema)))

    def _pg_names(self, tables: Iterable[TableRef] | None) -> dict[str, Any]:
        names = None if tables is None else [self._qualified(t) for t in tables]
        return {"all": names is None, "names": names or [], "safety": self.safety_schema}

    def _pg(self, sql: str, params: dict[str, Any]) -> list[Any]:
        stmt = sa.text(sql).bindparams(*(sa.bindparam(k, type_=ARRAY(sa.Text())) for k in ("names", "new")
                                         if f":{k}" in sql))  # fmt: skip
        return list(self.conn.execute(stmt, params).all())

    def _ref(self, schema: str | None, name: str) -> TableRef:
        return TableRef(name, None if schema is None or schema == self.live.default_schema else schema)

    def _in(self, tables: Iterable[TableRef] | None) -> set[TableRef] | None:
        return None if tables is None else set(tables)

    def _key(self, what: str, tables: set[TableRef] | None) -> tuple[str, frozenset[TableRef] | None]:
        return what, None if tables is None else frozenset(tables)

    def _once(self, what: str, tables: set[TableRef] | None, read: Callable[[], list[_T]]) -> list[_T]:
        if tables is not None and not tables:
            return []
        key = self._key(what, tables)
        if key not in self._memo:
            self._memo[key] = read()
        return list(self._memo[key])

    def prefetch(self, tables: Iterable[TableRef], new: Iterable[TableRef] = ()) -> None:
        """PostgreSQL, one statement: which of ``new`` (tables the step created) are empty, and
        which catalogue questions about ``tables`` have no answer: those are settled without a
        query.  The data questions (CHECK, NOT NULL, sequences) are settled for ``tables`` less
        the empty ones (:attr:`CheckContext.data_tables`).  Elsewhere it does nothing."""
        if self.dialect != "postgresql":
            return
        wanted, fresh = set(tables), list(dict.fromkeys(new))
        row = self._pg(_PG_PROBE, {**self._pg_names(wanted), "new": [self._qualified(t) for t in fresh]})[0]
        replica, empty, fks, bad, checks, not_null, sequences = row
        self._replica = str(replica)
        if fresh:
            self._memo[self._key("empty", set(fresh))] = self._pg_empty(fresh, [(x,) for x in empty or []])
        filled = wanted - self.empty(fresh)
        for what, scope, some in (("fks", wanted, fks), ("bad_indexes", wanted, bad), ("checks", filled, checks),
                                  ("not_null", filled, not_null), ("sequences", filled, sequences)):
            if not some:
                self._memo[self._key(what, scope)] = []

    # -- empty tables ----------------------------------------------------------------------------
    def empty(self, tables: Iterable[TableRef]) -> frozenset[TableRef]:
        """Which of these tables hold no row.  PostgreSQL answers from the catalogue (a plain
        table with no page; a partitioned table is never called empty); elsewhere one statement
        probes them all (``EXISTS (SELECT 1 FROM t)``).  Only ask about tables this transaction
        holds a lock on (the step created them): asking waits behind another session's
        ``ACCESS EXCLUSIVE`` lock, like any read of the table."""
        wanted = list(dict.fromkeys(tables))
        if not wanted:
            return frozenset()
        return frozenset(self._once("empty", set(wanted), lambda: self._read_empty(wanted)))

    def _read_empty(self, tables: list[TableRef]) -> list[TableRef]:
        if self.dialect == "postgresql":
            row = self._pg(_PG_PROBE, {**self._pg_names([]), "new": [self._qualified(t) for t in tables]})[0]
            return self._pg_empty(tables, [(x,) for x in row[1] or []])
        probes = [sa.exists(sa.select(sa.literal(1)).select_from(sa.table(t.name, schema=t.schema))).label(f"t{i}")
                  for i, t in enumerate(tables)]  # fmt: skip
        row = self.conn.execute(sa.select(*probes)).one()
        return [t for t, present in zip(tables, row, strict=True) if not present]

    def _pg_empty(self, tables: list[TableRef], rows: list[tuple[Any, ...]]) -> list[TableRef]:
        names = {str(r[0]) for r in rows}
        return [t for t in tables if self._qualified(t) in names]

    # -- foreign keys ------------------------------------------------------------------------
    def foreign_keys(self, tables: Iterable[TableRef] | None = None) -> list[ForeignKey]:
        """Foreign keys from or to these tables (None: all)."""
        wanted = self._in(tables)
        return self._once("fks", wanted, lambda: self._read_foreign_keys(wanted))

    def _pg_foreign_keys(self, rows: Iterable[Any], replica: str) -> list[ForeignKey]:
        out = []
        for name, valid, ns, rel, fns, frel, cols, fcols, disabled in rows:
            why = ("added NOT VALID (convalidated = false)" if not valid else
                   "its triggers are disabled" if disabled else
                   "session_replication_role = replica (foreign keys are not enforced)" if replica == "replica"
                   else None)  # fmt: skip
            out.append(ForeignKey(name, self._ref(ns, rel), tuple(cols), self._ref(fns, frel), tuple(fcols), why))
        return out

    def _read_foreign_keys(self, wanted: set[TableRef] | None) -> list[ForeignKey]:
        if self.dialect == "postgresql":
            if self._replica is None:
                self._replica = str(self.conn.execute(sa.text(_PG_REPLICA)).scalar())
            return self._pg_foreign_keys(self._pg(_PG_FOREIGN_KEYS, self._pg_names(wanted)), self._replica)
        if self.dialect in ("mysql", "mariadb"):
            k = sa.table("KEY_COLUMN_USAGE", *(sa.column(c) for c in (
                "CONSTRAINT_NAME", "TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "REFERENCED_TABLE_SCHEMA",
                "REFERENCED_TABLE_NAME", "REFERENCED_COLUMN_NAME", "ORDINAL_POSITION")), schema="information_schema")
            rows = self.conn.execute(
                sa.select(k.c.CONSTRAINT_NAME, k.c.TABLE_NAME, k.c.COLUMN_NAME, k.c.REFERENCED_TABLE_SCHEMA,
                          k.c.REFERENCED_TABLE_NAME, k.c.REFERENCED_COLUMN_NAME)
                .where(sa.func.database() == k.c.TABLE_SCHEMA, k.c.REFERENCED_TABLE_NAME.is_not(None))
                .order_by(k.c.TABLE_NAME, k.c.CONSTRAINT_NAME, k.c.ORDINAL_POSITION)).all()  # fmt: skip
            current = self.conn.execute(sa.select(sa.func.database())).scalar()
            groups: dict[tuple[str, str], list[Any]] = {}
            for r in rows:
                groups.setdefault((str(r[1]), str(r[0])), []).append(r)
            why = "MySQL/MariaDB do not check rows written while foreign_key_checks = 0"
            out = []
            for (table, name), parts in groups.items():
                ref_schema = None if parts[0][3] == current else str(parts[0][3])
                out.append(ForeignKey(name, TableRef(table), tuple(str(p[2]) for p in parts),
                                      TableRef(str(parts[0][4]), ref_schema), tuple(str(p[5]) for p in parts), why))
            return [f for f in out if wanted is None or f.table in wanted or f.referred in wanted]
        out = []
        why = "SQLite checks foreign keys only while PRAGMA foreign_keys is on, never for rows already there"
        for t in self.live.tables([None]):
            for fk in self.live.inspector.get_foreign_keys(t.name, schema=t.schema):
                referred = self.resolve(TableRef(fk["referred_table"], fk.get("referred_schema")))
                referred = referred or TableRef(fk["referred_table"], fk.get("referred_schema"))
                cols = tuple(fk["constrained_columns"])
                rcols = tuple(fk["referred_columns"]) or tuple(self.live.primary_key(referred))
                f = ForeignKey(fk.get("name"), t, cols, referred, rcols, why)
                if wanted is None or f.table in wanted or f.referred in wanted:
                    out.append(f)
        return out

    # -- CHECK and NOT NULL ------------------------------------------------------------------
    def untrusted_checks(self, tables: Iterable[TableRef] | None = None) -> list[CheckConstraint]:
        wanted = self._in(tables)
        return self._once("checks", wanted, lambda: self._read_untrusted_checks(wanted))

    def _pg_checks(self, rows: Iterable[Any]) -> list[CheckConstraint]:
        return [CheckConstraint(r[0], self._ref(r[1], r[2]), str(r[3]), "added NOT VALID (convalidated = false)")
                for r in rows]  # fmt: skip

    def _read_untrusted_checks(self, wanted: set[TableRef] | None) -> list[CheckConstraint]:
        if self.dialect == "postgresql":
            return self._pg_checks(self._pg(_PG_UNTRUSTED_CHECKS, self._pg_names(wanted)))
        if self.dialect in ("mysql", "mariadb"):
            if self.mariadb:
                cc = sa.table("CHECK_CONSTRAINTS", *(sa.column(c) for c in (
                    "CONSTRAINT_SCHEMA", "TABLE_NAME", "CONSTRAINT_NAME", "CHECK_CLAUSE")), schema="information_schema")
                rows: Any = self.conn.execute(sa.select(cc.c.CONSTRAINT_NAME, cc.c.TABLE_NAME, cc.c.CHECK_CLAUSE).where(
                    sa.func.database() == cc.c.CONSTRAINT_SCHEMA)).all()  # fmt: skip
                why = "MariaDB does not check rows written while check_constraint_checks = 0"
            else:
                cc = sa.table("CHECK_CONSTRAINTS", *(sa.column(c) for c in (
                    "CONSTRAINT_SCHEMA", "CONSTRAINT_NAME", "CHECK_CLAUSE")), schema="information_schema")
                tc = sa.table("TABLE_CONSTRAINTS", *(sa.column(c) for c in (
                    "CONSTRAINT_SCHEMA", "CONSTRAINT_NAME", "TABLE_NAME", "CONSTRAINT_TYPE", "ENFORCED")),
                    schema="information_schema")
                rows = self.conn.execute(
                    sa.select(cc.c.CONSTRAINT_NAME, tc.c.TABLE_NAME, cc.c.CHECK_CLAUSE).join_from(
                        cc, tc, sa.and_(cc.c.CONSTRAINT_SCHEMA == tc.c.CONSTRAINT_SCHEMA,
                                        cc.c.CONSTRAINT_NAME == tc.c.CONSTRAINT_NAME))
                    .where(sa.func.database() == cc.c.CONSTRAINT_SCHEMA, tc.c.CONSTRAINT_TYPE == "CHECK",
                           tc.c.ENFORCED == "NO")).all()  # fmt: skip
                why = "declared NOT ENFORCED"
            out = [CheckConstraint(str(r[0]), TableRef(str(r[1])), str(r[2]), why) for r in rows]
            return [c for c in out if wanted is None or c.table in wanted]
        out = []
        why = "SQLite skips CHECKs under PRAGMA ignore_check_constraints and never re-checks old rows"
        for t in self.live.tables([None]) if wanted is None else sorted(wanted, key=lambda r: r.key):
            for ck in self.live.inspector.get_check_constraints(t.name, schema=t.schema):
                out.append(CheckConstraint(ck.get("name"), t, str(ck["sqltext"]), why))
        return out

    def untrusted_not_null(self, tables: Iterable[TableRef] | None = None) -> list[NotNullColumn]:
        wanted = self._in(tables)
        return self._once("not_null", wanted, lambda: self._read_untrusted_not_null(wanted))

    def _pg_not_null(self, rows: Iterable[Any]) -> list[NotNullColumn]:
        return [NotNullColumn(self._ref(r[0], r[1]), str(r[2]), "NOT NULL added NOT VALID") for r in rows]

    def _read_untrusted_not_null(self, wanted: set[TableRef] | None) -> list[NotNullColumn]:
        if self.dialect == "postgresql":
            return self._pg_not_null(self._pg(_PG_UNTRUSTED_NOT_NULL, self._pg_names(wanted)))
        if self.dialect == "sqlite":
            why = "SQLite applies NOT NULL to new writes only; a table whose SQL was edited keeps its old rows"
            out = []
            for t in self.live.tables([None]) if wanted is None else sorted(wanted, key=lambda r: r.key):
                pk = set(self.live.primary_key(t))
                for c in self.live.inspector.get_columns(t.name, schema=t.schema):
                    if not c["nullable"] and c["name"] not in pk:
                        out.append(NotNullColumn(t, c["name"], why))
            return out
        return []  # MySQL/MariaDB never store NULL in a NOT NULL column

    # -- indexes and sequences (PostgreSQL) ----------------------------------------------------
    def bad_indexes(self, tables: Iterable[TableRef] | None = None) -> list[BadIndex]:
        if self.dialect != "postgresql":
            return []
        wanted = self._in(tables)
        return self._once("bad_indexes", wanted,
                          lambda: self._pg_bad_indexes(self._pg(_PG_BAD_INDEXES, self._pg_names(wanted))))

    def _pg_bad_indexes(self, rows: Iterable[Any]) -> list[BadIndex]:
        return [BadIndex(str(r[0]), self._ref(r[1], r[2]), bool(r[3]), tuple(r[4]), r[5]) for r in rows]

    def owned_sequences(self, tables: Iterable[TableRef] | None = None) -> list[OwnedSequence]:
        """Sequences owned by a column (serial, identity), with the value nextval() would return."""
        if self.dialect != "postgresql":
            return []
        wanted = self._in(tables)
        return self._once("sequences", wanted,
                          lambda: self._pg_sequences(self._pg(_PG_OWNED_SEQUENCES, self._pg_names(wanted))))

    def _pg_sequences(self, rows: Iterable[Any]) -> list[OwnedSequence]:
        out = []
        for ns, rel, col, seq, last, start, incr in rows:
            nxt = int(start) if last is None else int(last) + int(incr)
            out.append(OwnedSequence(self._ref(ns, rel), str(col), str(seq), nxt, int(incr)))
        return out

    # -- sizes and counts ----------------------------------------------------------------------
    def estimate(self, ref: TableRef) -> int | None:
        """The planner's row estimate (free), or None where there is none."""
        if self.dialect == "postgresql":
            value = self.conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
                                      {"t": self._qualified(ref)}).scalar()  # fmt: skip
            return None if value is None or float(value) < 0 else round(float(value))
        if self.dialect in ("mysql", "mariadb"):
            t = sa.table("TABLES", sa.column("TABLE_ROWS"), sa.column("TABLE_SCHEMA"), sa.column("TABLE_NAME"),
                         schema="information_schema")  # fmt: skip
            schema = sa.literal(ref.schema) if ref.schema else sa.func.database()
            col_schema, col_name = t.c.TABLE_SCHEMA, t.c.TABLE_NAME
            value = self.conn.execute(sa.select(t.c.TABLE_ROWS).where(col_schema == schema,
                                                                      col_name == ref.name)).scalar()
            return None if value is None else int(value)
        return None

    def count(self, ref: TableRef) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(sa.table(ref.name, schema=ref.schema)))
                   .scalar() or 0)  # fmt: skip

    def xact_changes(self, ref: TableRef) -> tuple[int, int] | None:
        """PostgreSQL: rows inserted and deleted in this table by the current transaction."""
        if self.dialect != "postgresql":
            return None
        row = self.conn.execute(sa.text(
            "SELECT pg_stat_get_xact_tuples_inserted(to_regclass(:t)), "
            "pg_stat_get_xact_tuples_deleted(to_regclass(:t))"),
            {"t": self._qualified(ref)}).one()  # fmt: skip
        return int(row[0] or 0), int(row[1] or 0)

    def sizes(self, tables: Iterable[TableRef]) -> list[TableSize]:
        wanted = list(tables)
        if self.dialect == "postgresql":
            rows: Any = self._pg(
                # from the catalogue's page counts (as of the last VACUUM/ANALYZE): sizing a table
                # with pg_total_relation_size() would wait behind a lock a migration holds
                "SELECT n.nspname, c.relname, c.reltuples, (c.relpages + coalesce(tc.relpages, 0) + "
                "coalesce((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = c.oid), 0))::bigint * current_setting('block_size')::bigint "
                "FROM pg_class c LEFT JOIN pg_class tc ON tc.oid = c.reltoastrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _PG_FILTER.format(col="c.oid"),
                self._pg_names(wanted))  # fmt: skip
            return [TableSize(self._ref(r[0], r[1]), None if float(r[2]) < 0 else round(float(r[2])), int(r[3]))
                    for r in rows]  # fmt: skip
        if self.dialect in ("mysql", "mariadb"):
            t = sa.table("TABLES", *(sa.column(c) for c in ("TABLE_SCHEMA", "TABLE_NAME", "TABLE_ROWS", "DATA_LENGTH",
                                                               "INDEX_LENGTH")), schema="information_schema")
            rows = self.conn.execute(sa.select(t.c.TABLE_NAME, t.c.TABLE_ROWS, t.c.DATA_LENGTH, t.c.INDEX_LENGTH)
                                     .where(sa.func.database() == t.c.TABLE_SCHEMA)).all()  # fmt: skip
            names = {w.name for w in wanted}
            return [TableSize(TableRef(str(r[0])), None if r[1] is None else int(r[1]),
                              int(r[2] or 0) + int(r[3] or 0)) for r in rows if r[0] in names]  # fmt: skip
        return [TableSize(t, self.count(t), None) for t in wanted]  # SQLite: exact and cheap at its sizes

    # -- sessions (PostgreSQL, MySQL/MariaDB) ----------------------------------------------------
    def long_transactions(self, seconds: float) -> list[dict[str, Any]] | None:
        """Other sessions' transactions on this database open longer than ``seconds`` (None: cannot
        be known here); sessions on other databases of the same server do not concern it."""
        if self.dialect == "postgresql":
            rows = self.conn.execute(sa.text(
                "SELECT pid, usename, state, extract(epoch FROM clock_timestamp() - xact_start), left(query, 200) "
                "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
                "AND datname = current_database() "
                "AND clock_timestamp() - xact_start > make_interval(secs => :s) ORDER BY xact_start"),
                {"s": seconds}).all()  # fmt: skip
            return [{"pid": r[0], "user": r[1], "state": r[2], "seconds": round(float(r[3]), 1), "query": r[4]}
                    for r in rows]  # fmt: skip
        if self.dialect in ("mysql", "mariadb"):
            rows = self.conn.execute(sa.text(
                "SELECT trx_mysql_thread_id, trx_state, TIMESTAMPDIFF(SECOND, trx_started, NOW()), "
                "LEFT(trx_query, 200) FROM information_schema.INNODB_TRX "
                "WHERE trx_mysql_thread_id <> CONNECTION_ID() AND TIMESTAMPDIFF(SECOND, trx_started, NOW()) > :s "
                "AND trx_mysql_thread_id IN (SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE())"),
                {"s": seconds}).all()  # fmt: skip
            return [{"pid": r[0], "user": None, "state": r[1], "seconds": float(r[2]), "query": r[3]} for r in rows]
        return None

    def blocked(self) -> list[dict[str, Any]] | None:
        """Sessions on this database waiting for a lock another session holds (None: cannot be
        known here)."""
        if self.dialect == "postgresql":
            rows = self.conn.execute(sa.text(
                "SELECT pid, pg_blocking_pids(pid), wait_event_type, "
                "extract(epoch FROM clock_timestamp() - query_start), left(query, 200) FROM pg_stat_activity "
                "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0 "
                "ORDER BY query_start")).all()  # fmt: skip
            return [{"pid": r[0], "blocked_by": list(r[1]), "wait": r[2], "seconds": round(float(r[3] or 0), 1),
                     "query": r[4]} for r in rows]  # fmt: skip
        if self.dialect in ("mysql", "mariadb") and self.mariadb:
            rows = self.conn.execute(sa.text(
                "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id, "
                "TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()), "
                "LEFT(r.trx_query, 200) FROM information_schema.INNODB_LOCK_WAITS w "
                "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id "
                "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id")).all()  # fmt: skip
            return [{"pid": r[0], "blocked_by": [r[1]], "wait": "lock", "seconds": float(r[2] or 0), "query": r[3]}
                    for r in rows]  # fmt: skip
        if self.dialect in ("mysql", "mariadb"):
            rows = self.conn.execute(sa.text(
                "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id, "
                "TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()), "
                "LEFT(r.trx_query, 200) FROM performance_schema.data_lock_waits w "
                "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID "
                "JOIN information_schema.INNODB_TRX b "
                "ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID")).all()  # fmt: skip
            return [{"pid": r[0], "blocked_by": [r[1]], "wait": "lock", "seconds": float(r[2] or 0), "query": r[3]}
                    for r in rows]  # fmt: skip
        return None
