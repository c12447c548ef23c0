"""SAF2xx: locks or rewrites a populated table, or fails on the data already there."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops as alembic_ops
from sqlglot import exp

from ..sqlinfo import TableRef, where_columns
from .base import Finding, Rule, RuleContext
from .helpers import (
    _added_columns,
    _ask,
    _clause_sql,
    _constraint_table,
    _created_tables,
    _fills_itself,
    _fk_refs,
    _kw,
    _names,
    _ref,
    _rows,
    _rows_text,
    _sets_not_null,
    _size_severity,
    _size_text,
    _sqlglot_table,
    _statements,
    _type,
    _type_str,
    _violate,
    _volatile_call,
    _walk,
    _writes_to,
)
from .types import pg_rewrites


class AddNotNullColumn(Rule):
    """Adding a ``NOT NULL`` column without a server default fails as soon as the table has
    rows: PostgreSQL has no value to put in them (SQLite refuses it even on an empty table
    outside batch mode; MySQL silently fills the type's implicit default — 0, '' — instead).
    Identity, computed and serial columns fill themselves and are not reported.

    Bad::

        op.add_column("users", sa.Column("tenant_id", sa.Integer(), nullable=False))

    Safe: give it a constant ``server_default`` (no rewrite on PostgreSQL 11+), or add it
    nullable, backfill, and set ``NOT NULL`` in a later step::

        op.add_column("users", sa.Column("tenant_id", sa.Integer(), nullable=True))
        op.execute("UPDATE users SET tenant_id = 1")
        op.alter_column("users", "tenant_id", nullable=False, existing_type=sa.Integer())
    """

    code = "SAF201"
    name = "fails.add-not-null-column"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for op, in_batch in _walk(ctx.upgrade.ops):
            column = getattr(op, "column", None)
            if not isinstance(op, alembic_ops.AddColumnOp) or not isinstance(column, sa.Column):
                continue
            t = _ref(op)
            if column.nullable or column.server_default is not None or _fills_itself(column, ctx.dialect):
                continue
            if t.key in fresh:
                continue
            what = f"adds NOT NULL column {t.key}.{column.name} without a server default"
            if ctx.dialect == "sqlite" and not in_batch:
                yield self.finding(f"{what}: SQLite refuses it even on an empty table", t, column.name)
                continue
            rows = _rows(ctx, t)
            if rows == 0:
                continue
            if ctx.dialect in ("mysql", "mariadb"):
                n = "every existing row" if rows is None else _rows_text(rows)
                yield self.finding(f"{what}: MySQL fills {n} with the type's implicit default", t, column.name,
                                   severity="low")  # fmt: skip
            elif rows is None:
                yield self.finding(f"{what}: fails if the table has rows; could not check the row count", t,
                                   column.name)  # fmt: skip
            else:
                yield self.finding(f"{what}: fails, the table has {_rows_text(rows)}", t, column.name)


class SetNotNull(Rule):
    """``alter_column(nullable=False)`` fails when any row holds NULL, and on PostgreSQL scans
    the whole table under an ACCESS EXCLUSIVE lock to find out.  With live facts the rule
    counts the NULLs; without them it says it could not check.

    Bad::

        op.alter_column("users", "email", nullable=False)

    Safe: backfill first (``UPDATE users SET email = ... WHERE email IS NULL``), then on a large
    PostgreSQL table add ``CHECK (email IS NOT NULL) NOT VALID``, ``VALIDATE CONSTRAINT`` it,
    and only then set NOT NULL (PostgreSQL 12+ uses the valid check and skips the scan).
    """

    code = "SAF202"
    name = "fails.set-not-null"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if not _sets_not_null(op):
                continue
            t, c = _ref(op), str(getattr(op, "column_name", "?"))
            if t.key in fresh:
                continue
            what = f"sets {t.key}.{c} NOT NULL"
            new = added.get((t.key, c))
            if new is not None:
                rows = _rows(ctx, t)
                if rows == 0 or new.server_default is not None or _fills_itself(new, ctx.dialect):
                    continue
                if _writes_to(ctx, t):
                    yield self.finding(f"{what}; the column is added in this revision, so whether the backfill "
                                       "leaves NULLs could not be checked", t, c)  # fmt: skip
                elif rows is None:
                    yield self.finding(f"{what}; the column is added without a default in this revision, so every "
                                       "existing row holds NULL and it fails if the table has rows (could not "
                                       "check the row count)", t, c)  # fmt: skip
                else:
                    yield self.finding(f"{what}: {_violate(rows)} (the column is added in this revision without "
                                       "a default), so it fails", t, c)  # fmt: skip
                continue
            nulls = _ask(ctx.facts.null_count, t, c)
            if nulls is None:
                yield self.finding(f"{what}; fails if any row holds NULL — could not check", t, c)
            elif nulls > 0:
                yield self.finding(f"{what}: {_violate(nulls)} (hold NULL), so it fails", t, c)


def _constraint_verdict(ctx: RuleContext, t: TableRef, cols: list[str] | None, count: Any,
                        nulls_pass: bool) -> tuple[str, int | None] | None:  # fmt: skip
    """None: no finding; else (kind, violating rows) with kind "count", "unknown" or "new"."""
    added = _added_columns(ctx.upgrade)
    new = [added[(t.key, c)] for c in cols or [] if (t.key, c) in added]
    if new:
        rows = _rows(ctx, t)
        if rows == 0:
            return None
        if nulls_pass and all(c.server_default is None for c in new) and not _writes_to(ctx, t):
            return None  # every existing row holds NULL in the new column, which the constraint accepts
        return "new", None
    if cols is None:
        return "unknown", None
    n = _ask(count)
    if n is None:
        return "unknown", None
    return ("count", n) if n > 0 else None


class AddUnique(Rule):
    """Adding a UNIQUE constraint or unique index fails when existing rows share a value.
    With live facts the rule counts the rows whose values occur more than once (NULLs never
    collide); without them it says it could not check.

    Bad::

        op.create_unique_constraint("uq_users_email", "users", ["email"])

    Safe: find and resolve the duplicates first
    (``SELECT email, count(*) FROM users GROUP BY email HAVING count(*) > 1``); on a large
    PostgreSQL table build the index with ``CREATE UNIQUE INDEX CONCURRENTLY`` and attach it
    with ``ADD CONSTRAINT ... UNIQUE USING INDEX``.
    """

    code = "SAF203"
    name = "fails.add-unique"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.CreateUniqueConstraintOp):
                label = f"UNIQUE constraint {op.constraint_name or '(unnamed)'}"
            elif isinstance(op, alembic_ops.CreateIndexOp) and op.unique:
                label = f"unique index {op.index_name or '(unnamed)'}"
            else:
                continue
            t = _ref(op)
            if t.key in fresh:
                continue
            cols = _names(op.columns)
            partial = any(k.endswith("_where") for k in _kw(op))
            if partial:
                cols = None
            verdict = _constraint_verdict(ctx, t, cols, functools.partial(ctx.facts.duplicate_count, t, cols or []),
                                          nulls_pass=True)  # fmt: skip
            if verdict is None:
                continue
            on = f"{t.key}({', '.join(cols)})" if cols else t.key
            kind, n = verdict
            if kind == "count":
                msg = f"adds {label} on {on}: {_violate(n or 0)} (duplicate values), so it fails"
            elif kind == "new":
                msg = f"adds {label} on {on}: depends on the values this revision writes — could not check"
            else:
                why = "a partial or expression index" if cols is None else "fails if existing rows share a value"
                msg = f"adds {label} on {on}: {why} — could not check"
            yield self.finding(msg, t, cols[0] if cols and len(cols) == 1 else None)


class AddCheck(Rule):
    """Adding a CHECK constraint fails when an existing row violates it.  With live facts the
    rule counts the violating rows (those for which the condition is false); without them it
    says it could not check.  On PostgreSQL, ``postgresql_not_valid=True`` skips existing rows
    and is not reported.

    Bad::

        op.create_check_constraint("ck_orders_total", "orders", "total >= 0")

    Safe: fix the rows first, or on PostgreSQL add it ``NOT VALID`` (new rows are checked at
    once), fix the old rows, then ``ALTER TABLE orders VALIDATE CONSTRAINT ck_orders_total``
    in a later revision.
    """

    code = "SAF204"
    name = "fails.add-check"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.CreateCheckConstraintOp):
                continue
            t = _ref(op)
            if t.key in fresh or (ctx.dialect == "postgresql" and _kw(op).get("postgresql_not_valid")):
                continue
            condition = _clause_sql(op.condition, ctx.dialect)
            label = f"CHECK {op.constraint_name or '(unnamed)'} ({condition or '?'}) on {t.key}"
            cols = None if condition is None else sorted(_condition_columns(condition, ctx.dialect) or [])
            if condition is None:
                yield self.finding(f"adds {label}: the condition could not be read — could not check", t)
                continue
            verdict = _constraint_verdict(ctx, t, cols, functools.partial(ctx.facts.check_violations, t, condition),
                                          nulls_pass=False)  # fmt: skip
            if verdict is None:
                continue
            kind, n = verdict
            if kind == "count":
                yield self.finding(f"adds {label}: {_violate(n or 0)}, so it fails", t)
            elif kind == "new":
                yield self.finding(f"adds {label}: depends on the values this revision writes — could not check", t)
            else:
                yield self.finding(f"adds {label}: fails if an existing row violates it — could not check", t)


def _condition_columns(condition: str, dialect: str) -> set[str] | None:
    try:
        return where_columns(condition, dialect)
    except Exception:
        return None


class AddForeignKey(Rule):
    """Adding a FOREIGN KEY fails when an existing row points at a missing parent.  With live
    facts the rule counts the orphan rows (all key columns set, no matching parent); without
    them it says it could not check.  On PostgreSQL, ``postgresql_not_valid=True`` skips
    existing rows and is not reported.

    Bad::

        op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"])

    Safe: delete or repair the orphans first
    (``SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id)``),
    or on PostgreSQL add it with ``postgresql_not_valid=True`` and validate it in a later
    revision.
    """

    code = "SAF205"
    name = "fails.add-foreign-key"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.CreateForeignKeyOp):
                continue
            src, ref = _fk_refs(op)
            if src.key in fresh or (ctx.dialect == "postgresql" and _kw(op).get("postgresql_not_valid")):
                continue
            cols, rcols = _names(op.local_cols), _names(op.remote_cols)
            label = (f"FOREIGN KEY {op.constraint_name or '(unnamed)'} {src.key}({', '.join(cols or ['?'])}) -> "
                     f"{ref.key}({', '.join(rcols or ['?'])})")  # fmt: skip
            if ref.key in fresh and _rows(ctx, src) != 0:
                yield self.finding(f"adds {label}: the parent table is created in this revision, so every existing "
                                   "row with a key set is an orphan — could not check", src)  # fmt: skip
                continue
            usable = cols is not None and rcols is not None and len(cols) == len(rcols) and bool(cols)
            ask = functools.partial(ctx.facts.orphan_count, src, cols or [], ref, rcols or [])
            verdict = _constraint_verdict(ctx, src, cols if usable else None, ask, nulls_pass=True)
            if verdict is None:
                continue
            kind, n = verdict
            col = cols[0] if cols and len(cols) == 1 else None
            if kind == "count":
                yield self.finding(f"adds {label}: {_violate(n or 0)} (no matching parent), so it fails",
                                   src, col)  # fmt: skip
            elif kind == "new":
                yield self.finding(f"adds {label}: depends on the values this revision writes — could not check",
                                   src, col)  # fmt: skip
            else:
                yield self.finding(f"adds {label}: fails if an existing row has no parent — could not check", src, col)


class BlockingIndex(Rule):
    """On PostgreSQL, ``CREATE INDEX`` without ``CONCURRENTLY`` (and adding a UNIQUE
    constraint, which builds one) blocks every write to the table until the index is built —
    minutes on a large table.  Reported as medium on tables of at least ``LARGE_TABLE_ROWS``
    (100,000) rows, low when the size could not be checked; tables created in the same
    revision are empty and not reported.

    Bad::

        op.create_index("ix_events_user_id", "events", ["user_id"])

    Safe: build it concurrently, outside the migration's transaction::

        with op.get_context().autocommit_block():
            op.create_index("ix_events_user_id", "events", ["user_id"],
                            postgresql_concurrently=True)
    """

    code = "SAF206"
    name = "lock.index-without-concurrently"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh = _created_tables(ctx.upgrade)
        targets: list[tuple[TableRef, str]] = []
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.CreateIndexOp) and not _kw(op).get("postgresql_concurrently"):
                targets.append((_ref(op), f"creates index {op.index_name or '(unnamed)'}"))
            elif isinstance(op, alembic_ops.CreateUniqueConstraintOp):
                targets.append((_ref(op), f"adds UNIQUE constraint {op.constraint_name or '(unnamed)'} (builds an "
                                          "index)"))  # fmt: skip
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "INDEX" \
                    and not tree.args.get("concurrently"):  # fmt: skip
                table = _sqlglot_table(tree.this.args.get("table")) if isinstance(tree.this, exp.Index) else None
                if table is not None:
                    targets.append((table, f"raw CREATE INDEX {tree.this.name or '(unnamed)'}"))
        for t, what in targets:
            if t.key in fresh:
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                yield self.finding(f"{what} on {t.key} without CONCURRENTLY: writes to the table block until it is "
                                   f"built; {_size_text(rows)}", t, severity=severity)  # fmt: skip


class ValidatingConstraint(Rule):
    """On PostgreSQL, adding a FOREIGN KEY or CHECK without ``NOT VALID``, or setting NOT
    NULL, checks every existing row while holding a lock that blocks writes (a foreign key
    also locks the referenced table).  Reported as medium on tables of at least
    ``LARGE_TABLE_ROWS`` (100,000) rows, low when the size could not be checked.

    Bad::

        op.create_foreign_key("fk_events_user", "events", "users", ["user_id"], ["id"])

    Safe: add it ``NOT VALID`` (only new rows are checked, the lock is brief) and validate in a
    later revision, which takes a lock that lets writes continue::

        op.create_foreign_key("fk_events_user", "events", "users", ["user_id"], ["id"],
                              postgresql_not_valid=True)
        # next revision:
        op.execute("ALTER TABLE events VALIDATE CONSTRAINT fk_events_user")
    """

    code = "SAF207"
    name = "lock.constraint-validation"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, (alembic_ops.CreateForeignKeyOp, alembic_ops.CreateCheckConstraintOp)):
                if _kw(op).get("postgresql_not_valid"):
                    continue
                t = _constraint_table(op)
                kind = "FOREIGN KEY" if isinstance(op, alembic_ops.CreateForeignKeyOp) else "CHECK"
                what = f"adds {kind} {op.constraint_name or '(unnamed)'} without NOT VALID"
            elif _sets_not_null(op):
                t = _ref(op)
                what = f"sets {t.key}.{getattr(op, 'column_name', '?')} NOT NULL"
            else:
                continue
            if t.key in fresh:
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                yield self.finding(f"{what}: every row of {t.key} is checked while writes are blocked; "
                                   f"{_size_text(rows)}", t, severity=severity)  # fmt: skip


class VolatileDefault(Rule):
    """On PostgreSQL 11+ adding a column with a constant default is instant, but a volatile
    default — ``random()``, ``gen_random_uuid()``, ``uuid_generate_v4()``,
    ``clock_timestamp()``, ``nextval()`` (serial and identity columns) — must be computed for
    every row, so the table is rewritten under an ACCESS EXCLUSIVE lock.  (``now()`` and
    ``CURRENT_TIMESTAMP`` are stable, not volatile: one value for all rows, no rewrite.  Before
    PostgreSQL 11 every default rewrote.)  Medium on tables of at least ``LARGE_TABLE_ROWS``
    (100,000) rows, low when the size could not be checked.

    Bad::

        op.add_column("events", sa.Column("uid", postgresql.UUID(),
                      server_default=sa.text("gen_random_uuid()")))

    Safe: add the column without a default (or with a constant one), set the volatile default
    for new rows with ``alter_column(server_default=...)``, and backfill existing rows in
    batches outside the migration.
    """

    code = "SAF208"
    name = "rewrite.volatile-default"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            column = getattr(op, "column", None)
            if not isinstance(op, alembic_ops.AddColumnOp) or not isinstance(column, sa.Column):
                continue
            t = _ref(op)
            if t.key in fresh:
                continue
            call = _volatile_call(column, ctx.dialect)
            if call is not None:
                why = f"its default calls {call}(), which is volatile"
            elif _fills_itself(column, ctx.dialect) and column.computed is None:
                why = "identity and serial columns draw a sequence value for every row"
            else:
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                yield self.finding(f"adds column {t.key}.{column.name}: {why}, so the table is rewritten under an "
                                   f"exclusive lock; {_size_text(rows)}", t, column.name,
                                   severity=severity)  # fmt: skip


class TypeChangeRewrite(Rule):
    """On PostgreSQL most column type changes rewrite the whole table and its indexes under an
    ACCESS EXCLUSIVE lock — ``Integer`` to ``BigInteger`` included.  Only a few are free:
    lengthening a ``VARCHAR``, ``VARCHAR`` to ``TEXT``, raising a ``NUMERIC`` precision at the
    same scale.  Medium on tables of at least ``LARGE_TABLE_ROWS`` (100,000) rows, low when
    the size could not be checked.

    Bad::

        op.alter_column("events", "id", type_=sa.BigInteger(), existing_type=sa.Integer())

    Safe: add a new column of the new type, fill it in batches (and keep it filled with a
    trigger), then switch names in a short revision; or plan a maintenance window.
    """

    code = "SAF209"
    name = "rewrite.column-type"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.AlterColumnOp) or op.modify_type is None:
                continue
            t, c = _ref(op), str(op.column_name)
            if t.key in fresh or (t.key, c) in added:
                continue
            old, new = _type(op.existing_type), _type(op.modify_type)
            if not pg_rewrites(old, new) and not _kw(op).get("postgresql_using"):
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                verb = "may rewrite the table (the old type is unknown)" if old is None else "rewrites the table"
                yield self.finding(f"changing {t.key}.{c} to {_type_str(new, ctx.dialect)} {verb} and its indexes "
                                   f"under an exclusive lock; {_size_text(rows)}", t, c, severity=severity)  # fmt: skip
