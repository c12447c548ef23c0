"""Reversing raw SQL (alembic_safety.reverse.sql): unit tests of each statement shape against a
hand-built pre-state, then round trips on PostgreSQL (pre-state, forward, reverse, compare the
catalog with the pre-state)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.reverse.schema import (
    ColumnState,
    ConstraintState,
    IndexState,
    ObjectState,
    SchemaState,
    TableState,
    reflect_state,
)
from alembic_safety.reverse.sql import ReverseItem, reverse_sql, split_statements


def texts(items: tuple[ReverseItem, ...]) -> list[str]:
    return [i.text for i in items]


def only_sql(sql: str, before: SchemaState | None = None, dialect: str = "postgres") -> list[str]:
    items = reverse_sql(sql, dialect, before)
    assert all(i.kind == "sql" for i in items), items
    return texts(items)


def one(sql: str, before: SchemaState | None = None, dialect: str = "postgres") -> ReverseItem:
    items = reverse_sql(sql, dialect, before)
    assert len(items) == 1, items
    return items[0]


EMPTY = SchemaState("postgresql", ())

INDEX_DEF = "CREATE INDEX ix_users_score ON public.users USING btree (score)"
USERS = TableState(
    schema=None,
    name="users",
    columns=(
        ColumnState("id", "INTEGER", False, "nextval('users_id_seq'::regclass)"),
        ColumnState("email", "VARCHAR(200)", False, None, comment="login"),
        ColumnState("score", "INTEGER", True, "0"),
        ColumnState("org_id", "INTEGER", True, None),
    ),
    constraints=(
        ConstraintState("primary key", "users_pkey", ("id",), ""),
        ConstraintState("unique", "users_email_key", ("email",), ""),
        ConstraintState("check", "score_positive", (), "score >= 0"),
        ConstraintState("foreign key", "users_org_fk", ("org_id",), "REFERENCES orgs (id) ON DELETE CASCADE"),
    ),
    indexes=(IndexState("ix_users_score", ("score",), False, INDEX_DEF),),
    comment="people",
    row_level_security=True,
)
FUNC_DEF = (
    "CREATE OR REPLACE FUNCTION public.f(a integer, b text)\n RETURNS integer\n LANGUAGE sql\n"
    "AS $function$ select 1; $function$\n"
)
TRIGGER_DEF = "CREATE TRIGGER tr BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION trg()"
POLICY_DEF = "CREATE POLICY own ON public.users AS PERMISSIVE FOR SELECT TO PUBLIC USING (true)"
BEFORE = SchemaState(
    "postgresql",
    (USERS,),
    (
        ObjectState("function", "public", "f", "a integer, b text", FUNC_DEF),
        ObjectState("function", "public", "f", "integer",
                    "CREATE OR REPLACE FUNCTION public.f(integer) RETURNS int LANGUAGE sql AS $$ select 2 $$"),
        ObjectState("view", "public", "v", "", "CREATE OR REPLACE VIEW public.v AS SELECT 1 AS one"),
        ObjectState("type", "public", "mood", "", "CREATE TYPE public.mood AS ENUM ('sad', 'ok')"),
        ObjectState("trigger", "public", "tr", "users", TRIGGER_DEF),
        ObjectState("policy", "public", "own", "users", POLICY_DEF),
        ObjectState("comment", "public", "v", "VIEW public.v", "COMMENT ON VIEW public.v IS 'a view'"),
        ObjectState("extension", "public", "pgcrypto", "",
                    "CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public"),
        ObjectState("schema", "app", "app", "", "CREATE SCHEMA app AUTHORIZATION postgres"),
        ObjectState("grant", "public", "users", "TABLE public.users TO bob",
                    "GRANT SELECT ON TABLE public.users TO bob"),
    ),
)  # fmt: skip


# -- splitting ---------------------------------------------------------------------------------


def test_split_dollar_quoted_bodies_strings_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE FUNCTION f() RETURNS int AS $$ select 1; select 2; $$ LANGUAGE sql;
    /* block; comment */
    CREATE FUNCTION g() RETURNS int AS $body$ begin return 1; end; $x$ ; $body$ LANGUAGE plpgsql;
    INSERT INTO t VALUES ('a;b', E'it\\'s; here');
    SELECT 1
    """
    parts = split_statements(sql, "postgres")
    assert len(parts) == 4
    assert parts[0].endswith("$$ select 1; select 2; $$ LANGUAGE sql")
    assert "$x$ ; $body$" in parts[1]
    assert parts[2] == "INSERT INTO t VALUES ('a;b', E'it\\'s; here')"
    assert parts[3] == "SELECT 1"


def test_split_psql_meta_commands_and_copy_data() -> None:
    sql = (
        "\\set ON_ERROR_STOP on\nCREATE TABLE t (a text);\n\\echo hi; there\n"
        "COPY t (a) FROM stdin;\nx;y\n\\.\nDROP TABLE u;\n"
    )
    assert split_statements(sql, "postgres") == ["CREATE TABLE t (a text)", "COPY t (a) FROM stdin", "DROP TABLE u"]


