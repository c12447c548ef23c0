"""The saas example (tests/examples/saas): two years of a PostgreSQL SaaS application's Alembic
history, 64 revisions, with the downgrades real projects end up with.  Each revision's docstring
says in a ``Downgrade:`` line what its downgrade is worth; CATALOGUE.md lists them and the counts.

* Structure, no database: files and ids, the one branch and its merge, every ``Downgrade:`` line
  against CATALOGUE.md and the designed counts, the downgrade bodies against their category.
* Offline: ``alembic upgrade head --sql`` renders the whole history.
* PostgreSQL: ``alembic upgrade head`` with alembic-safety installed on a fresh database; the
  offline script builds the same schema; every downgrade does what its docstring says (``correct``
  restores the schema exactly, ``wrong`` fails or leaves a different one, ``raises`` raises).
"""

from __future__ import annotations

import ast
import logging.config
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from .conftest import EXAMPLES, copy_example
from .helpers import alembic

EXAMPLE = EXAMPLES / "saas"
VERSIONS = EXAMPLE / "migrations" / "versions"
CATALOGUE = EXAMPLE / "CATALOGUE.md"

HEAD = "095f5bd3b096"
BRANCHPOINT = "3e61ba58d437"  # 0040: billing (0041-0044) and webhooks (0045-0047) start here
MERGE = "ae3d4015a55c"  # 0048
MERGED = ("55feb65e547f", "df6eaa325848")

CATEGORIES = ("correct", "pass", "raises", "wrong", "irreversible")
DESIGNED = {"correct": 21, "pass": 21, "raises": 4, "wrong": 16, "irreversible": 2}
TODO_PASSES = {11, 31, 53, 64}  # `pass  # TODO`
GET_BIND = {41}  # the only revisions that use op.get_bind()

TABLES = {
    "account_feature_flags", "accounts", "alembic_version", "api_keys", "audit_log", "feature_flags",
    "invoices", "labels", "memberships", "notifications", "payments", "plans", "projects",
    "task_comments", "task_labels", "tasks", "users", "webhook_deliveries", "webhook_endpoints",
}  # fmt: skip
FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.py")
REVISION_ID = re.compile(r"[0-9a-f]{12}")
# how each `wrong` downgrade goes wrong: it fails (CompileError for drop_constraint(None, ...), no
# such function, syntax error), or the schema after it differs from the one before, in these parts
WRONG_FAILS = {"0014", "0032", "0047", "0060"}
WRONG_DIFFS = {
    "0004": {"functions"},  # set_updated_at() left
    "0005": {"enums"},  # membership_role left
    "0008": {"triggers"},  # users_set_updated_at left
    "0019": {"relations", "sequences"},  # task_number_seq left
    "0033": {"columns", "views"},  # is_active VARCHAR(5), deactivated_at and the view stay
    "0040": {"functions", "triggers"},  # DROP FUNCTION ... CASCADE
    "0043": {"columns"},  # amount_cents stays NUMERIC(12, 2)
    "0052": {"functions"},  # audit_row_change() keeps its new body
    "0056": {"columns"},  # users.timezone left
    "0057": {"enums"},  # notification_kind left
    "0058": {"constraints"},  # the foreign key without ON DELETE SET NULL
    "0059": {"indexes"},  # ix_api_keys_account_id left
}
NOWHERE = sa.make_url("postgresql+psycopg2://nobody@127.0.0.1:1/none")


@dataclass(frozen=True)
class Revision:
    number: int
    slug: str
    path: Path
    revision: str
    down_revision: str | tuple[str, ...] | None
    downgrade_line: str
    category: str
    downgrade: ast.FunctionDef
    source: str

    @property
    def parents(self) -> tuple[str, ...]:
        if self.down_revision is None:
            return ()
        return self.down_revision if isinstance(self.down_revision, tuple) else (self.down_revision,)


