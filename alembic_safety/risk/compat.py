"""SAF3xx: breaks the code still running, or cannot be undone."""

from __future__ import annotations

from collections.abc import Iterable

from alembic.operations import ops as alembic_ops
from sqlglot import exp

from .base import Finding, Rule, RuleContext
from .helpers import (
    _added_columns,
    _alter_actions,
    _constraint_table,
    _created_tables,
    _enum_additions,
    _ref,
    _sqlglot_table,
    _statements,
)
from .undo import _downgrade_raised, _downgrade_sees_connection, _undo_needs, undo_gaps


class RenameTable(Rule):
    """Renaming a table breaks the release that is still running: every query it sends names
    the old table and fails until the last old instance is replaced.

    Severity medium: no data is lost and the downgrade renames it back, but during a rolling
    deploy the failures are an outage as real as a lock.  (Low would fit a deploy that stops
    the application first.)

    Bad::

        op.rename_table("customer", "customers")

    Safe: expand and contract — create the new table (or a view with the new name over the
    old one), ship code that uses the new name, and drop the old name in a later revision.
    """

    code = "SAF301"
    name = "compat.rename-table"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.RenameTableOp) and _ref(op).key not in fresh:
                yield self.finding(f"renames table {_ref(op).key} to {op.new_table_name}: the running release "
                                   "still queries the old name and fails until it is replaced", _ref(op))  # fmt: skip
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.AlterRename) and t.key not in fresh:
                    new = _sqlglot_table(action.this)
                    yield self.finding(f"raw SQL renames table {t.key} to {new.key if new else '?'}: the running "
                                       "release still queries the old name", t)  # fmt: skip


class RenameColumn(Rule):
    """Renaming a column breaks the release that is still running: its queries name the old
    column and fail until the last old instance is replaced.

    Severity medium, for the same reason as SAF301: nothing is lost, the downgrade renames it
    back, but a rolling deploy sees errors.

    Bad::

        op.alter_column("users", "name", new_column_name="full_name")

    Safe: expand and contract — add the new column, write both (or sync with a trigger),
    backfill, switch reads, and drop the old column in a later revision.
    """

    code = "SAF302"
    name = "compat.rename-column"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.AlterColumnOp) and op.modify_name and op.modify_name != op.column_name:
                t, c = _ref(op), str(op.column_name)
                if t.key not in fresh and (t.key, c) not in added:
                    yield self.finding(f"renames column {t.key}.{c} to {op.modify_name}: the running release still "
                                       "uses the old name and fails until it is replaced", t, c)  # fmt: skip
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.RenameColumn) and t.key not in fresh:
                    old, new = getattr(action.this, "name", "?"), getattr(action.args.get("to"), "name", "?")
                    yield self.finding(f"raw SQL renames column {t.key}.{old} to {new}: the running release still "
                                       "uses the old name", t, old)  # fmt: skip


class EnumAddValue(Rule):
    """``ALTER TYPE ... ADD VALUE`` cannot be undone: PostgreSQL cannot remove a value from an
    enum, so the downgrade has to recreate the type and convert every column that uses it (and
    fails while any row holds the new value).  Before PostgreSQL 12 it cannot run inside a
    transaction block at all; since 12 it can, but the new value is unusable until that
    transaction commits.

    Bad::

        op.execute("ALTER TYPE order_status ADD VALUE 'refunded'")

    Safe: accept it as one-way and say so (``# safety: allow SAF303 one-way``), run it in
    ``op.get_context().autocommit_block()``, and use the value only in a later revision; or use
    a lookup table or a CHECK constraint instead of an enum when values come and go.
    """

    code = "SAF303"
    name = "irreversible.enum-add-value"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        for type_name in _enum_additions(ctx):
            yield self.finding(f"ALTER TYPE {type_name} ADD VALUE cannot be undone: PostgreSQL cannot remove an "
                               "enum value")  # fmt: skip


class DowngradeMissing(Rule):
    """The revision has no ``downgrade()``: ``alembic downgrade`` cannot step back over it, and
    a rollback has only the snapshot to go on.

    Bad::

        def upgrade():
            op.add_column("users", sa.Column("plan", sa.String(20)))
        # no downgrade()

    Safe: write the downgrade, undoing each upgrade operation in reverse order::

        def downgrade():
            op.drop_column("users", "plan")
    """

    code = "SAF304"
    name = "downgrade.missing"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.downgrade is None and (ctx.upgrade.ops or ctx.upgrade.opaque):
            yield self.finding("the revision has no downgrade(): it cannot be stepped back over")


class DowngradeEmpty(Rule):
    """The ``downgrade()`` does nothing (``pass``) although the upgrade changes the schema:
    ``alembic downgrade`` "succeeds" and leaves every change in place, so the revision history
    and the database disagree.

    Bad::

        def downgrade():
            pass

    Safe: undo each upgrade operation in reverse order, or raise with an explanation when the
    change really is one-way.
    """

    code = "SAF305"
    name = "downgrade.empty"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        down = ctx.downgrade
        if down is None or down.ops or down.opaque:
            return
        needs = [what for _, op in ctx.ops() if (what := _undo_needs(op, ctx.dialect)) is not None]
        if needs:
            yield self.finding(f"downgrade() does nothing but the upgrade changes the schema ({_listed(needs)})")


class DowngradeRaises(Rule):
    """The ``downgrade()`` raises (typically ``NotImplementedError``): ``alembic downgrade``
    stops at this revision.  Deliberate markers for one-way changes are legitimate — say so
    with ``# safety: allow SAF306 <why>`` — but the rollback then relies on the snapshot.

    Bad::

        def downgrade():
            raise NotImplementedError()

    Safe: undo what can be undone and keep only the truly irreversible part as an explicit,
    explained marker; alembic-safety's snapshot restores dropped tables and columns.
    """

    code = "SAF306"
    name = "downgrade.raises"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        reason = _downgrade_raised(ctx.downgrade)
        if reason is not None:
            yield self.finding(f"downgrade() cannot run: {reason}")


class DowngradeIncomplete(Rule):
    """The ``downgrade()`` does not undo everything the upgrade did (compared by table,
    column, index and constraint names): a table the upgrade creates is not dropped, an added
    column or index stays, a rename is not reversed.  Running the upgrade again then fails
    ("already exists"), and the schema after a downgrade is not the one before the upgrade.

    Bad::

        def upgrade():
            op.create_table("plans", sa.Column("id", sa.Integer, primary_key=True))
            op.create_index("ix_users_plan", "users", ["plan_id"])

        def downgrade():
            op.drop_table("plans")  # the index stays

    Safe: undo every operation, in reverse order::

        def downgrade():
            op.drop_index("ix_users_plan", table_name="users")
            op.drop_table("plans")
    """

    code = "SAF307"
    name = "downgrade.incomplete"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        down = ctx.downgrade
        if down is None or _downgrade_raised(down) is not None or (not down.ops and not down.opaque):
            return  # SAF304, SAF306, SAF305
        gaps = undo_gaps(ctx)
        if not gaps:
            return
        severity = None
        tail = ""
        if _downgrade_sees_connection(down):
            severity, tail = "low", " (it also uses the connection, which may undo them out of sight)"
        for op, what in gaps:
            t = _constraint_table(op)
            yield self.finding(f"downgrade() does not undo: {what}{tail}", t if t.name != "?" else None,
                               severity=severity)  # fmt: skip


def _listed(items: list[str], limit: int = 4) -> str:
    head = "; ".join(items[:limit])
    return head + (f"; and {len(items) - limit} more" if len(items) > limit else "")