def test_split_keeps_backslash_lines_inside_bodies() -> None:
    sql = "CREATE FUNCTION f() RETURNS text AS $$\n\\not a meta command\n$$ LANGUAGE sql;\nSELECT 2"
    parts = split_statements(sql, "postgres")
    assert len(parts) == 2 and "\\not a meta command" in parts[0]


def test_reverse_order_and_no_ops() -> None:
    sql = "BEGIN; SET search_path = public; CREATE TABLE a (x int); CREATE TABLE b (y int); SELECT 1; COMMIT;"
    items = reverse_sql(sql, "postgres", EMPTY)
    assert texts(items) == ["DROP TABLE IF EXISTS b", "DROP TABLE IF EXISTS a"]
    assert items[0].source == "CREATE TABLE b (y int)"


def test_source_is_one_short_line() -> None:
    sql = "CREATE TABLE t (\n  " + ",\n  ".join(f"column_{i} integer" for i in range(30)) + "\n)"
    item = one(sql, EMPTY)
    assert "\n" not in item.source and len(item.source) <= 120 and item.source.startswith("CREATE TABLE t ( column_0")


# -- CREATE ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "reverse"),
    [
        ("CREATE TABLE s.t (id serial PRIMARY KEY)", "DROP TABLE IF EXISTS s.t"),
        ('CREATE TABLE "MyT" ("user" int)', 'DROP TABLE IF EXISTS "MyT"'),
        ("CREATE INDEX ix ON s.t (a)", "DROP INDEX IF EXISTS s.ix"),
        ("CREATE UNIQUE INDEX ix ON t USING gin (a) WHERE a > 0", "DROP INDEX IF EXISTS ix"),
        ("CREATE VIEW v AS SELECT 1", "DROP VIEW IF EXISTS v"),
        ("CREATE MATERIALIZED VIEW s.mv AS SELECT 1 WITH NO DATA", "DROP MATERIALIZED VIEW IF EXISTS s.mv"),
        ("CREATE SEQUENCE s.seq START 5", "DROP SEQUENCE IF EXISTS s.seq"),
        ("CREATE TYPE s.mood AS ENUM ('a;', 'b')", "DROP TYPE IF EXISTS s.mood"),
        ("CREATE TYPE pair AS (a int, b text)", "DROP TYPE IF EXISTS pair"),
        ("CREATE TYPE fr AS RANGE (subtype = float8)", "DROP TYPE IF EXISTS fr"),
        ("CREATE DOMAIN posint AS integer CHECK (VALUE > 0)", "DROP DOMAIN IF EXISTS posint"),
        ("CREATE EXTENSION IF NOT EXISTS pgcrypto", "DROP EXTENSION IF EXISTS pgcrypto"),
        ("CREATE SCHEMA app", "DROP SCHEMA IF EXISTS app"),
        ("CREATE SCHEMA IF NOT EXISTS app2 AUTHORIZATION bob", "DROP SCHEMA IF EXISTS app2"),
        ("CREATE TRIGGER tr BEFORE UPDATE OF a, b ON s.t FOR EACH ROW EXECUTE FUNCTION trg()",
         "DROP TRIGGER IF EXISTS tr ON s.t"),
        ("CREATE CONSTRAINT TRIGGER ct AFTER INSERT ON t DEFERRABLE FOR EACH ROW EXECUTE FUNCTION trg()",
         "DROP TRIGGER IF EXISTS ct ON t"),
        ("CREATE POLICY p ON s.t FOR SELECT TO authenticated USING (auth.uid() = user_id)",
         "DROP POLICY IF EXISTS p ON s.t"),
    ],
)  # fmt: skip
def test_create_reverses_to_drop(forward: str, reverse: str) -> None:
    assert only_sql(forward, EMPTY) == [reverse]


def test_create_index_concurrently_runs_outside_a_transaction() -> None:
    item = one("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON t (a)", EMPTY)
    assert (item.kind, item.text, item.transactional) == ("sql", "DROP INDEX CONCURRENTLY IF EXISTS ix", False)
    assert one("CREATE INDEX ix ON t (a)", EMPTY).transactional


def test_create_unnamed_index_is_manual() -> None:
    assert one("CREATE INDEX ON t (a)", EMPTY).kind == "manual"


def test_create_function_drops_by_argument_types() -> None:
    forward = """CREATE OR REPLACE FUNCTION s.f(a integer, IN b text DEFAULT 'x', OUT c int, VARIADIC d text[],
                 e double precision = 1.0, timestamp timestamptz, "Q" public.mood, numeric(10, 2))
                 RETURNS SETOF record LANGUAGE plpgsql AS $fn$ BEGIN RETURN; END; $fn$"""
    assert only_sql(forward, EMPTY) == [
        "DROP FUNCTION IF EXISTS s.f(integer, text, text[], double precision, timestamptz, public.mood, numeric(10, 2))"
    ]


def test_create_function_plpgsql_body_sqlglot_cannot_parse() -> None:
    forward = ("CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN NEW.x := 1; "
               "RETURN NEW; END; $body$")  # fmt: skip
    assert only_sql(forward, EMPTY) == ["DROP FUNCTION IF EXISTS trg()"]