def _assigned(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                assert node.value is not None
                return ast.literal_eval(node.value)
    raise AssertionError(f"no {name} =")


def _load(path: Path) -> Revision:
    match = FILE_NAME.fullmatch(path.name)
    assert match, f"{path.name} is not NNNN_slug.py"
    source = path.read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ""
    lines = [line for line in doc.splitlines() if line.startswith("Downgrade:")]
    assert len(lines) == 1, f"{path.name}: {len(lines)} 'Downgrade:' lines in the docstring"
    category = lines[0].removeprefix("Downgrade:").split()[0].rstrip(".,;:")
    down = _assigned(tree, "down_revision")
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert set(functions) >= {"upgrade", "downgrade"}, path.name
    return Revision(int(match[1]), match[2], path, _assigned(tree, "revision"),
                    tuple(down) if isinstance(down, list | tuple) else down,
                    lines[0], category, functions["downgrade"], source)  # fmt: skip


def _revisions() -> list[Revision]:
    return [_load(p) for p in sorted(VERSIONS.glob("*.py"))]


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows of the first Markdown table under ``heading``, cells unescaped."""
    section = text.split(heading, 1)[1]
    rows: list[list[str]] = []
    for line in section.strip().splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not set("".join(cells)) <= set("-: "):
            rows.append(cells)
    return rows[1:]  # without the header


def _catalogue() -> tuple[dict[str, int], list[list[str]]]:
    text = CATALOGUE.read_text()
    counts = {c: int(n) for c, n in _table(text, "## Counts")}
    return counts, _table(text, "## Revisions")


def _body(fn: ast.FunctionDef) -> list[ast.stmt]:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body


def _raises_not_implemented(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Raise) or stmt.exc is None:
        return False
    exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


@pytest.fixture(scope="module")
def revisions() -> list[Revision]:
    return _revisions()


@pytest.fixture(scope="module")
def script_dir(tmp_path_factory: pytest.TempPathFactory) -> ScriptDirectory:
    dest = tmp_path_factory.mktemp("saas")
    return ScriptDirectory.from_config(Config(str(copy_example("saas", dest, NOWHERE))))


# -- structure: no database --------------------------------------------------------------------


def test_history_shape(revisions: list[Revision], script_dir: ScriptDirectory) -> None:
    assert [r.number for r in revisions] == list(range(1, 65))
    ids = [r.revision for r in revisions]
    assert all(REVISION_ID.fullmatch(i) for i in ids) and len(set(ids)) == 64
    scripts = {s.revision: s for s in script_dir.walk_revisions()}
    assert set(scripts) == set(ids)
    assert script_dir.get_heads() == [HEAD] and script_dir.get_bases() == [revisions[0].revision]
    # linear, except one branch point and the merge that joins its two branches
    assert [r for r, s in scripts.items() if len(s.nextrev) > 1] == [BRANCHPOINT]
    assert [r.number for r in revisions if len(r.parents) > 1] == [48]
    assert scripts[MERGE].down_revision == MERGED
    # the files are numbered in an order Alembic can apply them in
    position = {r.revision: r.number for r in revisions}
    assert all(position[p] < r.number for r in revisions for p in r.parents)
    for r in revisions:  # the docstring names the revision and its parents, as Alembic writes them
        assert f"Revision ID: {r.revision}\nRevises: {', '.join(r.parents)}\n" in r.source, r.path.name


def test_downgrade_lines_agree_with_the_catalogue(revisions: list[Revision]) -> None:
    counts, rows = _catalogue()
    assert counts == {**DESIGNED, "total": 64}
    found = {c: sum(r.category == c for r in revisions) for c in CATEGORIES}
    assert found == DESIGNED, [(r.path.name, r.downgrade_line) for r in revisions if r.category not in CATEGORIES]
    assert len(rows) == 64
    for r, row in zip(revisions, rows, strict=True):
        number, revision, slug, _style, _what, category, line = row
        assert (int(number), revision, slug, category) == (r.number, r.revision, r.slug, r.category), row
        assert "Downgrade: " + line == r.downgrade_line, r.path.name


def test_downgrade_bodies_match_their_category(revisions: list[Revision]) -> None:
    for r in revisions:
        body = _body(r.downgrade)
        if r.category in ("pass", "irreversible") or r.revision == MERGE:
            assert len(body) == 1 and isinstance(body[0], ast.Pass), r.path.name
        elif r.category == "raises":
            assert len(body) == 1 and _raises_not_implemented(body[0]), r.path.name
        else:
            assert not any(isinstance(s, ast.Pass) for s in body), r.path.name
    todo = {r.number for r in revisions if re.search(r"^    pass  # TODO$", r.source, re.M)}
    assert todo == TODO_PASSES and all(revisions[n - 1].category == "pass" for n in todo)
    assert {r.number for r in revisions if "op.get_bind()" in r.source} == GET_BIND


def test_offline_sql_renders_the_whole_history(tmp_path: Path) -> None:
    ini = copy_example("saas", tmp_path / "saas", NOWHERE)
    proc = alembic(ini, "upgrade", "head", "--sql")
    assert proc.stderr.count("Running upgrade") == 64
    sql = proc.stdout
    for expected in ("CREATE EXTENSION IF NOT EXISTS pgcrypto", "CREATE TYPE membership_role AS ENUM",
                     "CREATE TYPE invoice_status AS ENUM", "ALTER TYPE task_status ADD VALUE",
                     "CREATE MATERIALIZED VIEW project_stats", "CREATE POLICY tasks_tenant_isolation",
                     "INSERT INTO plans", "ALTER TABLE comments RENAME TO task_comments",
                     f"UPDATE alembic_version SET version_num='{HEAD}'"):  # fmt: skip
        assert expected in sql, expected


# -- PostgreSQL --------------------------------------------------------------------------------

# the schema in the catalogues, public schema only, without what extensions own
FINGERPRINT = {
    "extensions": "SELECT extname FROM pg_extension",
    "relations": "SELECT relname, relkind, relrowsecurity FROM pg_class"
    " WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'm', 'S', 'p')",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attgenerated, a.attidentity
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace AND conrelid <> 0",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND NOT EXISTS (
            SELECT 1 FROM pg_depend d
            WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')""",
    "views": "SELECT relname, pg_get_viewdef(oid) FROM pg_class"
    " WHERE relnamespace = 'public'::regnamespace AND relkind IN ('v', 'm')",
    "enums": "SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)"
    " FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid"
    " WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname",
    "sequences": "SELECT sequencename, data_type::text, start_value, increment_by FROM pg_sequences"
    " WHERE schemaname = 'public'",
    "policies": "SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies WHERE schemaname = 'public'",
    "comments": "SELECT c.relname, d.objsubid, d.description FROM pg_description d"
    " JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass"
    " WHERE c.relnamespace = 'public'::regnamespace",
}

