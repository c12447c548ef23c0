"""Risk rules: every rule fires on its bad pattern and stays quiet on the safe one; suppressions,
reversibility, odd input; live facts on PostgreSQL (and SQLite) count the violating rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op
from alembic.operations import ops as alembic_ops
from sqlalchemy.dialects import mysql, postgresql, sqlite

from alembic_safety import risk
from alembic_safety.record import RecordedStep, record
from alembic_safety.risk import (
    LARGE_TABLE_ROWS,
    SEVERITIES,
    Finding,
    LiveFacts,
    NoFacts,
    Rule,
    RuleContext,
    all_rules,
    evaluate,
    reversibility,
    suppressions,
    type_change,
    worst,
)
from alembic_safety.sqlinfo import TableRef

DIALECTS = {"postgresql": postgresql.dialect(), "mysql": mysql.dialect(), "sqlite": sqlite.dialect()}
BIG = LARGE_TABLE_ROWS * 10


class FakeFacts:
    """The same answer for every table; None means "cannot know"."""

    def __init__(self, rows: int | None = None, nulls: int | None = None, duplicates: int | None = None,
                 violations: int | None = None, orphans: int | None = None) -> None:  # fmt: skip
        self.answers = {"rows": rows, "nulls": nulls, "duplicates": duplicates, "violations": violations,
                        "orphans": orphans}  # fmt: skip
        self.asked: list[tuple[Any, ...]] = []

    def rows(self, table: TableRef) -> int | None:
        self.asked.append(("rows", table))
        return self.answers["rows"]

    def null_count(self, table: TableRef, column: str) -> int | None:
        self.asked.append(("nulls", table, column))
        return self.answers["nulls"]

    def duplicate_count(self, table: TableRef, columns: list[str]) -> int | None:
        self.asked.append(("duplicates", table, tuple(columns)))
        return self.answers["duplicates"]

    def check_violations(self, table: TableRef, condition: str) -> int | None:
        self.asked.append(("violations", table, condition))
        return self.answers["violations"]

    def orphan_count(self, table: TableRef, columns: list[str], referred: TableRef,
                     referred_columns: list[str]) -> int | None:  # fmt: skip
        self.asked.append(("orphans", table, tuple(columns), referred, tuple(referred_columns)))
        return self.answers["orphans"]


MISSING: Any = object()  # "the revision has no downgrade()"


def _nothing() -> None:
    pass


def make_ctx(upgrade: Callable[[], None], downgrade: Any = None, dialect: str = "postgresql",
             facts: Any = None) -> RuleContext:  # fmt: skip
    """Record ``upgrade`` (and ``downgrade``; MISSING: none at all; None: ``pass``)."""
    d = DIALECTS[dialect]
    down = None if downgrade is MISSING else record(downgrade or _nothing, d)
    return RuleContext("rev1", record(upgrade, d), down, "", dialect, facts if facts is not None else NoFacts())


def findings(ctx: RuleContext, code: str | None = None) -> list[Finding]:
    found = evaluate(ctx)
    assert not [f for f in found if "could not analyse" in f.message], found
    return [f for f in found if code is None or f.code == code]


def codes(ctx: RuleContext) -> set[str]:
    return {f.code for f in findings(ctx)}


# ---------------------------------------------------------------------------------------------
# Upgrade functions: the bad pattern and a safe counterpart for every rule.
# ---------------------------------------------------------------------------------------------


def drop_table() -> None:
    op.drop_table("invoices")


def create_then_drop_table() -> None:
    op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
    op.drop_table("scratch")


def drop_column() -> None:
    op.drop_column("users", "legacy")


def add_then_drop_column() -> None:
    op.add_column("users", sa.Column("tmp", sa.Integer))
    op.drop_column("users", "tmp")


def narrow_string() -> None:
    op.alter_column("users", "name", type_=sa.String(20), existing_type=sa.String(100))


def widen_string() -> None:
    op.alter_column("users", "name", type_=sa.String(200), existing_type=sa.String(100))


def truncate() -> None:
    op.execute("TRUNCATE audit_log")


def truncate_new_table() -> None:
    op.create_table("staging", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("TRUNCATE staging")


def delete_all() -> None:
    op.execute("DELETE FROM sessions")


def delete_where() -> None:
    op.execute("DELETE FROM sessions WHERE expires_at < '2020-01-01'")


def update_all() -> None:
    op.execute("UPDATE users SET email = lower(email)")


def update_where() -> None:
    op.execute("UPDATE users SET email = lower(email) WHERE id < 100")


def do_block() -> None:
    op.execute("DO $$ BEGIN EXECUTE 'DELETE FROM ' || 'x'; END $$")


def create_index_sql() -> None:
    op.execute("CREATE INDEX ix_users_email ON users (email)")


def uses_connection() -> None:
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE users SET flag = true"))


def add_index() -> None:
    op.create_index("ix_users_email", "users", ["email"])


def add_not_null_column() -> None:
    op.add_column("users", sa.Column("tenant_id", sa.Integer, nullable=False))


def add_not_null_column_with_default() -> None:
    op.add_column("users", sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"))


def set_not_null() -> None:
    op.alter_column("users", "email", nullable=False, existing_type=sa.String(255))


def set_nullable() -> None:
    op.alter_column("users", "email", nullable=True, existing_type=sa.String(255))


def add_unique() -> None:
    op.create_unique_constraint("uq_users_email", "users", ["email"])


def add_check() -> None:
    op.create_check_constraint("ck_orders_total", "orders", "total >= 0")


def add_check_not_valid() -> None:
    op.create_check_constraint("ck_orders_total", "orders", "total >= 0", postgresql_not_valid=True)


def add_fk() -> None:
    op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"])


def add_fk_not_valid() -> None:
    op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"], postgresql_not_valid=True)


def add_index_concurrently() -> None:
    op.create_index("ix_users_email", "users", ["email"], postgresql_concurrently=True)


def volatile_default() -> None:
    op.add_column("events", sa.Column("uid", postgresql.UUID(), server_default=sa.text("gen_random_uuid()")))


def stable_default() -> None:
    op.add_column("events", sa.Column("seen", sa.DateTime(), server_default=sa.func.now()))


def int_to_bigint() -> None:
    op.alter_column("events", "id", type_=sa.BigInteger(), existing_type=sa.Integer())


def rename_table() -> None:
    op.rename_table("customer", "customers")


def rename_column() -> None:
    op.alter_column("users", "name", new_column_name="full_name")


def enum_add_value() -> None:
    op.execute("ALTER TYPE order_status ADD VALUE 'refunded'")


def create_enum() -> None:
    op.execute("CREATE TYPE order_status AS ENUM ('new', 'paid')")


def add_column() -> None:
    op.add_column("users", sa.Column("plan", sa.String(20)))


def undo_add_column() -> None:
    op.drop_column("users", "plan")


def raises() -> None:
    raise NotImplementedError("one-way")


def create_table_and_index() -> None:
    op.create_table("plans", sa.Column("id", sa.Integer, primary_key=True))
    op.create_index("ix_users_plan", "users", ["plan_id"])


def drop_only_table() -> None:
    op.drop_table("plans")


def drop_index_and_table() -> None:
    op.drop_index("ix_users_plan", table_name="users")
    op.drop_table("plans")


def drop_unnamed_constraint() -> None:
    op.drop_constraint(None, "orders", type_="foreignkey")  # type: ignore[arg-type]


def drop_named_constraint() -> None:
    op.drop_constraint("fk_orders_user", "orders", type_="foreignkey")


def index_without_columns() -> None:
    op.create_index("ix_orders", "orders", [])


def alter_nothing() -> None:
    op.alter_column("users", "email", existing_type=sa.String(255))


def mysql_alter_without_type() -> None:
    op.alter_column("users", "email", nullable=False)


def sqlite_fk_outside_batch() -> None:
    op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"])


def sqlite_fk_in_batch() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.create_foreign_key("fk_orders_user", "users", ["user_id"], ["id"])


# (code, bad, safe, dialect, facts for both, downgrade for the bad case, downgrade for the safe one)
CASES: list[tuple[str, Callable[[], None], Callable[[], None], str, Any, Any, Any]] = [
    ("SAF101", drop_table, create_then_drop_table, "postgresql", None, None, None),
    ("SAF102", drop_column, add_then_drop_column, "postgresql", None, None, None),
    ("SAF103", narrow_string, widen_string, "postgresql", None, None, None),
    ("SAF104", truncate, truncate_new_table, "postgresql", None, None, None),
    ("SAF105", delete_all, delete_where, "postgresql", None, None, None),
    ("SAF106", update_all, update_where, "postgresql", None, None, None),
    ("SAF107", delete_where, delete_all, "postgresql", None, None, None),
    ("SAF108", update_where, update_all, "postgresql", None, None, None),
    ("SAF109", do_block, create_index_sql, "postgresql", None, None, None),
    ("SAF110", uses_connection, add_index, "postgresql", None, None, None),
    ("SAF201", add_not_null_column, add_not_null_column_with_default, "postgresql", FakeFacts(rows=5), None, None),
    ("SAF202", set_not_null, set_nullable, "postgresql", FakeFacts(nulls=3), None, None),
    ("SAF203", add_unique, add_check, "postgresql", FakeFacts(duplicates=4), None, None),
    ("SAF204", add_check, add_check_not_valid, "postgresql", FakeFacts(violations=2), None, None),
    ("SAF205", add_fk, add_fk_not_valid, "postgresql", FakeFacts(orphans=7), None, None),
    ("SAF206", add_index, add_index_concurrently, "postgresql", FakeFacts(rows=BIG), None, None),
    ("SAF207", add_fk, add_fk_not_valid, "postgresql", FakeFacts(rows=BIG), None, None),
    ("SAF208", volatile_default, stable_default, "postgresql", FakeFacts(rows=BIG), None, None),
    ("SAF209", int_to_bigint, widen_string, "postgresql", FakeFacts(rows=BIG), None, None),
    ("SAF301", rename_table, add_column, "postgresql", None, None, None),
    ("SAF302", rename_column, set_nullable, "postgresql", None, None, None),
    ("SAF303", enum_add_value, create_enum, "postgresql", None, None, None),
    ("SAF304", add_column, add_column, "postgresql", None, MISSING, undo_add_column),
    ("SAF305", add_column, add_column, "postgresql", None, None, undo_add_column),
    ("SAF306", add_column, add_column, "postgresql", None, raises, undo_add_column),
    ("SAF307", create_table_and_index, create_table_and_index, "postgresql", None, drop_only_table,
     drop_index_and_table),
    ("SAF401", drop_unnamed_constraint, drop_named_constraint, "postgresql", None, None, None),
    ("SAF402", index_without_columns, add_index, "postgresql", None, None, None),
    ("SAF403", alter_nothing, set_not_null, "postgresql", None, None, None),
    ("SAF404", mysql_alter_without_type, set_not_null, "mysql", None, None, None),
    ("SAF405", sqlite_fk_outside_batch, sqlite_fk_in_batch, "sqlite", None, None, None),
]  # fmt: skip


def test_every_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} == {r.code for r in all_rules()}


@pytest.mark.parametrize(("code", "bad", "safe", "dialect", "facts", "bad_down", "safe_down"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_rule_fires_on_the_bad_pattern_only(
    code: str,
    bad: Callable[[], None],
    safe: Callable[[], None],
    dialect: str,
    facts: Any,
    bad_down: Any,
    safe_down: Any,
) -> None:
    fired = findings(make_ctx(bad, bad_down, dialect, facts), code)
    assert fired, f"{code} did not fire on {bad.__name__}"
    rule = risk.Rule.registry[code]
    assert all(f.name == rule.name and f.severity in SEVERITIES and f.message for f in fired)
    assert not findings(make_ctx(safe, safe_down, dialect, facts), code), f"{code} fired on {safe.__name__}"


# ---------------------------------------------------------------------------------------------
# The registry and the docs generated from it
# ---------------------------------------------------------------------------------------------


def test_registered_rules_are_documented() -> None:
    rules = all_rules()
    assert len(rules) >= 25
    assert [r.code for r in rules] == sorted(r.code for r in rules)
    names = [r.name for r in rules]
    assert len(set(names)) == len(names)
    for r in rules:
        assert re.fullmatch(r"SAF[1-4]\d\d", r.code), r.code
        assert re.fullmatch(r"[a-z]+\.[a-z0-9-]+", r.name), r.name
        assert r.severity in SEVERITIES
        doc = r.doc()
        assert "Bad" in doc and "Safe" in doc, r.code
        assert doc.splitlines()[0].strip(), r.code
        if "LARGE_TABLE_ROWS" in doc:
            assert f"{LARGE_TABLE_ROWS:,}" in doc, r.code


def test_duplicate_codes_and_bad_severities_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        type("Again", (Rule,), {"code": "SAF101", "check": lambda self, ctx: []})
    with pytest.raises(ValueError, match="severity"):
        type("Odd", (Rule,), {"code": "SAF498", "severity": "critical", "check": lambda self, ctx: []})
    assert "SAF498" not in Rule.registry


# ---------------------------------------------------------------------------------------------
# Messages and severities of individual rules
# ---------------------------------------------------------------------------------------------


def one(ctx: RuleContext, code: str) -> Finding:
    [f] = findings(ctx, code)
    return f


@pytest.mark.parametrize(
    ("old", "new", "safe"),
    [
        (sa.String(100), sa.String(20), False),
        (sa.String(20), sa.String(100), True),
        (sa.String(20), sa.Text(), True),
        (sa.Text(), sa.String(50), False),
        (sa.Integer(), sa.SmallInteger(), False),
        (sa.Integer(), sa.BigInteger(), True),
        (sa.Numeric(12, 2), sa.Integer(), False),
        (sa.Numeric(12, 2), sa.Numeric(14, 2), True),
        (sa.Numeric(12, 4), sa.Numeric(12, 2), False),
        (sa.Text(), sa.Integer(), False),
        (sa.Integer(), sa.Text(), True),
        (sa.Integer(), sa.String(5), False),
        (sa.DateTime(timezone=True), sa.DateTime(), False),
        (sa.DateTime(), sa.Date(), False),
        (sa.Date(), sa.DateTime(), True),
        (sa.Enum("a", "b", name="e"), sa.Enum("a", name="e"), False),
        (sa.Enum("a", name="e"), sa.Enum("a", "b", name="e"), True),
        (sa.Float(), sa.Integer(), False),
        (None, sa.Integer(), False),
    ],
)
def test_type_change_classification(old: Any, new: Any, safe: bool) -> None:
    ok, why = type_change(old, new)
    assert ok is safe
    assert ok or why


def test_type_change_messages() -> None:
    f = one(make_ctx(narrow_string), "SAF103")
    assert f.severity == "high" and f.table == "users" and f.column == "name"
    assert "VARCHAR(100)" in f.message and "VARCHAR(20)" in f.message and "longer than 20" in f.message

    def lossy() -> None:
        op.alter_column("orders", "total", type_=sa.Integer(), existing_type=sa.Numeric(12, 2))

    assert "rounded" in one(make_ctx(lossy), "SAF103").message

    def unknown_old() -> None:
        op.alter_column("orders", "total", type_=sa.BigInteger())

    assert "old type is unknown" in one(make_ctx(unknown_old), "SAF103").message

    def widening_with_using() -> None:
        op.alter_column("orders", "code", type_=sa.Text(), existing_type=sa.String(10), postgresql_using="upper(code)")

    assert "USING upper(code)" in one(make_ctx(widening_with_using), "SAF103").message

    def raw() -> None:
        op.execute("ALTER TABLE t ALTER COLUMN c TYPE int USING c::int")

    f = one(make_ctx(raw), "SAF103")
    assert (f.table, f.column) == ("t", "c") and "old type is unknown" in f.message


def test_delete_and_update_with_where_are_medium_without_high() -> None:
    assert one(make_ctx(delete_all), "SAF105").severity == "high"
    f = one(make_ctx(delete_where), "SAF107")
    assert f.severity == "medium" and "expires_at < '2020-01-01'" in f.message
    assert one(make_ctx(update_all), "SAF106").severity == "high"
    assert one(make_ctx(update_where), "SAF108").severity == "medium"

    def join_delete() -> None:  # a WHERE the snapshot cannot use is still a WHERE
        op.execute("DELETE FROM t AS x USING u WHERE x.a = u.b")

    assert codes(make_ctx(join_delete)) >= {"SAF107"} and "SAF105" not in codes(make_ctx(join_delete))

    def construct() -> None:  # SQLAlchemy constructs are compiled and read like strings
        op.execute(sa.table("t", sa.column("a")).delete())
        op.execute(sa.table("t", sa.column("a")).update().values(a=sa.literal(1)))

    assert {"SAF105", "SAF106"} <= codes(make_ctx(construct))

    def upsert() -> None:
        op.execute("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1")

    assert one(make_ctx(upsert), "SAF108").table == "t"


def test_backfilling_a_new_column_destroys_nothing() -> None:
    def backfill() -> None:
        op.add_column("users", sa.Column("plan", sa.String(20)))
        op.execute("UPDATE users SET plan = 'free'")

    assert not codes(make_ctx(backfill)) & {"SAF106", "SAF108"}


def test_opaque_sql_and_code() -> None:
    f = one(make_ctx(do_block), "SAF109")
    assert f.severity == "high" and "DO" in f.message

    def garbage() -> None:
        op.execute("this is not sql at all ((")

    assert "SAF109" in codes(make_ctx(garbage))
    f = one(make_ctx(uses_connection), "SAF110")
    assert f.severity == "high" and "connection" in f.message
    f = one(make_ctx(raises), "SAF110")
    assert "NotImplementedError" in f.message

    def dialect_only() -> None:
        if op.get_bind().dialect.name == "postgresql":
            op.add_column("users", sa.Column("x", sa.Integer))

    assert not findings(make_ctx(dialect_only), "SAF110")  # reading the dialect is fine


def test_not_null_column_depends_on_rows() -> None:
    assert "5 rows" in one(make_ctx(add_not_null_column, facts=FakeFacts(rows=5)), "SAF201").message
    assert "could not check" in one(make_ctx(add_not_null_column), "SAF201").message
    assert not findings(make_ctx(add_not_null_column, facts=FakeFacts(rows=0)), "SAF201")
    f = one(make_ctx(add_not_null_column, dialect="mysql", facts=FakeFacts(rows=5)), "SAF201")
    assert f.severity == "low" and "implicit default" in f.message
    assert "SQLite refuses" in one(make_ctx(add_not_null_column, dialect="sqlite", facts=FakeFacts(rows=0)),
                                   "SAF201").message  # fmt: skip

    def identity() -> None:
        op.add_column("users", sa.Column("n", sa.BigInteger, sa.Identity(), nullable=False))

    assert not findings(make_ctx(identity, facts=FakeFacts(rows=5)), "SAF201")


def test_data_dependent_rules_count_violating_rows() -> None:
    assert "3 rows violate it" in one(make_ctx(set_not_null, facts=FakeFacts(nulls=3)), "SAF202").message
    assert "1 row violates it" in one(make_ctx(set_not_null, facts=FakeFacts(nulls=1)), "SAF202").message
    assert not findings(make_ctx(set_not_null, facts=FakeFacts(nulls=0)), "SAF202")
    assert "4 rows violate it" in one(make_ctx(add_unique, facts=FakeFacts(duplicates=4)), "SAF203").message
    assert "2 rows violate it" in one(make_ctx(add_check, facts=FakeFacts(violations=2)), "SAF204").message
    assert "7 rows violate it" in one(make_ctx(add_fk, facts=FakeFacts(orphans=7)), "SAF205").message
    for fn, code in [(set_not_null, "SAF202"), (add_unique, "SAF203"), (add_check, "SAF204"), (add_fk, "SAF205")]:
        f = one(make_ctx(fn), code)
        assert f.severity == "medium" and "could not check" in f.message
        assert not findings(make_ctx(fn, facts=FakeFacts(0, 0, 0, 0, 0)), code)

    def unique_index() -> None:
        op.create_index("ux_users_email", "users", ["email"], unique=True)

    assert "9 rows" in one(make_ctx(unique_index, facts=FakeFacts(duplicates=9)), "SAF203").message


def test_facts_are_asked_the_right_questions() -> None:
    facts = FakeFacts(orphans=1)
    one(make_ctx(add_fk, facts=facts), "SAF205")
    assert ("orphans", TableRef("orders"), ("user_id",), TableRef("users"), ("id",)) in facts.asked
    no = NoFacts()
    findings(make_ctx(add_check, facts=no))
    assert "rows of orders violating CHECK (total >= 0)" in no.unknown


def test_constraints_on_columns_added_in_the_same_revision() -> None:
    def add_then_not_null() -> None:
        op.add_column("users", sa.Column("plan", sa.String(20)))
        op.alter_column("users", "plan", nullable=False, existing_type=sa.String(20))

    assert "5 rows violate it" in one(make_ctx(add_then_not_null, facts=FakeFacts(rows=5)), "SAF202").message

    def add_backfill_not_null() -> None:
        op.add_column("users", sa.Column("plan", sa.String(20)))
        op.execute("UPDATE users SET plan = 'free'")
        op.alter_column("users", "plan", nullable=False, existing_type=sa.String(20))

    assert "backfill" in one(make_ctx(add_backfill_not_null, facts=FakeFacts(rows=5)), "SAF202").message

    def add_then_fk() -> None:  # every existing row holds NULL: a foreign key accepts that
        op.add_column("orders", sa.Column("coupon_id", sa.Integer))
        op.create_foreign_key("fk_coupon", "orders", "coupons", ["coupon_id"], ["id"])

    assert not findings(make_ctx(add_then_fk, facts=FakeFacts(rows=5)), "SAF205")

    def new_table_constraints() -> None:
        op.create_table("t", sa.Column("id", sa.Integer, primary_key=True), sa.Column("a", sa.Integer))
        op.create_unique_constraint("uq", "t", ["a"])
        op.create_index("ix", "t", ["a"])
        op.create_check_constraint("ck", "t", "a > 0")

    assert not codes(make_ctx(new_table_constraints, facts=FakeFacts(rows=BIG))) & {"SAF203", "SAF204", "SAF206"}


def test_lock_rules_scale_with_table_size() -> None:
    assert one(make_ctx(add_index, facts=FakeFacts(rows=BIG)), "SAF206").severity == "medium"
    f = one(make_ctx(add_index), "SAF206")
    assert f.severity == "low" and "could not check the row count" in f.message
    assert not findings(make_ctx(add_index, facts=FakeFacts(rows=10)), "SAF206")
    assert not findings(make_ctx(add_index, dialect="mysql", facts=FakeFacts(rows=BIG)), "SAF206")
    assert "raw CREATE INDEX" in one(make_ctx(create_index_sql, facts=FakeFacts(rows=BIG)), "SAF206").message

    def concurrent_sql() -> None:
        op.execute("CREATE INDEX CONCURRENTLY ix ON users (email)")

    assert not findings(make_ctx(concurrent_sql, facts=FakeFacts(rows=BIG)), "SAF206")
    assert one(make_ctx(add_check, facts=FakeFacts(rows=BIG, violations=0)), "SAF207").severity == "medium"
    assert one(make_ctx(set_not_null, facts=FakeFacts(rows=BIG, nulls=0)), "SAF207").severity == "medium"
    assert "gen_random_uuid" in one(make_ctx(volatile_default, facts=FakeFacts(rows=BIG)), "SAF208").message

    def constant_default() -> None:
        op.add_column("events", sa.Column("kind", sa.String(10), server_default="random()"))  # a string literal
        op.add_column("events", sa.Column("note", sa.Text(), server_default=sa.text("'nextval(x)'")))

    assert not findings(make_ctx(constant_default, facts=FakeFacts(rows=BIG)), "SAF208")
    assert "rewrites" in one(make_ctx(int_to_bigint, facts=FakeFacts(rows=BIG)), "SAF209").message


def test_renames_and_enum_values() -> None:
    assert one(make_ctx(rename_table), "SAF301").message.startswith("renames table customer to customers")
    f = one(make_ctx(rename_column), "SAF302")
    assert (f.table, f.column, f.severity) == ("users", "name", "medium")

    def raw_renames() -> None:
        op.execute("ALTER TABLE a RENAME TO b")
        op.execute("ALTER TABLE c RENAME COLUMN x TO y")

    assert {"SAF301", "SAF302"} <= codes(make_ctx(raw_renames))
    assert "order_status" in one(make_ctx(enum_add_value), "SAF303").message


def test_downgrade_rules() -> None:
    assert "no downgrade()" in one(make_ctx(add_column, MISSING), "SAF304").message
    assert not findings(make_ctx(_nothing, MISSING), "SAF304")  # an empty (merge) revision
    assert "add column users.plan" in one(make_ctx(add_column, None), "SAF305").message
    assert not findings(make_ctx(update_where, None), "SAF305")  # data-only: nothing in the schema to undo
    assert "NotImplementedError" in one(make_ctx(add_column, raises), "SAF306").message
    gap = one(make_ctx(create_table_and_index, drop_only_table), "SAF307")
    assert "ix_users_plan" in gap.message and gap.table == "users"
    # one problem, one finding: a pass or raising downgrade is not also "incomplete"
    assert "SAF307" not in codes(make_ctx(add_column, None)) | codes(make_ctx(add_column, raises))


def test_downgrade_matching_by_names() -> None:
    def up() -> None:
        op.create_table("plans", sa.Column("id", sa.Integer, primary_key=True))
        op.add_column("users", sa.Column("plan_id", sa.Integer))
        op.create_foreign_key("fk_users_plan", "users", "plans", ["plan_id"], ["id"])
        op.create_index("ix_users_plan", "users", ["plan_id"])
        op.alter_column("users", "name", new_column_name="full_name")
        op.rename_table("customer", "customers")
        op.drop_column("users", "legacy")

    def down_full() -> None:
        op.add_column("users", sa.Column("legacy", sa.Text))
        op.rename_table("customers", "customer")
        op.alter_column("users", "full_name", new_column_name="name")
        op.drop_index("ix_users_plan", table_name="users")
        op.drop_constraint("fk_users_plan", "users", type_="foreignkey")
        with op.batch_alter_table("users") as batch:
            batch.drop_column("plan_id")
        op.drop_table("plans")

    def down_partial() -> None:
        op.drop_table("plans")
        op.drop_column("users", "plan_id")

    assert not findings(make_ctx(up, down_full), "SAF307")
    gaps = {f.message.split(": ", 1)[1] for f in findings(make_ctx(up, down_partial), "SAF307")}
    assert gaps == {"create constraint fk_users_plan on users", "create index ix_users_plan on users",
                    "alter column users.name", "rename table customer to customers",
                    "drop column users.legacy"}  # fmt: skip

    def down_sql() -> None:  # raw SQL that names what it undoes counts
        op.execute("ALTER TABLE users DROP COLUMN plan")

    assert not findings(make_ctx(add_column, down_sql), "SAF307")


def raw_ddl() -> None:
    op.execute("CREATE VIEW active_users AS SELECT * FROM users WHERE active")
    op.execute("CREATE INDEX ix_users_email ON users (email)")
    op.execute("ALTER TABLE users ADD COLUMN plan text")


def undo_raw_ddl() -> None:
    op.execute("ALTER TABLE users DROP COLUMN plan")
    op.drop_index("ix_users_email", table_name="users")
    op.execute("DROP VIEW active_users")


def undo_raw_view_only() -> None:
    op.execute("DROP VIEW active_users")


def test_raw_ddl_must_be_undone_too() -> None:
    assert not findings(make_ctx(raw_ddl, undo_raw_ddl), "SAF307")
    gaps = {f.message for f in findings(make_ctx(raw_ddl, undo_raw_view_only), "SAF307")}
    assert gaps == {"downgrade() does not undo: raw CREATE INDEX", "downgrade() does not undo: raw ALTER TABLE"}
    assert "raw CREATE VIEW" in one(make_ctx(raw_ddl, None), "SAF305").message
    assert reversibility(make_ctx(raw_ddl, undo_raw_ddl), False) == "yes"
    assert reversibility(make_ctx(raw_ddl, None), True) == "no"


def test_cannot_run_rules() -> None:
    assert one(make_ctx(drop_unnamed_constraint), "SAF401").severity == "high"

    def drop_unnamed_index() -> None:
        op.drop_index(None, table_name="t")  # type: ignore[arg-type]

    assert "drop_index(None)" in one(make_ctx(drop_unnamed_index), "SAF401").message

    def fk_mismatch() -> None:
        op.create_foreign_key("fk", "orders", "users", ["user_id", "org_id"], ["id"])

    assert "2 local and 1 referenced" in one(make_ctx(fk_mismatch), "SAF402").message
    assert one(make_ctx(alter_nothing), "SAF403").severity == "low"

    def mysql_drop_constraint() -> None:
        op.drop_constraint("fk_orders_user", "orders")

    assert "type_=" in one(make_ctx(mysql_drop_constraint, dialect="mysql"), "SAF404").message
    assert not findings(make_ctx(mysql_alter_without_type), "SAF404")  # PostgreSQL needs no existing_type
    assert not findings(make_ctx(sqlite_fk_outside_batch), "SAF405")  # only SQLite


# ---------------------------------------------------------------------------------------------
# Suppressions and the worst severity
# ---------------------------------------------------------------------------------------------


def test_suppressions() -> None:
    source = '''"""rev"""
# safety: allow SAF101 the table was emptied and archived in release 41
def upgrade():
    op.drop_table("invoices")  #safety:allow SAF105
'''
    assert suppressions(source) == {"SAF101": "the table was emptied and archived in release 41",
                                    "SAF105": "no reason given"}  # fmt: skip
    assert suppressions("# safety: allow SAF1 short code") == {}


def test_allowed_findings_stay_but_do_not_count() -> None:
    def up() -> None:
        op.drop_table("invoices")
        op.create_index("ix_users_email", "users", ["email"])

    ctx = make_ctx(up, None, facts=FakeFacts(rows=BIG))
    plain = evaluate(ctx)
    assert worst(plain) == "high"
    marked = evaluate(ctx, {"SAF101": "archived"})
    [drop] = [f for f in marked if f.code == "SAF101"]
    assert drop.allowed == "archived" and drop.as_dict()["allowed"] == "archived"
    assert all(f.allowed is None for f in marked if f.code != "SAF101")
    assert worst(marked) == "medium"
    assert worst(evaluate(ctx, {f.code: "ok" for f in plain})) is None
    assert [f.severity for f in marked] == sorted((f.severity for f in marked), key=lambda s: -risk.RANK[s])


# ---------------------------------------------------------------------------------------------
# Reversibility
# ---------------------------------------------------------------------------------------------


def drop_column_and_undo() -> None:
    op.add_column("users", sa.Column("legacy", sa.Text))


def dialect_only_bind() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("users", sa.Column("plan", sa.String(20)))


@pytest.mark.parametrize(
    ("upgrade", "downgrade", "snapshots", "expected"),
    [
        (add_column, undo_add_column, False, "yes"),
        (_nothing, MISSING, False, "yes"),
        (update_where, None, False, "no"),  # data overwritten, no snapshot
        (update_where, None, True, "with-snapshot"),
        (drop_column, drop_column_and_undo, True, "with-snapshot"),
        (drop_column, drop_column_and_undo, False, "no"),
        (drop_table, None, True, "with-snapshot"),  # the snapshot recreates the table: converges
        (drop_table, MISSING, True, "with-snapshot"),
        (narrow_string, None, True, "with-snapshot"),
        (add_column, MISSING, True, "no"),
        (add_column, None, True, "no"),
        (add_column, raises, True, "no"),
        (create_table_and_index, drop_only_table, True, "no"),
        (create_table_and_index, drop_index_and_table, False, "yes"),
        (enum_add_value, None, True, "no"),
        (do_block, None, True, "with-snapshot"),
        (do_block, None, False, "no"),
        (uses_connection, None, True, "with-snapshot"),
        (truncate, None, True, "with-snapshot"),
        (dialect_only_bind, undo_add_column, False, "yes"),
    ],
)
def test_reversibility(upgrade: Callable[[], None], downgrade: Any, snapshots: bool, expected: str) -> None:
    assert reversibility(make_ctx(upgrade, downgrade), snapshots) == expected


def test_reversibility_docstring_defines_the_three_answers() -> None:
    doc = reversibility.__doc__ or ""
    assert all(f'"{word}"' in doc for word in ("yes", "with-snapshot", "no"))


# ---------------------------------------------------------------------------------------------
# Odd input never makes a rule raise
# ---------------------------------------------------------------------------------------------


class CustomOp(alembic_ops.MigrateOperation):
    """A project's own operation: no table_name, no reverse()."""


