"""The rollback's fast whole-table restore on PostgreSQL: load into a bare table, rebuild after.

Loading rows into a table whose indexes are in place costs 4-5x a load into the bare table
followed by an index build, and foreign-key triggers cost more than both (see
``../shared/PERF_NOTES.md``).  When a table is to end exactly as a whole-table snapshot holds it
— it is empty, or the mode is ``replace`` and it has no column the snapshot lacks — the
rollback restores it with :func:`bulk_reload`, inside the rollback's one transaction:

1. read the table's indexes and index-backed constraints (primary key, unique, exclusion) from
   the catalogue: their definitions as PostgreSQL prints them (``pg_get_indexdef``,
   ``pg_get_constraintdef``).  Left in place: what other objects depend on (a primary key or
   unique constraint other tables' foreign keys refer to), a clustered, replica-identity,
   invalid or commented index, one in its own tablespace or with a statistics target;
2. in ``replace`` mode on a table with rows, count what the restore changes (one full join:
   rows removed, rows given their old values back, rows added) — the numbers the row-by-row
   path reports;
3. drop the others, empty the table (``TRUNCATE``, also when it has no live rows, so the load
   fills a new file rather than one of dead rows; ``DELETE`` when another table's foreign key
   refers to it), ``INSERT INTO t SELECT ... FROM <snapshot>`` once;
4. re-create the constraints and indexes from their definitions (a duplicate fails the
   re-creation, and with it the rollback's transaction: nothing changed);
5. foreign keys of the table: with ``session_replication_role = replica`` (set by the rollback
   for the restore) their triggers do not fire, so they stay in place, and every validated one
   is checked with one anti-join afterwards — orphans are reported (measured: the anti-join
   costs the same as ``ADD ... NOT VALID`` + ``VALIDATE``).  Without ``replica`` (a role that may
   not set it) each is dropped and re-added ``NOT VALID``, then validated: PostgreSQL checks
   every row once instead of once per inserted row, and an orphan fails the rollback, as the
   row-by-row load would have.

Identifiers are quoted by SQLAlchemy's identifier preparer; the definitions are PostgreSQL's own
text.  Nothing here commits: a failure anywhere leaves the caller's transaction to roll back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..sqlinfo import TableRef
from .dbstore import DeclaredType, pg_column_types, restore_casts
from .engines import table_clause

_TABLE = sa.text(
    "SELECT n.nspname, c.relname, c.relkind, c.relhassubclass OR c.relispartition, c.relrowsecurity, "
    "pg_has_role(c.relowner, 'USAGE'), "
    "EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.oid AND f.conrelid <> c.oid), "
    "current_setting('session_replication_role') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(:t)"
)

# the table's indexes, with the primary key / unique / exclusion constraint each one backs
_INDEXES = sa.text(
    "SELECT ic.relname, con.conname, pg_get_indexdef(i.indexrelid), "
    "CASE WHEN con.oid IS NULL THEN NULL ELSE pg_get_constraintdef(con.oid) END, "
    "(i.indisclustered OR i.indisreplident OR NOT i.indisvalid OR NOT i.indisready OR ic.reltablespace <> 0 "
    " OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid) "
    " OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_constraint'::regclass AND d.refobjid = con.oid "
    "            AND NOT (d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid)) "
    " OR EXISTS (SELECT 1 FROM pg_description ds WHERE ds.objoid = i.indexrelid OR ds.objoid = con.oid) "
    " OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget > 0)) "
    "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
    "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
    "  AND con.contype IN ('p', 'u', 'x') "
    "WHERE i.indrelid = to_regclass(:t) ORDER BY con.contype = 'p' DESC, con.oid IS NULL, ic.relname"
)

# the table's own validated foreign keys (column names in key order)
_FOREIGN_KEYS = sa.text(
    "SELECT con.conname, pg_get_constraintdef(con.oid), fn.nspname, f.relname, "
    "ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord) JOIN pg_attribute a "
    "  ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord), "
    "ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord) JOIN pg_attribute a "
    "  ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord), "
    "EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_constraint'::regclass AND d.refobjid = con.oid "
    "        AND d.classid <> 'pg_trigger'::regclass) "
    "OR EXISTS (SELECT 1 FROM pg_description ds WHERE ds.objoid = con.oid) "
    "FROM pg_constraint con JOIN pg_class f ON f.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace "
    "WHERE con.contype = 'f' AND con.conrelid = to_regclass(:t) AND con.convalidated AND con.conparentid = 0 "
    "ORDER BY con.conname"
)


@dataclass(frozen=True)
class BulkReload:
    """What :func:`bulk_reload` did."""

    inserted: int  # rows loaded (every row of the snapshot)
    added: int  # of them, rows whose key the table did not hold
    deleted: int  # rows removed that the snapshot does not hold
    updated: int  # rows the snapshot holds with other values (they got their old values back)
    emptied_by: str  # "TRUNCATE", "DELETE" or "" (the table was empty)
    rebuilt: tuple[str, ...]  # indexes and constraints dropped and re-created
    kept: tuple[str, ...]  # indexes and constraints left in place
    orphans: tuple[str, ...]  # foreign keys of the table that restored rows violate
    seconds: dict[str, float]

    @property
    def ok(self) -> bool:
        return not self.orphans

    def detail(self) -> str:
        parts = [f"bulk reload ({self.emptied_by or 'the table was empty'}, one INSERT ... SELECT of "
                 f"{self.inserted} row(s) into the bare table"]  # fmt: skip
        if self.rebuilt:
            parts.append(f"rebuilt {', '.join(self.rebuilt)}")
        if self.kept:
            parts.append(f"kept in place {', '.join(self.kept)}")
        parts[-1] += ")"
        timing = ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        text = "; ".join(parts) + f" [{timing}]"
        if self.orphans:
            text += "; " + "; ".join(self.orphans)
        return text


@dataclass(frozen=True)
class _Rebuild:
    label: str
    drop: str
    create: tuple[str, ...]


def bulk_reload(conn: sa.Connection, source: TableRef, target: TableRef, columns: Sequence[str],
                key: Sequence[str], *, mode: str, whole: bool) -> BulkReload | None:  # fmt: skip
    """Make ``target`` hold exactly the rows of ``source`` (a whole-table snapshot with every
    column: ``whole``) by loading a bare table and rebuilding it; None, having changed nothing,
    when this path does not apply (not PostgreSQL, no key, the table has rows and the mode is
    not ``replace`` or it has columns the snapshot lacks, an inherited, partitioned or
    row-security table, or one this role does not own) — the caller restores row by row."""
    if conn.dialect.name != "postgresql" or not whole or not key or not columns:
        return None
    prep = conn.dialect.identifier_preparer
    qualified = prep.format_table(sa.table(target.name, schema=target.schema))
    facts = conn.execute(_TABLE, {"t": qualified}).first()
    if facts is None:
        return None
    schema, name, relkind, inherits, row_security, owned, referenced, role = facts
    if relkind != "r" or inherits or row_security or not owned:
        return None
    live = TableRef(str(name), str(schema))
    cols = list(columns)
    dst = table_clause(live, cols)
    empty = conn.execute(sa.select(sa.exists(sa.select(sa.literal(1)).select_from(dst)))).scalar_one() is False
    extra = set(pg_column_types(conn, live)) - set(cols)
    if not empty and (mode != "replace" or extra):
        return None
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    src = table_clause(source, cols)
    casts = restore_casts(conn, source, live, cols)

    def value(c: str, holder: Any) -> sa.ColumnElement[Any]:
        return sa.cast(holder.c[c], DeclaredType(casts[c])) if c in casts else holder.c[c]

    deleted = updated = 0
    added = -1
    if not empty:
        s, d = src.alias("s"), dst.alias("d")
        match = sa.and_(*(value(k, s) == d.c[k] for k in key))
        differs = sa.or_(sa.false(), *(value(c, s).is_distinct_from(d.c[c]) for c in cols if c not in key))
        only_live = s.c[key[0]].is_(None)
        only_snap = d.c[key[0]].is_(None)
        counted = conn.execute(sa.select(
            sa.func.count().filter(only_live),
            sa.func.count().filter(sa.and_(~only_live, ~only_snap, differs)),
            sa.func.count().filter(only_snap),
        ).select_from(s.join(d, match, full=True))).one()  # fmt: skip
        deleted, updated, added = int(counted[0]), int(counted[1]), int(counted[2])
        seconds["compare"] = time.monotonic() - t0
    table = prep.format_table(sa.table(live.name, schema=live.schema))
    rebuilds: list[_Rebuild] = []
    kept: list[str] = []
    for index, constraint, indexdef, condef, pinned in conn.execute(_INDEXES, {"t": qualified}):
        label = str(constraint or index)
        if pinned:
            kept.append(label)
        elif constraint is not None:
            rebuilds.append(_Rebuild(label, f"ALTER TABLE {table} DROP CONSTRAINT {prep.quote(str(constraint))}",
                                     (f"ALTER TABLE {table} ADD CONSTRAINT {prep.quote(str(constraint))} {condef}",)))
        else:
            drop = f"DROP INDEX {prep.format_table(sa.table(str(index), schema=live.schema))}"
            rebuilds.append(_Rebuild(label, drop, (str(indexdef),)))
    foreign_keys = conn.execute(_FOREIGN_KEYS, {"t": qualified}).all()
    to_verify: list[Any] = []
    for fk in foreign_keys:
        fk_name, fk_def, pinned = str(fk[0]), str(fk[1]), bool(fk[6])
        if role == "replica" or pinned:  # triggers off: it stays, and is checked afterwards
            to_verify.append(fk)
            if role != "replica":
                kept.append(fk_name)
            continue
        quoted = prep.quote(fk_name)
        rebuilds.append(_Rebuild(fk_name, f"ALTER TABLE {table} DROP CONSTRAINT {quoted}",
                                 (f"ALTER TABLE {table} ADD CONSTRAINT {quoted} {fk_def} NOT VALID",
                                  f"ALTER TABLE {table} VALIDATE CONSTRAINT {quoted}")))  # fmt: skip
    t1 = time.monotonic()
    for r in rebuilds:
        conn.exec_driver_sql(r.drop)
    emptied_by = ""
    if not referenced:  # also when empty: the load then fills a new file, not one of dead rows
        conn.exec_driver_sql(f"TRUNCATE {table}")
        emptied_by = "TRUNCATE"
    elif not empty:  # TRUNCATE refuses a table another table's foreign key refers to
        conn.execute(sa.delete(dst))
        emptied_by = "DELETE"
    inserted = int(conn.execute(dst.insert().from_select(cols, sa.select(*(value(c, src) for c in cols)))).rowcount)
    seconds["load"] = time.monotonic() - t1
    t2 = time.monotonic()
    for r in rebuilds:
        for statement in r.create:
            conn.exec_driver_sql(statement)
    seconds["rebuild"] = time.monotonic() - t2
    t3 = time.monotonic()
    orphans: list[str] = []
    for fk_name, _, ref_schema, ref_name, fk_cols, ref_cols, _ in to_verify:
        child = table_clause(live, list(fk_cols)).alias("c")
        parent = table_clause(TableRef(str(ref_name), str(ref_schema)), list(ref_cols)).alias("p")
        match = sa.and_(*(parent.c[r] == child.c[c] for c, r in zip(fk_cols, ref_cols, strict=True)))
        orphan = sa.and_(*(child.c[c].is_not(None) for c in fk_cols), ~sa.exists().where(match))
        n = int(conn.execute(sa.select(sa.func.count()).select_from(child).where(orphan)).scalar_one())
        if n:
            orphans.append(f"{n} restored row(s) of {live.key}({', '.join(fk_cols)}) have no match in "
                           f"{ref_schema}.{ref_name}({', '.join(ref_cols)}) (foreign key {fk_name})")  # fmt: skip
    if to_verify:
        seconds["foreign keys"] = time.monotonic() - t3
    return BulkReload(inserted, inserted if added < 0 else added, deleted, updated, emptied_by,
                      tuple(r.label for r in rebuilds), tuple(kept), tuple(orphans),
                      {k: round(v, 3) for k, v in seconds.items()})  # fmt: skip


__all__ = ["BulkReload", "bulk_reload"]
