"""Read a backup back: verify its checksums, restore a table's rows into a target table."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import BackupCorrupt, SafetyError
from ..sqlinfo import TableRef
from .engines import engine_for_format
from .manifest import Manifest, TableSnapshot
from .store import BackupStore
from .streams import VerifyingReader, verify_stream


@dataclass(frozen=True)
class VerifyResult:
    table: str
    file: str
    ok: bool
    detail: str


def judge(t: TableSnapshot, checksum: str, count: tuple[str, int, int], ok: str) -> VerifyResult:
    """Compare a recomputed checksum and count (``(what, got, expected)``) with the manifest."""
    what, got, expected = count
    if checksum != t.checksum:
        return VerifyResult(t.key, t.file, False, f"checksum mismatch: {checksum} != {t.checksum}")
    if got != expected:
        return VerifyResult(t.key, t.file, False, f"{what} mismatch: {got} != {expected}")
    return VerifyResult(t.key, t.file, True, ok)


def verify_backup(store: BackupStore, manifest: Manifest) -> list[VerifyResult]:
    """Re-read every data file: checksum and size must match the manifest."""
    results = []
    for t in manifest.tables:
        try:
            with store.open_data(manifest, t.file) as fh:
                checksum, raw = verify_stream(fh)
        except BackupCorrupt as exc:
            results.append(VerifyResult(t.key, t.file, False, str(exc)))
            continue
        except SafetyError:
            raise  # an encrypted backup without its key: nothing can be verified (exit 2)
        except Exception as exc:  # zstd frame errors and the like: the file is damaged
            results.append(VerifyResult(t.key, t.file, False, f"unreadable: {type(exc).__name__}: {exc}"))
            continue
        results.append(judge(t, checksum, ("size", raw, t.raw_bytes), f"{t.rows} rows, {checksum}"))
    extra = getattr(store, "extra_files", None)
    if extra is not None:
        results += [VerifyResult("-", name, False, "file not named by the manifest") for name in extra(manifest)]
    return results


def restore_table(
    conn: sa.Connection,
    store: BackupStore,
    manifest: Manifest,
    snapshot: TableSnapshot,
    target: TableRef | None = None,
) -> int:
    """Load a snapshot's rows into ``target`` (default: the table it came from), verifying the
    checksum as the data flows; a mismatch raises BackupCorrupt (roll the transaction back)."""
    target = target or TableRef(snapshot.name, snapshot.schema)
    engine = engine_for_format(snapshot.format, conn)
    with store.open_data(manifest, snapshot.file) as fh:
        reader = VerifyingReader(fh)
        try:
            rows = engine.restore(conn, target, list(snapshot.stored_columns), reader)
        finally:
            reader.close()
    if reader.checksum() != snapshot.checksum:
        raise BackupCorrupt(
            f"backup {manifest.id}: {snapshot.key} data does not match its checksum; nothing "
            "restored from it can be trusted"
        )
    if rows != snapshot.rows:
        raise BackupCorrupt(f"backup {manifest.id}: {snapshot.key} restored {rows} rows, manifest says {snapshot.rows}")
    return rows
