"""Offline (``alembic upgrade --sql``): the snapshot statements written into the script.

Nothing can be read, so every at-risk table is copied with all its columns (the WHERE is kept
when every risk on the table has one).  With the database store the script also creates the
snapshot schema and catalogue and inserts the backup's catalogue row (rows and checksums marked
pending: the first ``alembic-safety show --verify`` seals them), and a dropped table is moved
rather than copied, exactly as online.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ClauseElement

from ._version import __version__
from .audit import isoformat, utcnow
from .snapshot.dbstore import COPIED, MOVED, PENDING, CreateTableAs, DatabaseStore, snapshot_table_name
from .snapshot.engines import table_clause
from .snapshot.manifest import Manifest, TableSnapshot
from .snapshot.reflect import SAFETY_SCHEMA
from .sqlinfo import TableRef


@dataclass(frozen=True)
class OfflinePlan:
    statements: tuple[str, ...]
    moves: dict[TableRef, str]  # table -> snapshot table name (the drop renders as a move)


def _sql(element: ClauseElement, dialect: sa.Dialect) -> str:
    return str(element.compile(dialect=dialect, compile_kwargs={"literal_binds": True})).strip()


def files_store_statements(dialect: sa.Dialect, backup_id: str, copies: dict[TableRef, str | None]) -> list[str]:
    """Without a database store: copies beside the data (SQLite has no schemas: prefixed names)."""
    out: list[str] = []
    if dialect.name == "postgresql" or dialect.name in ("mysql", "mariadb"):
        out.append(_sql(sa.schema.CreateSchema(SAFETY_SCHEMA, if_not_exists=True), dialect))
    for index, (ref, where) in enumerate(copies.items(), start=1):
        name = snapshot_table_name(backup_id, index)
        if dialect.name == "sqlite":
            target = sa.table(f"{SAFETY_SCHEMA}__{name}")
        else:
            target = sa.table(name, schema=SAFETY_SCHEMA)
        out.append(_sql(CreateTableAs(target, _select(ref, where)), dialect))
    return out


def _select(ref: TableRef, where: str | None) -> sa.Select[Any]:
    query: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(table_clause(ref))
    return query.where(sa.literal_column(where)) if where is not None else query


def database_store_statements(
    dialect: sa.Dialect, schema: str, backup_id: str, copies: dict[TableRef, str | None], moves: list[TableRef],
    *, kind: str, name: str, revision_from: str | None, revision_to: str | None, direction: str, notes: tuple[str, ...],
) -> OfflinePlan:  # fmt: skip
    store = DatabaseStore(None, schema)
    out = [
        _sql(sa.schema.CreateSchema(schema, if_not_exists=True), dialect),
        _sql(sa.schema.CreateTable(store.backups, if_not_exists=True), dialect),
        _sql(sa.schema.CreateTable(store.events, if_not_exists=True), dialect),
    ]
    tables: list[TableSnapshot] = []
    planned: dict[TableRef, str] = {}
    index = 0
    for ref, where in copies.items():
        index += 1
        snap = snapshot_table_name(backup_id, index)
        out.append(_sql(CreateTableAs(sa.table(snap, schema=schema), _select(ref, where)), dialect))
        tables.append(_entry(ref, snap, where, COPIED, ("offline copy",)))
    for ref in moves:
        index += 1
        snap = snapshot_table_name(backup_id, index)
        planned[ref] = snap
        tables.append(_entry(ref, snap, None, MOVED, ("drop_table (offline: moved, not copied)",)))
    manifest = Manifest(
        id=backup_id, kind=kind, name=name, created_at=isoformat(utcnow()), revision_from=revision_from,
        revision_to=revision_to, direction=direction, dialect=dialect.name, database="(offline script)",
        store="database", tool_version=__version__, hash_algorithm="row-hash-sum", compression="none",
        tables=tuple(tables), notes=(*notes, "written by an offline --sql script: rows and checksums are sealed "
                                             "by the first `alembic-safety show --verify`"),
    )  # fmt: skip
    row = {"id": manifest.id, "created_at": manifest.created_at, "kind": kind, "complete": True,
           "manifest": manifest.to_json()}  # fmt: skip
    out.append(_sql(store.backups.insert().values(**row), dialect))
    return OfflinePlan(tuple(out), planned)


def _entry(ref: TableRef, snap: str, where: str | None, fmt: str, reasons: tuple[str, ...]) -> TableSnapshot:
    return TableSnapshot(name=ref.name, schema=ref.schema, columns=None, where=where, primary_key=(), rows=-1,
                         bytes=0, raw_bytes=0, checksum=PENDING, file=snap, format=fmt, stored_columns=(),
                         reasons=reasons)  # fmt: skip
