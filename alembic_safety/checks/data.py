"""CHK2xx: the rows obey the constraints the database does not vouch for, and no table lost
rows its step was not expected to remove."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..sqlinfo import TableRef
from .base import Check, CheckContext, CheckFinding, jsonable
from .catalog import DbCatalog

Condition = Callable[[sa.TableClause], sa.ColumnElement[bool]]


@dataclass(frozen=True)
class Violations:
    sample: tuple[dict[str, Any], ...]
    count: int | None  # None: more than the sample, and the table is too large to count exactly
    estimate: int | None

    def text(self) -> str:
        if self.count is not None:
            return f"{self.count} row(s)"
        return (f"at least {len(self.sample)} rows (about {self.estimate} rows in the table: above "
                "check_exact_rows, so not counted)")  # fmt: skip


def violations(ctx: CheckContext, ref: TableRef, columns: Iterable[str], condition: Condition) -> Violations | None:
    """The rows of ``ref`` matching ``condition``: a sample (primary key and ``columns``) with
    LIMIT — so a clean table costs one scan and stops nothing — and, when there are more, an
    exact count if the table is at most ``check_exact_rows`` rows."""
    pk = ctx.catalog.live.primary_key(ref)
    show = list(dict.fromkeys([*pk, *columns]))
    t = sa.table(ref.name, *(sa.column(c) for c in show), schema=ref.schema)
    cond = condition(t)
    n = ctx.sample_rows
    query = sa.select(*t.c).where(cond).limit(n)
    if pk:
        query = query.order_by(*(t.c[c] for c in pk))
    rows = ctx.conn.execute(query).mappings().all()
    if not rows:
        return None
    sample = tuple({k: jsonable(v) for k, v in r.items()} for r in rows)
    if len(rows) < n:
        return Violations(sample, len(rows), None)
    estimate = ctx.catalog.estimate(ref)
    if estimate is not None and estimate > ctx.config.check_exact_rows:
        return Violations(sample, None, estimate)
    count = ctx.conn.execute(sa.select(sa.func.count()).select_from(t).where(cond)).scalar()
    return Violations(sample, int(count or 0), estimate)


class ForeignKeyOrphans(Check):
    """Rows whose foreign key points at no row: the constraint was added ``NOT VALID``
    (PostgreSQL), its triggers were disabled or ``session_replication_role = replica`` was set,
    rows were written with ``foreign_key_checks = 0`` (MySQL/MariaDB) or while
    ``PRAGMA foreign_keys`` was off (SQLite, the default).  Checked with an index-friendly
    anti-join (``NOT EXISTS`` against the referenced key) on the foreign keys from or to the
    tables the step touched; foreign keys the database enforced for every row are skipped.

    Bad::

        op.create_foreign_key("fk_orders_customer", "orders", "customers",
                              ["customer_id"], ["id"], postgresql_not_valid=True)
        # orders that point at deleted customers stay, and nothing says so

    Good: delete or repair the orphans first (or in the same revision), then add the
    constraint, and ``VALIDATE CONSTRAINT`` it in a later step::

        op.execute("DELETE FROM orders o WHERE NOT EXISTS "
                   "(SELECT 1 FROM customers c WHERE c.id = o.customer_id)")
    """

    code = "CHK201"
    name = "data.fk-orphans"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        scope = None if ctx.scope == "full" else ctx.tables
        for fk in ctx.catalog.foreign_keys(scope):
            untrusted = fk.untrusted
            if untrusted is None and (ctx.was_unverified(fk.table) or ctx.was_unverified(fk.referred)):
                untrusted = "rows were restored with foreign-key enforcement off"
            if untrusted is None or not fk.columns or len(fk.columns) != len(fk.referred_columns):
                continue
            if ctx.catalog.resolve(fk.referred) is None:
                yield self.finding(f"foreign key {fk.name or '(unnamed)'} refers to {fk.referred.key}, which does "
                                   "not exist", fk.table)  # fmt: skip
                continue
            if not ctx.holds_rows(fk.table):
                continue  # a child table the step created and left empty has no row to be an orphan
            parent = sa.table(fk.referred.name, *(sa.column(c) for c in fk.referred_columns),
                              schema=fk.referred.schema).alias("parent")  # fmt: skip

            def orphan(t: sa.TableClause, fk: Any = fk, parent: Any = parent) -> sa.ColumnElement[bool]:
                child = t
                match = sa.and_(*(parent.c[r] == child.c[c] for c, r in zip(fk.columns, fk.referred_columns,
                                                                               strict=True)))  # fmt: skip
                return sa.and_(*(child.c[c].is_not(None) for c in fk.columns),
                               ~sa.exists().where(match))  # fmt: skip

            found = violations(ctx, fk.table, fk.columns, orphan)
            if found is not None:
                cols, rcols = ", ".join(fk.columns), ", ".join(fk.referred_columns)
                yield self.finding(
                    f"{found.text()} of {fk.table.key}({cols}) have no match in {fk.referred.key}({rcols}) "
                    f"(foreign key {fk.name or '(unnamed)'}: {untrusted})", fk.table, found.sample)


class NullInNotNull(Check):
    """NULLs in a column declared ``NOT NULL`` that the database did not check for the rows
    already there: ``SET NOT NULL ... NOT VALID`` (PostgreSQL 18+), or a SQLite table whose
    SQL was edited (``PRAGMA writable_schema``) to add ``NOT NULL``.  MySQL/MariaDB never store
    NULL there (they coerce it), so the check does not run on them.

    Bad::

        op.execute("PRAGMA writable_schema = ON")
        op.execute("UPDATE sqlite_master SET sql = replace(sql, 'email TEXT', 'email TEXT NOT NULL') "
                   "WHERE name = 'users'")

    Good: backfill first, then add the constraint in a way the database checks
    (``batch_alter_table`` on SQLite, a validated constraint on PostgreSQL)::

        op.execute("UPDATE users SET email = '' WHERE email IS NULL")
        with op.batch_alter_table("users") as batch:
            batch.alter_column("email", nullable=False)
    """

    code = "CHK202"
    name = "data.null-in-not-null"
    dialects = ("postgresql", "sqlite")

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        by_table: dict[TableRef, list[str]] = {}
        why: dict[TableRef, str] = {}
        for c in ctx.catalog.untrusted_not_null(ctx.data_tables):
            by_table.setdefault(c.table, []).append(c.column)
            why[c.table] = c.untrusted or ""
        for table, cols in by_table.items():
            # one scan per table for all its columns
            def nulls(t: sa.TableClause, cols: list[str] = cols) -> sa.ColumnElement[bool]:
                if ctx.dialect == "sqlite":  # SQLite folds "c IS NULL" to false on a NOT NULL column
                    return sa.or_(*(sa.func.typeof(t.c[c]) == "null" for c in cols))
                return sa.or_(*(t.c[c].is_(None) for c in cols))

            found = violations(ctx, table, cols, nulls)
            if found is not None:
                yield self.finding(f"{found.text()} of {table.key} hold NULL in NOT NULL column(s) "
                                   f"{', '.join(cols)} ({why[table]})", table, found.sample)  # fmt: skip


class CheckViolations(Check):
    """Rows that violate a CHECK constraint the database did not verify: added ``NOT VALID``
    (PostgreSQL, ``convalidated = false``), written with ``check_constraint_checks = 0``
    (MariaDB) or under ``NOT ENFORCED`` (MySQL), or under ``PRAGMA ignore_check_constraints``
    (SQLite).  Violating rows are counted (exactly up to ``check_exact_rows``).

    Bad::

        op.create_check_constraint("ck_price_positive", "items", "price > 0",
                                   postgresql_not_valid=True)   # old rows with price <= 0 stay

    Good: fix the rows, then validate in a later step::

        op.execute("UPDATE items SET price = 0.01 WHERE price <= 0")
        op.execute("ALTER TABLE items VALIDATE CONSTRAINT ck_price_positive")
    """

    code = "CHK203"
    name = "data.check-violations"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        for ck in ctx.catalog.untrusted_checks(ctx.data_tables):
            # the condition is the database's own text of the constraint; NULL passes, as in CHECK
            cond: Any = sa.text("NOT (" + ck.condition + ")")

            def violated(t: sa.TableClause, cond: Any = cond) -> sa.ColumnElement[bool]:
                return cond  # type: ignore[no-any-return]

            found = violations(ctx, ck.table, [], violated)
            if found is not None:
                yield self.finding(f"{found.text()} of {ck.table.key} violate CHECK {ck.name or ''} ({ck.condition}) "
                                   f"({ck.untrusted})", ck.table, found.sample)  # fmt: skip


class UniqueDuplicates(Check):
    """Duplicate keys under a unique index the database does not maintain: a
    ``CREATE UNIQUE INDEX CONCURRENTLY`` that failed (PostgreSQL leaves it ``INVALID``, and
    the duplicates that made it fail are still there).  Enforced unique constraints and indexes
    cannot hold duplicates and are not scanned.

    Bad::

        with op.get_context().autocommit_block():
            op.create_index("uq_users_email", "users", ["email"], unique=True,
                            postgresql_concurrently=True)   # fails half-way on duplicates

    Good: remove the duplicates first, drop the invalid index, build it again.
    """

    code = "CHK204"
    name = "data.unique-duplicates"
    dialects = ("postgresql",)

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        scope = None if ctx.scope == "full" else ctx.tables
        for ix in ctx.catalog.bad_indexes(scope):
            if not ix.unique or not ix.columns or not ctx.holds_rows(ix.table):
                continue
            t = sa.table(ix.table.name, *(sa.column(c) for c in ix.columns), schema=ix.table.schema)
            keys = [t.c[c] for c in ix.columns]
            query = sa.select(*keys, sa.func.count().label("rows")).where(*(k.is_not(None) for k in keys))
            if ix.predicate:
                query = query.where(sa.text(ix.predicate))  # the index's own predicate, from the catalogue
            groups = query.group_by(*keys).having(sa.func.count() > 1).limit(ctx.sample_rows)
            rows = ctx.conn.execute(groups).mappings().all()
            if rows:
                sample = [{k: jsonable(v) for k, v in r.items()} for r in rows]
                yield self.finding(f"duplicate keys ({', '.join(ix.columns)}) under unique index {ix.name}, which is "
                                   "INVALID (a failed concurrent build); rows shown with their count", ix.table,
                                   sample)  # fmt: skip


@dataclass(frozen=True)
class RowCount:
    """A table's size at one moment, measured one way."""

    method: str  # snapshot | exact | estimate
    rows: int | None
    inserted: int | None = None  # PostgreSQL estimate: the transaction's insert/delete counters
    deleted: int | None = None


