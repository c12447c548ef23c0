"""Rollback scripts and runbooks for a folder of raw SQL migrations (``NNNN_name.sql``).

For every forward file, :func:`sync_folder` writes ``NNNN_name_rollback.sql`` (the reversed
statements of :func:`alembic_safety.reverse.sql.reverse_sql`, newest first) and
``NNNN_name_rollback.md`` (a runbook).  No database is needed: the schema state "before" a file
is built from the definitions of the files before it, enough for ``CREATE OR REPLACE FUNCTION``
and ``CREATE OR REPLACE VIEW`` to be reversed to the earlier definition.

The rollback script's header carries the sha256 of its source file and of its own body: a
source change makes it stale (regenerated), a body change means someone edited it by hand
(never overwritten, reported).  This module never prints.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot.errors import SqlglotError

from .errors import SafetyError
from .reverse.schema import ObjectState, SchemaState
from .reverse.sql import MANUAL, ReverseItem, _arg_types, _Words, reverse_sql, split_statements
from .templating import render

DIALECT = "postgresql"
SUFFIX = "_rollback"
_FORWARD = re.compile(r"^(\d+)_.*\.sql$")
_HEADER = re.compile(
    r"\A-- alembic-safety sql-rollback: [^\n]*\n-- source-sha256: ([0-9a-f]{64})\n-- body-sha256: ([0-9a-f]{64})\n"
)
_EXTENSION_DROP = re.compile(r"^DROP EXTENSION\b", re.IGNORECASE)



def _read(path: Path) -> str:
    """A migration or rollback file's text; not UTF-8 or unreadable is a one-line error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SafetyError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except OSError as exc:
        raise SafetyError(f"{path}: cannot be read ({exc.strerror})") from exc

def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def forward_files(folder: Path) -> list[Path]:
    """The forward migrations in ``folder``, ordered by their numeric (timestamp) prefix;
    rollback files and files without a numeric prefix are left out."""
    found = [
        p for p in folder.iterdir()
        if p.is_file() and _FORWARD.match(p.name) and not p.name.endswith(f"{SUFFIX}.sql")
    ]  # fmt: skip
    return sorted(found, key=lambda p: (int(_FORWARD.match(p.name).group(1)), p.name))  # type: ignore[union-attr]


def rollback_paths(forward: Path) -> tuple[Path, Path]:
    """The rollback script and the runbook of one forward file."""
    stem = forward.name[: -len(".sql")]
    return forward.with_name(f"{stem}{SUFFIX}.sql"), forward.with_name(f"{stem}{SUFFIX}.md")


# -- the schema state before a file, from the files before it --------------------------------------
@dataclass
class DefinitionLog:
    """The last CREATE statement seen per (kind, schema, name, identity): functions and views."""

    objects: dict[tuple[str, str | None, str, str], str] = field(default_factory=dict)

    def state(self) -> SchemaState:
        return SchemaState(
            dialect=DIALECT, tables=(), default_schema="public",
            objects=tuple(ObjectState(k[0], k[1], k[2], k[3], text) for k, text in sorted(
                self.objects.items(), key=lambda kv: tuple(x or "" for x in kv[0]))),
        )  # fmt: skip

    def add_file(self, sql: str) -> None:
        for statement in split_statements(sql, DIALECT):
            try:
                self._add(statement)
            except (SqlglotError, ValueError, IndexError):
                continue  # a statement this reader cannot follow leaves the state as it was

    def _add(self, statement: str) -> None:
        w = _Words(statement, "postgres")
        head = w.up(0)
        if head not in ("CREATE", "DROP"):
            return
        i = 1
        if head == "CREATE" and w.match(i, "OR", "REPLACE"):
            i += 2
        while w.up(i) in ("TEMP", "TEMPORARY", "RECURSIVE"):
            i += 1
        kind = {"FUNCTION": "function", "PROCEDURE": "procedure", "VIEW": "view"}.get(w.up(i))
        if kind is None:
            return
        i += 1
        if head == "DROP" and w.match(i, "IF", "EXISTS"):
            i += 2
        named = w.name(i)
        if named is None:
            return
        name, i = named
        schema = _norm(name.args.get("db"))
        obj_name = _norm(name.this) or ""
        identity = ""
        if kind in ("function", "procedure"):
            group = w.group(i)
            if group is None:
                if head == "DROP":  # DROP FUNCTION f: every signature of it
                    self._forget(kind, schema, obj_name, None)
                return
            identity = ", ".join(_arg_types(w, group[0], procedure=kind == "procedure"))
        if head == "DROP":
            self._forget(kind, schema, obj_name, identity)
        else:
            self.objects[(kind, schema, obj_name, identity)] = statement

    def _forget(self, kind: str, schema: str | None, name: str, identity: str | None) -> None:
        for key in list(self.objects):
            if key[0] == kind and key[2] == name and (key[1] or "public") == (schema or "public") \
                    and (identity is None or key[3] == identity):  # fmt: skip
                del self.objects[key]