Fingerprint = dict[str, list[tuple[Any, ...]]]


def _fingerprint(url: sa.URL) -> Fingerprint:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return {k: sorted(tuple(map(str, row)) for row in conn.exec_driver_sql(q)) for k, q in FINGERPRINT.items()}
    finally:
        engine.dispose()


def _difference(before: Fingerprint, after: Fingerprint) -> dict[str, str]:
    parts = {}
    for key in FINGERPRINT:
        gone, new = set(before[key]) - set(after[key]), set(after[key]) - set(before[key])
        if gone or new:
            parts[key] = f"missing {sorted(gone)}, extra {sorted(new)}"
    return parts


@contextmanager
def _admin(url: sa.URL) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


@pytest.mark.postgres
def test_upgrade_head_on_postgresql(pg_url: sa.URL, tmp_path: Path, engine_for: Callable[[sa.URL], sa.Engine]) -> None:
    ini = copy_example("saas", tmp_path / "saas", pg_url, keep="0")
    proc = alembic(ini, "upgrade", "head")
    assert "alembic.safety" in proc.stderr
    assert alembic(ini, "heads").stdout.split() == [HEAD, "(head)"]
    engine = engine_for(pg_url)
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")] == [HEAD]
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == TABLES
    assert inspector.get_view_names() == ["active_memberships"]
    assert inspector.get_materialized_view_names() == ["project_stats"]
    assert [c["name"] for c in inspector.get_columns("active_memberships")] == [
        "id", "account_id", "user_id", "role", "email", "display_name", "member_since"]  # fmt: skip
    fingerprint = _fingerprint(pg_url)
    assert dict(fingerprint["enums"]) == {
        "task_status": "todo,in_progress,blocked,done",
        "invoice_status": "draft,open,paid,void,uncollectible",
        "membership_role": "owner,admin,member",
        "notification_kind": "mention,assignment,due_soon,invoice,system",
    }
    assert {t[1] for t in fingerprint["triggers"]} == {
        "accounts_set_updated_at", "users_set_updated_at", "projects_set_updated_at", "tasks_set_updated_at",
        "projects_audit", "tasks_audit", "invoices_audit", "feature_flags_audit", "payments_mark_invoice_paid",
    }  # fmt: skip
    assert {f[0] for f in fingerprint["functions"]} == {
        "set_updated_at()", "audit_row_change()", "mark_invoice_paid()", "prune_webhook_deliveries(integer)",
    }  # fmt: skip
    assert {e[0] for e in fingerprint["extensions"]} >= {"pgcrypto", "citext", "pg_trgm"}
    assert {p[1] for p in fingerprint["policies"]} == {"projects_tenant_isolation", "tasks_tenant_isolation"}
    assert {s[0] for s in fingerprint["sequences"]} >= {"task_number_seq", "invoice_number_seq"}
    # the seed data, the data migrations and the generated column came through
    plans = _scalar(engine, "SELECT string_agg(code, ',' ORDER BY monthly_price_cents) FROM plans")
    assert plans == "free,team,business"
    assert _scalar(engine, "SELECT count(*) FROM feature_flags") == 3
    amount = "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'invoices'::regclass"
    assert _scalar(engine, amount + " AND attname = 'amount'") == "numeric(12,2)"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO accounts (name, slug, plan_id) VALUES ('Acme', 'acme', 1)")
        conn.exec_driver_sql("INSERT INTO projects (account_id, name) SELECT id, 'Launch' FROM accounts")
        conn.exec_driver_sql("INSERT INTO tasks (project_id, title) SELECT id, 'Write the press release' FROM projects")
        conn.exec_driver_sql("REFRESH MATERIALIZED VIEW project_stats")
    assert _scalar(engine, "SELECT number FROM tasks") == 1000
    assert _scalar(engine, "SELECT count(*) FROM tasks WHERE search_vector @@ to_tsquery('simple', 'press')") == 1
    assert _scalar(engine, "SELECT count(*) FROM audit_log") == 2  # projects and tasks audited
    assert _scalar(engine, "SELECT task_count FROM project_stats") == 1


