"""Reading and rewriting a revision file's ``downgrade()`` without touching anything else.

A generated body sits between two marker comments; the first carries the hash of the
``upgrade()`` it was generated from and the hash of the block as written.  So a later run knows
whether the block is current, stale (the upgrade changed) or edited by hand (the block changed:
it is never overwritten).  The docstring and any code outside the markers are kept.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SafetyError
from .render import BEGIN, END, body_hash

_MARKER = re.compile(re.escape(BEGIN) + r" \(upgrade (?P<upgrade>[0-9a-f]+), body (?P<body>[0-9a-f]+)\)")

# what a downgrade body is now
MISSING = "missing"  # no downgrade() at all
EMPTY = "empty"  # only pass / ... / a docstring
RAISES = "raises"  # only raises
CURRENT = "current"  # a generated block, up to date
STALE = "stale"  # a generated block from an older upgrade()
EDITED = "edited"  # a generated block changed by hand (kept)
HAND_WRITTEN = "hand-written"  # a real downgrade someone wrote (kept)
NEEDS_WORK = (MISSING, EMPTY, RAISES, STALE)


@dataclass(frozen=True)
class Slot:
    """Where a revision file's downgrade body is, and what it is."""

    path: Path
    text: str
    status: str
    upgrade_hash: str
    edited_and_stale: bool = False


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def upgrade_hash(text: str, path: Path) -> str:
    """Hash of ``upgrade()``'s code (its AST: reformatting or comments do not make it stale)."""
    tree = _parse(text, path)
    fn = _functions(tree).get("upgrade")
    if fn is None:
        raise SafetyError(f"{path} has no upgrade() function")
    return hashlib.sha256(ast.dump(fn, include_attributes=False).encode()).hexdigest()[:12]


def _parse(text: str, path: Path) -> ast.Module:
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise SafetyError(f"{path}:{exc.lineno}: cannot parse the revision file: {exc.msg}") from exc


def _marker_range(lines: list[str], start: int, end: int) -> tuple[int, int] | None:
    """0-based indexes of the begin and end marker lines within lines[start:end]."""
    begin = next((i for i in range(start, end) if lines[i].strip().startswith(BEGIN)), None)
    if begin is None:
        return None
    stop = next((i for i in range(begin + 1, end) if lines[i].strip() == END), None)
    return (begin, stop) if stop is not None else None


def _region_end(tree: ast.Module, fn: ast.FunctionDef, total: int) -> int:
    """Where the function's region ends: the next top-level statement (comments after the last
    statement, such as the end marker, still belong to the function), else the end of file."""
    later = [n for n in tree.body if n.lineno > fn.lineno]
    if not later:
        return total
    nxt = later[0]
    starts = [nxt.lineno, *(d.lineno for d in getattr(nxt, "decorator_list", []))]
    return int(min(starts)) - 1


def _body_statements(fn: ast.FunctionDef) -> list[ast.stmt]:
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):  # fmt: skip
        body = body[1:]
    return body


def inspect(path: Path) -> Slot:
    text = path.read_text(encoding="utf-8")
    up = upgrade_hash(text, path)
    tree = _parse(text, path)
    fn = _functions(tree).get("downgrade")
    if fn is None:
        return Slot(path, text, MISSING, up)
    lines = text.splitlines()
    span = _marker_range(lines, fn.lineno - 1, _region_end(tree, fn, len(lines)))
    if span is not None:
        m = _MARKER.search(lines[span[0]])
        if m is None:
            return Slot(path, text, EDITED, up)
        content = [line.strip() for line in lines[span[0] + 1:span[1]]]
        if body_hash(content) != m.group("body"):
            return Slot(path, text, EDITED, up, edited_and_stale=m.group("upgrade") != up)
        return Slot(path, text, CURRENT if m.group("upgrade") == up else STALE, up)
    body = _body_statements(fn)
    if all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body):
        return Slot(path, text, EMPTY, up)
    if all(isinstance(s, ast.Pass | ast.Raise) for s in body):
        return Slot(path, text, RAISES, up)
    return Slot(path, text, HAND_WRITTEN, up)


def rewrite(slot: Slot, block: tuple[str, ...], imports: tuple[str, ...]) -> str:
    """The file's new text: ``block`` (marker lines included) as the downgrade body."""
    text = slot.text
    lines = text.splitlines()
    tree = _parse(text, slot.path)
    fn = _functions(tree).get("downgrade")
    if fn is None:
        new_lines = [*lines, "", "", "def downgrade() -> None:", *(f"    {b}" for b in block)]
    else:
        end = fn.end_lineno or len(lines)
        span = _marker_range(lines, fn.lineno - 1, _region_end(tree, fn, len(lines)))
        body = _body_statements(fn)
        if span is not None:
            indent = re.match(r"\s*", lines[span[0]]).group(0)  # type: ignore[union-attr]
            new_lines = lines[:span[0]] + [indent + b for b in block] + lines[span[1] + 1:]
        elif body:
            first = body[0]
            indent = " " * (fn.col_offset + 4)
            head = lines[first.lineno - 1][:first.col_offset]
            keep = [head.rstrip()] if head.strip() else []  # "def downgrade(): pass" on one line
            new_lines = lines[:first.lineno - 1] + keep + [indent + b for b in block] + lines[end:]
        else:  # only a docstring
            indent = " " * (fn.col_offset + 4)
            doc_end = fn.body[0].end_lineno or fn.lineno
            new_lines = lines[:doc_end] + [indent + b for b in block] + lines[doc_end:]
    new_text = "\n".join(new_lines) + "\n"
    return _with_imports(new_text, imports, slot.path)


def _bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return names


def _with_imports(text: str, imports: tuple[str, ...], path: Path) -> str:
    tree = _parse(text, path)
    bound = _bound_names(tree)
    missing = []
    for statement in imports:
        needed = _bound_names(ast.parse(statement))
        if not needed <= bound:
            missing.append(statement)
    if not missing:
        return text
    lines = text.splitlines()
    last_import = max((n.end_lineno or n.lineno for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)),
                      default=None)  # fmt: skip
    if last_import is None:  # after the module docstring, if any
        first = tree.body[0] if tree.body else None
        is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        last_import = (first.end_lineno or 0) if first is not None and is_doc else 0
    new_lines = lines[:last_import] + missing + lines[last_import:]
    return "\n".join(new_lines) + "\n"


def check_compiles(text: str, path: Path) -> None:
    try:
        compile(text, str(path), "exec")
    except SyntaxError as exc:  # a bug of ours: never write a file that cannot import
        raise SafetyError(f"internal error: the generated downgrade for {path} does not compile "
                          f"(line {exc.lineno}: {exc.msg}); nothing was written") from exc  # fmt: skip
