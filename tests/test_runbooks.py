"""``docs``, ``emergency``, ``status`` reports and webhook notifications, on the shop example
(SQLite: the runbooks never need a database, the rest uses a real SQLite file)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.config import load_config
from alembic_safety.errors import SafetyError
from alembic_safety.notify import notify
from alembic_safety.templating import render

from .conftest import copy_example
from .helpers import alembic, backups_json, safety

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("ALEMBIC_SAFETY_UPDATE_GOLDEN") == "1"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _golden(name: str, text: str, tmp_path: Path) -> None:
    text = text.replace(str(tmp_path), "<tmp>")
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with ALEMBIC_SAFETY_UPDATE_GOLDEN=1 if intended"


@pytest.fixture
def shop(sqlite_url: sa.URL, tmp_path: Path) -> Path:
    return copy_example("shop", tmp_path / "shop", sqlite_url)


# -- docs ----------------------------------------------------------------------------------------
def test_runbooks_and_emergency_plan_golden(shop: Path, tmp_path: Path) -> None:
    out = safety(shop, "docs").stdout
    folder = shop.parent / "migrations" / "rollback"
    assert "5 written, 0 unchanged, 0 removed" in out
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["0001_create_customers_orders_and_notes_with_d_rollback.md",
                     "0002_drop_phone_purge_cancelled_orders_reset_rollback.md",
                     "0003_archive_paid_orders_through_the_connecti_rollback.md",
                     "0004_add_a_tier_column_rollback.md", "EMERGENCY_ROLLBACK_PLAN.md"]  # fmt: skip
    for name in names:
        _golden(f"docs_shop/{name}", (folder / name).read_text(), tmp_path)
    r2 = (folder / names[1]).read_text()
    for part in ("## What it does", "- drop column customers.phone", "SAF101", "## What is snapshotted",
                 "alembic-safety rollback <backup id> --confirm <CODE>", "alembic downgrade 0001", "**critical**",
                 "## What a human must check", "SELECT count(*) FROM orders;", "CHK205", "## Related files",
                 "migrations/versions/0002_cleanup.py"):  # fmt: skip
        assert part in r2, part
    # deterministic: a second run (later, with a database and backups around) changes nothing
    alembic(shop, "upgrade", "head")
    assert "0 written, 5 unchanged" in safety(shop, "docs").stdout


def test_runbook_shows_the_manual_markers_of_a_generated_downgrade(shop: Path) -> None:
    rev = shop.parent / "migrations" / "versions" / "0004_tier.py"
    text = rev.read_text()
    head, _, _ = text.partition("def downgrade")
    rev.write_text(head + "def downgrade():\n    # MANUAL: the tier values chosen by support are not\n"
                   "    #   recoverable from the schema\n    # IRREVERSIBLE: nothing brings back the tiers\n"
                   "    pass\n")  # fmt: skip
    safety(shop, "docs")
    body = (shop.parent / "migrations" / "rollback" / "0004_add_a_tier_column_rollback.md").read_text()
    assert "- [ ] **MANUAL**: the tier values chosen by support are not recoverable from the schema" in body
    assert "- [ ] **IRREVERSIBLE**: nothing brings back the tiers" in body


def test_docs_check_fails_on_a_changed_revision_and_passes_after_docs(shop: Path, tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    missing = safety(shop, "docs", "--check", "--out", str(folder), check=False)
    assert missing.returncode == 1 and "missing:" in missing.stdout and "EMERGENCY_ROLLBACK_PLAN.md" in missing.stdout
    safety(shop, "docs", "--out", str(folder))
    assert safety(shop, "docs", "--check", "--out", str(folder)).returncode == 0
    rev = shop.parent / "migrations" / "versions" / "0004_tier.py"
    rev.write_text(rev.read_text().replace('op.add_column("customers"', 'op.drop_column("customers", "score")\n'
                                           '    op.add_column("customers"'))  # fmt: skip
    assert "drop_column" in rev.read_text()
    stale = safety(shop, "docs", "--check", "--out", str(folder), check=False)
    assert stale.returncode == 1
    assert "stale: " in stale.stdout and "0004_add_a_tier_column_rollback.md" in stale.stdout
    assert "run 'alembic-safety docs'" in stale.stderr
    (folder / "0099_gone_rollback.md").write_text("old")
    extra = safety(shop, "docs", "--check", "--out", str(folder), check=False)
    assert "extra: " in extra.stdout and "0099_gone_rollback.md" in extra.stdout
    again = safety(shop, "docs", "--out", str(folder)).stdout
    assert "removed" in again and not (folder / "0099_gone_rollback.md").exists()
    assert "drop column customers.score" in (folder / "0004_add_a_tier_column_rollback.md").read_text()
    assert safety(shop, "docs", "--check", "--out", str(folder)).returncode == 0


def test_strict_undefined_names_the_template(shop: Path, tmp_path: Path) -> None:
    for name in ("docs/revision.md.j2", "docs/emergency.md.j2", "status/status.md.j2", "status/status.txt.j2"):
        with pytest.raises(SafetyError, match=rf"template '{name}' failed: '\w+' is undefined"):
            render(name, human=str)  # every other variable missing
    _broken(tmp_path)
    # the same through the CLI, with templates_dir pointing at the user's (broken) copy
    ini = shop.read_text().replace("[alembic_safety]\n", f"[alembic_safety]\ntemplates_dir = {tmp_path / 'mine'}\n")
    shop.write_text(ini)
    proc = safety(shop, "docs", "--check", check=False)
    assert proc.returncode == 2
    assert "template 'docs/revision.md.j2' failed" in proc.stderr and "'nope' is undefined" in proc.stderr


def _broken(tmp_path: Path) -> Path:
    mine = tmp_path / "mine" / "docs"
    mine.mkdir(parents=True, exist_ok=True)
    (mine / "revision.md.j2").write_text((TEMPLATES / "docs" / "revision.md.j2").read_text() + "{{ nope }}\n")
    return tmp_path / "mine"


def test_templates_dir_restyles_a_template(shop: Path, tmp_path: Path) -> None:
    mine = tmp_path / "styles" / "docs"
    mine.mkdir(parents=True)
    (mine / "emergency.md.j2").write_text("# Our plan\nheads: {{ heads | join(',') }}; stop: {{ stop_app_command }}\n")
    text = shop.read_text().replace("[alembic_safety]\n", "[alembic_safety]\ntemplates_dir = ../styles\n"
                                    "stop_app_command = kubectl scale deploy/shop --replicas=0\n")  # fmt: skip
    shop.write_text(text)
    assert safety(shop, "emergency").stdout == "# Our plan\nheads: 0004; stop: kubectl scale deploy/shop --replicas=0\n"


def test_a_templates_dir_that_is_not_a_folder_is_one_line(shop: Path) -> None:
    shop.write_text(shop.read_text().replace("[alembic_safety]\n", "[alembic_safety]\ntemplates_dir = ../stlyes\n"))
    for args in (["emergency"], ["docs", "--check"]):
        proc = safety(shop, *args, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "templates_dir" in proc.stderr and "stlyes is not a folder" in proc.stderr


def test_emergency_lists_the_newest_backups_and_the_configured_hooks(sqlite_url: sa.URL, tmp_path: Path) -> None:
    ini = copy_example("shop", tmp_path / "shop", sqlite_url, maintenance_command="./bin/maintenance on")
    plain = safety(ini, "emergency").stdout
    assert "There is no backup yet." in plain and "set stop_app_command" in plain
    assert "./bin/maintenance on" in plain and "| head revision(s) | `0004` |" in plain
    alembic(ini, "upgrade", "head")
    ids = [b["id"] for b in backups_json(ini)]
    assert ids
    out = tmp_path / "plan" / "EMERGENCY.md"
    safety(ini, "emergency", "--out", str(out))
    text = out.read_text()
    for backup_id in ids[:5]:
        assert f"`{backup_id}`" in text
    for phase in ("Immediate response", "Assessment", "Rollback execution", "Recovery", "Post-incident"):
        assert phase in text
    assert "alembic-safety rollback <backup id> --confirm <CODE>" in text


# -- status ----------------------------------------------------------------------------------------
def test_status_in_three_formats(shop: Path, tmp_path: Path) -> None:
    fresh_md = safety(shop, "status", "--format", "markdown").stdout
    _golden("status_shop_fresh.md", fresh_md, tmp_path)
    fresh_text = safety(shop, "status").stdout
    _golden("status_shop_fresh.txt", fresh_text, tmp_path)
    alembic(shop, "upgrade", "0002")
    safety(shop, "health")
    data = json.loads(safety(shop, "status", "--format", "json").stdout)
    assert data["current"] == ["0002"] and data["pending"] == 2
    assert [p["revision"] for p in data["pending_revisions"]] == ["0003", "0004"]
    assert data["pending_revisions"][0]["worst"] == "high"
    summary = data["backup_summary"]
    assert summary["count"] == len(backups_json(shop)) >= 1 and summary["total_bytes"] > 0
    assert summary["newest"] == data["backups"][0]["id"] and summary["incomplete"] == 0
    assert data["last_health"]["event"] == "health" and data["last_health"]["status"] in ("healthy", "degraded")
    assert data["events"][-1]["event"] == "health"
    assert any("2 revision(s) pending, 1 with a high risk" in s for s in data["next_steps"])
    text = safety(shop, "status").stdout
    assert "pending   2 revision(s)" in text and "0003  high" in text and "newest  " in text
    assert f"health    {data['last_health']['status']} at" in text and "next steps" in text
    target = tmp_path / "report.md"
    safety(shop, "status", "--format", "markdown", "--out", str(target))
    md = target.read_text()
    assert "### Pending revisions" in md and "| `0003` |" in md and "### Recent events" in md
    assert "### Next steps" in md and f"`{summary['newest']}`" in md


def test_status_report_hides_passwords(tmp_path: Path) -> None:
    url = sa.make_url("postgresql+psycopg2://someone:hunter2@127.0.0.1:1/nowhere")
    ini = copy_example("shop", tmp_path / "shop", url)
    for fmt in ("text", "markdown", "json"):
        proc = safety(ini, "status", "--format", fmt, check=False)
        assert proc.returncode == 2 and "hunter2" not in proc.stdout + proc.stderr
        assert "reach the database first" in proc.stdout


# -- notifications ---------------------------------------------------------------------------------
class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    delay: float = 0.0
    status: int = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"content_type": self.headers["Content-Type"], "body": json.loads(body)})
        time.sleep(self.delay)
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/secret-token", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_rollback_is_announced_to_the_webhook(webhook: tuple[str, type[_Hook]], sqlite_url: sa.URL,
                                              tmp_path: Path) -> None:  # fmt: skip
    url, hook = webhook
    ini = copy_example("shop", tmp_path / "shop", sqlite_url, notify_url=url)
    alembic(ini, "upgrade", "head")
    backup_id = next(b["id"] for b in backups_json(ini) if b["revision_to"] == "0002")
    code = json.loads(safety(ini, "rollback", backup_id, "--dry-run", "--format", "json").stdout)["confirmation_code"]
    safety(ini, "rollback", backup_id, "--confirm", code)
    events = [r["body"] for r in hook.received]
    done = [e for e in events if e["event"]["event"] == "rollback_completed"]
    assert len(done) == 1 and hook.received[0]["content_type"] == "application/json"
    assert backup_id in done[0]["text"] and "the database is at 0001" in done[0]["text"]
    assert done[0]["event"]["backup_id"] == backup_id and done[0]["event"]["ok"] is True


def test_failed_health_is_announced_and_a_dead_webhook_fails_nothing(
        webhook: tuple[str, type[_Hook]], sqlite_url: sa.URL, tmp_path: Path) -> None:
    url, hook = webhook
    ini = copy_example("shop", tmp_path / "shop", sqlite_url, notify_url=url)
    alembic(ini, "upgrade", "0001")
    with sa.create_engine(sqlite_url).begin() as conn:  # a foreign key to nowhere, as PRAGMA foreign_keys=off allows
        conn.exec_driver_sql("INSERT INTO orders (id, customer_id, status, total, created_at) "
                             "VALUES (9999, 424242, 'paid', 1, '2026-01-01 00:00:00')")
    proc = safety(ini, "health", check=False)
    assert proc.returncode == 1
    failed = [r["body"] for r in hook.received if r["body"]["event"]["event"] == "health_failed"]
    assert len(failed) == 1 and "CHK201" in failed[0]["text"] and failed[0]["event"]["status"] == "failed"
    # the webhook is gone: the migration and the rollback still work, the failure is logged
    dead = "http://127.0.0.1:9/hook"
    ini2 = copy_example("shop", tmp_path / "shop2", sa.make_url(f"sqlite:///{tmp_path / 'two.db'}"), notify_url=dead)
    alembic(ini2, "upgrade", "head")
    backup_id = next(b["id"] for b in backups_json(ini2) if b["revision_to"] == "0002")
    code = json.loads(safety(ini2, "rollback", backup_id, "--dry-run", "--format", "json").stdout)["confirmation_code"]
    assert safety(ini2, "rollback", backup_id, "--confirm", code).returncode == 0
    audit = [json.loads(line) for line in (tmp_path / "shop2" / "backups" / "audit.jsonl").read_text().splitlines()]
    failed_notes = [e for e in audit if e["event"] == "notify_failed"]
    assert failed_notes and failed_notes[0]["notified_event"] == "rollback_completed"
    assert failed_notes[0]["url"] == "http://127.0.0.1:9/…"  # the path (often the secret) is never shown


def test_notify_has_a_short_timeout_and_never_raises(webhook: tuple[str, type[_Hook]], tmp_path: Path) -> None:
    url, hook = webhook
    config = load_config({"notify_url": url}, here=tmp_path, environ={})
    assert notify(config, "test", "hello postgresql://u:pw@h/db", None, revision="0002") is True
    body = hook.received[-1]["body"]
    assert body["text"] == "hello postgresql://u:***@h/db" and body["event"]["revision"] == "0002"
    hook.delay = 5.0
    started = time.monotonic()
    assert notify(config, "test", "slow", None) is False
    assert time.monotonic() - started < 4.5
    hook.delay, hook.status = 0.0, 500
    assert notify(config, "test", "refused", None) is False
    assert notify(load_config({}, here=tmp_path, environ={}), "test", "no url") is False


def test_shipped_ci_files_run_the_three_checks() -> None:
    root = Path(__file__).resolve().parent.parent
    hooks = (root / ".pre-commit-hooks.yaml").read_text()
    workflow = (root / "templates" / "ci" / "github-actions.yml").read_text()
    for text in (hooks, workflow):
        assert "generate --check" in text and "docs --check" in text and "plan --fail-on high --format markdown" in text
    assert "GITHUB_STEP_SUMMARY" in workflow


def test_refused_step_is_announced(webhook: tuple[str, type[_Hook]], sqlite_url: sa.URL, tmp_path: Path) -> None:
    url, hook = webhook
    ini = copy_example("checks", tmp_path / "p", sqlite_url, notify_url=url)
    alembic(ini, "upgrade", "0001")
    proc = alembic(ini, "upgrade", "head", check=False)
    assert proc.returncode != 0 and "alembic-safety refused upgrade 0001 -> 0002" in proc.stderr
    refused = [r["body"] for r in hook.received if r["body"]["event"]["event"] == "step_refused"]
    assert len(refused) == 1
    assert "alembic-safety refused upgrade 0001 -> 0002" in refused[0]["text"]
    assert refused[0]["event"]["revision"] == "0002" and "CHK201" in refused[0]["event"]["findings"][0]
