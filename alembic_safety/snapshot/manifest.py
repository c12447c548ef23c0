"""The manifest: what one backup holds, the same format for every store."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import BackupCorrupt

FORMAT_VERSION = 1
KINDS = ("pre-revision", "manual", "pre-rollback")
_ID = re.compile(r"^[0-9]{8}T[0-9]{12}Z(-[A-Za-z0-9_]+)*$")
_FILE = re.compile(r"^[0-9]{3,6}\.[a-z-]+\.zst$")  # a data file in the backup's folder
_SNAPSHOT_TABLE = re.compile(r"^b[0-9]{8}t[0-9]{12}z_[0-9]{3}$")  # a table in the snapshot schema
_POST_TABLE = re.compile(r"^b[0-9]{8}t[0-9]{12}z_[0-9]{3}_post$")  # its post-step state (database store)


def valid_backup_id(value: str) -> bool:
    return bool(_ID.match(value))


@dataclass(frozen=True)
class PostState:
    """The state an UPDATE-type step left the snapshotted rows in: one digest per primary key of
    ``columns`` (the affected columns that still exist after the step), recorded right after the
    step inside its transaction (:mod:`.poststate`).  ``file`` is a companion of the snapshot:
    a table ``<snapshot table>_post`` (database store) or a file ``NNN.post-digest.zst`` (files
    store, checksummed like the data files)."""

    file: str
    columns: tuple[str, ...]
    method: str  # how the digest is computed: "md5-row" | "md5-concat" | "md5-codec"
    rows: int
    checksum: str
    bytes: int = 0


@dataclass(frozen=True)
class TableSnapshot:
    """One snapshotted table: which part of it, how much, where it lives, how to check it."""

    name: str
    schema: str | None
    columns: tuple[str, ...] | None  # None: every column
    where: str | None  # None: every row
    primary_key: tuple[str, ...]
    rows: int
    bytes: int  # stored (compressed) size
    raw_bytes: int
    checksum: str
    file: str
    format: str  # "pg-copy-binary" | "jsonl"
    stored_columns: tuple[str, ...] = ()  # the columns in the data file, in order
    reasons: tuple[str, ...] = ()
    definition: dict[str, Any] = field(default_factory=dict, compare=False)
    post: PostState | None = None  # None: no post-step state recorded (older backups, other risks)

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def summary(self) -> dict[str, Any]:
        """The ``tables`` entry of the ``backups --format json`` contract."""
        return {
            "name": self.name,
            "schema": self.schema,
            "rows": self.rows,
            "bytes": self.bytes,
            "columns": list(self.columns) if self.columns is not None else None,
            "where": self.where,
        }


@dataclass(frozen=True)
class Manifest:
    id: str
    kind: str
    name: str
    created_at: str  # ISO 8601 UTC
    revision_from: str | None
    revision_to: str | None
    direction: str | None  # "upgrade" | "downgrade" | None (manual)
    dialect: str
    database: str  # URL with the password hidden
    store: str
    tool_version: str
    hash_algorithm: str
    compression: str
    tables: tuple[TableSnapshot, ...]
    notes: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    @property
    def total_rows(self) -> int:
        """Rows counted so far (a moved table counts once ``show --verify`` sealed it)."""
        return sum(t.rows for t in self.tables if t.rows > 0)

    def to_json(self) -> str:
        data = asdict(self)
        data["total_bytes"] = self.total_bytes
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"

    def summary(self) -> dict[str, Any]:
        """One object of the ``backups --format json`` array (the documented contract)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "created_at": self.created_at,
            "revision_from": self.revision_from,
            "revision_to": self.revision_to,
            "direction": self.direction,
            "complete": True,
            "total_bytes": self.total_bytes,
            "tables": [t.summary() for t in self.tables],
        }

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Manifest:
        """Parse and validate; anything wrong is a BackupCorrupt naming ``where``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BackupCorrupt(f"{where}: manifest is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        try:
            tables = tuple(_table_from(t, where) for t in data["tables"])
            manifest = cls(
                id=str(data["id"]),
                kind=str(data["kind"]),
                name=str(data.get("name", "")),
                created_at=str(data["created_at"]),
                revision_from=_opt_str(data.get("revision_from")),
                revision_to=_opt_str(data.get("revision_to")),
                direction=_opt_str(data.get("direction")),
                dialect=str(data["dialect"]),
                database=str(data.get("database", "")),
                store=str(data["store"]),
                tool_version=str(data.get("tool_version", "")),
                hash_algorithm=str(data["hash_algorithm"]),
                compression=str(data["compression"]),
                tables=tables,
                notes=tuple(str(n) for n in data.get("notes", ())),
                format_version=int(data.get("format_version", FORMAT_VERSION)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupCorrupt(f"{where}: manifest is missing or has a bad field ({exc})") from exc
        if manifest.kind not in KINDS or not valid_backup_id(manifest.id):
            raise BackupCorrupt(f"{where}: manifest has a bad id or kind")
        if manifest.format_version > FORMAT_VERSION:
            raise BackupCorrupt(
                f"{where}: manifest format {manifest.format_version} is newer than this "
                "alembic-safety understands; upgrade alembic-safety"
            )
        return manifest


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _table_from(data: dict[str, Any], where: str) -> TableSnapshot:
    file = str(data["file"])
    if not (_FILE.match(file) or _SNAPSHOT_TABLE.match(file)):
        raise BackupCorrupt(f"{where}: manifest names a data file outside the backup ({file!r})")
    columns = data.get("columns")
    return TableSnapshot(
        name=str(data["name"]),
        schema=_opt_str(data.get("schema")),
        columns=None if columns is None else tuple(str(c) for c in columns),
        where=_opt_str(data.get("where")),
        primary_key=tuple(str(c) for c in data.get("primary_key", ())),
        rows=int(data["rows"]),
        bytes=int(data["bytes"]),
        raw_bytes=int(data["raw_bytes"]),
        checksum=str(data["checksum"]),
        file=file,
        format=str(data["format"]),
        stored_columns=tuple(str(c) for c in data.get("stored_columns", ())),
        reasons=tuple(str(r) for r in data.get("reasons", ())),
        definition=dict(data.get("definition") or {}),
        post=_post_from(data.get("post"), where),
    )


def _post_from(data: Any, where: str) -> PostState | None:
    if data is None:
        return None
    file = str(data["file"])
    if not (_FILE.match(file) or _POST_TABLE.match(file)):
        raise BackupCorrupt(f"{where}: manifest names a post-step state outside the backup ({file!r})")
    return PostState(file=file, columns=tuple(str(c) for c in data["columns"]), method=str(data["method"]),
                     rows=int(data["rows"]), checksum=str(data["checksum"]), bytes=int(data.get("bytes", 0)))
