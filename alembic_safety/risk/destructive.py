"""SAF1xx: the upgrade destroys data.  Each rule's docstring: what is wrong, the bad pattern,
the safe alternative."""

from __future__ import annotations

from collections.abc import Iterable

from alembic.operations import ops as alembic_ops
from sqlglot import exp

from ..sqlinfo import COLUMNS, OPAQUE, ROWS, WHOLE
from .base import Finding, Rule, RuleContext
from .helpers import (
    _added_columns,
    _alter_actions,
    _clause_sql,
    _created_tables,
    _has_where,
    _kw,
    _ref,
    _statements,
    _type,
    _type_str,
)
from .types import type_change


class DropTable(Rule):
    """Dropping a table destroys every row in it.

    Bad::

        op.drop_table("invoices")

    Safe: stop writing to the table in one release, drop it in a later one, and keep the
    pre-revision snapshot (alembic-safety takes it, or moves the table aside, automatically).
    """

    code = "SAF101"
    name = "destructive.drop-table"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.DropTableOp) and _ref(op).key not in fresh:
                yield self.finding(f"drops table {_ref(op).key} and every row in it", _ref(op))
        for _, effect in ctx.sql():
            if effect.statement == "DROP TABLE":
                for t in effect.tables:
                    if t.key not in fresh:
                        yield self.finding(f"DROP TABLE {t.key} in raw SQL destroys every row", t)


class DropColumn(Rule):
    """Dropping a column destroys every value in it, and the release still running fails on
    its next query that names the column.

    Bad::

        op.drop_column("users", "legacy_email")

    Safe: first ship code that no longer reads or writes the column (SQLAlchemy:
    ``deferred()``/remove it from the model), drop it in a later revision, and keep the
    pre-revision snapshot of the primary key and the column so a rollback can put the values
    back.
    """

    code = "SAF102"
    name = "destructive.drop-column"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.DropColumnOp):
                t, c = _ref(op), str(op.column_name)
                if t.key not in fresh and (t.key, c) not in added:
                    yield self.finding(f"drops column {t.key}.{c} and every value in it", t, c)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "ALTER TABLE" or effect.kind != COLUMNS:
                continue
            if tree is None:
                for t in effect.tables:
                    yield self.finding(f"raw ALTER TABLE {t.key} drops or retypes {', '.join(effect.columns)}", t)
                continue
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
                    for col in action.args.get("tables") or [action.this]:
                        name = getattr(col, "name", None) or "?"
                        yield self.finding(f"raw SQL drops column {t.key}.{name} and every value in it", t, name)


class ColumnTypeChange(Rule):
    """Changing a column's type can lose values: narrowing (``String(100)`` to ``String(20)``,
    ``Integer`` to ``SmallInteger``), lossy casts (``Numeric`` to ``Integer`` rounds, text to a
    number drops what does not parse) and any ``postgresql_using=`` expression rewrite every
    value.  Without ``existing_type=`` the old type is unknown, so nothing shows the new type
    holds every value.  Widening with a known old type (``String(20)`` to ``String(100)``,
    ``Integer`` to ``BigInteger``) is not reported here.

    Bad::

        op.alter_column("orders", "total", type_=sa.Integer(),
                        postgresql_using="total::integer")

    Safe: say what the column was (``existing_type=sa.Numeric(12, 2)``), check the data first
    (``SELECT count(*) FROM orders WHERE total <> round(total)``), or add a new column, backfill
    and verify it, and drop the old one in a later release.
    """

    code = "SAF103"
    name = "destructive.column-type-change"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.AlterColumnOp) or op.modify_type is None:
                continue
            t, c = _ref(op), str(op.column_name)
            if t.key in fresh or (t.key, c) in added:
                continue
            old, new = _type(op.existing_type), _type(op.modify_type)
            safe, why = type_change(old, new)
            using = _clause_sql(_kw(op).get("postgresql_using"), ctx.dialect)
            if safe and not using:
                continue
            change = f"changes {t.key}.{c} from {_type_str(old, ctx.dialect)} to {_type_str(new, ctx.dialect)}"
            parts = [why] if why else []
            if using:
                parts.append(f"USING {using} rewrites every value")
            yield self.finding(f"{change}: {'; '.join(parts)}", t, c)
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None:
                    using = action.args.get("using")
                    extra = f"; USING {using.sql()} rewrites every value" if isinstance(using, exp.Expr) else ""
                    new = action.args["dtype"].sql()
                    yield self.finding(f"raw SQL changes {t.key}.{action.name} to {new}; the old type is unknown, "
                                       f"so values may not fit{extra}", t, action.name)  # fmt: skip
                elif isinstance(action, exp.ModifyColumn):
                    name = getattr(action.this, "name", None) or "?"
                    yield self.finding(f"raw SQL MODIFY redefines {t.key}.{name}; the old type is unknown, so values "
                                       "may not fit", t, name)  # fmt: skip


