"""Append-only audit log: one JSON object per line, appended and fsynced.

A *routine* event (a step that put nothing at risk was applied) is written at once but fsynced
with the next event that is not routine, or when the process exits: a killed process cannot lose
it (the kernel has it), only a machine that loses power in between — and then the database's
version table still says where it is.  Routine events are not mirrored into the database store.

Every event carries ``ts`` (ISO 8601 UTC), ``event`` and event-specific fields.  Database URLs
pass through :func:`redact_url` before they are written anywhere.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from .errors import SafetyError

OPENING_EVENTS = ("backup_started", "rollback_started")  # these also record their writer (pid, host)
_UNSYNCED: set[Path] = set()  # logs this process wrote routine events to and has not fsynced since
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)@")


def redact_url(url: str | URL | None) -> str:
    """A database URL with its password replaced by ``***``."""
    if url is None:
        return ""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return redact_text(str(url))


def redact_text(text: str) -> str:
    """Hide the password of every URL embedded in free text (error messages, logs)."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***@", text)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """The event log under ``backup_dir``; safe to share between processes (O_APPEND).

    ``mirror``, when given, receives every event after it is on disk (the database store copies
    them into its ``events`` table); a failing mirror never loses the event or stops the caller."""

    def __init__(self, path: Path, mirror: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = path
        self.mirror = mirror

    def write(self, event: str, *, routine: bool = False, **fields: Any) -> dict[str, Any]:
        """Append one event.  ``routine``: fsynced later (with the next event that is not, or at
        exit) and not mirrored — for the many events that record no backup and no failure."""
        record: dict[str, Any] = {"ts": isoformat(utcnow()), "event": event}
        if event in OPENING_EVENTS:  # so a reader can tell a running operation from a killed one
            record.update(pid=os.getpid(), host=socket.gethostname())
        record.update(fields)
        line = redact_text(json.dumps(record, default=str, ensure_ascii=False)) + "\n"
        try:
            self._append(line, sync=not routine)
        except OSError as exc:
            raise SafetyError(
                f"cannot write the audit log {self.path} ({exc.strerror or exc}): nothing was done; free space "
                "there, make it writable, or set backup_dir to a writable folder"
            ) from exc
        if self.mirror is not None and not routine:
            with suppress(Exception):  # the file is the record; the mirror is a convenience
                self.mirror(record)
        return record

    def _append(self, line: str, sync: bool = True) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line  # a writer was killed mid-line: never glue onto its fragment
            data = line.encode("utf-8")
            while data:  # a short write (a nearly full disk) must not pass for a whole line
                data = data[os.write(fd, data):]
            if sync:
                os.fsync(fd)  # the earlier routine lines of this file too
                _UNSYNCED.discard(self.path)
            else:
                _UNSYNCED.add(self.path)
        finally:
            os.close(fd)

    def read(self) -> Iterator[dict[str, Any]]:
        """Every event, oldest first; a torn last line (a killed writer) is skipped."""
        if not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    yield obj

    def tail(self, n: int) -> list[dict[str, Any]]:
        return list(deque(self.read(), maxlen=n))


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by its path (best effort: an error is not the caller's failure)."""
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@atexit.register
def sync_routine_events() -> None:
    """fsync every log this process left routine events unsynced in (at exit; callable any time)."""
    for path in list(_UNSYNCED):
        fsync_path(path)
        _UNSYNCED.discard(path)


@dataclass(frozen=True)
class Unfinished:
    """An operation the log saw start and never end: a migration step (opened by its
    pre-revision backup), a rollback or a manual backup whose process was killed, lost its
    database or its machine before it could record how it ended — or is still running."""

    kind: str  # "step", "rollback" or "backup"
    started: dict[str, Any]  # the opening event (backup_started / rollback_started)
    last: dict[str, Any]  # the last event the operation wrote (backup_completed, rollback_step, ...)
    running: bool | None  # its process is alive (True), gone (False), or on another host / unknown (None)

    @property
    def backup_id(self) -> str | None:
        value = self.started.get("backup_id")
        return str(value) if value else None

    @property
    def revision(self) -> str | None:
        """The step's revision (the one upgraded to, or downgraded from)."""
        key = "revision_to" if self.started.get("direction") == "upgrade" else "revision_from"
        value = self.started.get(key)
        return str(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        st = self.started
        return {"kind": self.kind, "started_at": st.get("ts"), "backup_id": self.backup_id,
                "direction": st.get("direction"), "revision_from": st.get("revision_from"),
                "revision_to": st.get("revision_to"), "last_event": self.last.get("event"),
                "running": self.running}  # fmt: skip


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(event: dict[str, Any]) -> bool | None:
    pid, host = event.get("pid"), event.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return None
    return pid_alive(pid)


def _step_key(event: dict[str, Any]) -> tuple[str, str]:
    direction = str(event.get("direction"))
    if event.get("event") == "backup_started":
        return str(event.get("revision_to" if direction == "upgrade" else "revision_from")), direction
    return str(event.get("revision")), direction


def unfinished(events: Iterable[dict[str, Any]]) -> list[Unfinished]:
    """The operations of ``events`` (oldest first) that started and never recorded their end,
    oldest first.  A step ends with ``revision_applied``, ``revision_failed``, ``step_refused``
    (or its backup's ``backup_failed``), and a later attempt at the same step supersedes it; a
    rollback ends with ``rollback_completed``/``rollback_failed`` (a later rollback of the same
    backup supersedes it); a manual backup with ``backup_completed``/``backup_failed``.  Backups a
    step or a rollback takes for itself belong to that operation."""
    steps: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (revision, direction) -> [opening, last]
    rollbacks: dict[str, list[dict[str, Any]]] = {}  # rolled-back backup id -> [opening, last]
    manual: dict[str, list[dict[str, Any]]] = {}
    rollback_of: str | None = None  # the rollback that started last: it takes the pre-rollback backup
    for e in events:
        name, backup_id = e.get("event"), e.get("backup_id")
        kind = e.get("kind")
        if name == "backup_started" and kind == "pre-revision":
            steps[_step_key(e)] = [e, e]
        elif name == "backup_started" and kind == "manual":
            manual[str(backup_id)] = [e, e]
        elif name == "rollback_started":
            rollback_of = str(backup_id)
            rollbacks[rollback_of] = [e, e]
        elif name in ("rollback_completed", "rollback_failed"):
            rollbacks.pop(str(backup_id), None)
        elif name in ("revision_applied", "revision_failed", "step_refused"):
            steps.pop(_step_key(e), None)
        elif name in ("backup_completed", "backup_failed"):
            manual.pop(str(backup_id), None)
            if name == "backup_failed":  # a failed snapshot refuses its step
                steps = {k: v for k, v in steps.items() if v[0].get("backup_id") != backup_id}
        # the last trace each open operation left
        for pair in [*steps.values(), *manual.values()]:
            if backup_id is not None and pair[0].get("backup_id") == backup_id:
                pair[1] = e
        if rollback_of in rollbacks and (backup_id == rollback_of or kind == "pre-rollback"):
            rollbacks[rollback_of][1] = e
    found = [Unfinished("step", o, last, _alive(o)) for o, last in steps.values()]
    found += [Unfinished("rollback", o, last, _alive(o)) for o, last in rollbacks.values()]
    found += [Unfinished("backup", o, last, _alive(o)) for o, last in manual.values()]
    return sorted(found, key=lambda u: str(u.started.get("ts")))
