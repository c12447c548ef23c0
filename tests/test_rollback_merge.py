"""`rollback --mode merge` and the post-step state: a revision UPDATEs a column for many rows,
the application changes some of them again after the deploy; merge restores the old values of
the untouched rows only and keeps (and reports) the re-changed ones, replace restores them all,
and a backup without a post-step state (an older one) falls back and says so.  PostgreSQL,
SQLite and MariaDB (database store on PostgreSQL/MariaDB, files store on SQLite), plus the files
store on PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.snapshot.backup import snapshot_schema
from alembic_safety.snapshot.dbstore import DatabaseStore

from .conftest import copy_example
from .helpers import alembic, revision_file, rows
from .test_rollback import plan_json, roll_back, run_safety, the_backup

RECHANGED = (12, 20, 33)  # rows the revision updated that the application changes again
UNTOUCHED_BY_REVISION = 5  # a row outside the revision's WHERE, changed by the application too


def _project(url: sa.URL, dest: Path, **settings: str) -> Path:
    """The shop's 0001, then 0002: an UPDATE of score for every customer with id > 10."""
    ini = copy_example("shop", dest, url, **settings)
    versions = dest / "migrations" / "versions"
    for name in ("0002_cleanup.py", "0003_opaque.py", "0004_tier.py"):
        (versions / name).unlink()
    body = 'op.execute("UPDATE customers SET score = 0 WHERE id > 10")\n'
    (versions / "0002_reset.py").write_text(revision_file("0002", "0001", "reset scores", body))
    return ini


def _scores(engine: sa.Engine) -> dict[int, Any]:
    return {int(r[0]): r[1] for r in rows(engine, "customers", ["id", "score"])}


def _deploy(url: sa.URL, tmp_path: Path, engine_for: Any, **settings: str) -> tuple[Path, sa.Engine, dict[int, Any]]:
    ini = _project(url, tmp_path / "proj", **settings)
    engine = engine_for(url)
    alembic(ini, "upgrade", "0001")
    before = _scores(engine)
    alembic(ini, "upgrade", "0002")
    assert all(float(v) == 0 for k, v in _scores(engine).items() if k > 10)
    with engine.begin() as conn:  # the application, after the deploy
        conn.execute(sa.text("UPDATE customers SET score = 999 WHERE id IN (12, 20, 33)"))
        conn.execute(sa.text("UPDATE customers SET score = 777 WHERE id = 5"))
        conn.execute(sa.text("INSERT INTO customers (id, name, email, score) VALUES (1001, 'New', 'n@x.org', 7)"))
    return ini, engine, before


def _customers(result: dict[str, Any]) -> dict[str, Any]:
    [table] = [t for t in result["tables"] if t["table"] == "customers"]
    assert isinstance(table, dict)
    return table