class Truncate(Rule):
    """``TRUNCATE`` destroys every row of the table (and, with ``CASCADE``, of every table
    that references it).

    Bad::

        op.execute("TRUNCATE audit_log")

    Safe: archive or delete in a job outside the migration, or, when the rows really must go
    with the schema change, keep the pre-revision snapshot and say so with
    ``# safety: allow SAF104 <why>``.
    """

    code = "SAF104"
    name = "destructive.truncate"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, effect in ctx.sql():
            if effect.statement == "TRUNCATE":
                for t in effect.tables:
                    if t.key not in fresh:
                        yield self.finding(f"TRUNCATE {t.key} destroys every row", t)


class DeleteAllRows(Rule):
    """``DELETE`` without a ``WHERE`` destroys every row of the table.

    Bad::

        op.execute("DELETE FROM sessions")

    Safe: put the intended predicate in the statement (``DELETE FROM sessions WHERE
    expires_at < now()``) — the snapshot then holds only those rows — or move bulk cleanup out
    of the migration into a job.
    """

    code = "SAF105"
    name = "destructive.delete-all-rows"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "DELETE" or effect.kind != WHOLE or _has_where(tree):
                continue
            for t in effect.tables:
                if t.key not in fresh:
                    yield self.finding(f"DELETE without a WHERE destroys every row of {t.key}", t)


class UpdateAllRows(Rule):
    """``UPDATE`` without a ``WHERE`` overwrites a column in every row; the old values are
    gone.  Backfilling a column the same revision adds is not reported (nothing existed).

    Bad::

        op.execute("UPDATE users SET email = lower(email)")

    Safe: write the new values to a new column, verify, then switch; or keep the snapshot of
    the primary key and the column (taken automatically) and restrict the statement with a
    ``WHERE`` that selects only the rows meant to change.
    """

    code = "SAF106"
    name = "destructive.update-all-rows"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "UPDATE" or effect.kind != COLUMNS or effect.where or _has_where(tree):
                continue
            for t in effect.tables:
                if t.key in fresh or all((t.key, c) in added for c in effect.columns):
                    continue
                cols = ", ".join(effect.columns)
                yield self.finding(f"UPDATE without a WHERE overwrites {cols} in every row of {t.key}", t,
                                   effect.columns[0] if len(effect.columns) == 1 else None)  # fmt: skip


class DeleteWhere(Rule):
    """``DELETE ... WHERE`` destroys the rows the predicate selects.

    Severity medium, not high: the loss is bounded by the ``WHERE``, the snapshot keeps
    exactly the rows it selects, and a bounded data fix is a legitimate part of a migration.
    A wrong predicate still loses data, so review it; high is kept for statements that destroy
    a whole table or column.

    Bad::

        op.execute("DELETE FROM orders WHERE status = 'test'")  # how many rows is that in production?

    Safe: count first (``SELECT count(*) FROM orders WHERE status = 'test'``), keep the
    predicate simple so the snapshot can select the same rows, and record the reason with
    ``# safety: allow SAF107 <why>``.
    """

    code = "SAF107"
    name = "destructive.delete-where"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "DELETE" or not (effect.kind == ROWS or (effect.kind == WHOLE and _has_where(tree))):
                continue
            for t in effect.tables:
                if t.key in fresh:
                    continue
                if effect.where:
                    yield self.finding(f"DELETE destroys the rows of {t.key} WHERE {effect.where}", t)
                else:
                    yield self.finding(f"DELETE destroys the rows of {t.key} its WHERE selects (the WHERE joins "
                                       "other tables, so the snapshot takes the whole table)", t)  # fmt: skip