def measure(catalog: DbCatalog, ref: TableRef, exact_below: int, method: str | None = None,
            snapshot_rows: int | None = None) -> RowCount:  # fmt: skip
    """Before the step: the snapshot's count when the table was copied whole, else an exact
    count when the table's estimate is at most ``exact_below``, else the estimate.  After the
    step ``method`` repeats the measurement the same way."""
    if method is None:
        if snapshot_rows is not None:
            return RowCount("snapshot", snapshot_rows)
        estimate = catalog.estimate(ref)
        method = "exact" if estimate is None or estimate <= exact_below else "estimate"
    if method in ("exact", "snapshot"):
        return RowCount(method, catalog.count(ref))
    changes = catalog.xact_changes(ref)
    return RowCount("estimate", catalog.estimate(ref), *(changes or (None, None)))


def rows_lost(before: RowCount, after: RowCount) -> tuple[int, str] | None:
    """How many rows the table lost, and how that was measured (None: none lost)."""
    if before.method in ("exact", "snapshot"):
        if before.rows is not None and after.rows is not None and after.rows < before.rows:
            how = "exact count" if before.method == "exact" else "the snapshot's count against an exact count"
            return before.rows - after.rows, how
        return None
    if None not in (before.inserted, before.deleted, after.inserted, after.deleted):
        net = (after.inserted or 0) - (before.inserted or 0) - ((after.deleted or 0) - (before.deleted or 0))
        if net < 0:
            return -net, f"estimate (table of ~{before.rows} rows: the transaction's row counters)"
        return None
    if before.rows and after.rows is not None and after.rows < before.rows * 0.9:
        return before.rows - after.rows, "estimate (the database's table statistics, ±10%)"
    return None