def _manifest(ini: Path, backup_id: str) -> dict[str, Any]:
    proc = run_safety(ini, "show", backup_id, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_merge_keeps_rows_changed_since_the_deploy(any_url: sa.URL, tmp_path: Path, engine_for: Any,
                                                   mode: str) -> None:  # fmt: skip
    ini, engine, before = _deploy(any_url, tmp_path, engine_for)
    backup_id = the_backup(ini, "0002")
    [snap] = _manifest(ini, backup_id)["tables"]
    assert snap["post"] is not None and snap["post"]["columns"] == ["score"] and snap["post"]["rows"] == 50

    plan = plan_json(ini, backup_id, "--mode", mode)
    details = [d for d in plan["data"] if d["table"] == "customers"]
    if mode == "merge":
        kept = [d for d in details if d["effect"] == "kept" and "changed again since the deploy" in d["detail"]]
        assert len(kept) == 1 and kept[0]["detail"].startswith("3 row(s)") and "id=12" in kept[0]["detail"]
    else:
        assert not any("changed again since the deploy" in d["detail"] for d in details)

    result = roll_back(ini, backup_id, "--mode", mode)
    assert result["ok"] is True and result["revision"] == "0001"
    after = _scores(engine)
    for key, old in before.items():
        if mode == "merge" and key in RECHANGED:
            assert float(after[key]) == 999  # changed again since the deploy: kept
        elif key == UNTOUCHED_BY_REVISION:
            assert float(after[key]) == 777  # not in the backup (outside the WHERE): kept in both modes
        else:
            assert float(after[key]) == float(old), key
    assert 1001 in after  # a row written since, outside a row snapshot, stays in both modes
    table = _customers(result)
    report = Path(result["report"]).read_text()
    if mode == "merge":
        assert table["changed_since"] == 3
        assert table["changed_since_keys"] == ["id=12", "id=20", "id=33"]
        assert table["conflicts"] == 3 and table["matching"] == 47 and table["rows_in_backup"] == 50
        assert "3 row(s) changed again since the deploy were kept" in table["detail"]
        assert "changed again since the deploy were kept" in report and "id=12" in report
    else:
        assert table["changed_since"] == 0 and table["matching"] == 50
        assert "changed again" not in report


def test_merge_without_post_state_falls_back_and_says_so(any_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """An older backup (no post-step state in its manifest, no companion): every updated row
    gets its old value back, as before post-step states existed, and plan and report say so."""
    ini, engine, before = _deploy(any_url, tmp_path, engine_for)
    backup_id = the_backup(ini, "0002")
    _make_old_style(ini, engine, backup_id)
    assert _manifest(ini, backup_id)["tables"][0]["post"] is None

    plan = plan_json(ini, backup_id)
    lost = [d for d in plan["data"] if d["table"] == "customers" and "recorded no post-step state" in d["detail"]]
    assert len(lost) == 1 and lost[0]["effect"] == "lost"
    result = roll_back(ini, backup_id)
    assert result["ok"] is True
    after = _scores(engine)
    for key, old in before.items():
        assert float(after[key]) == (777 if key == UNTOUCHED_BY_REVISION else float(old)), key
    table = _customers(result)
    assert table["changed_since"] == 0 and "recorded no post-step state" in table["detail"]
    assert "recorded no post-step state" in Path(result["report"]).read_text()


def _make_old_style(ini: Path, engine: sa.Engine, backup_id: str) -> None:
    """Remove the post-step state: the companion and the manifest's field."""
    folder = ini.parent / "backups" / backup_id
    if folder.is_dir():  # files store
        path = folder / "manifest.json"
        data = json.loads(path.read_text())
        for t in data["tables"]:
            (folder / t.pop("post")["file"]).unlink()
        path.write_text(json.dumps(data))
        return
    with engine.begin() as conn:
        store = DatabaseStore(conn, snapshot_schema(conn, ""))
        manifest = store.get(backup_id)
        for t in manifest.tables:
            assert t.post is not None
            conn.execute(sa.schema.DropTable(sa.Table(t.post.file, sa.MetaData(), schema=store.schema)))
        store.write_manifest(replace(manifest, tables=tuple(replace(t, post=None) for t in manifest.tables)),
                             replace=True)  # fmt: skip


def test_merge_files_store_on_postgresql(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    """The files store on PostgreSQL: the keys kept before the step, digests by the database into
    a checksummed companion file; a damaged companion refuses the rollback."""
    ini, engine, before = _deploy(pg_url, tmp_path, engine_for, store="files")
    backup_id = the_backup(ini, "0002")
    post = _manifest(ini, backup_id)["tables"][0]["post"]
    assert post["file"].endswith(".post-digest.zst") and post["method"] == "md5-row" and post["rows"] == 50
    companion = ini.parent / "backups" / backup_id / post["file"]
    good = companion.read_bytes()
    companion.write_bytes(good[:-8] + b"\0" * 8)
    code = plan_json(ini, backup_id)["confirmation_code"]
    refused = run_safety(ini, "rollback", backup_id, "--confirm", code)
    assert refused.returncode == 2 and "post-step state" in refused.stdout + refused.stderr
    assert float(_scores(engine)[12]) == 999
    companion.write_bytes(good)

    result = roll_back(ini, backup_id)
    after = _scores(engine)
    assert all(float(after[k]) == 999 for k in RECHANGED)
    assert all(float(after[k]) == float(v) for k, v in before.items() if k not in RECHANGED and k != 5)
    assert _customers(result)["changed_since"] == 3