def test_create_procedure_keeps_out_arguments() -> None:
    assert only_sql("CREATE PROCEDURE p(x int, OUT r text) LANGUAGE sql AS $$ select 'a' $$", EMPTY) == [
        "DROP PROCEDURE IF EXISTS p(int, OUT text)"
    ]


def test_if_not_exists_of_an_existing_object_is_a_no_op() -> None:
    assert reverse_sql("CREATE TABLE IF NOT EXISTS users (id int)", "postgres", BEFORE) == ()
    assert reverse_sql("CREATE TABLE IF NOT EXISTS public.users (id int)", "postgres", BEFORE) == ()
    assert reverse_sql("CREATE INDEX IF NOT EXISTS ix_users_score ON users (score)", "postgres", BEFORE) == ()
    assert reverse_sql("CREATE EXTENSION IF NOT EXISTS pgcrypto", "postgres", BEFORE) == ()
    assert reverse_sql("CREATE SCHEMA IF NOT EXISTS app", "postgres", BEFORE) == ()
    assert reverse_sql("ALTER TABLE users ADD COLUMN IF NOT EXISTS score int", "postgres", BEFORE) == ()
    # not there before: dropped
    assert only_sql("CREATE TABLE IF NOT EXISTS other (id int)", BEFORE) == ["DROP TABLE IF EXISTS other"]
    assert only_sql("ALTER TABLE users ADD COLUMN IF NOT EXISTS x int", BEFORE) == [
        "ALTER TABLE users DROP COLUMN IF EXISTS x"
    ]


def test_create_or_replace_function_restores_previous_definition() -> None:
    items = reverse_sql("CREATE OR REPLACE FUNCTION f(x int, y text) RETURNS int AS $$ select 9 $$ LANGUAGE sql",
                        "postgres", BEFORE)  # fmt: skip
    assert items == (ReverseItem("sql", FUNC_DEF.strip(), items[0].source),)
    # the other overload
    forward = "CREATE OR REPLACE FUNCTION public.f(int4) RETURNS int AS 'select 3' LANGUAGE sql"
    assert only_sql(forward, BEFORE) == [
        "CREATE OR REPLACE FUNCTION public.f(integer) RETURNS int LANGUAGE sql AS $$ select 2 $$"
    ]
    # a new overload: dropped
    assert only_sql("CREATE OR REPLACE FUNCTION f(boolean) RETURNS int AS 'select 3' LANGUAGE sql", BEFORE) == [
        "DROP FUNCTION IF EXISTS f(boolean)"
    ]


def test_create_or_replace_view() -> None:
    # dropped first: CREATE OR REPLACE cannot take away columns the replacement added
    # ... and its comment (and grants) went with the drop: they come back after it
    assert only_sql("CREATE OR REPLACE VIEW v AS SELECT 2 AS one, 3 AS two", BEFORE) == [
        "DROP VIEW IF EXISTS v",
        "CREATE OR REPLACE VIEW public.v AS SELECT 1 AS one",
        "COMMENT ON VIEW public.v IS 'a view'",
    ]
    assert only_sql("CREATE OR REPLACE VIEW w AS SELECT 2", BEFORE) == ["DROP VIEW IF EXISTS w"]


def test_create_or_replace_without_pre_state_drops_and_says_so() -> None:
    items = reverse_sql("CREATE OR REPLACE VIEW w AS SELECT 2", "postgres", None)
    assert [i.kind for i in items] == ["sql", "manual"]
    assert items[0].text == "DROP VIEW IF EXISTS w" and "previous definition" in items[1].text


def test_create_or_replace_trigger_drops_then_restores() -> None:
    forward = "CREATE OR REPLACE TRIGGER tr AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION g()"
    assert only_sql(forward, BEFORE) == ["DROP TRIGGER IF EXISTS tr ON users", TRIGGER_DEF]


# -- ALTER TABLE -------------------------------------------------------------------------------


def test_alter_table_add_column_and_constraints() -> None:
    assert only_sql("ALTER TABLE s.t ADD COLUMN c int DEFAULT 1, ADD CONSTRAINT ck CHECK (c > 0)", EMPTY) == [
        "ALTER TABLE s.t DROP CONSTRAINT IF EXISTS ck",
        "ALTER TABLE s.t DROP COLUMN IF EXISTS c",
    ]
    assert only_sql("ALTER TABLE t ADD PRIMARY KEY (id)", EMPTY) == ["ALTER TABLE t DROP CONSTRAINT IF EXISTS t_pkey"]
    assert one("ALTER TABLE t ADD UNIQUE (a)", EMPTY).kind == "manual"


