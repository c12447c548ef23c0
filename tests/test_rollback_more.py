"""`alembic-safety rollback`, continued: a type narrowed with USING comes back with its old type
and exact values, and `--dry-run --execute-in-transaction` rehearses a rollback on PostgreSQL
and leaves the database exactly as it was (real `alembic` and `alembic-safety` processes)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.reverse.schema import diff

from .conftest import copy_example
from .helpers import alembic, backups_json, revision_file, rows
from .test_rollback import (
    audit_events,
    data,
    plan_json,
    roll_back,
    run_safety,
    schema,
    the_backup,
    version,
    write_after_deploy,
)

NARROW = """
op.alter_column("orders", "total", type_=sa.Integer, existing_type=sa.Numeric(10, 2), existing_nullable=False,
                postgresql_using="round(total)::integer")
"""
NARROW_SQLITE = """
with op.batch_alter_table("orders") as batch_op:  # SQLite: the table is rebuilt, values CAST
    batch_op.alter_column("total", type_=sa.Integer, existing_type=sa.Numeric(10, 2), existing_nullable=False)
"""


def _narrowing_project(url: sa.URL, dest: Path) -> Path:
    """The shop's 0001, then 0002: NUMERIC(10, 2) totals (with fractions) narrowed to INTEGER;
    its downgrade() is ``pass``."""
    ini = copy_example("shop", dest, url)
    versions = dest / "migrations" / "versions"
    for name in ("0002_cleanup.py", "0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    body = NARROW_SQLITE if url.get_backend_name() == "sqlite" else NARROW
    text = revision_file("0002", "0001", "narrow order totals", body)
    (versions / "0002_narrow.py").write_text(text.replace("from alembic import op\n",
                                                          "from alembic import op\nimport sqlalchemy as sa\n"))
    return ini


def _total_type(engine: sa.Engine) -> sa.types.TypeEngine[Any]:
    [col] = [c for c in sa.inspect(engine).get_columns("orders") if c["name"] == "total"]
    return col["type"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["merge", "replace"])
@pytest.mark.parametrize("db", ["postgresql", "mariadb", "sqlite"])
def test_type_narrowed_with_using_comes_back_exactly(db: str, mode: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path, engine_for: Any) -> None:  # fmt: skip
    url: sa.URL = request.getfixturevalue({"postgresql": "pg_url", "mariadb": "mariadb_url"}.get(db, "sqlite_url"))
    ini = _narrowing_project(url, tmp_path / "proj")
    engine = engine_for(url)
    alembic(ini, "upgrade", "0001")
    before, shape = data(engine, ("orders",)), schema(engine)
    assert any(r[3] != int(r[3]) for r in before["orders"])  # fractions to lose
    alembic(ini, "upgrade", "0002")
    assert isinstance(_total_type(engine), sa.Integer)
    assert data(engine, ("orders",))["orders"] != before["orders"]  # the fractions are gone
    with engine.begin() as conn:  # an order written after the deploy, with an integer total
        conn.execute(sa.text("INSERT INTO orders (id, customer_id, status, total, created_at) "
                             "VALUES (5001, 1, 'paid', 77, '2026-02-01 10:00:00')"))  # fmt: skip

    result = roll_back(ini, the_backup(ini, "0002"), "--mode", mode)
    assert result["ok"] is True and version(engine) == "0001"
    assert any("total back to" in c for c in result["converged"]), result["converged"]
    assert result["differences"] == []
    kind = _total_type(engine)
    assert isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float)
    assert (kind.precision, kind.scale) == (10, 2)
    after = data(engine, ("orders",))["orders"]
    assert [r for r in after if r[0] != 5001] == before["orders"]  # exact old values, from the snapshot
    if mode == "merge":
        assert [r[3] for r in after if r[0] == 5001] == [Decimal("77.00")]  # written since: kept, cast back
    else:
        assert not [r for r in after if r[0] == 5001]  # replace: not in the full-column snapshot, removed
    assert diff(shape, schema(engine)) == ()  # the schema is back too


def _sequences(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(conn.exec_driver_sql(f"SELECT last_value, is_called FROM {name}").one())
                for name in ("customers_id_seq", "orders_id_seq")]  # fmt: skip


def test_postgresql_execute_in_transaction_reports_and_changes_nothing(pg_url: sa.URL, tmp_path: Path,
                                                                       engine_for: Any) -> None:  # fmt: skip
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    alembic(ini, "upgrade", "0002")
    write_after_deploy(engine)
    backup_id = the_backup(ini, "0002")
    code = plan_json(ini, backup_id)["confirmation_code"]
    state = (data(engine), version(engine), backups_json(ini), _sequences(engine))
    shape = schema(engine)

    proc = run_safety(ini, "rollback", backup_id, "--dry-run", "--execute-in-transaction", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["dry_run"] is True and report["ok"] is True and report["revision"] == "0001"
    assert report["pre_rollback_id"] is None and report["report"] == ""
    tables = {t["table"]: t for t in report["tables"]}
    assert set(tables) == {"customers", "orders", "notes"}
    cancelled = sum(1 for r in before["orders"] if r[2] == "cancelled")
    assert tables["orders"]["inserted"] == cancelled > 0  # the purged orders, counted
    assert tables["customers"]["rows_in_backup"] == len(before["customers"]) and tables["customers"]["updated"] > 0
    assert tables["notes"]["inserted"] == tables["notes"]["rows_in_backup"] == len(before["notes"])  # dropped table
    assert all(t["ok"] for t in report["tables"])
    kinds = [s["kind"] for s in report["steps"]]
    assert kinds[:3] == ["verify-backup", "pre-rollback-backup", "downgrade"] and "integrity-checks" in kinds
    seq = next(s for s in report["steps"] if s["kind"] == "reset-sequences")
    assert "would move" in seq["detail"]

    # nothing changed: schema, rows, version, backups (the pre-rollback one was rolled back), sequences
    assert diff(shape, schema(engine)) == ()
    assert (data(engine), version(engine), backups_json(ini), _sequences(engine)) == state
    assert not list((tmp_path / "shop" / "backups").glob("rollback-*.md"))  # no incident report
    events = [e["event"] for e in audit_events(tmp_path / "shop")]
    assert "rollback_rehearsed" in events and "rollback_started" not in events and "rollback_step" not in events

    text = run_safety(ini, "rollback", backup_id, "--dry-run", "--execute-in-transaction")
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"orders: restored, {cancelled} inserted" in text.stdout
    assert "would succeed" in text.stdout and "nothing changed" in text.stdout
    assert (data(engine), version(engine), backups_json(ini), _sequences(engine)) == state

    # the plan (and its code) is still valid: the real rollback follows
    assert plan_json(ini, backup_id)["confirmation_code"] == code
    result = roll_back(ini, backup_id)
    assert result["ok"] is True and result["dry_run"] is False and version(engine) == "0001"


@pytest.mark.parametrize("db", ["sqlite", "mariadb"])
def test_execute_in_transaction_needs_transactional_ddl(db: str, request: pytest.FixtureRequest, tmp_path: Path,
                                                        engine_for: Any) -> None:  # fmt: skip
    url: sa.URL = request.getfixturevalue("sqlite_url" if db == "sqlite" else "mariadb_url")
    ini = copy_example("shop", tmp_path / "shop", url)
    engine = engine_for(url)
    alembic(ini, "upgrade", "0002")
    backup_id = the_backup(ini, "0002")
    state = (data(engine), schema(engine), version(engine), backups_json(ini))
    proc = run_safety(ini, "rollback", backup_id, "--dry-run", "--execute-in-transaction")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "transactional DDL" in lines[0] and "Traceback" not in proc.stderr
    assert (data(engine), schema(engine), version(engine), backups_json(ini)) == state


def test_execute_in_transaction_without_dry_run_is_refused(sqlite_url: sa.URL, tmp_path: Path,
                                                           engine_for: Any) -> None:  # fmt: skip
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    alembic(ini, "upgrade", "0002")
    backup_id = the_backup(ini, "0002")
    code = plan_json(ini, backup_id)["confirmation_code"]
    proc = run_safety(ini, "rollback", backup_id, "--execute-in-transaction", "--confirm", code)
    assert proc.returncode == 2 and "--dry-run" in proc.stderr
    assert version(engine_for(sqlite_url)) == "0002"
    assert rows(engine_for(sqlite_url), "orders", ["id"], "status = 'cancelled'") == []
