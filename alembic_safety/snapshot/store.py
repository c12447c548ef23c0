"""Where backups are kept.

:class:`BackupStore` is the interface; :class:`FileStore` keeps one folder per backup under
``backup_dir``: data files first, ``manifest.json`` last and atomically (temp file, fsync,
rename).  A folder without a manifest is an incomplete backup: never listed as usable, removed
by ``prune`` once the process that wrote it is gone.  Folders are 0700, files 0600.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import re
import shutil
import socket
import stat
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from ..audit import fsync_path, pid_alive
from ..errors import BackupCorrupt, BackupNotFound, SafetyError
from .crypto import Cipher, cipher_for_backup, cipher_from_env
from .manifest import Manifest, valid_backup_id

if TYPE_CHECKING:
    from ..config import SafetyConfig
    from .remote import Remote

MANIFEST = "manifest.json"
IN_PROGRESS = ".inprogress"
_NAME_PART = re.compile(r"[^A-Za-z0-9_]+")
POST_FILE = re.compile(r"^[0-9]{3,6}\.post-digest\.zst$")  # a post-step state (snapshot.poststate)
STALE_FOREIGN_HOST = timedelta(hours=24)
_ID_CHARS = re.compile(r"[0-9A-Za-z_-]+")  # what a backup id (or a prefix of one) is made of
MARKER_GRACE = timedelta(minutes=1)  # a folder younger than this without a readable marker may be starting


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



def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) and make ``path`` itself 0700 whatever the umask."""
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not existed:
        os.chmod(path, 0o700)


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def open_inside(folder: Path, name: str) -> BinaryIO:
    """Open ``folder/name`` for reading only if it is a regular file right inside ``folder``:
    never a path (``../``, absolute), a symbolic link, a FIFO or a device, whatever a manifest
    says.  Raises OSError otherwise."""
    if not _plain_name(name):
        raise OSError(errno.EINVAL, "not a file name in the backup folder", name)
    # O_NOFOLLOW: a symbolic link fails (ELOOP); O_NONBLOCK: a FIFO does not block the open
    fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new or truncated file that is 0600 whatever the umask, and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _file_names(manifest: Manifest) -> list[str]:
    """The data and companion files a manifest names."""
    return [t.file for t in manifest.tables] + [t.post.file for t in manifest.tables if t.post]


def _sealed(manifest: Manifest, cipher: Cipher | None) -> Manifest:
    """The manifest as stored: with the encryption record and its authentication tag when the
    backup is encrypted (crypto.py), so a hand-edited manifest is refused before any restore."""
    if cipher is None:
        return manifest
    unsigned = replace(manifest, encryption=cipher.describe())
    return replace(unsigned, encryption={**cipher.describe(), "mac": cipher.mac(unsigned.to_json())})


class _FileWriter:
    def __init__(self, path: Path, backup_id: str, cipher: Cipher | None = None, remote: Remote | None = None) -> None:
        self.path = path
        self.backup_id = backup_id
        self.cipher = cipher
        self.remote = remote  # object storage: data files, then the manifest, uploaded on commit
        self._open: list[BinaryIO] = []

    def open_table(self, index: int, fmt: str) -> tuple[str, BinaryIO]:
        name = f"{index:03d}.{fmt}.zst"
        fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fh: BinaryIO = os.fdopen(fd, "wb")
        if self.cipher is not None:
            fh = self.cipher.writer(fh, f"{self.backup_id}/{name}")  # type: ignore[assignment]
        self._open.append(fh)
        return name, fh

    def commit(self, manifest: Manifest) -> None:
        for fh in self._open:
            if not fh.closed:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        if self.remote is not None:  # the data first: a manifest in the bucket means its files are there
            self.remote.upload(self.path, _file_names(manifest))
        tmp = self.path / (MANIFEST + ".tmp")
        _write_private(tmp, _sealed(manifest, self.cipher).to_json())
        if self.remote is not None:
            self.remote.publish_manifest(self.path, tmp)
        os.replace(tmp, self.path / MANIFEST)
        with suppress(FileNotFoundError):
            (self.path / IN_PROGRESS).unlink()
        fsync_path(self.path)

    def abort(self) -> None:
        for fh in self._open:
            with suppress(OSError):
                fh.close()
        if self.remote is not None:
            with suppress(SafetyError):  # unreachable: what was uploaded is listed as interrupted, then pruned
                self.remote.delete(self.path)
        shutil.rmtree(self.path, ignore_errors=True)


