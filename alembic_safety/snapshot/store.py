"""Where backups are kept.

:class:`BackupStore` is the interface; :class:`FileStore` keeps one folder per backup under
``backup_dir``: data files first, ``manifest.json`` last and atomically (temp file, fsync,
rename).  A folder without a manifest is an incomplete backup: never listed as usable, removed
by ``prune`` once the process that wrote it is gone.  Folders are 0700, files 0600.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import BackupCorrupt, BackupNotFound, SafetyError
from .manifest import Manifest, valid_backup_id

MANIFEST = "manifest.json"
IN_PROGRESS = ".inprogress"
_NAME_PART = re.compile(r"[^A-Za-z0-9_]+")
POST_FILE = re.compile(r"^[0-9]{3,6}\.post-digest\.zst$")  # a post-step state (snapshot.poststate)
STALE_FOREIGN_HOST = timedelta(hours=24)


def new_backup_id(revision: str | None, name: str, now: datetime | None = None) -> str:
    """``<UTC time to the microsecond>Z-<revision>-<name>``: sorts by time, readable, and safe
    as a file name and (later) as part of an SQL identifier."""
    now = now or datetime.now(timezone.utc)
    parts = [now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")]
    for part in (revision, name):
        clean = _NAME_PART.sub("_", part or "").strip("_")[:32]
        if clean:
            parts.append(clean)
    return "-".join(parts)


@dataclass(frozen=True)
class IncompleteBackup:
    id: str
    path: Path | None  # None for the database store
    reason: str  # "in progress (pid N)", "interrupted", "corrupt manifest: ..."
    removable: bool


class BackupWriter(Protocol):
    backup_id: str

    def open_table(self, index: int, fmt: str) -> tuple[str, BinaryIO]: ...

    def commit(self, manifest: Manifest) -> None: ...

    def abort(self) -> None: ...


class BackupStore(Protocol):
    name: str

    def begin(self, backup_id: str) -> BackupWriter: ...

    def list(self) -> builtins.list[Manifest]: ...

    def incomplete(self) -> builtins.list[IncompleteBackup]: ...

    def get(self, backup_id: str) -> Manifest: ...

    def open_data(self, manifest: Manifest, file: str) -> BinaryIO: ...

    def data_size(self, manifest: Manifest, file: str) -> int | None: ...

    def delete(self, backup_id: str) -> int: ...


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _FileWriter:
    def __init__(self, path: Path, backup_id: str) -> None:
        self.path = path
        self.backup_id = backup_id
        self._open: list[BinaryIO] = []

    def open_table(self, index: int, fmt: str) -> tuple[str, BinaryIO]:
        name = f"{index:03d}.{fmt}.zst"
        fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fh = os.fdopen(fd, "wb")
        self._open.append(fh)
        return name, fh

    def commit(self, manifest: Manifest) -> None:
        for fh in self._open:
            if not fh.closed:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        tmp = self.path / (MANIFEST + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as mf:
            mf.write(manifest.to_json())
            mf.flush()
            os.fsync(mf.fileno())
        os.replace(tmp, self.path / MANIFEST)
        with suppress(FileNotFoundError):
            (self.path / IN_PROGRESS).unlink()
        _fsync_dir(self.path)

    def abort(self) -> None:
        for fh in self._open:
            with suppress(OSError):
                fh.close()
        shutil.rmtree(self.path, ignore_errors=True)


class FileStore:
    """Backups as folders under ``root``."""

    name = "files"

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- writing -----------------------------------------------------------------------------
    def begin(self, backup_id: str) -> _FileWriter:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.root / backup_id
            os.mkdir(path, 0o700)
            marker = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": datetime.now(timezone.utc).isoformat()}  # fmt: skip
            fd = os.open(path / IN_PROGRESS, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(marker, fh)
        except FileExistsError as exc:
            raise SafetyError(f"backup {backup_id} already exists in {self.root}") from exc
        except OSError as exc:
            raise SafetyError(
                f"cannot write backups to {self.root}: {exc.strerror}; set backup_dir to a "
                "writable folder"
            ) from exc
        return _FileWriter(path, backup_id)

    # -- reading -----------------------------------------------------------------------------
    def _folders(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and valid_backup_id(entry.name):
                yield entry

    def _read(self, folder: Path) -> Manifest:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
        manifest = Manifest.from_json(text, where=f"backup {folder.name}")
        if manifest.id != folder.name:
            raise BackupCorrupt(f"backup {folder.name}: manifest names another backup ({manifest.id})")
        return manifest

    def list(self) -> builtins.list[Manifest]:
        """Complete backups, newest first."""
        out = []
        for folder in self._folders():
            if (folder / MANIFEST).is_file():
                with suppress(BackupCorrupt, OSError):
                    out.append(self._read(folder))
        return sorted(out, key=lambda m: m.id, reverse=True)

    def incomplete(self) -> builtins.list[IncompleteBackup]:
        out: builtins.list[IncompleteBackup] = []
        host = socket.gethostname()
        for folder in self._folders():
            if (folder / MANIFEST).is_file():
                try:
                    self._read(folder)
                except (BackupCorrupt, OSError) as exc:
                    out.append(IncompleteBackup(folder.name, folder, f"unreadable: {exc}", False))
                continue
            out.append(self._incomplete(folder, host))
        return out

    def _incomplete(self, folder: Path, host: str) -> IncompleteBackup:
        try:
            marker = json.loads((folder / IN_PROGRESS).read_text())
            pid, owner = int(marker["pid"]), str(marker["host"])
            started = datetime.fromisoformat(str(marker["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            return IncompleteBackup(folder.name, folder, "interrupted (no manifest)", True)
        if owner == host:
            if _pid_alive(pid):
                return IncompleteBackup(folder.name, folder, f"in progress (pid {pid})", False)
            return IncompleteBackup(folder.name, folder, f"interrupted (pid {pid} is gone)", True)
        if datetime.now(timezone.utc) - started > STALE_FOREIGN_HOST:
            return IncompleteBackup(folder.name, folder, f"interrupted (started on {owner})", True)
        return IncompleteBackup(folder.name, folder, f"in progress on {owner}", False)

    def resolve(self, backup_id: str) -> str:
        """The full id for an id or a unique prefix of one."""
        if not backup_id or "/" in backup_id or "\\" in backup_id or backup_id.startswith("."):
            raise BackupNotFound(backup_id, "not a backup id")
        if valid_backup_id(backup_id) and (self.root / backup_id).is_dir():
            return backup_id
        matches = [f.name for f in self._folders() if f.name.startswith(backup_id)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BackupNotFound(backup_id, f"ambiguous: {len(matches)} backups start with it")
        raise BackupNotFound(backup_id)

    def get(self, backup_id: str) -> Manifest:
        full = self.resolve(backup_id)
        folder = self.root / full
        if not (folder / MANIFEST).is_file():
            raise BackupNotFound(full, "incomplete: it has no manifest; 'alembic-safety prune' removes it")
        return self._read(folder)

    def open_data(self, manifest: Manifest, file: str) -> BinaryIO:
        path = self.root / manifest.id / file
        try:
            return path.open("rb")
        except OSError as exc:
            raise BackupCorrupt(f"backup {manifest.id}: data file {file} is unreadable ({exc.strerror})") from exc

    def data_size(self, manifest: Manifest, file: str) -> int | None:
        try:
            return (self.root / manifest.id / file).stat().st_size
        except OSError:
            return None

    def extra_files(self, manifest: Manifest) -> builtins.list[str]:
        """Files the manifest does not name.  A post-step state file it does not name is not
        one: its recording was interrupted before the manifest named it, and it is unused."""
        known = {t.file for t in manifest.tables} | {t.post.file for t in manifest.tables if t.post} | {MANIFEST}
        folder = self.root / manifest.id
        return sorted(p.name for p in folder.iterdir() if p.name not in known and not POST_FILE.match(p.name))

    # -- companions written after the backup (the post-step state) ---------------------------
    def open_companion(self, manifest: Manifest, name: str) -> BinaryIO:
        """A new file in a complete backup's folder (0600, never overwriting); the manifest names
        it once :meth:`rewrite_manifest` ran."""
        if not POST_FILE.match(name):
            raise SafetyError(f"not a companion file name: {name!r}")
        fd = os.open(self.root / manifest.id / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb")

    def remove_companion(self, manifest: Manifest, name: str) -> None:
        if POST_FILE.match(name):
            with suppress(FileNotFoundError):
                (self.root / manifest.id / name).unlink()

    def rewrite_manifest(self, manifest: Manifest) -> None:
        """Replace a complete backup's manifest atomically (temp file, fsync, rename)."""
        folder = self.root / manifest.id
        if not (folder / MANIFEST).is_file():
            raise BackupNotFound(manifest.id)
        tmp = folder / (MANIFEST + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as mf:
            mf.write(manifest.to_json())
            mf.flush()
            os.fsync(mf.fileno())
        os.replace(tmp, folder / MANIFEST)
        _fsync_dir(folder)

    def delete(self, backup_id: str) -> int:
        """Remove one backup folder; returns the bytes freed."""
        if not valid_backup_id(backup_id):
            raise BackupNotFound(backup_id, "not a backup id")
        folder = self.root / backup_id
        freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return freed