def test_row_level_security() -> None:
    assert only_sql("ALTER TABLE t ENABLE ROW LEVEL SECURITY", EMPTY) == ["ALTER TABLE t DISABLE ROW LEVEL SECURITY"]
    assert only_sql("ALTER TABLE t DISABLE ROW LEVEL SECURITY", EMPTY) == ["ALTER TABLE t ENABLE ROW LEVEL SECURITY"]
    assert only_sql("ALTER TABLE t FORCE ROW LEVEL SECURITY", EMPTY) == ["ALTER TABLE t NO FORCE ROW LEVEL SECURITY"]
    # users had it already
    assert reverse_sql("ALTER TABLE users ENABLE ROW LEVEL SECURITY", "postgres", BEFORE) == ()
    # mixed with actions sqlglot models
    assert only_sql("ALTER TABLE t ADD COLUMN c int, ENABLE ROW LEVEL SECURITY", EMPTY) == [
        "ALTER TABLE t DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE t DROP COLUMN IF EXISTS c",
    ]


def test_renames() -> None:
    assert only_sql("ALTER TABLE s.a RENAME TO b", EMPTY) == ["ALTER TABLE s.b RENAME TO a"]
    assert only_sql('ALTER TABLE t RENAME COLUMN a TO "B"', EMPTY) == ['ALTER TABLE t RENAME COLUMN "B" TO a']
    assert only_sql("ALTER TABLE t RENAME CONSTRAINT a TO b", EMPTY) == ["ALTER TABLE t RENAME CONSTRAINT b TO a"]
    assert only_sql("ALTER FUNCTION s.f(a int, text) RENAME TO g", EMPTY) == [
        "ALTER FUNCTION s.g(int, text) RENAME TO f"
    ]
    assert only_sql("ALTER VIEW v RENAME TO w", EMPTY) == ["ALTER VIEW w RENAME TO v"]
    assert only_sql("ALTER MATERIALIZED VIEW s.m RENAME TO n", EMPTY) == ["ALTER MATERIALIZED VIEW s.n RENAME TO m"]
    assert only_sql("ALTER TYPE mood RENAME TO feeling", EMPTY) == ["ALTER TYPE feeling RENAME TO mood"]
    assert only_sql("ALTER SEQUENCE s.q RENAME TO r", EMPTY) == ["ALTER SEQUENCE s.r RENAME TO q"]
    assert only_sql("ALTER INDEX ix RENAME TO iy", EMPTY) == ["ALTER INDEX iy RENAME TO ix"]
    assert only_sql("ALTER SCHEMA a RENAME TO b", EMPTY) == ["ALTER SCHEMA b RENAME TO a"]
    assert only_sql("ALTER TRIGGER tr ON s.t RENAME TO tr2", EMPTY) == ["ALTER TRIGGER tr2 ON s.t RENAME TO tr"]
    assert only_sql("ALTER POLICY p ON t RENAME TO q", EMPTY) == ["ALTER POLICY q ON t RENAME TO p"]
    assert only_sql("ALTER TYPE mood RENAME VALUE 'a' TO 'b'", EMPTY) == ["ALTER TYPE mood RENAME VALUE 'b' TO 'a'"]


def test_drop_column_recreated_with_constraints_indexes_comment() -> None:
    assert only_sql("ALTER TABLE users DROP COLUMN score", BEFORE) == [
        "ALTER TABLE users ADD COLUMN score INTEGER DEFAULT 0",
        "ALTER TABLE users ADD CONSTRAINT score_positive CHECK (score >= 0)",  # found in the check's SQL
        "CREATE INDEX ix_users_score ON public.users USING btree (score)",
    ]
    assert only_sql("ALTER TABLE users DROP COLUMN email", BEFORE) == [
        "ALTER TABLE users ADD COLUMN email VARCHAR(200) NOT NULL",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        "COMMENT ON COLUMN users.email IS 'login'",
    ]


def test_drop_column_missing_from_pre_state() -> None:
    assert reverse_sql("ALTER TABLE users DROP COLUMN IF EXISTS nope", "postgres", BEFORE) == ()
    assert one("ALTER TABLE users DROP COLUMN nope", BEFORE).kind == "irreversible"
    assert one("ALTER TABLE users DROP COLUMN email", None).kind == "manual"


def test_drop_constraint_recreated() -> None:
    assert only_sql("ALTER TABLE users DROP CONSTRAINT users_org_fk, DROP CONSTRAINT score_positive", BEFORE) == [
        "ALTER TABLE users ADD CONSTRAINT score_positive CHECK (score >= 0)",
        "ALTER TABLE users ADD CONSTRAINT users_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id) ON DELETE CASCADE",
    ]
    assert one("ALTER TABLE users DROP CONSTRAINT gone", BEFORE).kind == "irreversible"
    assert reverse_sql("ALTER TABLE users DROP CONSTRAINT IF EXISTS gone", "postgres", BEFORE) == ()