class ReversibleOp(alembic_ops.MigrateOperation):
    def __init__(self, table_name: str | None) -> None:
        self.table_name = table_name

    def reverse(self) -> ReversibleOp:
        return ReversibleOp(self.table_name)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def odd_ops() -> Iterable[alembic_ops.MigrateOperation]:
    yield CustomOp()
    yield ReversibleOp(None)
    yield alembic_ops.DropTableOp(None)  # type: ignore[arg-type]
    yield alembic_ops.DropColumnOp("t", None)  # type: ignore[arg-type]
    yield alembic_ops.AddColumnOp("t", None)  # type: ignore[arg-type]
    yield alembic_ops.AlterColumnOp("t", "c", modify_type="NOT A TYPE", existing_type=object(),
                                    postgresql_using=Unprintable())  # fmt: skip
    yield alembic_ops.AlterColumnOp(None, None, modify_nullable=False)  # type: ignore[arg-type]
    yield alembic_ops.CreateIndexOp(None, None, None, unique=True)  # type: ignore[arg-type]
    yield alembic_ops.CreateIndexOp("ix", "t", [sa.text("lower(email)")], unique=True)
    yield alembic_ops.CreateForeignKeyOp(None, None, None, None, None)  # type: ignore[arg-type]
    yield alembic_ops.CreateCheckConstraintOp(None, "t", Unprintable())  # type: ignore[arg-type]
    yield alembic_ops.CreateUniqueConstraintOp(None, "t", None)  # type: ignore[arg-type]
    yield alembic_ops.DropConstraintOp(None, None)  # type: ignore[arg-type]
    yield alembic_ops.RenameTableOp(None, None)  # type: ignore[arg-type]
    yield alembic_ops.ExecuteSQLOp(Unprintable())  # type: ignore[arg-type]
    yield alembic_ops.ExecuteSQLOp(sa.select(sa.literal(1)))
    yield alembic_ops.ExecuteSQLOp(sa.text("UPDATE t SET a = :a"))
    yield alembic_ops.ModifyTableOps("t", [CustomOp(), alembic_ops.DropColumnOp("t", "c")])


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite", "oracle"])
def test_odd_input_never_raises(dialect: str) -> None:
    ops = tuple(odd_ops())
    step = RecordedStep(ops=ops, sql=((14, ()),))
    for down in (None, RecordedStep(ops=ops), RecordedStep(ops=(CustomOp(),))):
        for facts in (NoFacts(), FakeFacts(1, 1, 1, 1, 1), FakeFacts(BIG)):
            ctx = RuleContext("odd", step, down, "", dialect, facts)
            found = evaluate(ctx)
            assert not [f for f in found if "could not analyse" in f.message], found
            assert reversibility(ctx, True) in ("yes", "with-snapshot", "no")


