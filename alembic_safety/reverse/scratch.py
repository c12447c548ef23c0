"""A scratch database: a temporary database the project's history is replayed into, so the schema
before (and after) any revision can be reflected exactly.

On PostgreSQL and MySQL/MariaDB the scratch URL names a *server*: a fresh database is created
beside the one it names and dropped afterwards, so the database in the URL is never written.
On SQLite it is a temporary file.  The project's env.py runs the upgrades (as ``alembic
upgrade`` would), pointed at the scratch database through ``sqlalchemy.url`` and with the
safety net off (``-x enabled=false``); an env.py that ignores ``sqlalchemy.url`` is detected
before anything runs and refused.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError

from ..audit import redact_text, redact_url
from ..errors import DatabaseUnavailable, SafetyError, UsageError

SCRATCH_PREFIX = "alembic_safety_scratch_"


def choose_url(given: str | None, configured: str, project_url: str | None) -> str | None:
    """The scratch URL to use: ``--url``, else ``scratch_url``, else None (a temporary SQLite
    file, allowed for SQLite projects only)."""
    url = given or configured or None
    project_dialect = _dialect_of(project_url)
    if url is None:
        if project_dialect in (None, "sqlite"):
            return None
        raise UsageError(
            f"generate needs a scratch database for this {project_dialect} project: pass --url "
            f"{project_dialect}://USER@HOST/DB (a server where a temporary database may be created) "
            "or set scratch_url in [alembic_safety]"
        )
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise UsageError(f"scratch URL {redact_text(url)!r} is not a database URL") from exc
    if parsed.get_backend_name() == "sqlite" and project_url and _same_sqlite(parsed, project_url):
        raise UsageError("the scratch URL is the project's own database; give a different one")
    return url


def _dialect_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        return None


def _same_sqlite(scratch: sa.URL, project_url: str) -> bool:
    try:
        own = sa.make_url(project_url)
    except sa.exc.ArgumentError:
        return False
    if own.get_backend_name() != "sqlite" or not own.database or not scratch.database:
        return False
    return Path(own.database).resolve() == Path(scratch.database).resolve()


@contextmanager
def temporary_database(url: str | None) -> Iterator[sa.URL]:
    """A fresh, empty database for the duration; dropped (or deleted) afterwards."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="alembic-safety-scratch-") as folder:
            yield sa.URL.create("sqlite", database=str(Path(folder) / "scratch.db"))
        return
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or parsed.database == ":memory:":
            raise UsageError("a scratch SQLite URL must name a file (sqlite:///path/scratch.db)")
        if path.exists() and path.stat().st_size > 0:
            raise UsageError(f"scratch file {path} exists and is not empty; give a new path")
        try:
            yield parsed
        finally:
            with suppress(OSError):
                path.unlink()
        return
    name = SCRATCH_PREFIX + uuid.uuid4().hex[:12]
    admin = sa.create_engine(parsed, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    except sa.exc.DBAPIError as exc:
        admin.dispose()
        first = redact_text(str(getattr(exc, "orig", exc))).strip().splitlines()
        reason = first[0] if first else type(exc).__name__
        if isinstance(exc, sa.exc.OperationalError) and "permission" not in reason.lower():
            raise DatabaseUnavailable(f"cannot reach the scratch server {redact_url(parsed)}: {reason}") from exc
        raise UsageError(
            f"cannot create a scratch database on {redact_url(parsed)}: {reason}; the role needs "
            "CREATEDB (PostgreSQL) or CREATE (MySQL) there"
        ) from exc
    try:
        yield parsed.set(database=name)
    finally:
        _drop(admin, name)
        admin.dispose()


def _drop(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        quoted = conn.dialect.identifier_preparer.quote(name)
        if conn.dialect.name == "postgresql":
            try:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
                return
            except sa.exc.DBAPIError:  # PostgreSQL < 13 has no FORCE
                pass
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")


class Replayer:
    """Runs the project's upgrades, through its env.py, against the scratch database."""

    def __init__(self, alembic_cfg: Config, url: sa.URL) -> None:
        self.url = url
        self._cfg = Config(alembic_cfg.config_file_name, ini_section=alembic_cfg.config_ini_section,
                           toml_file=getattr(alembic_cfg, "toml_file_name", None))  # fmt: skip
        rendered = url.render_as_string(hide_password=False)
        self._cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        x = list(getattr(getattr(alembic_cfg, "cmd_opts", None), "x", None) or [])
        self._cfg.cmd_opts = _Opts([*x, "enabled=false"])  # type: ignore[assignment]
        self._checked = False
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def close(self) -> None:
        self.engine.dispose()

    def _quiet(self) -> Any:
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        return previous

    def check_target(self) -> None:
        """Refuse an env.py that would connect somewhere else than the scratch database."""
        if self._checked:
            return
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._cfg)
        seen: list[sa.URL] = []

        def fn(rev: Any, context: Any) -> list[Any]:
            if context.connection is not None:
                seen.append(context.connection.engine.url)
            return []

        previous = self._quiet()
        try:
            with EnvironmentContext(self._cfg, script, fn=fn, dont_mutate=True):
                script.run_env()
        except CommandError as exc:
            raise SafetyError(f"alembic: {exc}") from exc
        finally:
            logging.disable(previous)
        if not seen or any(u.database != self.url.database for u in seen):
            raise UsageError(
                "env.py does not connect to sqlalchemy.url from alembic.ini (it builds its own URL), so the "
                "history cannot be replayed on a scratch database; make env.py prefer "
                "config.get_main_option('sqlalchemy.url') when it is set"
            )
        self._checked = True

    def upgrade(self, target: str) -> None:
        self.check_target()
        previous = self._quiet()
        try:
            command.upgrade(self._cfg, target)
        except SafetyError:
            raise
        except Exception as exc:
            first = redact_text(str(exc)).strip().splitlines()
            raise SafetyError(
                f"replaying the history on the scratch database failed at {target}: "
                f"{type(exc).__name__}: {first[0] if first else ''}"
            ) from exc
        finally:
            logging.disable(previous)


class _Opts:
    def __init__(self, x: list[str]) -> None:
        self.x = x