class FileStore:
    """Backups as folders under ``root``."""

    name = "files"

    def __init__(self, root: Path, cipher: Cipher | None = None, remote: Remote | None = None) -> None:
        from .remote import attached

        self.root = root
        self.cipher = cipher  # encrypts new backups; reading takes the key each manifest names
        self._authenticated: dict[str, Cipher] = {}
        # backup_dir = s3://...: root is the local working folder, the bucket holds the backups (remote.py)
        self.remote = remote if remote is not None else attached(root)

    @classmethod
    def for_config(cls, config: SafetyConfig) -> FileStore:
        """The files store under ``backup_dir``, encrypting when ``encryption_key_env`` is set."""
        return cls(config.backup_dir, cipher_from_env(config.encryption_key_env))

    # -- writing -----------------------------------------------------------------------------
    def begin(self, backup_id: str) -> _FileWriter:
        path = self.root / backup_id
        created = False
        try:
            make_private_dir(self.root)
            os.mkdir(path, 0o700)
            created = True
            os.chmod(path, 0o700)  # whatever the umask
            marker = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": datetime.now(timezone.utc).isoformat()}  # fmt: skip
            fd = os.open(path / IN_PROGRESS, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(marker, fh)
            if self.remote is not None:  # an unreachable bucket refuses the step before anything is copied
                self.remote.put(path, IN_PROGRESS)
        except SafetyError:
            shutil.rmtree(path, ignore_errors=True)
            raise
        except FileExistsError as exc:
            if created:  # a backup is complete or absent: never leave a half-made folder behind
                shutil.rmtree(path, ignore_errors=True)
            raise SafetyError(f"backup {backup_id} already exists in {self.root}") from exc
        except OSError as exc:
            if created:  # e.g. the disk filled up while writing the marker
                shutil.rmtree(path, ignore_errors=True)
            raise SafetyError(
                f"cannot write backups to {self.root}: {exc.strerror}; set backup_dir to a "
                "writable folder"
            ) from exc
        return _FileWriter(path, backup_id, self.cipher, self.remote)

    # -- reading -----------------------------------------------------------------------------
    def _folders(self) -> Iterator[Path]:
        if self.remote is not None:
            self.remote.sync(self.root)
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and valid_backup_id(entry.name):
                yield entry

    def _read(self, folder: Path) -> Manifest:
        try:
            with open_inside(folder, MANIFEST) as fh:
                text = fh.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BackupCorrupt(f"backup {folder.name}: manifest is not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:  # a symbolic link or a special file in its place is never followed
            raise BackupCorrupt(f"backup {folder.name}: {MANIFEST} is unreadable ({exc.strerror})") from exc
        manifest = Manifest.from_json(text, where=f"backup {folder.name}")
        if manifest.id != folder.name:
            raise BackupCorrupt(f"backup {folder.name}: manifest names another backup ({manifest.id})")
        return manifest

    def _read_usable(self, folder: Path) -> Manifest:
        """The manifest, once every file it names is present (a cheap check; ``show --verify``
        reads them)."""
        manifest = self._read(folder)
        for name in [t.file for t in manifest.tables] + [t.post.file for t in manifest.tables if t.post]:
            try:
                mode = self.remote.mode(folder.name, name) if self.remote else os.lstat(folder / name).st_mode
            except OSError as exc:
                raise BackupCorrupt(f"backup {folder.name}: data file {name} is missing ({exc.strerror})") from exc
            if not stat.S_ISREG(mode):
                raise BackupCorrupt(f"backup {folder.name}: data file {name} is not a regular file")
        return manifest

    def list(self) -> builtins.list[Manifest]:
        """Complete backups, newest first (one whose manifest or data files are damaged is
        listed by :meth:`incomplete` instead)."""
        out = []
        for folder in self._folders():
            if os.path.lexists(folder / MANIFEST):  # a link in its place is read (and refused)
                with suppress(BackupCorrupt, OSError):
                    out.append(self._read_usable(folder))
        return sorted(out, key=lambda m: m.id, reverse=True)

    def incomplete(self) -> builtins.list[IncompleteBackup]:
        out: builtins.list[IncompleteBackup] = []
        host = socket.gethostname()
        for folder in self._folders():
            if os.path.lexists(folder / MANIFEST):
                try:
                    self._read_usable(folder)
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
            with suppress(OSError):  # a writer that just made its folder may not have written the marker yet
                if datetime.now(timezone.utc).timestamp() - folder.stat().st_mtime < MARKER_GRACE.total_seconds():
                    return IncompleteBackup(folder.name, folder, "in progress? (no marker yet)", False)
            return IncompleteBackup(folder.name, folder, "interrupted (no manifest)", True)
        if owner == host:
            if pid_alive(pid):
                return IncompleteBackup(folder.name, folder, f"in progress (pid {pid})", False)
            return IncompleteBackup(folder.name, folder, f"interrupted (pid {pid} is gone)", True)
        if datetime.now(timezone.utc) - started > STALE_FOREIGN_HOST:
            return IncompleteBackup(folder.name, folder, f"interrupted (started on {owner})", True)
        return IncompleteBackup(folder.name, folder, f"in progress on {owner}", False)

    def resolve(self, backup_id: str) -> str:
        """The full id for an id or a unique prefix of one."""
        if not _ID_CHARS.fullmatch(backup_id):  # never a path: no separator, dot, quote or space
            raise BackupNotFound(backup_id, "not a backup id")
        if self.remote is not None:
            self.remote.sync(self.root)
        folder = self.root / backup_id
        if valid_backup_id(backup_id) and folder.is_dir() and not folder.is_symlink():
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
        if not os.path.lexists(folder / MANIFEST):
            raise BackupNotFound(full, "incomplete: it has no manifest; 'alembic-safety prune' removes it")
        return self._read(folder)

    def open_data(self, manifest: Manifest, file: str) -> BinaryIO:
        """A data (or companion) file's plaintext stream; an encrypted backup needs its key (a
        missing or wrong one is a SafetyError) and an unaltered manifest (else BackupCorrupt)."""
        manifest = self._with_encryption(manifest)
        cipher = self._cipher_for(manifest) if manifest.encryption is not None else None
        if self.remote is not None and valid_backup_id(manifest.id):
            self.remote.fetch(self.root / manifest.id, file)
        try:
            fh = open_inside(self.root / manifest.id, file)
        except OSError as exc:
            raise BackupCorrupt(f"backup {manifest.id}: data file {file} is unreadable ({exc.strerror})") from exc
        if cipher is None:
            return fh
        try:
            return cipher.reader(fh, f"{manifest.id}/{file}")  # type: ignore[return-value]
        except BaseException:
            fh.close()
            raise

    def _with_encryption(self, manifest: Manifest) -> Manifest:
        """``manifest`` with the encryption record stored with it (a caller may hold the manifest
        as it was built, before the store sealed it)."""
        if manifest.encryption is not None or not valid_backup_id(manifest.id):
            return manifest
        try:
            stored = self._read(self.root / manifest.id)
        except (OSError, BackupCorrupt):
            return manifest
        return manifest if stored.encryption is None else replace(manifest, encryption=stored.encryption)

    def _cipher_for(self, manifest: Manifest) -> Cipher:
        """The key of an encrypted backup, once its manifest's authentication tag checked out."""
        known = self._authenticated.get(manifest.id)
        if known is not None:
            return known
        assert manifest.encryption is not None
        cipher = cipher_for_backup(manifest.id, manifest.encryption, self.cipher)
        unsigned = replace(manifest, encryption={k: v for k, v in manifest.encryption.items() if k != "mac"})
        if not cipher.verify_mac(unsigned.to_json(), manifest.encryption.get("mac", "")):
            raise BackupCorrupt(f"backup {manifest.id}: its manifest was changed after the backup was taken (the "
                                "authentication tag does not match); nothing is read from it")  # fmt: skip
        self._authenticated[manifest.id] = cipher
        return cipher

    def data_size(self, manifest: Manifest, file: str) -> int | None:
        if not _plain_name(file):
            return None
        if self.remote is not None:
            return self.remote.size(manifest.id, file)
        try:
            st = os.lstat(self.root / manifest.id / file)
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def extra_files(self, manifest: Manifest) -> builtins.list[str]:
        """Files the manifest does not name.  A post-step state file it does not name is not
        one: its recording was interrupted before the manifest named it, and it is unused."""
        known = {t.file for t in manifest.tables} | {t.post.file for t in manifest.tables if t.post} | {MANIFEST}
        folder = self.root / manifest.id
        names = self.remote.names(manifest.id) if self.remote is not None else [p.name for p in folder.iterdir()]
        return sorted(n for n in names if n not in known and not POST_FILE.match(n))

    # -- companions written after the backup (the post-step state) ---------------------------
    def open_companion(self, manifest: Manifest, name: str) -> BinaryIO:
        """A new file in a complete backup's folder (0600, never overwriting); the manifest names
        it once :meth:`rewrite_manifest` ran."""
        if not POST_FILE.match(name):
            raise SafetyError(f"not a companion file name: {name!r}")
        manifest = self._with_encryption(manifest)
        cipher = self._cipher_for(manifest) if manifest.encryption is not None else None
        fd = os.open(self.root / manifest.id / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fh = os.fdopen(fd, "wb")
        if cipher is not None:
            return cipher.writer(fh, f"{manifest.id}/{name}")  # type: ignore[return-value]
        return fh

    def remove_companion(self, manifest: Manifest, name: str) -> None:
        if POST_FILE.match(name):
            with suppress(FileNotFoundError):
                (self.root / manifest.id / name).unlink()

    def rewrite_manifest(self, manifest: Manifest) -> None:
        """Replace a complete backup's manifest atomically (temp file, fsync, rename)."""
        folder = self.root / manifest.id
        if not (folder / MANIFEST).is_file():
            raise BackupNotFound(manifest.id)
        stored = self._read(folder)
        if stored.encryption is not None:  # the stored one must check out; the new one is sealed with its key
            manifest = _sealed(replace(manifest, encryption=None), self._cipher_for(stored))
        tmp = folder / (MANIFEST + ".tmp")
        _write_private(tmp, manifest.to_json())
        if self.remote is not None:  # the companions it names first, then the manifest
            self.remote.upload(folder, [n for n in _file_names(manifest) if n not in _file_names(stored)])
            self.remote.publish_manifest(folder, tmp)
        os.replace(tmp, folder / MANIFEST)
        fsync_path(folder)

    def delete(self, backup_id: str) -> int:
        """Remove one backup folder; returns the bytes freed."""
        if not valid_backup_id(backup_id):
            raise BackupNotFound(backup_id, "not a backup id")
        folder = self.root / backup_id
        if self.remote is not None:
            return self.remote.delete(folder)
        freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return freed
