"""``alembic-safety init``: add ``alembic_safety.install(context)`` to env.py and an
``[alembic_safety]`` section to alembic.ini — idempotent, and as a reviewable diff.

env.py is read with :mod:`ast` and edited as text (comments and formatting stay as they are):
the call goes on the line after every ``context.configure(...)`` statement, at its
indentation, which covers the generic, async, multidb and pyproject templates of
``alembic init``.  An env.py this cannot handle is refused with the exact line to add.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .config import SECTION, ini_section_text
from .errors import SafetyError

INSTALL_LINE = "alembic_safety.install(context)"
IMPORT_LINE = "import alembic_safety"


class WiringError(SafetyError):
    """env.py has a shape ``init`` does not edit automatically."""


@dataclass(frozen=True)
class FileChange:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.path.name}",
                tofile=f"b/{self.path.name}",
            )
        )


def _manual(path: Path, why: str) -> WiringError:
    return WiringError(
        f"{path}: {why}; add 'import alembic_safety' at the top and the line "
        f"'alembic_safety.install(context)' right after each context.configure(...) call"
    )


def _context_names(tree: ast.Module) -> set[str]:
    """Names bound to ``alembic.context`` (``from alembic import context [as x]``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "alembic":
            names |= {a.asname or a.name for a in node.names if a.name == "context"}
    return names


def _is_call(stmt: ast.stmt, obj: set[str], attr: str) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
        and stmt.value.func.attr == attr
        and isinstance(stmt.value.func.value, ast.Name)
        and stmt.value.func.value.id in obj
    )


def _bodies(tree: ast.AST) -> list[list[ast.stmt]]:
    out = []
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody", "handlers"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                out.append(body)
    return out


# Python's own line ends (str.splitlines also splits at \f, \x1c, U+2028 ..., which would put
# the lines out of step with the line numbers of the ast).
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _newline(text: str) -> str:
    """The file's line ending, for the lines we add."""
    m = re.search(r"\r\n|\r|\n", text)
    return m.group() if m else "\n"


def wire_env(path: Path, text: str) -> str:
    """The new text of env.py (unchanged when already wired)."""
    try:
        # a UTF-8 BOM is fine for Python but not for ast.parse of a str
        tree = ast.parse(text.removeprefix("\ufeff"), filename=str(path))
    except SyntaxError as exc:
        raise _manual(path, f"cannot be parsed (line {exc.lineno}: {exc.msg})") from exc
    ctx_names = _context_names(tree)
    if not ctx_names:
        raise _manual(path, "does not import 'context' from alembic")
    nl = _newline(text)
    lines = _LINE_RE.findall(text)
    inserts: list[tuple[int, str]] = []  # (index of the line to insert before, text)
    found = 0
    for body in _bodies(tree):
        for i, stmt in enumerate(body):
            if not _is_call(stmt, ctx_names, "configure"):
                continue
            found += 1
            nxt = body[i + 1] if i + 1 < len(body) else None
            if nxt is not None and _is_call(nxt, {"alembic_safety"}, "install"):
                continue
            assert stmt.end_lineno is not None and stmt.end_col_offset is not None
            first = lines[stmt.lineno - 1]
            last = lines[stmt.end_lineno - 1]
            # ast offsets count UTF-8 bytes
            indent = first.encode()[: stmt.col_offset].decode()
            rest = last.encode()[stmt.end_col_offset :].decode()
            if indent.strip() or rest.strip().split("#")[0].strip():
                where = f"context.configure(...) at line {stmt.lineno}"
                raise _manual(path, f"{where} shares its line with other code")
            ctx_name = stmt.value.func.value.id  # type: ignore[attr-defined]
            inserts.append((stmt.end_lineno, f"{indent}alembic_safety.install({ctx_name}){nl}"))
    if not found:
        raise _manual(path, "has no context.configure(...) statement")
    has_import = any(
        isinstance(n, ast.Import)
        and any(a.name == "alembic_safety" and a.asname is None for a in n.names)
        for n in tree.body
    )
    if not has_import:
        anchor = max(
            (
                n.end_lineno or n.lineno
                for n in tree.body
                if isinstance(n, ast.ImportFrom) and n.module == "alembic"
            ),
            default=None,
        )
        if anchor is None:
            anchor = max(
                (
                    n.end_lineno or n.lineno
                    for n in tree.body
                    if isinstance(n, (ast.Import, ast.ImportFrom))
                ),
                default=0,
            )
        inserts.append((anchor, IMPORT_LINE + nl))
    for index, new in sorted(inserts, key=lambda x: x[0], reverse=True):
        if index > 0 and not lines[index - 1].endswith(("\n", "\r")):
            lines[index - 1] += nl
        lines.insert(index, new)
    return "".join(lines)


_SECTION_RE = re.compile(rf"^\s*\[{re.escape(SECTION)}\]\s*$", re.MULTILINE)


def wire_ini(text: str) -> str:
    if _SECTION_RE.search(text):
        return text
    nl = _newline(text)
    sep = "" if text.endswith(("\n", "\r")) or not text else nl
    return text + sep + ini_section_text().replace("\n", nl)


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as f:  # keep CRLF files CRLF
        return f.read()


def plan_init(ini_path: Path | None, env_path: Path) -> list[FileChange]:
    """The changes ``init`` would make (nothing is written)."""
    changes = []
    try:
        env_text = _read(env_path)
    except OSError as exc:
        raise SafetyError(
            f"cannot read {env_path}: {exc.strerror}; is script_location right?"
        ) from exc
    changes.append(FileChange(env_path, env_text, wire_env(env_path, env_text)))
    if ini_path is not None:
        try:
            ini_text = _read(ini_path)
        except OSError as exc:
            raise SafetyError(f"cannot read {ini_path}: {exc.strerror}") from exc
        changes.append(FileChange(ini_path, ini_text, wire_ini(ini_text)))
    return changes


def apply_changes(changes: list[FileChange]) -> None:
    """Write each changed file atomically, keeping its permissions."""
    for change in changes:
        if not change.changed:
            continue
        tmp = change.path.with_name(change.path.name + ".alembic-safety.tmp")
        mode = change.path.stat().st_mode & 0o7777
        with open(tmp, "w", encoding="utf-8", newline="") as f:  # line ends as they are
            f.write(change.after)
        os.chmod(tmp, mode)
        os.replace(tmp, change.path)
