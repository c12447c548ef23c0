"""A realistic Alembic history (tests/examples/realworld: 51 revisions with autogenerate output,
batch blocks, dialect branches, PL/pgSQL, views, enums, data migrations through the connection,
a merge, a branch label, depends_on, a custom operation, a revision that needs an environment
variable) through alembic-safety.

* Pure: every revision's upgrade() and downgrade() is recorded for PostgreSQL, SQLite and MySQL
  and run through the policy: nothing raises, whatever cannot be read is an ``opaque`` reason.
* PostgreSQL: ``alembic upgrade head`` with alembic-safety installed, then the backups.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import ops as alembic_ops
from alembic.script import Script, ScriptDirectory
from sqlalchemy.dialects import mysql, postgresql, sqlite

from alembic_safety.config import SafetyConfig
from alembic_safety.record import RecordedStep, flatten, record
from alembic_safety.snapshot.policy import RiskReport, plan_snapshot, risks_of
from alembic_safety.sqlinfo import COLUMNS, OPAQUE, ROWS, SCHEMA, WHOLE, TableRef

from .conftest import copy_example
from .helpers import alembic, backups_json, safety

HEAD = "908a1dd257d5"
DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect(), "mysql": mysql.dialect()}
ENV_VAR = "RW_DEFAULT_REGION"  # read by revision 0e46b5fa5b0c

Key = tuple[str, str, str]  # (revision, "upgrade" | "downgrade", dialect name)


class History:
    def __init__(self, scripts: dict[str, Script]) -> None:
        self.scripts = scripts
        self.steps: dict[Key, tuple[RecordedStep, RiskReport]] = {}
        self.failures: list[str] = []

    def step(self, revision: str, fn: str = "upgrade", dialect: str = "postgresql") -> RecordedStep:
        return self.steps[(revision, fn, dialect)][0]

    def report(self, revision: str, fn: str = "upgrade", dialect: str = "postgresql") -> RiskReport:
        return self.steps[(revision, fn, dialect)][1]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """Every revision of the copied project, recorded for each dialect in both directions."""
    dest = tmp_path_factory.mktemp("realworld")
    ini = copy_example("realworld", dest, sa.URL.create("sqlite", database=str(dest / "unused.db")))
    script_dir = ScriptDirectory.from_config(Config(str(ini)))
    result = History({s.revision: s for s in script_dir.walk_revisions()})
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENV_VAR, raising=False)  # that revision must fail to record, as on a bare machine
        for revision, script in result.scripts.items():
            for fn in ("upgrade", "downgrade"):
                for name, dialect in DIALECTS.items():
                    try:
                        step = record(getattr(script.module, fn), dialect)
                        result.steps[(revision, fn, name)] = (step, risks_of(step))
                    except BaseException:
                        result.failures.append(f"{revision} {fn} on {name}:\n{traceback.format_exc()}")
    return result


def _kinds(step: RecordedStep) -> list[str]:
    return [e.kind for _, effects in step.sql for e in effects]


def _risks(report: RiskReport) -> set[tuple[str, tuple[str, ...] | None, str | None]]:
    return {(r.table.key, r.columns, r.where) for r in report.risks}


def _opaque(report: RiskReport) -> str:
    return " | ".join(report.opaque)


# -- pure: no database -------------------------------------------------------------------------


def test_history_shape(history: History) -> None:
    scripts = history.scripts
    assert len(scripts) >= 45
    heads = [r for r, s in scripts.items() if not s.nextrev]
    assert heads == [HEAD]
    assert scripts["47635ed08d6b"].down_revision == ("f82def7d9967", "422a9248b974")  # the merge
    assert scripts["af5d9f2e9ea4"].branch_labels == {"billing"}
    assert scripts["bf41f1f0742a"].dependencies == "af5d9f2e9ea4"


def test_every_revision_records_without_a_traceback(history: History) -> None:
    assert history.failures == [], "\n\n".join(history.failures)
    assert len(history.steps) == len(history.scripts) * 2 * len(DIALECTS)
    for key, (step, report) in history.steps.items():
        assert isinstance(step, RecordedStep) and isinstance(report, RiskReport), key
        for reason in report.opaque:
            assert isinstance(reason, str) and reason.strip(), key
            assert "Traceback" not in reason and "\n" not in reason, (key, reason)
        for r in report.risks:
            assert r.table.name, (key, r)


def test_data_migrations_through_the_connection_are_opaque(history: History) -> None:
    for revision in ("aed04ca87fc2", "a9dfbaecde5b"):  # select + update loop; insert loop
        for dialect in DIALECTS:
            step, report = history.step(revision, dialect=dialect), history.report(revision, dialect=dialect)
            assert step.ops == () and report.risks == ()
            assert "through the connection (bind.execute)" in _opaque(report) and not step.complete
    # sa.inspect(op.get_bind()) to make a revision idempotent
    assert "NoInspectionAvailable" in _opaque(history.report("0e0bafbec9a6"))
    # the enum type dropped through the connection in a downgrade
    assert "through the connection" in _opaque(history.report("566bc55a45f8", "downgrade"))
    # tags: SQL on PostgreSQL, a Python loop on the others
    assert history.report("5c8067fd4c1e").opaque == ()
    assert "through the connection" in _opaque(history.report("5c8067fd4c1e", dialect="sqlite"))


def test_whole_table_risks(history: History) -> None:
    report = history.report("00d953a2f2b6")  # DELETE without WHERE, TRUNCATE
    assert _risks(report) == {("login_attempts", None, None), ("sessions", None, None)}
    assert {r.reason for r in report.risks} == {"DELETE without a usable WHERE", "TRUNCATE"}
    assert _kinds(history.step("00d953a2f2b6", dialect="sqlite")) == [WHOLE, WHOLE]  # DELETE there
    # INSERT ... ON CONFLICT DO UPDATE may rewrite any row; the SQLite branch is an UPDATE ... WHERE
    assert _risks(history.report("f82def7d9967")) == {("plans", None, None)}
    assert ("plans", ("monthly_price_cents",), "code = 'pro'") in _risks(
        history.report("f82def7d9967", dialect="sqlite")
    )
    # DELETE ... USING: the WHERE is not the target's alone
    assert ("memberships", None, None) in _risks(history.report("84d0b2e73ae0"))
    # drop_table, and DROP TABLE inside a multi-statement string
    assert _risks(history.report("422a9248b974")) == {("legacy_imports", None, None)}
    assert _risks(history.report("70fab78eda4f")) == {("sessions", None, None), ("login_attempts", None, None)}
    assert _risks(history.report("6dbbef65ed78")) == {("audit_log", None, None)}
    assert _risks(history.report("6dbbef65ed78", dialect="sqlite")) == {("audit_log", None, None)}
    # the downgrade of the v1 import empties ten tables in one string
    assert _kinds(history.step("5d96265beda9", "downgrade")) == [WHOLE] * 10


def test_multi_statement_sql_yields_one_effect_per_statement(history: History) -> None:
    assert _kinds(history.step("33f507f0cbd4")) == [COLUMNS, ROWS, COLUMNS, SCHEMA]
    assert _risks(history.report("33f507f0cbd4")) == {
        ("organizations", ("plan_id",), "plan_id IS NULL"),
        ("sessions", None, "expires_at < '2023-03-01'"),
        ("users", ("is_active",), "last_login_at IS NULL AND created_at < '2021-06-10'"),
    }
    assert _kinds(history.step("5d96265beda9")) == [SCHEMA] * 7  # SELECT setval(...) x 7
    assert _kinds(history.step("6dbbef65ed78")) == [SCHEMA] * 5 + [WHOLE]  # partitions, INSERT, DROP
    # the enum dance: UPDATE, ALTER TYPE, CREATE TYPE, ALTER COLUMN TYPE, DROP TYPE
    assert _kinds(history.step("aa5b18677db7", "downgrade")) == [COLUMNS, SCHEMA, SCHEMA, COLUMNS, OPAQUE]
    # PL/pgSQL function, triggers, views, materialized views, grants: schema only
    for revision in ("9823e6ba3ad7", "dd4e1fcfb980", "68340cc8af11", "eee4f585675f", "0f4be1030fe1"):
        step, report = history.step(revision), history.report(revision)
        assert step.sql and set(_kinds(step)) == {SCHEMA}, revision
        assert report.risks == () and report.opaque == (), revision
    # DO $$ ... $$ cannot be read; SQLite takes the batch branch and is readable
    assert "DO $$" in _opaque(history.report("3a7c6088155f"))
    assert _risks(history.report("3a7c6088155f", dialect="sqlite")) == {("users", ("timezone",), None)}


def test_column_risks(history: History) -> None:
    # autogenerate: drop_column (+ an UPDATE of the column the step adds)
    assert ("users", ("legacy_password_hash",), None) in _risks(history.report("c1d7b7decc0c"))
    # alter_column type / nullability with existing_type
    assert _risks(history.report("5e6add70e34d")) >= {
        ("tasks", ("title",), None),
        ("users", ("display_name",), None),
        ("projects", ("created_at",), None),
    }
    # batch_alter_table(recreate="always")
    step = history.step("b3753b4a3ee2")
    assert isinstance(step.ops[-1], alembic_ops.ModifyTableOps)
    assert _risks(history.report("b3753b4a3ee2")) >= {
        ("task_comments", ("legacy_markup",), None),
        ("task_comments", ("body",), None),
    }
    # sa.table() + op.execute(t.update().where(...))
    assert ("tasks", ("priority",), "tasks.status = 'done'") in _risks(history.report("158d9a0b2361"))
    # UPDATE without WHERE
    assert ("tasks", ("estimate_hours",), None) in _risks(history.report("4cc33c234038"))
    # raw ALTER TABLE ... DROP COLUMN, two columns
    assert ("users", ("theme", "locale"), None) in _risks(history.report("26ad88c279d9"))
    # alter_column(new_column_name=..., type_=..., postgresql_using=...)
    assert _risks(history.report("699f5fd8e665")) == {("invoices", ("amount_cents",), None)}
    # text().bindparams() with a datetime, compiled with literal values
    assert ("invoices", ("status",), "status = 'open' AND issued_at < '2023-09-02 00:00:00'") in _risks(
        history.report("ca1a54c6c4b3")
    )
    # the MySQL branch modifies the column; the PostgreSQL one only adds an index
    assert _risks(history.report("da0aaa72870b", dialect="mysql")) == {("users", ("email",), None)}
    assert history.report("da0aaa72870b").risks == ()


def test_schema_only_revisions_put_nothing_at_risk(history: History) -> None:
    for revision in ("d1a69b9b1325", "566bc55a45f8", "cf0c4243ed52", "046355ac0ecd", "1ff12e825ce1",
                     "d3304d14cf1a", "668d6a423cf9", "d17835c9a8c4", "7658f94855d0", "af5d9f2e9ea4",
                     "bf41f1f0742a", "47635ed08d6b", "07bd604af42a", "d1775438a5b5", HEAD):  # fmt: skip
        for dialect in DIALECTS:
            report = history.report(revision, dialect=dialect)
            assert report.risks == () and report.opaque == (), (revision, dialect, report)


def test_unusual_constructs(history: History) -> None:
    # a custom operation registered in the revision file
    assert "CreateSequenceOp is not known" in _opaque(history.report("fdfbd6fad8db"))
    assert "DropSequenceOp is not known" in _opaque(history.report("fdfbd6fad8db", "downgrade"))
    # op.invoke() of operation objects, and their reverse()
    assert _risks(history.report("db183f20134c")) == {("users", ("nickname",), None)}
    assert _risks(history.report("db183f20134c", "downgrade")) == {("projects", ("color",), None)}
    # autocommit_block() around CREATE INDEX CONCURRENTLY / ALTER TYPE ... ADD VALUE
    assert [type(o).__name__ for o in history.step("046355ac0ecd").ops][-1] == "CreateIndexOp"
    assert _kinds(history.step("bfb65bae2d26")) == [SCHEMA, SCHEMA]
    # op.drop_constraint(None, ...) as autogenerate writes it for an unnamed foreign key
    dropped = [o for o in flatten(history.step("7658f94855d0", "downgrade").ops)
               if isinstance(o, alembic_ops.DropConstraintOp)]  # fmt: skip
    assert len(dropped) == 1 and dropped[0].constraint_name is None
    # the merge revision and the empty one record nothing
    assert history.step("47635ed08d6b").ops == () == history.step(HEAD).ops
    # the PostgreSQL-only revisions record nothing elsewhere
    for revision in ("68340cc8af11", "eee4f585675f", "0f4be1030fe1", "4de4ad915a36"):
        assert history.step(revision, dialect="sqlite").ops == (), revision


def test_revisions_that_raise_when_recorded_are_opaque(history: History) -> None:
    assert "KeyError: 'RW_DEFAULT_REGION'" in _opaque(history.report("0e46b5fa5b0c"))
    for revision in ("bfb65bae2d26", "6dbbef65ed78"):
        assert "NotImplementedError" in _opaque(history.report(revision, "downgrade"))
    # reads an -x argument: without an environment that fails, with one it records normally
    assert "get_x_argument" in _opaque(history.report("ea396a42ed19"))
    environment = SimpleNamespace(get_x_argument=lambda as_dictionary=False: {"admin_email": "ops@example.org"})
    step = record(history.scripts["ea396a42ed19"].module.upgrade, DIALECTS["postgresql"], environment=environment)
    assert step.opaque == () and [type(o).__name__ for o in step.ops] == ["BulkInsertOp", "ExecuteSQLOp"]
    assert "ops@example.org" in str(step.ops[1].sqltext.compile(compile_kwargs={"literal_binds": True}))


class _Catalog:
    """What exists before 5c8067fd4c1e on SQLite."""

    existing: ClassVar[dict[str, list[str]]] = {
        "tasks": ["id", "project_id", "title", "labels"],
        "users": ["id", "email"],
    }

    def resolve(self, ref: TableRef) -> TableRef | None:
        return ref if ref.name in self.existing else None

    def tables(self, schemas: Any) -> list[TableRef]:
        return [TableRef(n) for n in self.existing]

    def columns(self, ref: TableRef) -> list[str]:
        return self.existing[ref.name]

    def primary_key(self, ref: TableRef) -> list[str]:
        return ["id"]


def test_opaque_step_stopped_early_still_snapshots(history: History, tmp_path: Path) -> None:
    report = history.report("5c8067fd4c1e", dialect="sqlite")
    requests, _ = plan_snapshot(report, SafetyConfig(backup_dir=tmp_path), _Catalog(), dialect_name="sqlite")
    assert TableRef("tasks") in {r.table for r in requests}


# -- PostgreSQL end to end -------------------------------------------------------------------

# revisions that destroy rows or values, and the tables their backups must hold
DESTRUCTIVE = {
    "c1d7b7decc0c": {"users"},  # drop_column
    "5e6add70e34d": {"users", "tasks", "projects"},  # alter_column type / nullability
    "b3753b4a3ee2": {"task_comments"},  # batch recreate
    "aed04ca87fc2": {"users", "tasks", "organizations"},  # opaque get_bind loop: every table
    "158d9a0b2361": {"tasks"},
    "33f507f0cbd4": {"organizations", "sessions", "users"},
    "00d953a2f2b6": {"login_attempts", "sessions"},
    "4cc33c234038": {"tasks"},
    "fdfbd6fad8db": {"tasks"},  # custom operation: opaque
    "db183f20134c": {"users"},  # op.invoke(DropColumnOp)
    "422a9248b974": {"legacy_imports"},  # drop_table: moved
    "a9dfbaecde5b": {"invoices", "organizations", "plans"},  # opaque
    "699f5fd8e665": {"invoices"},
    "f82def7d9967": {"plans"},
    "3a7c6088155f": {"users"},  # DO $$: every table
    "37c9d57dcafd": {"users"},
    "26ad88c279d9": {"users"},
    "0e0bafbec9a6": {"users", "events"},  # sa.inspect(op.get_bind()): every table
    "dd63d1764460": {"projects"},
    "84d0b2e73ae0": {"projects", "memberships"},
    "5c8067fd4c1e": {"tasks"},
    "70fab78eda4f": {"sessions", "login_attempts"},  # drop_table x 2: moved
    "ca1a54c6c4b3": {"tasks", "invoices"},
}
NOTHING_AT_RISK = {"d1a69b9b1325", "566bc55a45f8", "cf0c4243ed52", "5d96265beda9", "046355ac0ecd",
                   "9823e6ba3ad7", "dd4e1fcfb980", "68340cc8af11", "bfb65bae2d26", "1ff12e825ce1",
                   "d3304d14cf1a", "668d6a423cf9", "d17835c9a8c4", "7658f94855d0", "af5d9f2e9ea4",
                   "0e46b5fa5b0c", "bf41f1f0742a", "47635ed08d6b", "da0aaa72870b", "07bd604af42a",
                   "d1775438a5b5", "eee4f585675f", "aa5b18677db7", "ea396a42ed19", "0f4be1030fe1", HEAD}  # fmt: skip


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


def _events(ini: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (ini.parent / "backups" / "audit.jsonl").read_text().splitlines()]


def test_upgrade_head_on_postgresql(pg_url: sa.URL, tmp_path: Path, engine_for, monkeypatch) -> None:
    ini = copy_example("realworld", tmp_path / "rw", pg_url, keep="0")
    engine = engine_for(pg_url)

    # without the environment variable the region revision fails, as it does on a bare machine;
    # the autocommit_block() of bfb65bae2d26 had committed everything before it
    monkeypatch.delenv(ENV_VAR, raising=False)
    failed = alembic(ini, "upgrade", "head", check=False)
    assert failed.returncode != 0 and "KeyError: 'RW_DEFAULT_REGION'" in failed.stderr
    assert _scalar(engine, "SELECT version_num FROM alembic_version") == "68340cc8af11"
    [event] = [e for e in _events(ini) if e["event"] == "revision_failed"]
    assert event["revision"] == "0e46b5fa5b0c" and "KeyError" in event["error"]

    monkeypatch.setenv(ENV_VAR, "eu-central-1")
    proc = alembic(ini, "-x", "admin_email=ops@example.org", "upgrade", "head")
    assert "alembic.safety" in proc.stderr
    assert _scalar(engine, "SELECT version_num FROM alembic_version") == HEAD
    # the data came through
    assert _scalar(engine, "SELECT string_agg(DISTINCT region, ',') FROM organizations") == "eu-central-1"
    assert _scalar(engine, "SELECT count(*) FROM users WHERE email = 'ops@example.org'") == 1
    assert _scalar(engine, "SELECT count(*) FROM users WHERE email <> lower(email)") == 0
    assert _scalar(engine, "SELECT count(*) FROM events") == 200
    assert _scalar(engine, "SELECT count(*) FROM task_tags") > 0
    assert _scalar(engine, "SELECT count(*) FROM project_stats") == 10
    assert _scalar(engine, "SELECT enum_range(NULL::task_status)::text") == "{todo,doing,blocked,done,cancelled}"
    public = set(sa.inspect(engine).get_table_names())
    assert not public & {"legacy_imports", "audit_log", "sessions", "login_attempts", "task_comments"}

    listed = backups_json(ini)
    assert all(b["complete"] and b["direction"] == "upgrade" for b in listed)
    by_revision: dict[str, dict[str, Any]] = {}
    for b in listed:
        assert b["revision_to"] not in by_revision, f"two backups for {b['revision_to']}"
        by_revision[b["revision_to"]] = b
    tables = {rev: {t["name"]: t for t in b["tables"]} for rev, b in by_revision.items()}
    missing = {rev: want for rev, want in DESTRUCTIVE.items() if not want <= set(tables.get(rev, {}))}
    assert missing == {}, f"backups missing or incomplete: {missing}"
    assert not NOTHING_AT_RISK & set(by_revision), "a revision with nothing at risk left a backup"

    users = tables["c1d7b7decc0c"]["users"]
    assert users["columns"] == ["id", "legacy_password_hash"] and users["rows"] == 40
    assert tables["00d953a2f2b6"]["login_attempts"]["columns"] is None
    assert tables["00d953a2f2b6"]["login_attempts"]["rows"] == 100
    assert tables["33f507f0cbd4"]["sessions"]["where"] == "expires_at < '2023-03-01'"
    assert tables["84d0b2e73ae0"]["projects"]["where"] == "slug LIKE 'sandbox-%'"
    assert tables["84d0b2e73ae0"]["projects"]["rows"] == 2
    assert len(tables["0e0bafbec9a6"]) >= 10  # opaque and names no table: every table

    for rev in ("c1d7b7decc0c", "422a9248b974", "0e0bafbec9a6"):  # columns, a moved table, a partitioned one
        assert safety(ini, "show", by_revision[rev]["id"], "--verify").returncode == 0

    opaque = {e["revision"] for e in _events(ini) if e["event"] == "step_opaque"}
    assert {"aed04ca87fc2", "a9dfbaecde5b", "fdfbd6fad8db", "3a7c6088155f", "0e0bafbec9a6"} <= opaque


def test_drop_table_inside_multi_statement_sql_is_backed_up(pg_url: sa.URL, tmp_path: Path, monkeypatch) -> None:
    ini = copy_example("realworld", tmp_path / "rw", pg_url, keep="0")
    monkeypatch.setenv(ENV_VAR, "eu-central-1")
    alembic(ini, "upgrade", "6dbbef65ed78")
    by_revision = {b["revision_to"]: b for b in backups_json(ini)}
    assert "6dbbef65ed78" in by_revision
    assert [t["name"] for t in by_revision["6dbbef65ed78"]["tables"]] == ["audit_log"]


@pytest.mark.parametrize("connected", [True, False])
def test_plan_never_crashes_on_the_history(pg_url: sa.URL, tmp_path: Path, connected: bool) -> None:
    """`alembic-safety plan` over all 51 revisions, with live facts and without a database:
    every revision is planned, unreadable ones as opaque findings, never a traceback."""
    url = pg_url if connected else sa.make_url("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    ini = copy_example("realworld", tmp_path / "rw", url)
    for fmt in ("json", "markdown", "text"):
        proc = safety(ini, "plan", "base:heads", "--format", fmt, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
    data = json.loads(safety(ini, "plan", "base:heads", "--format", "json").stdout)
    assert len(data["revisions"]) >= 45
    by = {r["revision"]: r for r in data["revisions"]}
    assert "SAF110" in {f["code"] for f in by["aed04ca87fc2"]["findings"]}  # get_bind data migration: opaque
    assert "SAF303" in {f["code"] for f in by["bfb65bae2d26"]["findings"]}  # ALTER TYPE ... ADD VALUE
    assert by["bfb65bae2d26"]["reversible"] == "no"
    assert "SAF401" in {f["code"] for f in by["7658f94855d0"]["findings"]}  # drop_constraint(None, ...)
    assert by["47635ed08d6b"]["down_revision"] == ["f82def7d9967", "422a9248b974"]  # the merge
    assert all(r["rollback_steps"] for r in data["revisions"])
