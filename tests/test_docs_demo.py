"""The README, --help and alembic.ini.example tell the truth; the demo works."""

from __future__ import annotations

import configparser
import re
import sqlite3
from pathlib import Path

from alembic_safety.cli import main
from alembic_safety.config import SETTINGS, load_config

from .helpers import safety

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:600]
    assert "pip install -e '.[test]' && alembic-safety demo" in head
    assert "\npytest" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^pytest$", ci, re.MULTILINE), ".ci/run must run the README's test command"
    assert "pip install -q -e '.[test]'" in ci and "ALEMBIC_SAFETY_REQUIRE_DBS=1" in ci


def test_readme_configuration_table_matches_the_settings() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `?([^|`]*?)`? \|", README, re.MULTILINE))
    for s in SETTINGS:
        assert s.key in rows, f"README does not document {s.key}"
        assert rows[s.key] == (s.default or "(empty)"), (s.key, rows[s.key], s.default)


def test_readme_lists_every_command_and_help_agrees() -> None:
    for name in main.commands:
        assert f"| `{name}" in README, f"README does not list the {name} command"
    out = safety(None, "--help").stdout
    for name in main.commands:
        assert name in out


def test_example_ini_is_valid(tmp_path: Path) -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "alembic.ini.example")
    cfg = load_config(dict(parser["alembic_safety"]), here=tmp_path, environ={})
    assert cfg.exclude_tables == ("*_log", "sessions") and cfg.max_snapshot_bytes == 5 * 1024**3


def test_demo_runs_and_keeps_its_folder(tmp_path: Path) -> None:
    proc = safety(None, "demo", "--dir", str(tmp_path / "demo"))
    out = proc.stdout
    assert "every checksum matches" in out
    assert "equal the destroyed ones: yes" in out
    assert "customers (columns id, legacy_phone): 200 rows" in out
    assert (tmp_path / "demo" / "alembic.ini").exists()
    # the last act: the risky revision rolled back, the data back checksum for checksum
    assert "6. `alembic-safety rollback " in out and "--confirm " in out
    checksums = re.findall(r"^   - (\w+): (\d+) rows (\w+)… before, (\d+) rows (\w+)… after: same$", out, re.MULTILINE)
    assert {c[0] for c in checksums} == {"customers", "orders", "old_audit"}
    assert all(c[1] == c[3] and c[2] == c[4] for c in checksums)
    assert ("customers", "200") in {c[:2] for c in checksums} and ("orders", "1000") in {c[:2] for c in checksums}
    assert "The data is back, checksum for checksum: yes" in out
    with sqlite3.connect(tmp_path / "demo" / "shop.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("2b3c4d5e6f70",)
        assert conn.execute("SELECT count(*) FROM orders WHERE status = 'cancelled'").fetchone() == (200,)
    conn.close()
    assert list((tmp_path / "demo" / "backups").glob("rollback-*.md"))  # the incident report
    again = safety(None, "demo", "--dir", str(tmp_path / "demo"), check=False)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_demo_table_checksums_see_one_changed_value(tmp_path: Path) -> None:
    """The demo's checksum: row order by key, the columns in the order given (a column re-added
    at the end hashes where it was), and any changed value changes it."""
    from alembic_safety.demo import table_checksums

    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b NUMERIC(10, 2))")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(2, "y", 2.5), (1, "x", 1.25)])
        conn.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, b NUMERIC(10, 2), a TEXT)")  # a re-added last
        conn.executemany("INSERT INTO u VALUES (?, ?, ?)", [(1, 1.25, "x"), (2, 2.5, "y")])
    conn.close()
    cols = ["id", "a", "b"]
    t, u = table_checksums(db, {"t": cols})["t"], table_checksums(db, {"u": cols})["u"]
    assert t == u and t.rows == 2
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE u SET b = 2.51 WHERE id = 2")
    conn.close()
    assert table_checksums(db, {"u": cols})["u"] != t
    assert table_checksums(db, {"gone": cols})["gone"] != t


def test_readme_rule_reference_is_generated_from_the_rules() -> None:
    from alembic_safety.docgen import render_readme
    from alembic_safety.risk import all_rules

    assert render_readme(README) == README, "README's rule reference is stale: run python -m alembic_safety.docgen"
    for rule in all_rules():
        assert f"#### {rule.code}" in README
