"""Append-only audit log: one JSON object per line, appended and fsynced.

Every event carries ``ts`` (ISO 8601 UTC), ``event`` and event-specific fields.  Database URLs
pass through :func:`redact_url` before they are written anywhere.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

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

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"ts": isoformat(utcnow()), "event": event}
        record.update(fields)
        line = redact_text(json.dumps(record, default=str, ensure_ascii=False)) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line  # a writer was killed mid-line: never glue onto its fragment
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.mirror is not None:
            with suppress(Exception):  # the file is the record; the mirror is a convenience
                self.mirror(record)
        return record

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
