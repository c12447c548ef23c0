"""Rollback scripts and runbooks for a folder of raw SQL migrations (``NNNN_name.sql``).

For every forward file, :func:`sync_folder` writes ``NNNN_name_rollback.sql`` (the reversed
statements of :func:`alembic_safety.reverse.sql.reverse_sql`, newest first) and
``NNNN_name_rollback.md`` (a runbook).  The schema state "before" each file comes from the text
of the files before it (:mod:`.log`, no database) or, exactly, from a replay of the folder on a
database (:mod:`.replay`).

Both files start with a header: the sha256 of the source file, of the folder's forward files up
to it (a rollback depends on the earlier definitions), how the before-state was read, and the
sha256 of the file's own body.  A source change makes the files stale (regenerated); a body
change means someone edited the file by hand (never overwritten, reported).  This module never
prints.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import SafetyError
from ..reverse.schema import SchemaState
from ..reverse.sql import MANUAL, SNAPSHOT_HINT, ReverseItem, reverse_sql
from ..templating import render
from .log import DIALECT, DefinitionLog

SUFFIX = "_rollback"
EMERGENCY_PLAN = "EMERGENCY_ROLLBACK_PLAN.md"
FROM_FILES = "files"  # the before-state was read from the earlier files' text
FROM_DATABASE = "database"  # ... from a replay of the folder on a database: exact
_FORWARD = re.compile(r"^(\d+)_.*\.sql$")
_SQL_HEADER = re.compile(
    r"\A-- alembic-safety sql-rollback: [^\n]*\n-- source-sha256: ([0-9a-f]{64})\n"
    r"-- history-sha256: ([0-9a-f]{64})\n-- before-state: (files|database)\n-- body-sha256: ([0-9a-f]{64})\n"
)
_MD_HEADER = re.compile(
    r"\A<!-- alembic-safety sql-rollback: source-sha256 ([0-9a-f]{64}); history-sha256 ([0-9a-f]{64}); "
    r"before-state (files|database); body-sha256 ([0-9a-f]{64}) -->\n"
)
_RAW_SNAPSHOT_HINT = ("to put them back, keep a copy of the rows before the migration runs "
                      "(pg_dump --data-only --table=NAME), or restore them from your latest backup")
_EXTENSION_DROP = re.compile(r"^DROP EXTENSION\b", re.IGNORECASE)


def read_text(path: Path) -> str:
    """A migration or rollback file's text; not UTF-8 or unreadable is a one-line error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SafetyError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except OSError as exc:
        raise SafetyError(f"{path}: cannot be read ({exc.strerror})") from exc


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def version(forward: Path) -> str:
    """A forward file's numeric prefix (Supabase's migration version)."""
    m = _FORWARD.match(forward.name)
    return m.group(1) if m else ""


def forward_files(folder: Path) -> list[Path]:
    """The forward migrations in ``folder``, ordered by their numeric (timestamp) prefix;
    rollback files and files without a numeric prefix are left out."""
    found = [
        p for p in folder.iterdir()
        if p.is_file() and _FORWARD.match(p.name) and not p.name.endswith(f"{SUFFIX}.sql")
    ]  # fmt: skip
    return sorted(found, key=lambda p: (int(version(p)), p.name))


def rollback_paths(forward: Path) -> tuple[Path, Path]:
    """The rollback script and the runbook of one forward file."""
    stem = forward.name[: -len(".sql")]
    return forward.with_name(f"{stem}{SUFFIX}.sql"), forward.with_name(f"{stem}{SUFFIX}.md")


def history_hashes(forwards: Sequence[Path]) -> list[str]:
    """Per forward file, the sha256 of it and every file before it (names and texts)."""
    running = hashlib.sha256()
    out: list[str] = []
    for forward in forwards:
        running.update(f"{forward.name}\0{sha256(read_text(forward))}\0".encode())
        out.append(running.copy().hexdigest())
    return out


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
            item = replace(item, text=item.text.replace(SNAPSHOT_HINT, _RAW_SNAPSHOT_HINT))
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


@dataclass(frozen=True)
class Header:
    """What a generated file's header records, and the hash of the body as it is now."""

    source: str
    history: str
    before_state: str
    recorded_body: str
    actual_body: str

    @property
    def edited(self) -> bool:
        return self.recorded_body != self.actual_body


def read_header(text: str) -> Header | None:
    """The header of a rollback script or runbook; None if it has none of ours."""
    m = _SQL_HEADER.match(text) or _MD_HEADER.match(text)
    if m is None:
        return None
    return Header(m.group(1), m.group(2), m.group(3), m.group(4), sha256(text[m.end() :]))


def _script_header(forward: Path, source: str, history: str, state: str, body: str) -> str:
    script, _ = rollback_paths(forward)
    return (f"-- alembic-safety sql-rollback: undoes {forward.name}; run with psql -v ON_ERROR_STOP=1 -f "
            f"{script.name}\n-- source-sha256: {source}\n-- history-sha256: {history}\n"
            f"-- before-state: {state}\n-- body-sha256: {sha256(body)}\n")  # fmt: skip


def _runbook_header(source: str, history: str, state: str, body: str) -> str:
    return (f"<!-- alembic-safety sql-rollback: source-sha256 {source}; history-sha256 {history}; "
            f"before-state {state}; body-sha256 {sha256(body)} -->\n")  # fmt: skip