def test_alter_column_back_to_pre_state() -> None:
    assert only_sql("ALTER TABLE users ALTER COLUMN score SET DEFAULT 5", BEFORE) == [
        "ALTER TABLE users ALTER COLUMN score SET DEFAULT 0"
    ]
    assert only_sql("ALTER TABLE users ALTER COLUMN score DROP DEFAULT", BEFORE) == [
        "ALTER TABLE users ALTER COLUMN score SET DEFAULT 0"
    ]
    assert only_sql("ALTER TABLE users ALTER COLUMN email SET DEFAULT 'x'", BEFORE) == [
        "ALTER TABLE users ALTER COLUMN email DROP DEFAULT"
    ]
    assert only_sql("ALTER TABLE users ALTER COLUMN score SET NOT NULL", BEFORE) == [
        "ALTER TABLE users ALTER COLUMN score DROP NOT NULL"
    ]
    assert reverse_sql("ALTER TABLE users ALTER COLUMN email SET NOT NULL", "postgres", BEFORE) == ()
    assert only_sql("ALTER TABLE users ALTER COLUMN email DROP NOT NULL", BEFORE) == [
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL"
    ]
    assert only_sql("ALTER TABLE users ALTER COLUMN email TYPE text", BEFORE) == [
        "ALTER TABLE users ALTER COLUMN email TYPE VARCHAR(200) USING email::VARCHAR(200)"
    ]
    assert one("ALTER TABLE t ALTER COLUMN c TYPE text", EMPTY).kind == "manual"


# -- DROP --------------------------------------------------------------------------------------


def test_drop_table_recreated_from_pre_state() -> None:
    assert only_sql("DROP TABLE users", BEFORE) == [
        "CREATE TABLE users (id SERIAL NOT NULL, email VARCHAR(200) NOT NULL, score INTEGER DEFAULT 0, "
        "org_id INTEGER, CONSTRAINT users_pkey PRIMARY KEY (id), CONSTRAINT users_email_key UNIQUE (email), "
        "CONSTRAINT score_positive CHECK (score >= 0))",
        "CREATE INDEX ix_users_score ON public.users USING btree (score)",
        "COMMENT ON TABLE users IS 'people'",
        "COMMENT ON COLUMN users.email IS 'login'",
        "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
        "CREATE TRIGGER tr BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION trg()",
        "CREATE POLICY own ON public.users AS PERMISSIVE FOR SELECT TO PUBLIC USING (true)",
        "GRANT SELECT ON TABLE public.users TO bob",
        "ALTER TABLE users ADD CONSTRAINT users_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id) ON DELETE CASCADE",
    ]


def test_drop_table_quotes_names_with_sqlglot() -> None:
    columns = (ColumnState("user", "TEXT", True, None), ColumnState("Mixed", "INTEGER", True, None))
    t = TableState(None, "Order", columns)
    assert only_sql('DROP TABLE "Order"', SchemaState("postgresql", (t,))) == [
        'CREATE TABLE "Order" ("user" TEXT, "Mixed" INTEGER)'
    ]
    assert only_sql("DROP TABLE `Order`", SchemaState("mysql", (t,)), dialect="mysql") == [
        "CREATE TABLE `Order` (`user` TEXT, Mixed INTEGER)"
    ]


def test_drop_objects_recreated_from_pre_state() -> None:
    assert only_sql("DROP FUNCTION f(int4, pg_catalog.text)", BEFORE) == [FUNC_DEF.strip()]
    assert only_sql("DROP VIEW IF EXISTS v", BEFORE) == [
        "CREATE OR REPLACE VIEW public.v AS SELECT 1 AS one", "COMMENT ON VIEW public.v IS 'a view'"
    ]
    assert only_sql("DROP TYPE public.mood", BEFORE) == ["CREATE TYPE public.mood AS ENUM ('sad', 'ok')"]
    assert only_sql("DROP TRIGGER tr ON users", BEFORE) == [
        "CREATE TRIGGER tr BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION trg()"
    ]
    assert only_sql("DROP POLICY IF EXISTS own ON public.users", BEFORE) == [
        "CREATE POLICY own ON public.users AS PERMISSIVE FOR SELECT TO PUBLIC USING (true)"
    ]
    assert only_sql("DROP INDEX ix_users_score", BEFORE) == [
        "CREATE INDEX ix_users_score ON public.users USING btree (score)"
    ]
    assert only_sql("DROP EXTENSION pgcrypto", BEFORE) == ["CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public"]
    assert only_sql("DROP SCHEMA app", BEFORE) == ["CREATE SCHEMA app AUTHORIZATION postgres"]


def test_drop_index_concurrently_recreates_concurrently() -> None:
    item = one("DROP INDEX CONCURRENTLY ix_users_score", BEFORE)
    assert item.text == "CREATE INDEX CONCURRENTLY ix_users_score ON public.users USING btree (score)"
    assert item.transactional is False


def test_drop_of_unknown_objects() -> None:
    assert one("DROP TABLE gone", BEFORE).kind == "irreversible"
    assert one("DROP FUNCTION f(boolean)", BEFORE).kind == "irreversible"
    assert reverse_sql("DROP TABLE IF EXISTS gone", "postgres", BEFORE) == ()
    assert one("DROP TABLE users", None).kind == "manual"
    items = reverse_sql("DROP VIEW v CASCADE", "postgres", BEFORE)
    assert [i.kind for i in items] == ["sql", "sql", "manual"] and "CASCADE" in items[2].text


# -- COMMENT, GRANT ----------------------------------------------------------------------------


