"""``alembic-safety verify``: a history whose downgrades go wrong in the ways that matter — one is
``pass``, one forgets an index, one leaves a trigger behind, one narrows a type (data loss a
snapshot brings back) — gets the right verdict per revision, on a real PostgreSQL; branches and
merges on SQLite; the scratch database is never the project's own."""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.errors import UsageError
from alembic_safety.project import load_project
from alembic_safety.verify import render_text, verify

from .conftest import copy_example
from .helpers import safety


def write_revision(versions: Path, rev: str, down: str | tuple[str, ...] | None, upgrade: str, downgrade: str,
                   doc: str = "") -> None:  # fmt: skip
    body = f'''"""{doc or rev}"""
from alembic import op
import sqlalchemy as sa
from alembic_safety.errors import IrreversibleRevision

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")}


def downgrade():
{textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")}
'''
    (versions / f"{rev}.py").write_text(body)


BASE_UP = """
op.create_table("items",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("code", sa.String(20), nullable=False, unique=True),
    sa.Column("price", sa.Numeric(10, 2), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.CheckConstraint("price >= 0", name="ck_items_price"),
    sa.CheckConstraint("status IN ('new', 'done')", name="ck_items_status"))
op.create_table("tags",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("label", sa.Text, nullable=True))
"""
BASE_DOWN = 'op.drop_table("tags")\nop.drop_table("items")'


def pg_history(versions: Path) -> None:
    write_revision(versions, "r01", None, BASE_UP, BASE_DOWN, "tables")
    write_revision(versions, "r02", "r01", 'op.add_column("items", sa.Column("note", sa.Text))', "pass",
                   "downgrade is pass")
    write_revision(versions, "r03", "r02",
                   'op.add_column("tags", sa.Column("weight", sa.Integer))\n'
                   'op.create_index("ix_items_name", "items", ["name"])',
                   'op.drop_column("tags", "weight")', "forgets an index")
    write_revision(versions, "r04", "r03", """
        op.execute("CREATE FUNCTION touch_tags() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
        op.execute("CREATE TRIGGER tags_touch BEFORE UPDATE ON tags FOR EACH ROW EXECUTE FUNCTION touch_tags()")
        op.add_column("tags", sa.Column("touched_at", sa.DateTime))
        """, 'op.drop_column("tags", "touched_at")', "leaves a trigger behind")
    write_revision(versions, "r05", "r04",
                   'op.alter_column("items", "name", type_=sa.String(10), existing_type=sa.String(40), '
                   'existing_nullable=False, postgresql_using="left(name, 10)")',
                   'op.alter_column("items", "name", type_=sa.String(40), existing_type=sa.String(10), '
                   'existing_nullable=False)', "narrows a type")
    write_revision(versions, "r06", "r05", 'op.add_column("items", sa.Column("rank", sa.Integer))',
                   'op.drop_column("items", "rank")', "a correct one")
    write_revision(versions, "r07", "r06", 'op.drop_column("tags", "label")',
                   'raise IrreversibleRevision("tags.label is gone; restore it from the backup")', "declared")
    write_revision(versions, "r08", "r07", 'op.drop_table("tags")', """
        op.create_table("tags",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
            sa.Column("weight", sa.Integer), sa.Column("touched_at", sa.DateTime))
        op.execute("CREATE TRIGGER tags_touch BEFORE UPDATE ON tags FOR EACH ROW EXECUTE FUNCTION touch_tags()")
        """, "drops a table, recreated empty")