@pytest.mark.postgres
def test_offline_script_builds_the_same_schema(pg_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("saas", tmp_path / "saas", pg_url, enabled="false")
    alembic(ini, "upgrade", "head")
    script = alembic(ini, "upgrade", "head", "--sql").stdout
    offline = pg_url.set(database=f"{pg_url.database}_offline")
    with _admin(pg_url) as admin:
        admin.exec_driver_sql(f'CREATE DATABASE "{offline.database}"')
        try:
            engine = sa.create_engine(offline, poolclass=sa.NullPool)
            try:
                raw = engine.raw_connection()
                try:
                    raw.autocommit = True  # type: ignore[attr-defined]  # the script has its own BEGIN / COMMIT
                    cursor = raw.cursor()
                    # one statement at a time, as psql runs it: a new enum value must be committed
                    # (by the script's COMMIT) before a later statement may use it
                    for statement in script.split(";\n\n"):
                        if statement.strip():
                            cursor.execute(statement)
                finally:
                    raw.close()
            finally:
                engine.dispose()
            assert _fingerprint(offline) == _fingerprint(pg_url)
        finally:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{offline.database}" WITH (FORCE)')


@pytest.mark.postgres
@pytest.mark.slow
def test_every_downgrade_does_what_its_docstring_says(
    pg_url: sa.URL, tmp_path: Path, revisions: list[Revision], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walk the history one revision at a time; after each ``correct``, ``wrong`` or ``raises``
    revision, run its downgrade on a copy of the database and compare with the schema before it."""
    monkeypatch.setattr(logging.config, "fileConfig", lambda *a, **k: None)  # keep pytest's logging
    ini = copy_example("saas", tmp_path / "saas", pg_url, enabled="false")
    names = {k: f"{pg_url.database}_{k}" for k in ("walk", "side", "scratch")}
    urls = {k: pg_url.set(database=n) for k, n in names.items()}
    # the webhooks branch is walked on its own database, so that downgrading one of its revisions
    # never touches the billing branch
    side_branch = {r.revision for r in revisions if 45 <= r.number <= 47}

    def config(url: sa.URL) -> Config:
        cfg = Config(str(ini))
        cfg.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
        return cfg

    errors: dict[str, str] = {}  # file name -> the error its downgrade raised
    diffs: dict[str, dict[str, str]] = {}  # file name -> how the schema after its downgrade differs
    problems: list[str] = []
    with _admin(pg_url) as admin:

        def create(name: str, template: str | None = None) -> None:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{names[name]}" WITH (FORCE)')
            like = f' TEMPLATE "{names[template]}"' if template else ""
            admin.exec_driver_sql(f'CREATE DATABASE "{names[name]}"{like}')

        try:
            create("walk")
            for r in revisions:
                db = "side" if r.revision in side_branch else "walk"
                for parent in r.parents:  # the merge: bring the other branch in first
                    command.upgrade(config(urls[db]), parent)
                before = _fingerprint(urls[db])
                command.upgrade(config(urls[db]), r.revision)
                if r.revision == BRANCHPOINT:
                    create("side", template="walk")
                if r.category not in ("correct", "wrong", "raises"):
                    continue
                create("scratch", template=db)
                error: BaseException | None = None
                try:
                    # one step down: what descends from the (first) parent goes, which for the merge
                    # is the merge alone
                    command.downgrade(config(urls["scratch"]), r.parents[0])
                except Exception as exc:
                    error = exc
                    errors[r.path.name] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                else:
                    diffs[r.path.name] = _difference(before, _fingerprint(urls["scratch"]))
                found = errors.get(r.path.name) or "; ".join(f"{k}: {v}" for k, v in diffs[r.path.name].items())
                if r.category == "correct" and found:
                    problems.append(f"{r.path.name} is 'correct' but: {found}")
                elif r.category == "wrong" and not found:
                    problems.append(f"{r.path.name} is 'wrong' but its downgrade restores the schema")
                elif r.category == "raises" and not isinstance(error, NotImplementedError):
                    problems.append(f"{r.path.name} is 'raises' but: {found or 'no error'}")
        finally:
            for name in names.values():
                admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert problems == []
    assert len(errors) + len(diffs) == DESIGNED["correct"] + DESIGNED["wrong"] + DESIGNED["raises"]
    # the wrong ones that fail outright, and those that leave a different schema behind
    failing = {n[:4] for n, e in errors.items() if not e.startswith("NotImplementedError")}
    assert failing == WRONG_FAILS
    assert {n[:4]: set(d) for n, d in diffs.items() if d} == WRONG_DIFFS