def build(forward: Path, before: SchemaState, history: str = "", templates_dir: str | None = None) -> Rollback:
    """One forward file's rollback script and runbook, given the schema state before it."""
    source = read_text(forward)
    items = reverse_sql(source, DIALECT, before)
    state = FROM_FILES if not before.complete else FROM_DATABASE
    history = history or sha256(f"{forward.name}\0{sha256(source)}\0")
    body = render_body(items)
    script_path, _ = rollback_paths(forward)
    script = _script_header(forward, sha256(source), history, state, body) + body
    draft = Rollback(forward, items, script, "")
    runbook = render(
        "sqlrollback/runbook.md.j2", templates_dir_override=templates_dir, forward=forward.name,
        script=script_path.name, source_sha256=sha256(source), manual=draft.manual,
        non_transactional=draft.non_transactional, before_state=state, version=version(forward),
        statements=sum(1 for i in items if i.kind == "sql" and not _EXTENSION_DROP.match(i.text)),
    )  # fmt: skip
    return Rollback(forward, items, script, _runbook_header(sha256(source), history, state, runbook) + runbook)


# -- the folder -----------------------------------------------------------------------------------
@dataclass
class FolderResult:
    folder: Path
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)
    edited: list[Path] = field(default_factory=list)  # edited by hand (or not ours): left alone
    rollbacks: list[Rollback] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """For --check: nothing missing or stale."""
        return not self.missing and not self.stale


def before_states(forwards: Sequence[Path]) -> list[SchemaState]:
    """The state before each forward file, read from the text of the files before it."""
    log = DefinitionLog()
    states: list[SchemaState] = []
    for forward in forwards:
        states.append(log.state())
        log.add_file(read_text(forward))
    return states


def sync_folder(folder: Path, *, check: bool = False, states: Sequence[SchemaState] | None = None,
                templates_dir: str | None = None) -> FolderResult:  # fmt: skip
    """Write (or with ``check``, only compare) every forward file's rollback script and runbook.

    ``states``: the schema state before each forward file (from :func:`.replay.replay_states`);
    None reads them from the files' text.  A file made from a database replay whose history is
    unchanged stays current when the folder is checked without a database."""
    forwards = forward_files(folder)
    if states is None:
        states = before_states(forwards)
    if len(states) != len(forwards):
        raise ValueError("one before-state per forward file")
    result = FolderResult(folder)
    for forward, before, history in zip(forwards, states, history_hashes(forwards), strict=True):
        rollback = build(forward, before, history, templates_dir)
        result.rollbacks.append(rollback)
        for path, text in zip(rollback_paths(forward), (rollback.script, rollback.runbook), strict=True):
            _sync_file(result, path, text, check)
    return result


def _sync_file(result: FolderResult, path: Path, text: str, check: bool) -> None:
    current = read_text(path) if path.exists() else None
    if current == text:
        result.unchanged.append(path)
        return
    new = read_header(text)
    assert new is not None
    if current is None:
        result.missing.append(path)
    else:
        old = read_header(current)
        if old is None or old.edited:
            result.edited.append(path)  # hand-edited (or not ours): never overwritten
            if old is None or old.history != new.history:
                result.stale.append(path)
            return
        if old.before_state == FROM_DATABASE and new.before_state == FROM_FILES and old.history == new.history:
            result.unchanged.append(path)  # made exactly, from a database: still current
            return
        result.stale.append(path)
    if not check:
        path.write_text(text, encoding="utf-8")
        result.written.append(path)


def emergency_plan(folder: Path, result: FolderResult, *, shown: int = 10,
                   templates_dir: str | None = None) -> str:  # fmt: skip
    """EMERGENCY_ROLLBACK_PLAN.md for the folder: what to do, in order, when a migration of it
    went wrong; the newest ``shown`` migrations with what their rollback needs from a human.
    Deterministic (no dates, no live state): it can be committed and checked."""
    newest = list(reversed(result.rollbacks))[:shown]
    rows = [
        {"forward": r.forward.name, "version": version(r.forward), "script": rollback_paths(r.forward)[0].name,
         "runbook": rollback_paths(r.forward)[1].name, **_step_counts(r)}
        for r in newest
    ]  # fmt: skip
    previous = version(result.rollbacks[-2].forward) if len(result.rollbacks) > 1 else "base"
    return render("sqlrollback/emergency.md.j2", templates_dir_override=templates_dir, folder=str(folder),
                  rows=rows, total=len(result.rollbacks), previous=previous,
                  newest=rows[0]["forward"] if rows else None)  # fmt: skip


def _step_counts(r: Rollback) -> dict[str, int]:
    """Manual and non-transactional steps of the script as it is on disk (kept when made from a
    database replay, or edited by hand), else as generated."""
    script, _ = rollback_paths(r.forward)
    if not script.exists():
        return {"manual": len(r.manual), "non_transactional": len(r.non_transactional)}
    text = read_text(script)
    return {"manual": len(re.findall(r"^-- MANUAL: ", text, re.M)),
            "non_transactional": len(re.findall(r"^-- not in a transaction: ", text, re.M))}  # fmt: skip


def sync_emergency_plan(folder: Path, result: FolderResult, *, check: bool = False,
                        templates_dir: str | None = None) -> Path:  # fmt: skip
    """Write (or compare) the folder's emergency plan; recorded in ``result`` like the others."""
    path = folder / EMERGENCY_PLAN
    text = emergency_plan(folder, result, templates_dir=templates_dir)
    current = read_text(path) if path.exists() else None
    if current == text:
        result.unchanged.append(path)
    else:
        (result.missing if current is None else result.stale).append(path)
        if not check:
            path.write_text(text, encoding="utf-8")
            result.written.append(path)
    return path


__all__ = ["EMERGENCY_PLAN", "MANUAL", "FolderResult", "Header", "Rollback", "before_states", "build",
           "emergency_plan", "forward_files", "history_hashes", "read_header", "read_text", "render_body",
           "rollback_paths", "sync_emergency_plan", "sync_folder", "version"]  # fmt: skip