@pytest.mark.postgres
def test_verdicts_on_postgresql(pg_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("generate", tmp_path / "proj", pg_url)
    pg_history(tmp_path / "proj" / "migrations" / "versions")
    server = pg_url.set(database="postgres").render_as_string(hide_password=False)
    project = load_project(str(ini))
    report = verify(project, url=server, seed_rows=5)
    got = {r.revision: r for r in report.revisions}
    text = render_text(report, verbose=True)
    assert [r.revision for r in report.revisions] == ["r01", "r02", "r03", "r04", "r05", "r06", "r07", "r08"], text
    assert got["r01"].verdict == "ok", text
    assert got["r02"].verdict == "schema-mismatch", text
    assert any("note" in d for d in got["r02"].details), text
    assert got["r03"].verdict == "schema-mismatch", text
    assert any("ix_items_name" in d for d in got["r03"].details), text
    assert got["r04"].verdict == "schema-mismatch", text
    assert any("tags_touch" in d for d in got["r04"].details), text
    assert got["r05"].verdict == "lossy-but-recoverable", text
    assert got["r05"].backup_id, text
    assert any("items" in d for d in got["r05"].details), text
    assert got["r06"].verdict == "ok", text
    assert got["r07"].verdict == "irreversible (declared)", text
    assert got["r08"].verdict == "lossy-but-recoverable", text
    assert report.failed

    # the project's own database was never touched
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()

    # the command: JSON, exit 1 on a failure verdict, refusal of the project's own database
    proc = safety(ini, "verify", "r04:r06", "--url", server, "--format", "json", "--seed-rows", "3", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert [r["verdict"] for r in data["revisions"]] == ["lossy-but-recoverable", "ok"]
    proc = safety(ini, "verify", "r02", "--url", server, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "schema-mismatch" in proc.stdout
    own = pg_url.render_as_string(hide_password=False)
    proc = safety(ini, "verify", "--url", own, check=False)
    assert proc.returncode == 2 and "own database" in proc.stderr, proc.stderr
    with pytest.raises(UsageError):
        verify(project, url=own)


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def test_branches_and_merge(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url: sa.URL = request.getfixturevalue(f"{dialect}_url")
    ini = copy_example("generate", tmp_path / "proj", url)
    server = None if dialect == "sqlite" else url.set(database="mysql").render_as_string(hide_password=False)
    versions = tmp_path / "proj" / "migrations" / "versions"
    write_revision(versions, "a1", None, BASE_UP, BASE_DOWN)
    write_revision(versions, "b1", "a1", 'op.create_table("b", sa.Column("id", sa.Integer, primary_key=True))',
                   'op.drop_table("b")')
    write_revision(versions, "c1", "a1", 'op.create_table("c", sa.Column("id", sa.Integer, primary_key=True), '
                   'sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id")))', 'op.drop_table("c")')
    write_revision(versions, "m1", ("b1", "c1"), "pass", "pass", "merge")
    write_revision(versions, "d1", "m1", 'op.add_column("c", sa.Column("x", sa.String(5)))',
                   'with op.batch_alter_table("c") as b:\n    b.drop_column("x")')
    seen: list[str] = []
    report = verify(load_project(str(ini)), url=server, seed_rows=4, progress=lambda v: seen.append(v.revision))
    text = render_text(report)
    order = [r.revision for r in report.revisions]
    assert sorted(order) == ["a1", "b1", "c1", "d1", "m1"] and seen == order, text
    assert order.index("m1") > max(order.index("b1"), order.index("c1")) and order[-1] == "d1", text
    assert all(r.verdict == "ok" for r in report.revisions), text
    assert not report.failed
    if dialect == "sqlite":
        assert not (tmp_path / "test.db").exists() or (tmp_path / "test.db").stat().st_size == 0
    proc = safety(ini, "verify", "--format", "markdown", *(["--url", server] if server else []), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| `m1` merge | ok |" in proc.stdout
    proc = safety(ini, "verify", "b1", "--verbose", *(["--url", server] if server else []), check=False)
    assert proc.returncode == 0 and re.search(r"b1 +ok +\d+\.\d\ds", proc.stdout), proc.stdout + proc.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_saas_history_performance(pg_url: sa.URL, tmp_path: Path) -> None:
    """The 64-revision saas example on PostgreSQL, timed (printed, not asserted; the README's figure)."""
    ini = copy_example("saas", tmp_path / "saas", pg_url)
    server = pg_url.set(database="postgres").render_as_string(hide_password=False)
    started = time.monotonic()
    report = verify(load_project(str(ini)), url=server, seed_rows=10)
    seconds = time.monotonic() - started
    assert len(report.revisions) >= 60
    print(f"\nverify saas: {len(report.revisions)} revisions in {seconds:.1f}s "
          f"({seconds / len(report.revisions):.2f}s per revision)\n" + render_text(report, verbose=True))  # fmt: skip
