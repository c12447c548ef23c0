"""``alembic-safety generate``: write the missing ``downgrade()`` bodies.

Decide first, then write (Django's rule): every chosen revision's reverse is computed — its
upgrade recorded, the schema before and after it reflected from a scratch database the history
is replayed into — and only when all of them rendered and compiled are the files written.
``--check`` needs no database: it reads the files and their marker hashes only.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from alembic.util import CommandError

from .. import _compat
from ..errors import SafetyError, UsageError
from ..project import Project
from ..record import record
from . import source
from .compare import reverse_by_comparison
from .ops import Before, Note, reverse_step
from .render import render_body
from .schema import SchemaState, reflect_state
from .scratch import Replayer, choose_url, temporary_database

VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Generated:
    """What generate did (or would do) for one revision."""

    revision: str
    path: str
    status: str  # the body as found: missing | empty | raises | current | stale | edited | hand-written
    action: str  # written | unchanged | would-write | left-alone | needs-work | ok
    detail: str = ""
    diff: str = ""
    manual: tuple[str, ...] = ()
    irreversible: tuple[str, ...] = ()

    @property
    def problem(self) -> bool:
        """For ``--check``: the revision's downgrade is missing or stale."""
        return self.action == "needs-work"

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "path": self.path, "status": self.status, "action": self.action,
                "detail": self.detail, "manual": list(self.manual), "irreversible": list(self.irreversible)}


@dataclass(frozen=True)
class _Chosen:
    script: Script
    slot: source.Slot
    explicit: bool


@dataclass
class _Computed:
    new_text: dict[str, str] = field(default_factory=dict)
    manual: dict[str, tuple[str, ...]] = field(default_factory=dict)
    irreversible: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _ordered(project: Project) -> list[Script]:
    script = project.script()
    try:
        return [s for s in reversed(list(script.walk_revisions())) if isinstance(s, Script)]
    except CommandError as exc:
        raise SafetyError(f"alembic: {exc}") from exc


def _choose(project: Project, revisions: tuple[str, ...], order: list[Script]) -> list[_Chosen]:
    script = project.script()
    wanted: set[str] = set()
    for rev in revisions:
        try:
            found = script.get_revision(rev)
        except Exception as exc:
            raise UsageError(f"unknown revision {rev!r}: {str(exc).splitlines()[0]}") from exc
        if not isinstance(found, Script):
            raise UsageError(f"unknown revision {rev!r}; 'alembic history' lists them")
        wanted.add(found.revision)
    chosen = []
    for s in order:
        slot = source.inspect(Path(s.path))
        if s.revision in wanted or (not wanted and (slot.status in source.NEEDS_WORK or slot.edited_and_stale)):
            chosen.append(_Chosen(s, slot, s.revision in wanted))
    return chosen


def _describe(slot: source.Slot) -> str:
    return {
        source.MISSING: "no downgrade()", source.EMPTY: "downgrade() is pass",
        source.RAISES: "downgrade() only raises", source.STALE: "generated downgrade is stale (upgrade changed)",
        source.CURRENT: "generated downgrade is current",
        source.EDITED: "generated block edited by hand" + (
            " (and the upgrade changed since: remove the markers and edit, or delete the block to regenerate)"
            if slot.edited_and_stale else ""),
        source.HAND_WRITTEN: "hand-written downgrade (empty its body to have one generated)",
    }[slot.status]  # fmt: skip


def check(project: Project, revisions: tuple[str, ...] = ()) -> list[Generated]:
    """``--check``: which revisions' downgrades are missing or stale; no database needed."""
    out = []
    for c in _choose(project, revisions, _ordered(project)):
        needs = c.slot.status in source.NEEDS_WORK or c.slot.edited_and_stale
        out.append(Generated(c.script.revision, str(c.script.path), c.slot.status,
                             "needs-work" if needs else "ok", _describe(c.slot)))  # fmt: skip
    return out


