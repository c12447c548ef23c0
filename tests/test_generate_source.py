"""Reading and rewriting downgrade() bodies (no database): what counts as missing, the marker
hashes that make regeneration idempotent, and hand-edited blocks left alone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alembic_safety.errors import SafetyError
from alembic_safety.reverse import source
from alembic_safety.reverse.render import begin_marker, body_hash

HEAD = textwrap.dedent('''\
    """add a column

    Revision ID: abc
    """
    from alembic import op
    import sqlalchemy as sa

    revision = "abc"
    down_revision = None


    def upgrade() -> None:
        op.add_column("t", sa.Column("c", sa.Integer))


    ''')


def write(tmp_path: Path, downgrade: str) -> Path:
    path = tmp_path / "abc_rev.py"
    path.write_text(HEAD + textwrap.dedent(downgrade))
    return path


def block(upgrade_hash: str, lines: list[str]) -> tuple[str, ...]:
    return (begin_marker(upgrade_hash, body_hash(lines)), *lines, "# <<< alembic-safety: end of generated downgrade")


@pytest.mark.parametrize(("downgrade", "status"), [
    ("", source.MISSING),
    ("def downgrade() -> None:\n    pass\n", source.EMPTY),
    ('def downgrade() -> None:\n    """Nothing to undo."""\n', source.EMPTY),
    ("def downgrade() -> None:\n    ...\n", source.EMPTY),
    ("def downgrade(): pass\n", source.EMPTY),
    ("def downgrade() -> None:\n    raise NotImplementedError()\n", source.RAISES),
    ('def downgrade() -> None:\n    pass\n    raise RuntimeError("no way back")\n', source.RAISES),
    ('def downgrade() -> None:\n    op.drop_column("t", "c")\n', source.HAND_WRITTEN),
])  # fmt: skip
def test_status_of_a_downgrade_body(tmp_path: Path, downgrade: str, status: str) -> None:
    assert source.inspect(write(tmp_path, downgrade)).status == status


@pytest.mark.parametrize("downgrade", [
    "",
    "def downgrade() -> None:\n    pass\n",
    'def downgrade() -> None:\n    """Keep me."""\n    pass  # TODO\n',
    'def downgrade() -> None:\n    """Keep me."""\n',
    "def downgrade(): pass\n",
    "def downgrade() -> None:\n    raise NotImplementedError()\n\n\n# a trailing comment stays\n",
])  # fmt: skip
def test_rewrite_then_current_then_idempotent(tmp_path: Path, downgrade: str) -> None:
    path = write(tmp_path, downgrade)
    slot = source.inspect(path)
    lines = ['op.drop_column("t", "c")', "postgresql.ENUM(name='x')"]
    new = source.rewrite(slot, block(slot.upgrade_hash, lines), ("from alembic import op",
                                                                 "from sqlalchemy.dialects import postgresql"))
    source.check_compiles(new, path)
    assert "from sqlalchemy.dialects import postgresql\n" in new
    assert new.count("import sqlalchemy as sa") == 1
    if "Keep me" in downgrade:
        assert '"""Keep me."""' in new
    if "trailing comment" in downgrade:
        assert new.rstrip().endswith("# a trailing comment stays")
    path.write_text(new)
    again = source.inspect(path)
    assert again.status == source.CURRENT
    # regenerating the same block gives the same text
    assert source.rewrite(again, block(again.upgrade_hash, lines), ("from alembic import op",)) == new


def test_hand_edited_block_is_reported_and_upgrade_change_is_stale(tmp_path: Path) -> None:
    path = write(tmp_path, "def downgrade() -> None:\n    pass\n")
    slot = source.inspect(path)
    new = source.rewrite(slot, block(slot.upgrade_hash, ['op.drop_column("t", "c")']), ())
    path.write_text(new.replace('op.drop_column("t", "c")', 'op.drop_column("t", "c")  # ok\n    op.execute("x")'))
    assert source.inspect(path).status == source.EDITED
    path.write_text(new.replace('sa.Column("c", sa.Integer)', 'sa.Column("c", sa.BigInteger)'))
    assert source.inspect(path).status == source.STALE
    edited = new.replace('op.drop_column("t", "c")', 'op.execute("x")')
    path.write_text(edited.replace('sa.Column("c", sa.Integer)', 'sa.Column("c", sa.BigInteger)'))
    slot = source.inspect(path)
    assert slot.status == source.EDITED and slot.edited_and_stale


def test_upgrade_hash_ignores_formatting_and_comments(tmp_path: Path) -> None:
    a = source.upgrade_hash(HEAD, Path("a.py"))
    reformatted = HEAD.replace('op.add_column("t", sa.Column("c", sa.Integer))',
                               '# why\n    op.add_column(\n        "t", sa.Column("c", sa.Integer)\n    )')
    assert source.upgrade_hash(reformatted, Path("a.py")) == a
    assert source.upgrade_hash(HEAD.replace('"c"', '"d"'), Path("a.py")) != a


def test_unparsable_revision_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("def upgrade(:\n")
    with pytest.raises(SafetyError, match="cannot parse the revision file"):
        source.inspect(path)