def test_recorded_sqlalchemy_constructs_and_batches() -> None:
    def up() -> None:
        op.execute(sa.text("DELETE FROM t WHERE id = :id").bindparams(id=3))
        op.execute(sa.select(sa.literal(1)))
        with op.batch_alter_table("t") as batch:
            batch.drop_column("c")
            batch.alter_column("d", type_=sa.SmallInteger, existing_type=sa.Integer)

    got = codes(make_ctx(up))
    assert {"SAF102", "SAF103", "SAF107"} <= got


def test_a_crashing_rule_reports_instead_of_raising() -> None:
    class Broken(Rule):
        """Bad: nothing. Safe: nothing."""

        code = "SAF499"
        name = "test.broken"
        severity = "high"

        def check(self, ctx: RuleContext) -> Iterable[Finding]:
            raise KeyError("boom")

    try:
        [f] = [f for f in evaluate(make_ctx(_nothing)) if f.code == "SAF499"]
        assert f.severity == "low" and "KeyError" in f.message
    finally:
        Rule.registry.pop("SAF499", None)


# ---------------------------------------------------------------------------------------------
# Live facts
# ---------------------------------------------------------------------------------------------

SEED = """
CREATE TABLE users (id integer PRIMARY KEY, email text, nick text, "Mixed Case" integer);
INSERT INTO users VALUES
  (1, 'a@x', 'ann', 1), (2, NULL, 'bob', 2), (3, NULL, 'bob', NULL), (4, 'd@x', 'cat', 4),
  (5, NULL, 'cat', 5), (6, 'f@x', 'cat', 6), (7, 'g@x', NULL, 7), (8, 'h@x', NULL, 8);
CREATE TABLE orders (id integer PRIMARY KEY, user_id integer, org_id integer, total integer);
INSERT INTO orders VALUES
  (1, 1, 1, 10), (2, 2, 1, -5), (3, 99, 1, 0), (4, 98, 1, -1), (5, NULL, 1, 3), (6, 97, NULL, NULL);
"""


