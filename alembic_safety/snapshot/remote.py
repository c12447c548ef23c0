"""Backups in object storage: ``backup_dir = s3://bucket/prefix``.

The files store keeps working as on a local disk, in a local working folder (``backup_cache_dir``,
by default ``~/.cache/alembic-safety/<hash of the URL>``); :class:`Remote` mirrors that folder's
backups to the bucket through fsspec/s3fs and makes the bucket the truth:

* **writing**: the ``.inprogress`` marker is uploaded when a backup begins (an unreachable bucket
  or refused credentials refuse the step before anything is copied), the data files when it
  commits, then ``manifest.json`` last, then the marker is removed.  S3 has no rename, but a PUT
  is atomic per object: a listing never sees a manifest whose data files are missing.
* **reading**: one listing of the prefix tells which backups exist; their manifests (small) are
  downloaded into the working folder, a data file only when it is read (streamed to disk,
  size-checked; readers verify the checksums as for any files backup).  A cached copy of a backup
  that left the bucket is removed.
* **deleting**: the manifest first (a half-deleted backup never looks complete), then the rest.

Credentials, region and endpoint come from the standard AWS configuration (``AWS_ACCESS_KEY_ID``,
``AWS_ENDPOINT_URL_S3``, ``~/.aws``, an instance role): never from a setting, and never written to
a log line or an error message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import stat
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..audit import redact_text
from ..errors import BackupCorrupt, SafetyError
from .manifest import valid_backup_id
from .store import IN_PROGRESS, MANIFEST, MARKER_GRACE, _plain_name, make_private_dir

SCHEME = "s3://"
EXTRA = "pip install 'alembic-safety[s3]'"
_ANY_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY_PART = re.compile(r"^[A-Za-z0-9!_.*'()=+,;@-]+$")  # S3's safe key characters (no space, no '%')
# a slow or unreachable endpoint is a clear error within seconds, not minutes of silent retries
_CLIENT_CONFIG = {"connect_timeout": 10, "read_timeout": 120, "retries": {"max_attempts": 3, "mode": "standard"}}
_ATTACHED: dict[Path, str] = {}  # working folder -> s3:// URL, for every config loaded in this process


def is_url(value: str) -> bool:
    """Whether a ``backup_dir`` value is a URL (``scheme://...``) rather than a folder."""
    return bool(_ANY_URL.match(value.strip()))


def parse_url(value: str) -> str:
    """The normalised ``s3://bucket[/prefix]`` of ``value``; ValueError says what is wrong."""
    v = value.strip()
    if not v.lower().startswith(SCHEME):
        raise ValueError("only s3:// URLs (or a folder) can hold backups")
    bucket, _, prefix = v[len(SCHEME):].partition("/")
    if "@" in bucket or ":" in bucket:
        raise ValueError("credentials do not belong in the URL; the AWS configuration (environment variables, "
                         "~/.aws, an instance role) provides them")  # fmt: skip
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"{bucket!r} is not an S3 bucket name (3-63 lower-case letters, digits, '.', '-')")
    parts = [p for p in prefix.split("/") if p]
    bad = next((p for p in parts if p in (".", "..") or not _KEY_PART.fullmatch(p)), None)
    if bad is not None:
        raise ValueError(f"{bad!r} is not a plain folder name for the prefix")
    return SCHEME + "/".join([bucket, *parts])


def default_cache(url: str, environ: Any = None) -> Path:
    """``$XDG_CACHE_HOME/alembic-safety/<hash of the URL>`` (``~/.cache`` without the variable)."""
    environ = os.environ if environ is None else environ
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "alembic-safety" / hashlib.sha256(url.encode()).hexdigest()[:16]


def client_missing() -> bool:
    """Whether s3fs (the ``[s3]`` extra) cannot be imported."""
    try:
        return importlib.util.find_spec("s3fs") is None
    except (ImportError, ValueError):  # a module set to None in sys.modules
        return True


def attach(cache: Path, url: str) -> None:
    """Make every files store opened on ``cache`` in this process mirror ``url``."""
    _ATTACHED[cache] = url


def attached(root: Path) -> Remote | None:
    """The bucket mirrored by the working folder ``root``, if a loaded config said so."""
    url = _ATTACHED.get(root)
    return Remote(url) if url else None


@dataclass(frozen=True)
class RemoteObject:
    size: int
    etag: str
    modified: float  # POSIX time of the last write


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