def test_comments_back_to_previous() -> None:
    assert only_sql("COMMENT ON TABLE users IS 'x'", BEFORE) == ["COMMENT ON TABLE users IS 'people'"]
    assert only_sql("COMMENT ON COLUMN public.users.email IS 'x'", BEFORE) == [
        "COMMENT ON COLUMN public.users.email IS 'login'"
    ]
    assert only_sql("COMMENT ON COLUMN users.score IS 'x'", BEFORE) == ["COMMENT ON COLUMN users.score IS NULL"]
    assert only_sql("COMMENT ON VIEW v IS NULL", BEFORE) == ["COMMENT ON VIEW v IS 'a view'"]
    assert only_sql("COMMENT ON FUNCTION f(int) IS 'it''s'", None) == ["COMMENT ON FUNCTION f(int) IS NULL"]
    assert only_sql("COMMENT ON POLICY own ON users IS 'x'", BEFORE) == ["COMMENT ON POLICY own ON users IS NULL"]


def test_grant_and_revoke() -> None:
    assert only_sql("GRANT SELECT, INSERT ON TABLE t TO bob, alice WITH GRANT OPTION", EMPTY) == [
        "REVOKE SELECT, INSERT ON TABLE t FROM bob, alice"
    ]
    assert only_sql("GRANT EXECUTE ON FUNCTION s.f(int, text) TO PUBLIC", EMPTY) == [
        "REVOKE EXECUTE ON FUNCTION s.f(int, text) FROM PUBLIC"
    ]
    assert only_sql("GRANT USAGE ON SCHEMA app TO anon", EMPTY) == ["REVOKE USAGE ON SCHEMA app FROM anon"]
    assert only_sql("GRANT ALL ON ALL TABLES IN SCHEMA public TO svc", EMPTY) == [
        "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM svc"
    ]
    assert only_sql("REVOKE UPDATE (a, b) ON t FROM bob CASCADE", EMPTY) == ["GRANT UPDATE (a, b) ON t TO bob"]
    assert only_sql("REVOKE GRANT OPTION FOR SELECT ON t FROM bob", EMPTY) == [
        "GRANT SELECT ON t TO bob WITH GRANT OPTION"
    ]


# -- manual items ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "needle"),
    [
        ("INSERT INTO t (a) VALUES (1)", "which rows to delete"),
        ("UPDATE t SET a = 1 WHERE b", "alembic-safety rollback <backup id>"),
        ("DELETE FROM t WHERE a = 1", "alembic-safety rollback <backup id>"),
        ("TRUNCATE t", "alembic-safety rollback <backup id>"),
        ("COPY t FROM stdin", "which rows to delete"),
        ("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy' AFTER 'ok'", "cannot drop a value"),
        ("DO $$ BEGIN PERFORM 1; END $$", "DO block"),
        ("DO $tag$ BEGIN RAISE NOTICE 'a;b'; END $tag$", "DO block"),
        ("CREATE RULE r AS ON INSERT TO t DO NOTHING", "not reversed automatically"),
        ("ALTER TABLE t OWNER TO bob", "not reversed automatically"),
        ("CALL do_things()", "decide"),
        ("this is not sql at all", "decide"),
    ],
)
def test_manual_items(forward: str, needle: str) -> None:
    item = one(forward, EMPTY)
    assert item.kind == "manual" and needle in item.text, item
    assert item.source == forward


def test_every_statement_is_accounted_for() -> None:
    sql = "CREATE TABLE a (x int); INSERT INTO a VALUES (1); UPDATE a SET x = 2; select 1; DROP TABLE b"
    kinds = [i.kind for i in reverse_sql(sql, "postgres", EMPTY)]
    assert kinds == ["irreversible", "manual", "manual", "sql"]


def test_sqlalchemy_dialect_names_and_sqlite() -> None:
    assert only_sql("CREATE INDEX ix ON t (a)", EMPTY, dialect="postgresql") == ["DROP INDEX IF EXISTS ix"]
    assert only_sql("CREATE INDEX ix ON t (a)", EMPTY, dialect="mysql") == ["DROP INDEX ix ON t"]
    assert only_sql("ALTER TABLE t ADD COLUMN c int", EMPTY, dialect="sqlite") == ["ALTER TABLE t DROP COLUMN c"]


# -- round trips on PostgreSQL -----------------------------------------------------------------


@pytest.fixture
def pg(pg_url: sa.URL) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_url)
    yield engine
    engine.dispose()


