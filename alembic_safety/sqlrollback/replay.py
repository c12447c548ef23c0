"""The exact schema state before each raw SQL migration: the folder replayed on a database.

The files run in order inside one transaction on the database ``--scratch-url`` names, the
state reflected (:func:`alembic_safety.reverse.schema.reflect_state`) before each, and the
transaction rolled back at the end: nothing is kept.  That database must be where the folder
starts from (empty, or with only what the platform provides, such as Supabase's ``auth`` and
``storage`` schemas).  Statements that PostgreSQL refuses inside a transaction are replayed in
the form it accepts (``CREATE INDEX CONCURRENTLY`` without ``CONCURRENTLY``) or left out when
they change no schema (``VACUUM``); the files' own ``BEGIN``/``COMMIT`` are left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from ..errors import SafetyError, UsageError
from ..reverse.schema import SchemaState, reflect_state
from ..reverse.sql import shorten, split_statements
from .folder import read_text
from .log import DIALECT

_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|END|START\s+TRANSACTION|ABORT)\b(?!\s*\()", re.I)
_NOT_SCHEMA = re.compile(r"^\s*(VACUUM|ANALYZE|CHECKPOINT|CLUSTER|REINDEX|DISCARD|LISTEN|NOTIFY|SET|RESET)\b", re.I)
_CONCURRENTLY = re.compile(r"^(\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REFRESH\s+MATERIALIZED\s+VIEW))"
                           r"\s+CONCURRENTLY\b", re.I)  # fmt: skip


def replayable(statement: str) -> str | None:
    """``statement`` as it runs inside the replay's transaction; None: left out."""
    if _TRANSACTION_CONTROL.match(statement) or _NOT_SCHEMA.match(statement):
        return None
    return _CONCURRENTLY.sub(r"\1", statement, count=1)


def scratch_engine(url: str) -> sa.Engine:
    """An engine for a PostgreSQL URL; anything else is a one-line error."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise UsageError(f"not a database URL: {url!r}") from exc
    if parsed.get_backend_name() != "postgresql":
        raise UsageError(f"sql-rollback replays PostgreSQL migrations: give a postgresql:// URL, not "
                         f"{parsed.get_backend_name()}://")  # fmt: skip
    return sa.create_engine(parsed, poolclass=sa.pool.NullPool)


def replay_states(url: str, forwards: Sequence[Path]) -> list[SchemaState]:
    """The schema state before each of ``forwards``, replayed in one rolled-back transaction."""
    engine = scratch_engine(url)
    where = engine.url.render_as_string(hide_password=True)
    states: list[SchemaState] = []
    try:
        with engine.connect() as conn:
            try:
                for forward in forwards:
                    states.append(database_state(conn))
                    _run_file(conn, forward)
            finally:
                conn.rollback()
    except sa.exc.OperationalError as exc:
        if not states:
            first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else "refused"
            raise SafetyError(f"cannot reach the scratch database {where}: {first}") from exc
        raise
    finally:
        engine.dispose()
    return states


def database_state(conn: sa.Connection) -> SchemaState:
    """The state of every schema of the database but PostgreSQL's own (a migration may create
    tables in its own schemas, and triggers on the platform's tables, such as auth.users)."""
    names = conn.exec_driver_sql(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND left(nspname, 3) <> 'pg_' ORDER BY nspname"
    ).scalars().all()
    return reflect_state(conn, schemas=(None, *(str(n) for n in names)))


def _run_file(conn: sa.Connection, forward: Path) -> None:
    cursor = conn.connection.cursor()  # the driver's own: no parameter markers are read in the SQL
    try:
        for statement in split_statements(read_text(forward), DIALECT):
            runnable = replayable(statement)
            if runnable is None:
                continue
            try:
                cursor.execute(runnable)
            except Exception as exc:  # the driver's error: the statement was refused
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SafetyError(
                    f"{forward.name}: the scratch database refused `{shorten(statement, 80)}`: {message}; "
                    "--scratch-url must name a database where the folder can run from its first file (empty, "
                    "or with only the platform's schemas); nothing was kept there"
                ) from exc
    finally:
        cursor.close()


__all__ = ["database_state", "replay_states", "replayable", "scratch_engine"]