class UpdateWhere(Rule):
    """``UPDATE ... WHERE`` (and upserts: ``INSERT ... ON CONFLICT DO UPDATE``, ``MERGE``)
    overwrites values in the rows it selects.

    Severity medium, not high, for the same reason as SAF107: the loss is bounded by the
    predicate and the snapshot keeps the old values of exactly those rows.

    Bad::

        op.execute("UPDATE prices SET amount = amount * 100 WHERE currency = 'JPY'")

    Safe: write to a new column and switch when verified, or keep the statement idempotent and
    its predicate simple (the snapshot selects the same rows) and record the reason with
    ``# safety: allow SAF108 <why>``.
    """

    code = "SAF108"
    name = "destructive.update-where"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement in ("INSERT", "MERGE") and effect.kind == WHOLE:
                for t in effect.tables:
                    if t.key not in fresh:
                        what = effect.reason or effect.statement
                        yield self.finding(f"{what} overwrites existing rows of {t.key}", t)
                continue
            if effect.statement != "UPDATE" or effect.kind != COLUMNS or not (effect.where or _has_where(tree)):
                continue
            for t in effect.tables:
                if t.key in fresh or all((t.key, c) in added for c in effect.columns):
                    continue
                where = f" WHERE {effect.where}" if effect.where else " its WHERE selects"
                yield self.finding(f"UPDATE overwrites {', '.join(effect.columns)} in the rows of {t.key}{where}", t,
                                   effect.columns[0] if len(effect.columns) == 1 else None)  # fmt: skip


class OpaqueSql(Rule):
    """SQL that cannot be analysed — unparsable text, ``DO`` blocks, procedural code, commands
    the parser does not know, ``DROP ... CASCADE`` — may change or delete any data.  Unknown SQL
    never means "nothing at risk": the snapshot takes every table it names, or all of them.

    Bad::

        op.execute("DO $$ BEGIN EXECUTE 'DELETE FROM ' || tbl; END $$")

    Safe: plain statements alembic-safety can read (``DELETE FROM t WHERE ...``), or Alembic
    operations; when the SQL must stay, record what it does with
    ``# safety: allow SAF109 <what it touches>``.
    """

    code = "SAF109"
    name = "destructive.opaque-sql"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        for _, effect in ctx.sql():
            if effect.kind == OPAQUE:
                where = f" (touches {', '.join(t.key for t in effect.tables)})" if effect.tables else ""
                table = effect.tables[0] if effect.tables else None
                yield self.finding(f"{effect.statement} in op.execute cannot be analysed: {effect.reason}{where}; it "
                                   "may change or delete any data", table)  # fmt: skip


class OpaqueStep(Rule):
    """A revision that reads or writes through the connection (``op.get_bind()``,
    ``context.get_bind()``), or whose function raised while it was recorded, cannot be seen
    into: what it does to data is unknown, and nothing after that point was recorded.  Reading
    only ``op.get_bind().dialect`` is fine and not reported.

    Bad::

        conn = op.get_bind()
        for row in conn.execute(sa.text("SELECT id, payload FROM events")):
            conn.execute(sa.text("UPDATE events SET payload = :p WHERE id = :i"), ...)

    Safe: express the change as ``op.execute()`` statements or Alembic operations (set-based
    SQL is faster too); keep the connection for reading its dialect only, or record what the
    code touches with ``# safety: allow SAF110 <what it touches>``.
    """

    code = "SAF110"
    name = "destructive.opaque-code"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        reasons = list(dict.fromkeys(o.reason for o in ctx.upgrade.opaque))
        if reasons:
            tables = [t for o in ctx.upgrade.opaque for t in o.tables]
            yield self.finding(f"the upgrade cannot be seen into: {'; '.join(reasons)}; it may change or delete any "
                               "data", tables[0] if tables else None)  # fmt: skip