CATALOG_QUERIES = {
    "columns": "SELECT table_schema, table_name, column_name, data_type, udt_name, is_nullable, column_default, "
    "character_maximum_length FROM information_schema.columns WHERE table_schema NOT IN "
    "('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
    "constraints": "SELECT n.nspname, c.conname, c.conrelid::regclass::text, pg_get_constraintdef(c.oid) "
    "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname NOT IN "
    "('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
    "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes WHERE schemaname NOT IN "
    "('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
    "functions": "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n "
    "ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    "views": "SELECT schemaname, viewname, definition FROM pg_views WHERE schemaname NOT IN "
    "('pg_catalog', 'information_schema') ORDER BY 1, 2",
    "matviews": "SELECT schemaname, matviewname, definition FROM pg_matviews ORDER BY 1, 2",
    "types": "SELECT n.nspname, t.typname, t.typtype, ARRAY(SELECT enumlabel::text FROM pg_enum e WHERE "
    "e.enumtypid = t.oid ORDER BY e.enumsortorder) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND t.typtype IN ('e', 'd', 'c') "
    "AND t.typrelid = 0 OR (t.typtype = 'c' AND n.nspname = 'public') ORDER BY 1, 2",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
    "WHERE NOT tgisinternal ORDER BY 1, 2",
    "policies": "SELECT schemaname, tablename, policyname, permissive, roles::text, cmd, qual, with_check "
    "FROM pg_policies ORDER BY 1, 2, 3",
    "rls": "SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n "
    "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "ORDER BY 1",
    "sequences": "SELECT schemaname, sequencename, data_type::text, start_value, increment_by FROM pg_sequences "
    "ORDER BY 1, 2",
    "comments": "SELECT d.classoid::regclass::text, c.oid::regclass::text, d.objsubid, d.description "
    "FROM pg_description d JOIN pg_class c ON c.oid = d.objoid ORDER BY 1, 2, 3",
    "grants": "SELECT grantee, table_schema, table_name, privilege_type, is_grantable "
    "FROM information_schema.role_table_grants WHERE grantee = 'as_rt_role' ORDER BY 1, 2, 3, 4",
    "routine_grants": "SELECT grantee, routine_name, privilege_type FROM information_schema.role_routine_grants "
    "WHERE grantee IN ('as_rt_role', 'PUBLIC') AND routine_schema = 'public' ORDER BY 1, 2, 3",
    "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' ORDER BY 1",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
}


