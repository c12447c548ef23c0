"""generate measured against a real history: every downgrade of the 64-revision saas example
(tests/examples/saas) is thrown away and generated, then each revision is upgraded, downgraded
with the *generated* body and compared with the schema before it (``reflect_state``/``diff``),
then upgraded again.  Every reversible revision must round-trip exactly; the rest must be
explicitly marked (``IrreversibleRevision`` raised, or a ``# MANUAL:`` line for what it left).

The summary is printed (``pytest -s``) and is the figure in the README."""

from __future__ import annotations

import ast
import logging.config
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory

from alembic_safety.errors import IrreversibleRevision
from alembic_safety.reverse.schema import SchemaState, diff, reflect_state

from .conftest import copy_example
from .helpers import safety

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def blank_downgrades(versions: Path) -> int:
    """Replace every downgrade body by ``pass`` (docstrings kept): what generate starts from."""
    count = 0
    for path in sorted(versions.glob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "downgrade")
        body = fn.body
        has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        rest = body[1:] if has_doc else body
        if not rest:
            continue
        lines = text.splitlines()
        first, last = rest[0].lineno - 1, fn.end_lineno or len(lines)
        path.write_text("\n".join([*lines[:first], "    pass", *lines[last:]]) + "\n")
        count += 1
    return count


def state(url: sa.URL) -> SchemaState:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return reflect_state(conn)
    finally:
        engine.dispose()


@contextmanager
def admin(url: sa.URL) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def test_generated_downgrades_round_trip_the_saas_history(pg_url: sa.URL, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(logging.config, "fileConfig", lambda *a, **k: None)  # keep pytest's logging
    ini = copy_example("saas", tmp_path / "saas", pg_url, enabled="false")
    versions = tmp_path / "saas" / "migrations" / "versions"
    assert blank_downgrades(versions) >= 40
    safety(ini, "generate", "--url", pg_url.render_as_string(hide_password=False))
    safety(ini, "generate", "--check")  # every downgrade is now present and current

    script = ScriptDirectory.from_config(Config(str(ini)))
    revisions = [s for s in reversed(list(script.walk_revisions())) if isinstance(s, Script)]
    assert len(revisions) >= 60
    prefix = f"{pg_url.database}_r"

    def url_of(db: str) -> sa.URL:
        return pg_url.set(database=db)

    def config(db: str) -> Config:
        cfg = Config(str(ini))
        cfg.set_main_option("sqlalchemy.url", url_of(db).render_as_string(hide_password=False).replace("%", "%%"))
        return cfg

    verdicts: dict[str, str] = {}
    with admin(pg_url) as conn:
        def create(name: str, template: str | None = None) -> str:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            like = f' TEMPLATE "{template}"' if template else ""
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{like}')
            return name

        # one database per revision, at exactly that revision (its ancestors and nothing else),
        # kept while a later revision may still start from it
        at: dict[str, str] = {}
        try:
            for n, rev in enumerate(revisions):
                parents = list(rev._versioned_down_revisions)
                scratch = create(f"{prefix}{n}", at[parents[0]] if parents else None)
                for parent in parents[1:]:  # a merge: bring the other branch in
                    command.upgrade(config(scratch), parent)
                before = state(url_of(scratch))
                command.upgrade(config(scratch), rev.revision)
                after = state(url_of(scratch))
                clean = create(f"{prefix}{n}_at", scratch)  # the revision's state, for its children
                at[rev.revision] = clean
                body = Path(rev.path).read_text()
                name = Path(rev.path).name
                verdicts[name] = round_trip(scratch, rev.revision, parents, before, after, body, config)
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            for db in [*at.values(), *(f"{prefix}{n}" for n in range(len(revisions)))]:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    ok = sum(v == "ok" for v in verdicts.values())
    marked = {k: v for k, v in verdicts.items() if "(marked)" in v}
    failed = {k: v for k, v in verdicts.items() if v != "ok" and k not in marked}
    print(f"\nsaas history: {len(verdicts)} revisions, {ok} round-trip exactly, {len(marked)} marked, "
          f"{len(failed)} unmarked failures")  # fmt: skip
    for k, v in sorted({**marked, **failed}.items()):
        print(f"  {k}: {v}")
    assert not failed, "\n".join(f"{k}: {v}" for k, v in sorted(failed.items()))


def round_trip(db: str, revision: str, parents: list[str], before: SchemaState, after: SchemaState, body: str,
               config: Callable[[str], Config]) -> str:  # fmt: skip
    """Downgrade with the generated body, compare with ``before``, upgrade again, compare."""
    url = sa.make_url(config(db).get_main_option("sqlalchemy.url") or "")
    try:
        command.downgrade(config(db), parents[0] if parents else "base")
        for parent in parents[1:]:  # a merge's downgrade leaves one parent: the other comes back
            command.upgrade(config(db), parent)
    except IrreversibleRevision:
        return "irreversible (marked)"
    except Exception as exc:
        return f"FAILS: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    left = diff(before, state(url))
    if left:
        return ("manual (marked): " if "# MANUAL:" in body else "SCHEMA DIFFERS: ") + "; ".join(left)
    try:
        command.upgrade(config(db), revision)
    except Exception as exc:  # e.g. seed rows the downgrade left (a MANUAL line says so)
        prefix = "manual (marked): re-upgrade fails: " if "# MANUAL:" in body else "REUPGRADE FAILS: "
        return prefix + f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    again = diff(after, state(url))
    return "ok" if not again else "REUPGRADE DIFFERS: " + "; ".join(again)
