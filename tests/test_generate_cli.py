"""``alembic-safety generate`` from the command line (SQLite: a temporary scratch file): the
written text against a golden file, --check and --diff, a hand-edited block left alone, a stale
block regenerated, IrreversibleRevision and ``plan``'s ``reversible: no``."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.errors import IrreversibleRevision
from alembic_safety.reverse.ops import Note
from alembic_safety.reverse.render import render_body

from .conftest import copy_example
from .helpers import alembic, safety
from .test_generate import BASE, revision_text

GOLDEN = Path(__file__).parent / "golden" / "generate_sqlite.py"
CHANGE = textwrap.dedent('''\
    """A hand-written revision with pass as its downgrade."""
    op.drop_index("ix_customers_name", table_name="customers")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.alter_column("note", new_column_name="remark")
        batch_op.drop_column("total")
    op.drop_table("customers_archive")
    op.execute("CREATE VIEW remarks AS SELECT id, remark FROM orders")
    op.execute("UPDATE orders SET remark = 'none' WHERE remark IS NULL")
    op.bulk_insert(sa.table("customers", sa.column("id"), sa.column("email")), [{"id": 1, "email": "a@b.c"}])
''')
ARCHIVE = '''
    op.create_table("customers_archive", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("email", sa.String(120), nullable=False, server_default="x@y"),
                    sa.Column("closed", sa.Date))
    op.create_index("ix_archive_email", "customers_archive", ["email"], unique=True)
'''


def project(tmp_path: Path) -> tuple[Path, Path]:
    url = sa.URL.create("sqlite", database=str(tmp_path / "app.db"))
    ini = copy_example("generate", tmp_path / "proj", url)
    versions = tmp_path / "proj" / "migrations" / "versions"
    base = revision_text("0001", None, textwrap.dedent(BASE + ARCHIVE), 'op.drop_table("orders")  # hand-written')
    (versions / "0001_base.py").write_text(base)
    change = versions / "0002_change.py"
    change.write_text(revision_text("0002", "0001", CHANGE))
    return ini, change


def test_generated_text_matches_the_golden_file_and_round_trips(tmp_path: Path) -> None:
    ini, change = project(tmp_path)
    check = safety(ini, "generate", "--check", check=False)
    assert check.returncode == 1 and "0002" in check.stderr and "0001" not in check.stderr
    diff = safety(ini, "generate", "--diff")
    assert "+    op.rename_table" not in diff.stdout and "+++ " in diff.stdout
    assert "alembic-safety" not in change.read_text(), "--diff wrote the file"
    safety(ini, "generate")
    text = change.read_text()
    if os.environ.get("ALEMBIC_SAFETY_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
    assert "# MANUAL:" in text and "bulk_insert" in text  # the DML is marked, not dropped
    safety(ini, "generate", "--check")
    alembic(ini, "upgrade", "head")
    alembic(ini, "downgrade", "0001")  # the generated body runs (and the view, index, table come back)
    engine = sa.create_engine(sa.URL.create("sqlite", database=str(tmp_path / "app.db")))
    try:
        insp = sa.inspect(engine)
        assert "customers_archive" in insp.get_table_names() and "remarks" not in insp.get_view_names()
        assert {c["name"] for c in insp.get_columns("orders")} >= {"note", "total"}
        assert "ix_customers_name" in {i["name"] for i in insp.get_indexes("customers")}
    finally:
        engine.dispose()


def test_hand_edited_block_is_left_alone_and_stale_is_reported(tmp_path: Path) -> None:
    ini, change = project(tmp_path)
    safety(ini, "generate")
    edited = change.read_text().replace("op.create_index(", "op.create_index(  # tuned by hand\n        ", 1)
    change.write_text(edited)
    again = safety(ini, "generate", "0002")
    assert "left alone" in again.stdout and change.read_text() == edited
    safety(ini, "generate", "--check")  # edited but current: nothing to do
    change.write_text(edited.replace('"ix_customers_name"', '"ix_customers_name"  ', 1).replace(
        'op.execute("UPDATE', 'op.execute("UPDATE orders SET remark = remark");\n    op.execute("UPDATE', 1))
    stale = safety(ini, "generate", "--check", check=False)
    assert stale.returncode == 1 and "0002" in stale.stderr
    kept = change.read_text()
    out = safety(ini, "generate").stdout
    assert "0002  left alone  generated block edited by hand (and the upgrade changed since" in out
    assert change.read_text() == kept  # still never overwritten


def test_hand_written_downgrade_is_never_replaced(tmp_path: Path) -> None:
    ini, change = project(tmp_path)
    change.write_text(change.read_text().replace("    pass\n", "    op.execute('SELECT 1')\n"))
    before = change.read_text()
    out = safety(ini, "generate", "0002")
    assert "0002  left alone  hand-written downgrade" in out.stdout and change.read_text() == before
    assert "every downgrade is present" in safety(ini, "generate").stdout


def test_bad_revision_and_bad_scratch_url_are_one_line_errors(tmp_path: Path) -> None:
    ini, _ = project(tmp_path)
    bad = safety(ini, "generate", "nope", check=False)
    assert bad.returncode == 2 and "unknown revision 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    own = safety(ini, "generate", "--url", f"sqlite:///{tmp_path / 'app.db'}", check=False)
    assert own.returncode == 2 and "project's own database" in own.stderr


def test_irreversible_note_raises_and_plan_says_no(tmp_path: Path) -> None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(dialect=sa.create_engine("sqlite://").dialect)
    body = render_body([Note("irreversible", "the upgrade drops table ghost, whose definition is unknown")],
                       ctx, "abc")  # fmt: skip
    assert "import alembic_safety" in body.imports
    code = "\n".join(["import alembic_safety", "def downgrade():", *(f"    {line}" for line in body.lines)])
    scope: dict[str, object] = {}
    exec(compile(code, "rev.py", "exec"), scope)
    with pytest.raises(IrreversibleRevision, match=r"ghost.*alembic-safety rollback"):
        scope["downgrade"]()  # type: ignore[operator]
    ini, change = project(tmp_path)
    change.write_text(change.read_text().replace(
        "    pass\n", "    raise alembic_safety.IrreversibleRevision('cannot')\n").replace(
        "import sqlalchemy as sa\n", "import sqlalchemy as sa\nimport alembic_safety\n", 1))
    planned = json.loads(safety(ini, "plan", "0002", "--format", "json").stdout)
    assert planned["revisions"][0]["reversible"] == "no"
