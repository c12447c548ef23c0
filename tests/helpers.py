"""Running the real command-line tools in subprocesses, and reading tables back."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ALEMBIC_SAFETY_") or k.endswith(("_HOST", "_PORT", "_USER", "_PASSWORD"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def alembic(ini: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ini), *args],
                          capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"alembic {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def safety(ini: Path | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "alembic_safety"]
    if ini is not None:
        cmd += ["-c", str(ini)]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, env=_env(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"alembic-safety {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def backups_json(ini: Path) -> list[dict[str, Any]]:
    data = json.loads(safety(ini, "backups", "--format", "json").stdout)
    assert isinstance(data, list)
    return data


def rows(engine: sa.Engine, table: str, columns: list[str] | None = None, where: str | None = None,
         order_by: str = "id") -> list[tuple[Any, ...]]:  # fmt: skip
    t = sa.table(table, *(sa.column(c) for c in (columns or [])))
    query = sa.select(*t.c) if columns else sa.select(sa.text("*")).select_from(t)
    if where:
        query = query.where(sa.text(where))
    query = query.order_by(sa.text(order_by))
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def digest(values: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()


def revision_file(revision: str, down_revision: str, message: str, upgrade_body: str) -> str:
    """The text of a revision file with the given upgrade() body (downgrade() is ``pass``)."""
    body = "\n".join("    " + line if line else "" for line in upgrade_body.strip("\n").splitlines())
    return (f'"""{message}\n\nRevision ID: {revision}\nRevises: {down_revision}\n"""\n'
            "from alembic import op\n\n"
            f"revision = {revision!r}\ndown_revision = {down_revision!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n{body}\n\n\ndef downgrade():\n    pass\n")
