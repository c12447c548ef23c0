"""``alembic-safety plan`` on the shop example: live and static, every format, CI exit codes,
suppressions, ranges, branches and merges."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import copy_example
from .helpers import alembic, revision_file, safety

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("ALEMBIC_SAFETY_UPDATE_GOLDEN") == "1"


def _plan(ini: Path, *args: str, check: bool = True) -> dict:
    return json.loads(safety(ini, "plan", "--format", "json", *args, check=check).stdout)


def _golden(name: str, text: str, tmp_path: Path) -> None:
    text = text.replace(str(tmp_path), "<tmp>")
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with ALEMBIC_SAFETY_UPDATE_GOLDEN=1 if intended"


def test_golden_markdown_and_json_on_sqlite(sqlite_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    alembic(ini, "upgrade", "0001")
    md = safety(ini, "plan", "--format", "markdown").stdout
    _golden("plan_shop.md", md, tmp_path)
    js = safety(ini, "plan", "--format", "json").stdout
    _golden("plan_shop.json", js, tmp_path)
    data = json.loads(js)
    assert set(data) == {"revisions", "unknown_facts"}
    assert [r["revision"] for r in data["revisions"]] == ["0002", "0003", "0004"]
    r = data["revisions"][0]
    assert set(r) == {"revision", "down_revision", "message", "operations", "findings", "reversible", "snapshot",
                      "rollback_steps"}  # fmt: skip
    assert all(set(f) >= {"code", "name", "severity", "table", "column", "message"} for f in r["findings"])
    assert all(set(s) == {"table", "columns", "where", "rows_estimate", "bytes_estimate", "seconds_estimate"}
               for s in r["snapshot"])  # fmt: skip
    assert all(set(s) == {"order", "action", "critical"} for s in r["rollback_steps"])


def test_live_plan_on_postgresql_forecasts_the_snapshot(pg_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    alembic(ini, "upgrade", "0001")
    data = _plan(ini)
    assert [r["revision"] for r in data["revisions"]] == ["0002", "0003", "0004"]
    r2 = data["revisions"][0]
    snap = {s["table"]: s for s in r2["snapshot"]}
    assert snap["customers"]["columns"] == ["id", "phone", "score"] and snap["customers"]["rows_estimate"] == 60
    assert snap["customers"]["bytes_estimate"] and snap["customers"]["seconds_estimate"] is not None
    assert snap["orders"]["where"] == "status = 'cancelled'"
    assert snap["notes"]["seconds_estimate"] == 0.0  # a drop becomes a move with the database store
    codes = {f["code"] for f in r2["findings"]}
    assert "SAF101" in codes
    assert r2["reversible"] in ("with-snapshot", "no")
    steps = [s["action"] for s in r2["rollback_steps"]]
    assert any("move public.notes" in s or "move notes" in s for s in steps)
    assert r2["rollback_steps"][0]["critical"] is True
    # plan changed nothing
    with sa.create_engine(pg_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
        assert conn.exec_driver_sql("SELECT count(*) FROM notes").scalar() == 20


def test_static_plan_without_a_database_says_what_it_could_not_know(tmp_path: Path) -> None:
    url = sa.make_url("postgresql+psycopg2://nobody:secret@127.0.0.1:1/none")
    ini = copy_example("shop", tmp_path / "shop", url)
    data = _plan(ini)
    assert [r["revision"] for r in data["revisions"]] == ["0001", "0002", "0003", "0004"]
    assert any("live facts" in u for u in data["unknown_facts"])
    assert any("current revision" in u for u in data["unknown_facts"])
    assert all(s["rows_estimate"] is None for r in data["revisions"] for s in r["snapshot"])
    assert "secret" not in json.dumps(data)


def test_fail_on_and_suppressions(sqlite_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    alembic(ini, "upgrade", "0003")
    versions = tmp_path / "shop" / "migrations" / "versions"
    (versions / "0005_drop.py").write_text(revision_file("0005", "0004", "drop notes", 'op.drop_table("customers")'))
    assert safety(ini, "plan", "--fail-on", "never").returncode == 0
    proc = safety(ini, "plan", "--fail-on", "high", check=False)
    assert proc.returncode == 1 and "--fail-on high" in proc.stderr
    text = (versions / "0005_drop.py").read_text()
    (versions / "0005_drop.py").write_text(text + "# safety: allow SAF101 customers moved to the CRM in 2025\n")
    data = _plan(ini, "0004:0005")
    [f] = [f for f in data["revisions"][0]["findings"] if f["code"] == "SAF101"]
    assert f["allowed"] == "customers moved to the CRM in 2025"
    md = safety(ini, "plan", "0004:0005", "--format", "markdown").stdout
    assert "allowed: customers moved to the CRM in 2025" in md


@pytest.mark.parametrize(("range_", "fragment"), [("nope:heads", "bad revision range"), ("zzzz", "bad revision range"),
                                                  ("0004:0001", "bad revision range")])  # fmt: skip
def test_bad_ranges_are_one_line_errors(sqlite_url: sa.URL, tmp_path: Path, range_: str, fragment: str) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    proc = safety(ini, "plan", range_, check=False)
    assert proc.returncode == 2 and fragment in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_branches_and_merges(sqlite_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url)
    versions = tmp_path / "shop" / "migrations" / "versions"
    (versions / "a1.py").write_text(revision_file("a1", "0004", "branch a", 'op.drop_column("orders", "total")'))
    (versions / "b1.py").write_text(revision_file("b1", "0004", "branch b", 'op.execute("DELETE FROM notes")'))
    merge = revision_file("m1", "a1", "merge", "pass").replace("down_revision = 'a1'", "down_revision = ('a1', 'b1')")
    (versions / "m1.py").write_text(merge)
    alembic(ini, "upgrade", "0004")
    data = _plan(ini)
    revs = [r["revision"] for r in data["revisions"]]
    assert set(revs) == {"a1", "b1", "m1"} and revs[-1] == "m1"
    assert next(r for r in data["revisions"] if r["revision"] == "m1")["down_revision"] == ["a1", "b1"]
    assert [r["revision"] for r in _plan(ini, "b1")["revisions"]] == ["b1"]
