"""The rollback's fast whole-table restore on PostgreSQL (alembic_safety/snapshot/fastload.py):
load into the bare table, rebuild its indexes and constraints afterwards — the table ends
exactly as before (rows in order, indexes and constraints as reflected), and a failure while
rebuilding leaves the database as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from alembic_safety.reverse.schema import diff

from .conftest import copy_example
from .helpers import alembic, backups_json, rows
from .test_rollback import plan_json, roll_back, run_safety, schema, the_backup, version

BIG = ["id", "parent_id", "n", "code"]

_REVISION = '''"""{message}

Revision ID: {revision}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{body}


def downgrade():
    pass
'''

_TABLES = """
    op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text, nullable=False))
    op.create_table(
        "big",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id", name="big_parent_fk"), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("code", sa.Text),
        sa.UniqueConstraint("code", name="big_code_uq"),
        sa.CheckConstraint("n >= 0", name="big_n_ck"),
    )
    op.create_index("big_parent_idx", "big", ["parent_id"])
    op.create_index("big_lower_code_idx", "big", [sa.text("lower(code)")], postgresql_where=sa.text("n > 2"))
    op.execute("INSERT INTO parent SELECT i, 'parent ' || i FROM generate_series(1, 20) AS i")
    op.execute("INSERT INTO big SELECT i, 1 + i % 20, i % 10, CASE WHEN i % 7 = 0 THEN NULL ELSE 'c' || i END "
               "FROM generate_series(1, 500) AS i")
"""

_CHILD = """
    op.create_table("big_child", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("big_id", sa.BigInteger, sa.ForeignKey("big.id", name="big_child_big_fk")))
"""


def _project(url: sa.URL, dest: Path, *, child: bool = False) -> Path:
    """The shop's 0001, then 0002 (parent and big: primary key, unique constraint, check, two
    indexes, a foreign key; with ``child`` a table whose foreign key refers to big) and 0003
    (``DELETE FROM big``, downgrade ``pass``)."""
    ini = copy_example("shop", dest, url)
    versions = dest / "migrations" / "versions"
    for name in ("0002_cleanup.py", "0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    (versions / "0002_big.py").write_text(_REVISION.format(message="parent and big", revision="0002", down="0001",
                                                           body=_TABLES + (_CHILD if child else "")))  # fmt: skip
    (versions / "0003_wipe.py").write_text(_REVISION.format(message="empty big", revision="0003", down="0002",
                                                            body='    op.execute("DELETE FROM big")'))  # fmt: skip
    return ini


def _big(engine: sa.Engine) -> list[tuple[Any, ...]]:
    return rows(engine, "big", BIG)


def _outcome(result: dict[str, Any]) -> dict[str, Any]:
    [big] = [t for t in result["tables"] if t["table"].endswith("big")]
    assert isinstance(big, dict)
    return big


def test_fast_restore_of_an_emptied_table_is_exact(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    ini = _project(pg_url, tmp_path / "proj")
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0002")
    before, shape = _big(engine), schema(engine)
    alembic(ini, "upgrade", "0003")
    assert _big(engine) == []
    result = roll_back(ini, the_backup(ini, "0003"), "--mode", "replace")
    assert result["ok"] is True and version(engine) == "0002"
    big = _outcome(result)
    assert "bulk reload" in big["detail"], big
    for name in ("big_pkey", "big_code_uq", "big_parent_idx", "big_lower_code_idx"):
        assert name in big["detail"]  # dropped and rebuilt
    assert big["inserted"] == 500 and big["matching"] == 500 and big["deleted"] == 0
    assert _big(engine) == before  # ordered rows equal
    assert diff(shape, schema(engine)) == ()  # indexes and constraints equal
    with engine.connect() as conn:  # and the rebuilt ones are valid and enforced
        assert conn.exec_driver_sql("SELECT bool_and(indisvalid) FROM pg_index "
                                    "WHERE indrelid = 'big'::regclass").scalar() is True  # fmt: skip
        assert conn.exec_driver_sql("SELECT bool_and(convalidated) FROM pg_constraint "
                                    "WHERE conrelid = 'big'::regclass").scalar() is True  # fmt: skip


def test_fast_restore_replace_over_new_rows(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """Rows written since the deploy are removed (replace); another table's foreign key refers
    to big, so its primary key stays in place and the table is emptied by DELETE."""
    ini = _project(pg_url, tmp_path / "proj", child=True)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0002")
    before, shape = _big(engine), schema(engine)
    alembic(ini, "upgrade", "0003")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO big VALUES (7, 3, 1, 'new'), (9001, 4, 5, 'c9001'), (9002, 5, 6, NULL)")
    result = roll_back(ini, the_backup(ini, "0003"), "--mode", "replace")
    assert result["ok"] is True
    big = _outcome(result)
    assert "bulk reload (DELETE" in big["detail"] and "kept in place big_pkey" in big["detail"], big
    assert (big["deleted"], big["updated"], big["inserted"], big["matching"]) == (2, 1, 499, 500)
    assert _big(engine) == before
    assert diff(shape, schema(engine)) == ()


def test_failure_while_rebuilding_changes_nothing(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """A unique index added after the deploy (on the emptied table) is dropped for the load and
    rebuilt after it: the backup's duplicates make the rebuild fail, and the rollback's one
    transaction takes everything back — the downgrade, the pre-rollback backup, the load."""
    ini = _project(pg_url, tmp_path / "proj")
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0003")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE UNIQUE INDEX big_n_uq ON big (n)")  # the backup has n = i % 10
        conn.exec_driver_sql("INSERT INTO big VALUES (1, 1, 1, 'after the deploy')")
    backup_id = the_backup(ini, "0003")
    state = (_big(engine), schema(engine), version(engine), backups_json(ini))
    code = plan_json(ini, backup_id, "--mode", "replace")["confirmation_code"]
    proc = run_safety(ini, "rollback", backup_id, "--mode", "replace", "--confirm", code)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "restore-data" in proc.stderr and "big_n_uq" in proc.stderr, proc.stderr
    assert "rolled every change back" in proc.stderr
    assert diff(state[1], schema(engine)) == ()
    assert (_big(engine), schema(engine), version(engine), backups_json(ini)) == state


def test_replace_of_a_key_only_table_runs_in_process_without_warnings(pg_url: sa.URL, tmp_path: Path,
                                                                      engine_for: Any) -> None:  # fmt: skip
    """A table whose only column is its primary key, replaced over rows written since the deploy:
    nothing to compare but the key (no empty OR, which SQLAlchemy deprecates); in-process, so
    pytest's warnings-as-errors would catch one."""
    from alembic_safety.cli import run

    ini = copy_example("shop", tmp_path / "shop", pg_url)
    versions = tmp_path / "shop" / "migrations" / "versions"
    for name in ("0002_cleanup.py", "0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    tags = ('    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))\n'
            '    op.execute("INSERT INTO tags SELECT generate_series(1, 50)")')
    (versions / "0002_tags.py").write_text(_REVISION.format(message="tags", revision="0002", down="0001", body=tags))
    (versions / "0003_wipe.py").write_text(_REVISION.format(message="empty tags", revision="0003", down="0002",
                                                            body='    op.execute("DELETE FROM tags")'))  # fmt: skip
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "head")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tags VALUES (7), (100)"))  # written since the deploy
    backup_id = the_backup(ini, "0003")
    code = plan_json(ini, backup_id, "--mode", "replace")["confirmation_code"]
    assert run(["-c", str(ini), "rollback", backup_id, "--mode", "replace", "--confirm", code]) == 0
    assert [r[0] for r in rows(engine, "tags", ["id"])] == list(range(1, 51))
