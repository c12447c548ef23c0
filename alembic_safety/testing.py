"""The alembic-safety pytest plugin: your migrations' safety checks in your own test suite.

Registered through the ``pytest11`` entry point and **off** until the project enables it::

    # pyproject.toml
    [tool.pytest.ini_options]
    alembic_safety = true
    alembic_safety_config = "alembic.ini"               # relative to the rootdir
    alembic_safety_scratch_url = "postgresql://postgres@localhost/postgres"  # a server, never your database
    alembic_safety_tests = "tests"                      # the folder (with a conftest.py) the tests join

It then adds four tests beside ``<alembic_safety_tests>/conftest.py``:

* ``test_revisions_round_trip`` — ``alembic-safety verify`` on a scratch database: every
  revision's downgrade restores the schema, and its data through the snapshot;
* ``test_downgrades_present`` — no revision has a missing, ``pass`` or stale downgrade (one that
  raises ``IrreversibleRevision`` is declared and fine);
* ``test_no_high_risk_without_allow`` — no revision has a high-risk finding it does not allow;
* ``test_docs_current`` — the rollback runbooks (``alembic-safety docs``) are up to date.

The fixtures ``alembic_safety_config`` (the loaded project) and ``alembic_safety_scratch_url``
can be overridden in your conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .project import Project, load_project

BUILTIN_TESTS = ("test_revisions_round_trip", "test_downgrades_present", "test_no_high_risk_without_allow",
                 "test_docs_current")  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("alembic_safety", type="bool", default=False,
                  help="alembic-safety: add its migration tests to this suite")  # fmt: skip
    parser.addini("alembic_safety_config", default="alembic.ini",
                  help="alembic-safety: the alembic.ini of the migrations (relative to the rootdir)")  # fmt: skip
    parser.addini("alembic_safety_section", default="alembic", help="alembic-safety: the ini section")
    parser.addini("alembic_safety_scratch_url", default="",
                  help="alembic-safety: a server where verify may create a temporary database")  # fmt: skip
    parser.addini("alembic_safety_tests", default="tests",
                  help="alembic-safety: the folder (holding a conftest.py) its tests are added to")  # fmt: skip


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getini("alembic_safety"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if file_path.name != "conftest.py" or not _enabled(config):
        return None
    folder = Path(config.rootpath) / str(config.getini("alembic_safety_tests"))
    if file_path.parent.resolve() != folder.resolve():
        return None
    module: pytest.Collector = _SafetyTests.from_parent(parent, path=file_path)
    return module


class _SafetyTests(pytest.Module):
    """The built-in tests, collected under the tests folder's conftest.py (so its fixtures,
    and overrides of ours, apply)."""

    def _getobj(self) -> Any:
        import sys

        return sys.modules[__name__]

    def collect(self) -> Iterator[pytest.Item]:
        module = self.obj
        for name in BUILTIN_TESTS:
            yield pytest.Function.from_parent(self, name=name, callobj=getattr(module, name))


@pytest.fixture
def alembic_safety_config(request: pytest.FixtureRequest) -> Project:
    """The project under test, from ``alembic_safety_config`` (alembic.ini) in the pytest ini."""
    config = request.config
    path = Path(config.rootpath) / str(config.getini("alembic_safety_config"))
    return load_project(str(path), str(config.getini("alembic_safety_section") or "alembic"))


@pytest.fixture
def alembic_safety_scratch_url(request: pytest.FixtureRequest) -> str | None:
    """The scratch server for verify (``alembic_safety_scratch_url``); None: the project's
    scratch_url setting, or a temporary SQLite file for SQLite projects."""
    return str(request.config.getini("alembic_safety_scratch_url") or "") or None


# -- the built-in tests (collected only when the plugin is enabled) -------------------------------
def test_revisions_round_trip(alembic_safety_config: Project, alembic_safety_scratch_url: str | None) -> None:
    """Every revision round-trips on a scratch database: schema exactly, data through its snapshot."""
    from .verify import render_text, verify

    report = verify(alembic_safety_config, url=alembic_safety_scratch_url)
    assert not report.failed, "revisions that cannot be undone cleanly:\n" + render_text(report)


def test_downgrades_present(alembic_safety_config: Project) -> None:
    """No downgrade is missing, only ``pass``, or generated from an older upgrade."""
    from alembic.script import Script

    from .reverse.source import EMPTY, MISSING, RAISES, STALE, inspect

    problems: list[str] = []
    for script in alembic_safety_config.script().walk_revisions():
        if not isinstance(script, Script) or not script.path:
            continue
        slot = inspect(Path(script.path))
        if slot.status == RAISES and "IrreversibleRevision" in slot.text:
            continue  # declared irreversible
        if slot.status in (MISSING, EMPTY, RAISES, STALE):
            what = {MISSING: "has no downgrade()", EMPTY: "has an empty downgrade()",
                    RAISES: "has a downgrade() that only raises", STALE: "has a stale generated downgrade()"}
            problems.append(f"{script.revision} ({Path(script.path).name}) {what[slot.status]}")
    assert not problems, "run 'alembic-safety generate':\n" + "\n".join(problems)


def test_no_high_risk_without_allow(alembic_safety_config: Project) -> None:
    """No revision carries a high-risk finding that it does not explicitly allow."""
    from .plan import analyse

    plan = analyse(alembic_safety_config, "base:heads", live=False)
    high = [f"{r.revision}: {f.code} {f.message}" for r in plan.revisions for f in r.findings
            if f.severity == "high" and not f.allowed]  # fmt: skip
    assert not plan.fails("high"), "high-risk findings not allowed:\n" + "\n".join(high)


def test_docs_current(alembic_safety_config: Project) -> None:
    """The rollback runbooks written by ``alembic-safety docs`` match the revisions."""
    from .runbook import check_docs

    result = check_docs(alembic_safety_config)
    lines = [f"{what}: {name}" for what, names in (("missing", result.missing), ("stale", result.stale),
                                                  ("extra", result.extra)) for name in names]  # fmt: skip
    why = f"the runbooks in {result.folder} are not current; run 'alembic-safety docs':\n"
    assert result.ok, why + "\n".join(lines)