def _seed(conn: sa.Connection, sql: str = SEED) -> None:
    for statement in filter(str.strip, sql.split(";")):
        conn.execute(sa.text(statement))


def live_upgrade() -> None:
    op.alter_column("users", "email", nullable=False, existing_type=sa.Text())
    op.create_unique_constraint("uq_users_nick", "users", ["nick"])
    op.create_check_constraint("ck_orders_total", "orders", "total >= 0")
    op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"])
    op.add_column("users", sa.Column("tenant_id", sa.Integer, nullable=False))


def _check_live_findings(conn: sa.Connection, dialect: sa.Dialect) -> LiveFacts:
    facts = LiveFacts(conn)
    ctx = RuleContext("live", record(live_upgrade, dialect), None, "", dialect.name, facts)
    by_code = {f.code: f for f in evaluate(ctx)}
    assert "3 rows violate it" in by_code["SAF202"].message  # NULL emails: 2, 3, 5
    assert "5 rows violate it" in by_code["SAF203"].message  # bob x2, cat x3
    assert "2 rows violate it" in by_code["SAF204"].message  # totals -5 and -1 (NULL passes)
    assert "3 rows violate it" in by_code["SAF205"].message  # user_id 99, 98, 97 (NULL passes)
    if dialect.name == "postgresql":
        assert "the table has 8 rows" in by_code["SAF201"].message
    return facts