def catalog(conn: sa.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {k: [tuple(r) for r in conn.execute(sa.text(q))] for k, q in CATALOG_QUERIES.items()}


def round_trip(engine: sa.Engine, pre: str, forward: str) -> list[str]:
    """Build ``pre``, reflect it, run ``forward``, run its reverse, and require the catalog to be
    the pre-state's again (and to have changed in between).  Returns the reverse statements."""
    with engine.begin() as conn:
        for s in split_statements(pre, "postgres"):
            conn.exec_driver_sql(s)
    with engine.begin() as conn:
        expected = catalog(conn)
        before = reflect_state(conn, schemas=(None, "app"))
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        for s in split_statements(forward, "postgres"):
            conn.exec_driver_sql(s.replace("%", "%%"))
        assert catalog(conn) != expected, "the forward SQL changed nothing"
    items = reverse_sql(forward, "postgresql", before)
    assert items and all(i.kind == "sql" for i in items), items
    with autocommit.connect() as conn:
        for item in items:
            conn.exec_driver_sql(item.text.replace("%", "%%"))
        after = catalog(conn)
    for key in CATALOG_QUERIES:
        assert after[key] == expected[key], key
    return [i.text for i in items]


@pytest.mark.postgres
def test_round_trip_create_objects(pg: sa.Engine) -> None:
    round_trip(pg, "CREATE TABLE base (id int PRIMARY KEY, a text)", r"""
        \set ON_ERROR_STOP on
        CREATE SCHEMA app;
        CREATE TABLE app.t (id serial PRIMARY KEY, name text NOT NULL DEFAULT 'x;y', base_id int REFERENCES base);
        CREATE UNIQUE INDEX t_name ON app.t (lower(name)) WHERE name <> '';
        CREATE INDEX CONCURRENTLY base_a ON base (a);
        CREATE VIEW app.v AS SELECT id FROM app.t;
        CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one;
        CREATE SEQUENCE app.seq START 10;
        CREATE TYPE mood AS ENUM ('sad', 'ok;');
        CREATE TYPE pair AS (a int, b text);
        CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
        CREATE FUNCTION app.add(a integer, b integer DEFAULT 1, OUT c integer) LANGUAGE sql AS $$ SELECT a + b; $$;
        CREATE PROCEDURE noop(x int) LANGUAGE plpgsql AS $body$ BEGIN PERFORM x; END; $body$;
        CREATE EXTENSION IF NOT EXISTS pgcrypto;
        ALTER TABLE base ADD COLUMN b int DEFAULT 3, ADD CONSTRAINT b_pos CHECK (b > 0);
        COMMENT ON TABLE base IS 'the base';
        """)  # fmt: skip


@pytest.mark.postgres
def test_round_trip_create_or_replace_function_back_to_old_body(pg: sa.Engine) -> None:
    out = round_trip(pg, """
        CREATE FUNCTION f(a integer, b text) RETURNS text LANGUAGE plpgsql AS $fn$
        BEGIN RETURN b || ';' || a; END; $fn$;
        CREATE VIEW v AS SELECT 1 AS one;
        """, """
        CREATE OR REPLACE FUNCTION f(a int, b text) RETURNS text LANGUAGE plpgsql AS $fn$
        BEGIN RETURN 'new;' || b; END; $fn$;
        CREATE OR REPLACE VIEW v AS SELECT 2 AS one;
        CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'select 1';
        """)  # fmt: skip
    assert out[0] == "DROP FUNCTION IF EXISTS f(int)"


@pytest.mark.postgres
def test_round_trip_drop_table_recreated(pg: sa.Engine) -> None:
    round_trip(pg, """
        CREATE TABLE org (id bigserial PRIMARY KEY);
        CREATE TABLE "Member" (
            id serial PRIMARY KEY,
            "user" varchar(40) NOT NULL DEFAULT 'anon',
            score numeric(10, 2) DEFAULT 0 CHECK (score >= 0),
            created timestamptz NOT NULL DEFAULT now(),
            org_id bigint REFERENCES org (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
            ident int GENERATED BY DEFAULT AS IDENTITY,
            CONSTRAINT member_user UNIQUE ("user", org_id)
        );
        CREATE INDEX member_score ON "Member" (score DESC) WHERE score > 0;
        COMMENT ON TABLE "Member" IS 'members';
        COMMENT ON COLUMN "Member"."user" IS 'who';
        """, 'DROP TABLE "Member"; ALTER TABLE org DROP CONSTRAINT org_pkey')  # fmt: skip


@pytest.mark.postgres
def test_round_trip_alter_table(pg: sa.Engine) -> None:
    round_trip(pg, """
        CREATE TABLE t (id int PRIMARY KEY, a text DEFAULT 'x', b int NOT NULL, c int, CONSTRAINT c_pos CHECK (c > 0));
        CREATE INDEX t_c ON t (c);
        """, """
        ALTER TABLE t ALTER COLUMN a SET DEFAULT 'y', ALTER COLUMN b DROP NOT NULL, ALTER COLUMN c SET NOT NULL;
        ALTER TABLE t ALTER COLUMN b TYPE text;
        ALTER TABLE t DROP COLUMN c;
        ALTER TABLE t RENAME COLUMN a TO aa;
        ALTER TABLE t RENAME CONSTRAINT t_pkey TO t_pk;
        ALTER TABLE t RENAME TO t2;
        """)  # fmt: skip


@pytest.mark.postgres
def test_round_trip_enum_type_created_and_dropped(pg: sa.Engine) -> None:
    round_trip(pg, "CREATE TYPE old_mood AS ENUM ('a', 'b')", """
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE TABLE person (m mood);
        DROP TYPE old_mood;
        ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
        """)  # fmt: skip


@pytest.mark.postgres
def test_round_trip_trigger_and_function_pair(pg: sa.Engine) -> None:
    round_trip(pg, """
        CREATE TABLE posts (id int, body text, updated timestamptz);
        CREATE FUNCTION old_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$;
        CREATE TRIGGER old_tr BEFORE DELETE ON posts FOR EACH ROW EXECUTE FUNCTION old_touch();
        """, """
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN NEW.updated := now(); RETURN NEW; END;
        $body$;
        CREATE TRIGGER posts_touch BEFORE UPDATE OF body ON posts FOR EACH ROW EXECUTE FUNCTION touch();
        DROP TRIGGER old_tr ON posts;
        DROP FUNCTION old_touch();
        """)  # fmt: skip


@pytest.mark.postgres
def test_round_trip_policy_and_row_level_security(pg: sa.Engine) -> None:
    round_trip(pg, """
        CREATE TABLE notes (id int, owner text);
        CREATE POLICY old_p ON notes FOR DELETE USING (owner = current_user);
        """, """
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        ALTER TABLE notes FORCE ROW LEVEL SECURITY;
        CREATE POLICY mine ON notes FOR SELECT USING (owner = current_user);
        DROP POLICY old_p ON notes;
        COMMENT ON COLUMN notes.owner IS 'who';
        """)  # fmt: skip


@pytest.mark.postgres
def test_round_trip_grants_to_a_role(pg: sa.Engine) -> None:
    with pg.begin() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS as_rt_role")
        conn.exec_driver_sql("CREATE ROLE as_rt_role")
    try:
        round_trip(pg, """
            CREATE TABLE doc (id int);
            CREATE FUNCTION h() RETURNS int LANGUAGE sql AS 'select 1';
            GRANT UPDATE ON doc TO as_rt_role;
            """, """
            GRANT SELECT, INSERT ON TABLE doc TO as_rt_role WITH GRANT OPTION;
            REVOKE UPDATE ON doc FROM as_rt_role;
            REVOKE EXECUTE ON FUNCTION h() FROM PUBLIC;
            """)  # fmt: skip
    finally:
        with pg.begin() as conn:
            conn.exec_driver_sql("DROP OWNED BY as_rt_role")
            conn.exec_driver_sql("DROP ROLE IF EXISTS as_rt_role")


def test_untokenizable_text_is_one_manual_item() -> None:
    sql = "CREATE TABLE a (x int); INSERT INTO a VALUES ('unterminated"
    assert len(split_statements(sql, "postgres")) == 1
    item = one(sql, EMPTY)
    assert item.kind == "manual" and item.source.startswith("CREATE TABLE a")
