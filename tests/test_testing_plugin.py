"""The pytest plugin (``alembic_safety.testing``), run through pytest's ``pytester`` on an example
project: off unless the project's configuration enables it; when enabled its four built-in tests
join the project's suite, pass on a sound history and fail on a downgrade that is ``pass``."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import copy_example
from .helpers import safety
from .test_verify import BASE_DOWN, BASE_UP, write_revision

pytest_plugins = ["pytester"]

ENABLED = """
[tool.pytest.ini_options]
alembic_safety = true
alembic_safety_config = "alembic.ini"
"""


def make_project(pytester: pytest.Pytester, enabled: bool) -> Path:
    root = pytester.path
    ini = copy_example("generate", root, sa.URL.create("sqlite", database=str(root / "app.db")))
    versions = root / "migrations" / "versions"
    write_revision(versions, "p01", None, BASE_UP, BASE_DOWN, "items and tags")
    write_revision(versions, "p02", "p01", 'op.add_column("items", sa.Column("note", sa.Text))',
                   'with op.batch_alter_table("items") as b:\n    b.drop_column("note")', "items.note")
    (root / "pyproject.toml").write_text(ENABLED if enabled else "[tool.pytest.ini_options]\n")
    (root / "tests").mkdir()
    (root / "tests" / "conftest.py").write_text("")
    (root / "tests" / "test_app.py").write_text("def test_app():\n    assert 1 + 1 == 2\n")
    safety(ini, "docs")
    return ini


def test_plugin_adds_its_tests_when_enabled(pytester: pytest.Pytester) -> None:
    make_project(pytester, enabled=True)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    for name in ("test_revisions_round_trip", "test_downgrades_present", "test_no_high_risk_without_allow",
                 "test_docs_current", "test_app"):  # fmt: skip
        result.stdout.fnmatch_lines([f"*{name} PASSED*"])


def test_plugin_fails_a_pass_downgrade(pytester: pytest.Pytester) -> None:
    make_project(pytester, enabled=True)
    revision = pytester.path / "migrations" / "versions" / "p02.py"
    text = revision.read_text()
    revision.write_text(text[: text.index("def downgrade():")] + "def downgrade():\n    pass\n")
    safety(pytester.path / "alembic.ini", "docs")  # the runbooks follow the edited revision
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*test_revisions_round_trip FAILED*", "*test_downgrades_present FAILED*"])
    result.stdout.fnmatch_lines(["*p02*schema-mismatch*"])


def test_plugin_is_off_unless_enabled(pytester: pytest.Pytester) -> None:
    make_project(pytester, enabled=False)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "test_revisions_round_trip" not in result.stdout.str()