def generate(project: Project, revisions: tuple[str, ...] = (), *, url: str | None = None, write: bool = True,
             progress: Callable[[str], None] | None = None) -> list[Generated]:  # fmt: skip
    """Compute the downgrades of the chosen revisions; write them (``write``) or return diffs."""
    order = _ordered(project)
    chosen = _choose(project, revisions, order)
    results: dict[str, Generated] = {}
    todo: dict[str, _Chosen] = {}
    for c in chosen:
        if c.slot.status in (source.EDITED, source.HAND_WRITTEN):
            results[c.script.revision] = Generated(c.script.revision, str(c.script.path), c.slot.status,
                                                   "left-alone", _describe(c.slot))  # fmt: skip
        else:
            todo[c.script.revision] = c
    computed = _compute(project, order, todo, url, progress) if todo else _Computed()
    for rev, c in todo.items():
        new = computed.new_text[rev]
        old = c.slot.text
        diff = "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                            fromfile=str(c.script.path), tofile=str(c.script.path)))  # fmt: skip
        action = "unchanged" if new == old else ("written" if write else "would-write")
        results[rev] = Generated(rev, str(c.script.path), c.slot.status, action, _describe(c.slot), diff,
                                 computed.manual[rev], computed.irreversible[rev])  # fmt: skip
    if write:
        for rev, result in results.items():
            if result.action == "written":
                _atomic_write(Path(result.path), computed.new_text[rev])
    return [results[c.script.revision] for c in chosen]


def _compute(project: Project, order: list[Script], todo: dict[str, _Chosen], url: str | None,
             progress: Callable[[str], None] | None) -> _Computed:  # fmt: skip
    project_url = project.alembic.get_main_option("sqlalchemy.url")
    scratch = choose_url(url, project.config.scratch_url, project_url)
    out = _Computed()
    last = max(i for i, s in enumerate(order) if s.revision in todo)
    with temporary_database(scratch) as scratch_url:
        replayer = Replayer(project.alembic, scratch_url)
        try:
            for s in order[: last + 1]:
                c = todo.get(s.revision)
                if c is None:
                    replayer.upgrade(s.revision)
                    continue
                if progress:
                    progress(s.revision)
                pre = _reflect(replayer.engine)
                replayer.upgrade(s.revision)
                post = _reflect(replayer.engine)
                before = Before(pre[0], post[0], replayer.engine.dialect, pre[1], pre[2])
                _one(c, before, out, replayer.engine)
        finally:
            replayer.close()
    return out


def _one(c: _Chosen, before: Before, out: _Computed, engine: sa.Engine) -> None:
    fn = getattr(c.script.module, "upgrade", None)
    if not callable(fn):
        raise SafetyError(f"{c.script.path} has no upgrade() function")
    recorded = record(_compat.own_function(fn), before.dialect)
    if recorded.complete:
        items = reverse_step(recorded, before)
    else:
        # the upgrade uses the connection: what it did is read off the schema it left
        reasons = "; ".join(o.reason for o in recorded.opaque if not o.incomplete) or "it could not be recorded"
        with engine.connect() as conn:
            compared = reverse_by_comparison(conn, before)
        items = (Note("manual", f"computed by comparing the schema before and after the upgrade, which could "
                                f"not be recorded ({reasons}): schema changes are undone below, but data it "
                                "changed through the connection is not — check it"), *compared)  # fmt: skip
    ctx = MigrationContext.configure(dialect=before.dialect)
    body = render_body(items, ctx, c.slot.upgrade_hash)
    new_text = source.rewrite(c.slot, body.lines, body.imports)
    source.check_compiles(new_text, Path(c.script.path))
    out.new_text[c.script.revision] = new_text
    out.manual[c.script.revision] = body.manual
    out.irreversible[c.script.revision] = body.irreversible


def _reflect(engine: sa.Engine) -> tuple[sa.MetaData, SchemaState, frozenset[str]]:
    md = sa.MetaData()
    with engine.connect() as conn:
        md.reflect(conn, views=False, only=lambda name, _md: name != VERSION_TABLE)
        enums: frozenset[str] = frozenset()
        if conn.dialect.name == "postgresql":
            found = sa.inspect(conn).get_enums(schema="*")  # type: ignore[attr-defined]
            enums = frozenset(e["name"] if e.get("visible") else f"{e['schema']}.{e['name']}" for e in found)
        state = reflect_state(conn)
    return md, state, enums


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
