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
_POST_FILE = re.compile(r"^[0-9]{3,6}\.post-digest\.zst$")  # the same in the files store
STORES = ("files", "database")
DIRECTIONS = ("upgrade", "downgrade")
FILE_FORMATS = ("jsonl", "pg-copy-binary")  # data files of the files store (snapshot.engines)
TABLE_FORMATS = ("table", "moved")  # snapshot tables of the database store (snapshot.dbstore)


def valid_backup_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


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
    # the database the backup was taken from (identity.database_identity); None in older backups
    source: dict[str, str] | None = None
    # files store, encrypted at rest: {"scheme", "key_env", "key_id", "mac"} (crypto.py); None: plain
    encryption: dict[str, str] | None = None

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
        """Parse and validate; anything wrong is a BackupCorrupt naming ``where``.  A manifest
        that loads names only files inside its own backup (or snapshot tables of its schema)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BackupCorrupt(f"{where}: manifest is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        except (ValueError, RecursionError) as exc:  # a number too long to convert, nesting too deep
            raise BackupCorrupt(f"{where}: manifest is not valid JSON ({_first_line(exc)})") from exc
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object is expected, not {type(data).__name__}")
            store = _choice(data["store"], "store", STORES)
            tables_data = data["tables"]
            if not isinstance(tables_data, list):
                raise TypeError(f"tables must be a list, not {type(tables_data).__name__}")
            tables = tuple(_table_from(t, where, store) for t in tables_data)
            manifest = cls(
                id=_text(data["id"], "id"),
                kind=_text(data["kind"], "kind"),
                name=_text(data.get("name", ""), "name"),
                created_at=_text(data["created_at"], "created_at"),
                revision_from=_opt_text(data.get("revision_from"), "revision_from"),
                revision_to=_opt_text(data.get("revision_to"), "revision_to"),
                direction=_opt_choice(data.get("direction"), "direction", DIRECTIONS),
                dialect=_text(data["dialect"], "dialect"),
                database=_text(data.get("database", ""), "database"),
                store=store,
                tool_version=_text(data.get("tool_version", ""), "tool_version"),
                hash_algorithm=_text(data["hash_algorithm"], "hash_algorithm"),
                compression=_text(data["compression"], "compression"),
                tables=tables,
                notes=_texts(data.get("notes", ()), "notes"),
                format_version=_int(data.get("format_version", FORMAT_VERSION), "format_version", 1),
                source=_str_map(data.get("source"), "source"),
                encryption=_str_map(data.get("encryption"), "encryption"),
            )
        except BackupCorrupt:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BackupCorrupt(f"{where}: manifest is missing or has a bad field ({_first_line(exc)})") from exc
        if manifest.kind not in KINDS or not valid_backup_id(manifest.id):
            raise BackupCorrupt(f"{where}: manifest has a bad id or kind")
        if manifest.format_version > FORMAT_VERSION:
            raise BackupCorrupt(
                f"{where}: manifest format {manifest.format_version} is newer than this "
                "alembic-safety understands; upgrade alembic-safety"
            )
        return manifest


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _text(value: Any, what: str) -> str:
    """A string field (names, files, checksums): anything else is a hand edit."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    return value


def _opt_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _texts(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{what} must be a list, not {type(value).__name__}")
    return tuple(_text(v, what) for v in value)


def _choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _opt_choice(value: Any, what: str, choices: tuple[str, ...]) -> str | None:
    return None if value is None else _choice(value, what, choices)


def _int(value: Any, what: str, low: int) -> int:
    """A whole number from ``low`` to 2**63-1 (a bool, a float or a string is a hand edit)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
        raise ValueError(f"{what} must be a whole number from {low}, not {value!r}")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be an object, not {type(value).__name__}")
    return value


def _str_map(value: Any, what: str) -> dict[str, str] | None:
    """An optional object of strings, kept exactly (an encrypted backup's tag covers it)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(f"{what} must be an object of strings")
    return dict(value)


def _table_from(data: Any, where: str, store: str) -> TableSnapshot:
    if not isinstance(data, dict):
        raise TypeError(f"a table entry must be an object, not {type(data).__name__}")
    file = _text(data["file"], "file")
    pattern = _FILE if store == "files" else _SNAPSHOT_TABLE
    if not pattern.fullmatch(file):
        raise BackupCorrupt(f"{where}: manifest names a data file outside the backup ({file!r})")
    columns = data.get("columns")
    return TableSnapshot(
        name=_text(data["name"], "name"),
        schema=_opt_text(data.get("schema"), "schema"),
        columns=None if columns is None else _texts(columns, "columns"),
        where=_opt_text(data.get("where"), "where"),
        primary_key=_texts(data.get("primary_key", ()), "primary_key"),
        rows=_int(data["rows"], "rows", -1),  # -1: not counted yet (a moved table, an offline copy)
        bytes=_int(data["bytes"], "bytes", 0),
        raw_bytes=_int(data["raw_bytes"], "raw_bytes", 0),
        checksum=_text(data["checksum"], "checksum"),
        file=file,
        format=_choice(data["format"], "format", FILE_FORMATS if store == "files" else TABLE_FORMATS),
        stored_columns=_texts(data.get("stored_columns", ()), "stored_columns"),
        reasons=_texts(data.get("reasons", ()), "reasons"),
        definition=_dict(data.get("definition", {}), "definition"),  # left out: none recorded; null: refused
        post=_post_from(data.get("post"), where, store),
    )


def _post_from(data: Any, where: str, store: str) -> PostState | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise TypeError(f"post must be an object, not {type(data).__name__}")
    file = _text(data["file"], "post file")
    # either kind in either store: an export keeps the post-step state table it did not copy
    if not (_POST_FILE.fullmatch(file) or _POST_TABLE.fullmatch(file)):
        raise BackupCorrupt(f"{where}: manifest names a post-step state outside the backup ({file!r})")
    return PostState(file=file, columns=_texts(data["columns"], "post columns"), method=_text(data["method"], "method"),
                     rows=_int(data["rows"], "post rows", 0), checksum=_text(data["checksum"], "post checksum"),
                     bytes=_int(data.get("bytes", 0), "post bytes", 0))  # fmt: skip
