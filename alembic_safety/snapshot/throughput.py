"""Snapshot throughput, measured by every backup and kept in the backup dir, so ``plan`` can
forecast how long a snapshot will take on *this* database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..audit import isoformat, utcnow

FILE = "throughput.json"
# conservative defaults before the first measured backup (bytes of table data per second)
DEFAULTS = {"files": 20_000_000, "database": 50_000_000}


def record(backup_dir: Path, store: str, data_bytes: int, seconds: float) -> None:
    """Remember the rate of a backup large enough to mean something (>= 1 MB, >= 0.05 s)."""
    if data_bytes < 1_000_000 or seconds < 0.05:
        return
    path = backup_dir / FILE
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[store] = {"bytes_per_second": int(data_bytes / seconds), "measured_at": isoformat(utcnow())}
    try:
        backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private, whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(json.dumps(data, indent=2))
        os.replace(tmp, path)
    except OSError:
        pass  # a forecast aid, never a reason to fail a backup


def rate(backup_dir: Path, store: str) -> tuple[int, bool]:
    """``(bytes per second, measured?)`` for ``store``."""
    try:
        entry = json.loads((backup_dir / FILE).read_text()).get(store) or {}
        value = int(entry["bytes_per_second"])
        if value > 0:
            return value, True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return DEFAULTS.get(store, DEFAULTS["files"]), False