class RowsLost(Check):
    """A table the step was not expected to shrink — no ``DROP``, ``DELETE`` or ``TRUNCATE``
    in its operations, and no cascade from one — has fewer rows after the step than before it.
    The count before the step is the snapshot's (when the table was copied whole) or one taken
    right before the step: exact up to ``check_exact_rows`` rows, an estimate above (on
    PostgreSQL the transaction's own insert/delete counters), and the finding says which.
    Runs after each step only.

    Bad: ``op.execute("UPDATE orders SET status = 'closed'")`` on a table whose trigger
    deletes rows, or ``op.execute("SELECT purge_old_orders()")`` — the operations promise no
    row is lost, the table loses rows anyway.

    Good: make the deletion explicit in the revision (``op.execute("DELETE FROM ...")``), so
    the snapshot keeps the rows and this check expects the loss.
    """

    code = "CHK205"
    name = "data.rows-lost"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        if ctx.step is None:
            return
        for ref, before in ctx.step.before.items():
            if not isinstance(before, RowCount) or ctx.catalog.resolve(ref) is None:
                continue
            after = measure(ctx.catalog, ref, ctx.config.check_exact_rows, method=before.method)
            lost = rows_lost(before, after)
            if lost is not None:
                n, how = lost
                yield self.finding(f"{ref.key} lost {n} row(s) in a step whose operations delete none "
                                   f"({before.rows} before; {how})", ref)  # fmt: skip