def _norm(ident: object) -> str | None:
    name = getattr(ident, "name", None)
    if not name:
        return None
    return str(name) if getattr(ident, "quoted", False) else str(name).lower()


# -- rendering ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rollback:
    """One forward file's rollback: the script and the runbook, as text."""

    forward: Path
    items: tuple[ReverseItem, ...]
    script: str
    runbook: str

    @property
    def manual(self) -> tuple[ReverseItem, ...]:
        return tuple(i for i in self.items if i.kind != "sql" or _EXTENSION_DROP.match(i.text))

    @property
    def non_transactional(self) -> tuple[ReverseItem, ...]:
        return tuple(i for i in self.items if i.kind == "sql" and not i.transactional)


def _comment(text: str) -> str:
    return "\n".join(f"--   {line}" if n else line for n, line in enumerate(text.splitlines() or [""]))


def render_body(items: Sequence[ReverseItem]) -> str:
    """The script body: transactional statements in BEGIN/COMMIT blocks, the others between them
    on their own, manual and irreversible items as ``-- MANUAL:`` lines, extensions kept."""
    out: list[str] = []
    block: list[str] = []

    def close() -> None:
        if block:
            out.append("BEGIN;\n\n" + "\n\n".join(block) + "\n\nCOMMIT;")
            block.clear()

    for item in items:
        source = f"-- undoes: {item.source}"
        if item.kind != "sql":
            prefix = "IRREVERSIBLE" if item.kind == "irreversible" else "decide by hand"
            block.append(f"{source}\n-- MANUAL: {_comment(f'{prefix}: {item.text}')}")
        elif _EXTENSION_DROP.match(item.text):
            block.append(f"{source}\n-- MANUAL: extensions are not dropped by default (other objects and "
                         "projects may use them); to drop it, run by hand:\n"
                         f"-- {item.text};")  # fmt: skip
        elif not item.transactional:
            close()
            out.append(f"{source}\n-- not in a transaction: PostgreSQL refuses to run this statement inside "
                       f"one\n{item.text};")  # fmt: skip
        else:
            block.append(f"{source}\n{item.text};")
    close()
    if not out:
        out.append("-- nothing to undo: the forward file changes no schema")
    return "\n\n".join(out) + "\n"


def build(forward: Path, before: SchemaState) -> Rollback:
    source = _read(forward)
    items = reverse_sql(source, DIALECT, before)
    body = render_body(items)
    script_path, _ = rollback_paths(forward)
    header = (f"-- alembic-safety sql-rollback: undoes {forward.name}; run with "
              f"psql -v ON_ERROR_STOP=1 -f {script_path.name}\n"
              f"-- source-sha256: {sha256(source)}\n-- body-sha256: {sha256(body)}\n")  # fmt: skip
    rollback = Rollback(forward, items, header + body, "")
    runbook = render(
        "sqlrollback/runbook.md.j2", forward=forward.name, script=script_path.name,
        source_sha256=sha256(source), manual=rollback.manual, non_transactional=rollback.non_transactional,
        statements=sum(1 for i in items if i.kind == "sql" and not _EXTENSION_DROP.match(i.text)),
    )  # fmt: skip
    return Rollback(forward, items, rollback.script, runbook)


def read_header(text: str) -> tuple[str, str, str] | None:
    """(source sha256, recorded body sha256, actual body sha256) of a rollback script; None if it
    has no header of ours."""
    m = _HEADER.match(text)
    if m is None:
        return None
    return m.group(1), m.group(2), sha256(text[m.end() :])


# -- the folder -----------------------------------------------------------------------------------
@dataclass
class FolderResult:
    folder: Path
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)
    edited: list[Path] = field(default_factory=list)  # hand-edited rollback scripts, left alone

    @property
    def ok(self) -> bool:
        """For --check: nothing missing or stale."""
        return not self.missing and not self.stale


def sync_folder(folder: Path, *, check: bool = False) -> FolderResult:
    """Write (or with ``check``, only compare) every forward file's rollback script and runbook."""
    result = FolderResult(folder)
    log = DefinitionLog()
    for forward in forward_files(folder):
        rollback = build(forward, log.state())
        log.add_file(_read(forward))
        script_path, runbook_path = rollback_paths(forward)
        for path, text in ((script_path, rollback.script), (runbook_path, rollback.runbook)):
            current = _read(path) if path.exists() else None
            if current == text:
                result.unchanged.append(path)
                continue
            if current is None:
                result.missing.append(path)
            elif path == script_path:
                header = read_header(current)
                new_source = sha256(_read(forward))
                if header is None or header[1] != header[2]:
                    result.edited.append(path)  # hand-edited (or not ours): never overwritten
                    if header is None or header[0] != new_source:
                        result.stale.append(path)
                    continue
                result.stale.append(path)
            else:
                result.stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
                result.written.append(path)
    return result


__all__ = ["MANUAL", "DefinitionLog", "FolderResult", "Rollback", "build", "forward_files", "read_header",
           "render_body", "rollback_paths", "sync_folder"]  # fmt: skip