class Remote:
    """One ``s3://bucket/prefix``: its backups as ``<prefix>/<backup id>/<file>`` objects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.base = url[len(SCHEME):]  # bucket/prefix, as s3fs names paths
        self._fs: Any = None
        self._objects: dict[str, dict[str, RemoteObject]] = {}  # as of the last listing (and our uploads)
        self._manifests: dict[str, str] = {}  # backup id -> ETag of the manifest in the working folder

    # -- the connection ------------------------------------------------------------------------
    def _filesystem(self) -> Any:
        if self._fs is None:
            try:
                import s3fs
            except ImportError as exc:
                raise SafetyError(f"backup_dir = {self.url} needs s3fs: {EXTRA}") from exc
            self._fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False,
                                         config_kwargs=_CLIENT_CONFIG)  # fmt: skip
        return self._fs

    def _error(self, doing: str, exc: BaseException) -> SafetyError:
        return SafetyError(f"object storage {self.url}: cannot {doing} ({_reason(exc)}); check the bucket, the "
                           "network and the AWS credentials (environment variables or ~/.aws)")  # fmt: skip

    def _key(self, backup_id: str, name: str) -> str:
        return f"{self.base}/{backup_id}/{name}"

    # -- reading -------------------------------------------------------------------------------
    def listing(self) -> dict[str, dict[str, RemoteObject]]:
        """Every backup's objects in the bucket: ``{backup id: {file name: object}}``."""
        try:
            found = self._filesystem().find(self.base, detail=True)
        except SafetyError:
            raise
        except Exception as exc:
            raise self._error("list the backups", exc) from exc
        out: dict[str, dict[str, RemoteObject]] = {}
        for path, info in found.items():
            parts = str(path)[len(self.base) + 1:].split("/")
            if len(parts) != 2 or not valid_backup_id(parts[0]) or not _plain_name(parts[1]):
                continue  # another tool's objects, or the audit trail
            if info.get("type", "file") != "file":
                continue
            modified = info.get("LastModified")
            out.setdefault(parts[0], {})[parts[1]] = RemoteObject(
                int(info.get("size") or 0), str(info.get("ETag") or ""),
                modified.timestamp() if isinstance(modified, datetime) else time.time(),
            )  # fmt: skip
        return out

    def sync(self, root: Path) -> None:
        """Bring the working folder in line with the bucket: a folder per backup there, with its
        manifest (or its in-progress marker); copies of backups that left the bucket removed."""
        self._objects = self.listing()
        if not self._objects and not root.is_dir():
            return
        make_private_dir(root)
        for backup_id, files in self._objects.items():
            folder = root / backup_id
            if folder.is_symlink():
                continue  # never followed (FileStore skips it too)
            created = not folder.is_dir()
            if created:
                with suppress(FileExistsError):
                    os.mkdir(folder, 0o700)
                os.chmod(folder, 0o700)
            if MANIFEST in files:
                if self._manifests.get(backup_id) != files[MANIFEST].etag or not (folder / MANIFEST).is_file():
                    self.fetch(folder, MANIFEST, force=True)
                    self._manifests[backup_id] = files[MANIFEST].etag
            else:  # incomplete in the bucket (being written, killed, or being deleted)
                with suppress(FileNotFoundError):
                    (folder / MANIFEST).unlink()
                if IN_PROGRESS in files and not os.path.lexists(folder / IN_PROGRESS):
                    with suppress(BackupCorrupt):  # it just completed: the next listing says so
                        self.fetch(folder, IN_PROGRESS, force=True)
            if created:  # its age is the bucket's: an interrupted upload is not "just started"
                newest = max(o.modified for o in files.values())
                with suppress(OSError):
                    os.utime(folder, (newest, newest))
        for folder in root.iterdir():
            if (folder.name in self._objects or not valid_backup_id(folder.name) or folder.is_symlink()
                    or not folder.is_dir() or os.path.lexists(folder / IN_PROGRESS)):  # fmt: skip
                continue  # a backup being written here (or killed before its upload): FileStore reports it
            with suppress(OSError):
                if (not os.path.lexists(folder / MANIFEST)
                        and time.time() - folder.stat().st_mtime < MARKER_GRACE.total_seconds()):  # fmt: skip
                    continue  # a writer that just made its folder (its marker comes next)
                shutil.rmtree(folder)  # a copy of a backup no longer in the bucket

    def mode(self, backup_id: str, name: str) -> int:
        """``st_mode`` of a regular file when the bucket holds ``backup_id/name`` (as of the last
        listing); FileNotFoundError otherwise."""
        if name not in self._objects.get(backup_id, {}):
            raise FileNotFoundError(2, "not in the bucket", name)
        return stat.S_IFREG | 0o600

    def size(self, backup_id: str, name: str) -> int | None:
        obj = self._objects.get(backup_id, {}).get(name) or self._info(backup_id, name)
        return None if obj is None else obj.size

    def names(self, backup_id: str) -> list[str]:
        """The objects of a backup, as of the last listing."""
        return sorted(self._objects.get(backup_id, {}))

    def _info(self, backup_id: str, name: str) -> RemoteObject | None:
        try:
            info = self._filesystem().info(self._key(backup_id, name))
        except FileNotFoundError:
            return None
        except SafetyError:
            raise
        except Exception as exc:
            raise self._error(f"read {backup_id}/{name}", exc) from exc
        obj = RemoteObject(int(info.get("size") or 0), str(info.get("ETag") or ""), time.time())
        self._objects.setdefault(backup_id, {})[name] = obj
        return obj

    def fetch(self, folder: Path, name: str, *, force: bool = False) -> None:
        """Make ``folder/name`` the bucket's copy: downloaded (to a 0600 temporary file, then
        renamed) unless a file of the same size is there already.  A file the bucket does not
        hold is removed from the working folder, so it is reported missing."""
        backup_id = folder.name
        if not _plain_name(name):
            return  # never a path; the caller's open_inside refuses it
        obj = None if force else self._objects.get(backup_id, {}).get(name)
        obj = obj or self._info(backup_id, name)
        if obj is None:
            with suppress(OSError):
                if stat.S_ISREG(os.lstat(folder / name).st_mode):
                    os.unlink(folder / name)
            raise BackupCorrupt(f"backup {backup_id}: {name} is missing from {self.url}")
        if not force:
            with suppress(OSError):
                st = os.lstat(folder / name)
                if stat.S_ISREG(st.st_mode) and st.st_size == obj.size:
                    return
        tmp = folder / f".{name}.{os.getpid()}.part"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            self._filesystem().get_file(self._key(backup_id, name), str(tmp))
            got = os.path.getsize(tmp)
            if got != obj.size:
                raise BackupCorrupt(f"backup {backup_id}: {name} arrived with {got} of {obj.size} bytes")
            os.replace(tmp, folder / name)
        except FileNotFoundError as exc:
            raise BackupCorrupt(f"backup {backup_id}: {name} is missing from {self.url}") from exc
        except SafetyError:
            raise
        except Exception as exc:
            raise self._error(f"download {backup_id}/{name}", exc) from exc
        finally:
            with suppress(OSError):
                os.unlink(tmp)

    # -- writing -------------------------------------------------------------------------------
    def put(self, folder: Path, name: str) -> None:
        """Upload ``folder/name`` as ``<backup id>/name`` (one PUT, or a multipart upload that
        becomes visible whole)."""
        backup_id = folder.name
        try:
            self._filesystem().put_file(str(folder / name), self._key(backup_id, name))
        except SafetyError:
            raise
        except Exception as exc:
            raise self._error(f"upload {backup_id}/{name}", exc) from exc
        size = os.path.getsize(folder / name)
        self._objects.setdefault(backup_id, {})[name] = RemoteObject(size, "", time.time())

    def upload(self, folder: Path, names: list[str]) -> None:
        """The data files, before any manifest naming them."""
        for name in names:
            self.put(folder, name)

    def publish_manifest(self, folder: Path, written: Path) -> None:
        """Upload the manifest written at ``written`` (last: its data is in the bucket already),
        then drop the in-progress marker."""
        backup_id = folder.name
        try:
            self._filesystem().put_file(str(written), self._key(backup_id, MANIFEST))
        except SafetyError:
            raise
        except Exception as exc:
            raise self._error(f"upload {backup_id}/{MANIFEST}", exc) from exc
        self._manifests.pop(backup_id, None)
        if self._objects.get(backup_id, {}).pop(IN_PROGRESS, None) is not None:
            with suppress(Exception):  # complete now: a marker left behind is only a stray file
                self._filesystem().rm_file(self._key(backup_id, IN_PROGRESS))

    def delete(self, folder: Path) -> int:
        """Remove a backup from the bucket (its manifest first) and from the working folder;
        returns the bytes freed."""
        backup_id = folder.name
        try:
            fs = self._filesystem()
            inside = f"{self.base}/{backup_id}/"
            found = {str(k): int(v.get("size") or 0) for k, v in fs.find(inside, detail=True).items()
                     if str(k).startswith(inside)}  # fmt: skip
            manifest = self._key(backup_id, MANIFEST)
            if manifest in found:
                fs.rm_file(manifest)
            rest = [k for k in found if k != manifest]
            if rest:
                fs.rm(rest)
        except SafetyError:
            raise
        except Exception as exc:
            raise self._error(f"delete backup {backup_id}", exc) from exc
        local = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
        shutil.rmtree(folder, ignore_errors=True)
        self._objects.pop(backup_id, None)
        self._manifests.pop(backup_id, None)
        return sum(found.values()) or local