@pytest.mark.postgres
def test_live_facts_postgresql(pg_url: sa.URL, engine_for: Any) -> None:
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        _seed(conn)
        facts = LiveFacts(conn)
        users, orders = TableRef("users"), TableRef("orders")
        assert facts.rows(users) == 8  # never analysed: count(*)
        assert facts.null_count(users, "email") == 3
        assert facts.null_count(users, "Mixed Case") == 1  # quoted by SQLAlchemy
        assert facts.duplicate_count(users, ["nick"]) == 5
        assert facts.duplicate_count(orders, ["org_id"]) == 5
        assert facts.check_violations(orders, "total >= 0 OR user_id = 99") == 2  # -5 (user 2) and -1 (user 98)
        assert facts.orphan_count(orders, ["user_id"], users, ["id"]) == 3
        assert facts.orphan_count(orders, ["user_id", "org_id"], users, ["id", "Mixed Case"]) == 3
        # a question that fails leaves the transaction usable and is listed as unknown
        assert facts.rows(TableRef("missing")) is None
        assert facts.null_count(users, "no_such_column") is None
        assert any("no_such_column" in u for u in facts.unknown)
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar() == 8
        _check_live_findings(conn, conn.dialect)


@pytest.mark.postgres
def test_live_row_counts_postgresql(pg_url: sa.URL, engine_for: Any) -> None:
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE SCHEMA "Side"'))
        conn.execute(sa.text('CREATE TABLE "Side"."Big Table" (id integer)'))
        conn.execute(sa.text('INSERT INTO "Side"."Big Table" SELECT generate_series(1, 5000)'))
        conn.execute(sa.text("CREATE TABLE empty (id integer)"))
    with engine.connect() as conn:
        conn.execute(sa.text('ANALYZE "Side"."Big Table"'))
        conn.execute(sa.text('DELETE FROM "Side"."Big Table" WHERE id > 10'))  # the estimate is now stale
        conn.commit()
        facts = LiveFacts(conn)
        assert facts.rows(TableRef("Big Table", "Side")) == 5000  # reltuples, not count(*)
        assert facts.rows(TableRef("empty")) == 0
        ctx = RuleContext("live", record(add_index, postgresql.dialect()), None, "", "postgresql", facts)
        [f] = [f for f in evaluate(ctx) if f.code == "SAF206"]
        assert f.severity == "low"  # users does not exist: the size is unknown
        assert facts.rows(TableRef("users")) is None and any("users" in u for u in facts.unknown)


def test_live_facts_sqlite(sqlite_url: sa.URL, engine_for: Any) -> None:
    engine = engine_for(sqlite_url)
    with engine.begin() as conn:
        _seed(conn)
        facts = _check_live_findings(conn, conn.dialect)
        assert facts.rows(TableRef("orders")) == 6
        assert facts.rows(TableRef("missing")) is None
