"""Which database a backup was taken from, so a restore never writes into another one.

:func:`database_identity` reads it on the migration's connection when a backup is taken (the
manifest's ``source``); :func:`check_same_database` compares it with the database a rollback is
about to change.  Nothing here can fail the caller's transaction: every value is read with plain
``SELECT``\\ s that need no privilege beyond connecting (PostgreSQL's ``pg_control_system()`` only
when the role may execute it).  Passwords are never part of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa

from ..errors import UsageError


def database_identity(conn: sa.Connection) -> dict[str, str]:
    """``{"dialect", "database", ...}``: PostgreSQL adds the cluster's ``system_identifier``,
    MySQL/MariaDB the server's UUID (MySQL) or host name and port, SQLite the file's real path."""
    dialect = conn.dialect.name
    out = {"dialect": dialect}
    if dialect == "postgresql":
        out["database"] = str(conn.exec_driver_sql("SELECT current_database()").scalar_one())
        allowed = conn.exec_driver_sql(
            "SELECT has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')").scalar()
        if allowed:
            system = conn.exec_driver_sql("SELECT system_identifier FROM pg_catalog.pg_control_system()").scalar()
            if system is not None:
                out["system_identifier"] = str(system)
    elif dialect in ("mysql", "mariadb"):
        out["database"] = str(conn.exec_driver_sql("SELECT DATABASE()").scalar() or "")
        row = conn.exec_driver_sql("SELECT @@hostname, @@port").one()
        out["server"] = f"{row[0]}:{row[1]}"
    elif dialect == "sqlite":
        for row in conn.exec_driver_sql("PRAGMA database_list"):
            if row[1] == "main":
                out["database"] = str(Path(row[2]).resolve()) if row[2] else ":memory:"
    else:
        out["database"] = str(conn.engine.url.database or "")
    return out


def check_same_database(backup_id: str, source: Mapping[str, str] | None, conn: sa.Connection) -> None:
    """Refuse (exit 2, nothing changed) when backup ``backup_id`` was taken from another database
    than ``conn``'s.  A backup that predates the record (``source`` None) is not checked; a key
    one side lacks (e.g. a role that may not read the system identifier) is not compared."""
    if not source:
        return
    here = database_identity(conn)
    differs = [k for k in sorted(set(source) & set(here)) if source[k] != here[k]]
    if differs:
        what = ", ".join(f"{k} {source[k]!r} (this database: {here[k]!r})" for k in differs)
        raise UsageError(f"backup {backup_id} was taken from another database ({what}): it is never restored "
                         "here; run the command against the database the backup came from")  # fmt: skip
