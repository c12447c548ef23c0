"""``alembic-safety verify``: prove every revision can be undone, schema and data, on a scratch
database (never the project's own).

For each revision, parents first: bring the scratch database to exactly the revision's parents;
fill every table with generated rows (:mod:`alembic_safety.seed`); record the schema S0 and a
checksum per table D0; upgrade the revision with the safety net on (so its pre-revision snapshot
is taken as in production); record S1 and D1; run its ``downgrade()`` and compare the schema with
S0 (a readable diff; column order alone is no difference) and the data of the tables the upgrade
touched with D0; upgrade again and require S1; then, when the upgrade took a snapshot, roll the
revision back through the rollback engine and require D0 exactly.  A merge revision is
downgraded to each parent in turn.

Verdicts: ``ok``, ``lossy-but-recoverable`` (the downgrade loses data, the snapshot brings it
back exactly), ``schema-mismatch``, ``downgrade-fails`` (it raises, or it loses data nothing can
bring back), ``reupgrade-fails`` and ``irreversible (declared)`` (the downgrade raises
IrreversibleRevision).  This module never prints; ``cli.py`` renders the report.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import to_tuple

from . import _compat
from .audit import redact_text, redact_url
from .config import from_alembic_config
from .errors import IrreversibleRevision, SafetyError, UsageError
from .plan import _revisions
from .project import Project, list_backups
from .reverse.schema import SchemaState, diff, is_safety_schema, reflect_state
from .reverse.scratch import SCRATCH_PREFIX, Replayer, _drop, choose_url, temporary_database
from .seed import seed_database

OK = "ok"
LOSSY = "lossy-but-recoverable"
SCHEMA_MISMATCH = "schema-mismatch"
DOWNGRADE_FAILS = "downgrade-fails"
REUPGRADE_FAILS = "reupgrade-fails"
IRREVERSIBLE = "irreversible (declared)"
VERDICTS = (OK, LOSSY, SCHEMA_MISMATCH, DOWNGRADE_FAILS, REUPGRADE_FAILS, IRREVERSIBLE)
FAILURES = frozenset({SCHEMA_MISMATCH, DOWNGRADE_FAILS, REUPGRADE_FAILS})


@dataclass(frozen=True)
class RevisionVerdict:
    revision: str
    parents: tuple[str, ...]
    doc: str
    verdict: str
    details: tuple[str, ...] = ()
    backup_id: str | None = None  # the pre-revision snapshot the upgrade took, if any
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.verdict in FAILURES

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "parents": list(self.parents), "doc": self.doc,
                "verdict": self.verdict, "failed": self.failed, "details": list(self.details),
                "backup_id": self.backup_id, "seconds": round(self.seconds, 3)}  # fmt: skip


@dataclass(frozen=True)
class VerifyReport:
    dialect: str
    scratch: str  # the scratch server or file, password hidden
    seed_rows: int
    revisions: tuple[RevisionVerdict, ...]
    seconds: float

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.revisions)

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.revisions) for v in VERDICTS}

    def as_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "scratch": self.scratch, "seed_rows": self.seed_rows,
                "failed": self.failed, "counts": self.counts(), "seconds": round(self.seconds, 3),
                "revisions": [r.as_dict() for r in self.revisions]}  # fmt: skip


Checksums = dict[str, tuple[int, str]]  # table -> (rows, sha256 of its sorted rows)


def checksums(conn: sa.Connection, exclude: frozenset[str] = frozenset({"alembic_version"})) -> Checksums:
    """Per table of the default schema: row count and a digest of its rows, columns taken in
    name order and rows sorted, so neither column nor row order matters."""
    insp = sa.inspect(conn)
    out: Checksums = {}
    names = [n for n in insp.get_table_names() if n not in exclude]
    if not names:
        return out
    columns = insp.get_multi_columns(filter_names=names)
    for (_, name), cols in sorted(columns.items(), key=lambda kv: kv[0][1]):
        ordered = sorted(c["name"] for c in cols)
        table = sa.table(name, *[sa.column(c) for c in ordered])
        rows = sorted(repr(tuple(r)) for r in conn.execute(sa.select(*table.c)))
        digest = hashlib.sha256("\n".join([",".join(ordered), *rows]).encode()).hexdigest()
        out[name] = (len(rows), digest)
    return out


def _data_diff(before: Checksums, after: Checksums, tables: Sequence[str]) -> list[str]:
    out: list[str] = []
    for t in tables:
        if t not in before:
            continue
        if t not in after:
            out.append(f"table {t} ({before[t][0]} rows) is gone")
        elif after[t] != before[t]:
            out.append(f"table {t}: {before[t][0]} rows before, {after[t][0]} after, contents differ")
    return out


def _first_line(exc: BaseException) -> str:
    cause: BaseException = exc
    while isinstance(cause, SafetyError) and cause.__cause__ is not None and "replaying" in str(cause):
        cause = cause.__cause__
    text = redact_text(str(getattr(cause, "orig", None) or cause)).strip().splitlines()
    return f"{type(cause).__name__}: {text[0][:400] if text else ''}"


def _irreversible(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, IrreversibleRevision):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Scratch:
    """The scratch database and the two ways of running the project's env.py against it:
    safety net off (plain replay) and on (snapshots into a temporary backup folder)."""

    def __init__(self, project: Project, url: str | None, backup_dir: Path) -> None:
        self.project = project
        self._server = url
        self._backup_dir = backup_dir
        self._db: ExitStack | None = None
        self.url: sa.URL = sa.make_url("sqlite://")
        self.engine: sa.Engine | None = None
        self.off = Config()
        self.on = Config()
        self.safe = project
        self.script = project.script()
        self._checked = False
        self._fresh()
        # the mirror: a second database that only ever receives plain upgrades along the walk, so a
        # scratch database a failed revision left in disarray is replaced by a copy of it (PostgreSQL
        # TEMPLATE, a SQLite file copy) instead of a replay of the whole history
        self._mirror_stack = ExitStack()
        self._mirror: sa.URL | None = None
        self._mirror_heads: frozenset[str] = frozenset()
        if self.url.get_backend_name() in ("postgresql", "sqlite"):
            self._mirror = self._mirror_stack.enter_context(temporary_database(self._server))
            self._mirror_cfg = self._config(self._mirror, ["enabled=false"])

    def reset(self, parents: Sequence[str] = ()) -> None:
        """The scratch database at exactly ``parents``: a copy of the mirror when it is there,
        else a fresh database the history is replayed into (the previous one is dropped)."""
        if self._copy_mirror(frozenset(parents)):
            return
        self._fresh()
        for p in parents:
            self.upgrade(p)

    def _fresh(self) -> None:
        self.close()
        self._db = ExitStack()
        self._use(self._db.enter_context(temporary_database(self._server)))

    def _use(self, url: sa.URL) -> None:
        self.url = url
        self.engine = sa.create_engine(self.url)
        if not self._checked:
            replayer = Replayer(self.project.alembic, self.url)
            replayer.check_target()
            replayer.close()
            self._checked = True
        self.off = self._config(url, ["enabled=false"])
        policy = self.project.config.snapshot if self.project.config.snapshot != "none" else "at-risk"
        self.on = self._config(url, ["enabled=true", f"backup_dir={self._backup_dir}", "keep=0", "checks=off",
                                     f"snapshot={policy}", "oversize=warn"])  # fmt: skip
        self.safe = _LoadedProject(self.on, from_alembic_config(self.on), self.script)

    def advance_mirror(self, revision: str) -> None:
        if self._mirror is None:
            return
        self._migrate(self._mirror_cfg, revision, True)
        engine = sa.create_engine(self._mirror, poolclass=sa.pool.NullPool)
        try:
            self._mirror_heads = _heads(engine)
        finally:
            engine.dispose()

    def _copy_mirror(self, parents: frozenset[str]) -> bool:
        if self._mirror is None or self._mirror_heads != parents:
            return False
        if self._mirror.get_backend_name() == "sqlite":
            self.close()
            self._db = ExitStack()
            copy = self._db.enter_context(temporary_database(None))
            shutil.copyfile(self._mirror.database or "", copy.database or "")
            self._use(copy)
            return True
        name = SCRATCH_PREFIX + uuid.uuid4().hex[:12]
        admin = sa.create_engine(self._mirror.set(database=sa.make_url(self._server or "").database),
                                 isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)  # fmt: skip
        try:
            with admin.connect() as conn:
                prep = conn.dialect.identifier_preparer
                template = prep.quote(self._mirror.database or "")
                conn.exec_driver_sql(f"CREATE DATABASE {prep.quote(name)} TEMPLATE {template}")
        except sa.exc.DBAPIError:
            admin.dispose()
            return False  # e.g. a connection to the mirror is still open: replay instead
        self.close()
        self._db = ExitStack()
        self._db.callback(admin.dispose)
        self._db.callback(_drop, admin, name)
        self._use(self._mirror.set(database=name))
        return True

    def _config(self, url: sa.URL, extra: list[str]) -> Config:
        base = self.project.alembic
        cfg = Config(base.config_file_name, ini_section=base.config_ini_section,
                     toml_file=getattr(base, "toml_file_name", None))  # fmt: skip
        cfg.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
        x = list(getattr(getattr(base, "cmd_opts", None), "x", None) or [])
        cfg.cmd_opts = _Opts([*x, *extra])  # type: ignore[assignment]
        return cfg

    def close_all(self) -> None:
        self.close()
        self._mirror_stack.close()

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
        if self._db is not None:
            self._db.close()
            self._db = None

    def _migrate(self, cfg: Config, target: str, upgrade: bool) -> None:
        script = self.script

        def fn(rev: Any, context: Any) -> Any:
            return _compat.migration_steps(script, target, rev, upgrade)

        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            with EnvironmentContext(cfg, script, fn=fn, as_sql=False, starting_rev=None, destination_rev=target,
                                    tag=None):  # fmt: skip
                script.run_env()
        finally:
            logging.disable(previous)

    def upgrade(self, target: str, safe: bool = False) -> None:
        self._migrate(self.on if safe else self.off, target, True)

    def downgrade(self, target: str) -> None:
        self._migrate(self.off, target, False)

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            yield conn

    def heads(self) -> frozenset[str]:
        assert self.engine is not None
        return _heads(self.engine)

    def state(self) -> SchemaState:
        with self.connect() as conn:
            return reflect_state(conn)

    def data(self) -> Checksums:
        with self.connect() as conn:
            return checksums(conn)

    def seed(self, rows: int, seed: int) -> None:
        with self.connect() as conn:
            seed_database(conn, rows, seed)
            conn.commit()


def _heads(engine: sa.Engine) -> frozenset[str]:
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # MigrationContext.configure announces itself at INFO
    try:
        with engine.connect() as conn:
            return frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        logging.disable(previous)


@dataclass(frozen=True)
class _LoadedProject(Project):
    """The scratch project: its revision files are loaded once for the whole run."""

    loaded: ScriptDirectory | None = None

    def script(self) -> ScriptDirectory:
        return self.loaded if self.loaded is not None else super().script()


class _Opts:
    def __init__(self, x: list[str]) -> None:
        self.x = x


def scratch_url_for(project: Project, given: str | None) -> str | None:
    """The scratch server (or SQLite file) verify uses; refuses the project's own database."""
    own = project.alembic.get_main_option("sqlalchemy.url") or None
    url = choose_url(given, project.config.scratch_url, own)
    if url and own:
        try:
            a, b = sa.make_url(url), sa.make_url(own)
        except sa.exc.ArgumentError:
            return url
        same = (a.get_backend_name() == b.get_backend_name() and a.host == b.host
                and (a.port or 0) == (b.port or 0) and a.database == b.database)  # fmt: skip
        if same and a.get_backend_name() != "sqlite":
            raise UsageError("the scratch URL is the project's own database; give a server URL where verify may "
                             "create a temporary database (--url, or scratch_url in [alembic_safety])")  # fmt: skip
    return url


def ordered_revisions(project: Project, range_: str | None) -> list[Script]:
    """The revisions to verify, parents before children: every revision reachable from the
    heads, or those of RANGE (``from:to`` or one revision)."""
    script = project.script()
    if range_ is None:
        revisions = [s for s in script.revision_map.iterate_revisions("heads", "base") if isinstance(s, Script)]
        return list(reversed(revisions))
    return _revisions(script, range_, None)


def verify(project: Project, range_: str | None = None, url: str | None = None, seed_rows: int = 10,
           seed: int = 0, progress: Callable[[RevisionVerdict], None] | None = None) -> VerifyReport:  # fmt: skip
    """Round-trip every revision (of ``range_``) on a scratch database; see the module doc."""
    if seed_rows < 0:
        raise UsageError("--seed-rows must be 0 or more")
    server = scratch_url_for(project, url)
    revisions = ordered_revisions(project, range_)
    started = time.monotonic()
    verdicts: list[RevisionVerdict] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="alembic-safety-verify-")))
        scratch = _Scratch(project, server, folder / "backups")
        stack.callback(scratch.close_all)
        dialect = scratch.url.get_backend_name()
        shown = redact_url(sa.make_url(server)) if server else "a temporary SQLite file"
        dirty = False
        for rev in revisions:
            t0 = time.monotonic()
            parents = to_tuple(rev.down_revision) or ()
            if dirty or scratch.heads() != frozenset(parents):
                scratch.reset(parents)
            verdict, dirty = _one(scratch, rev, tuple(parents), seed_rows, seed)
            scratch.advance_mirror(rev.revision)
            verdict = RevisionVerdict(verdict.revision, verdict.parents, verdict.doc, verdict.verdict,
                                      verdict.details, verdict.backup_id, time.monotonic() - t0)  # fmt: skip
            verdicts.append(verdict)
            if progress is not None:
                progress(verdict)
    return VerifyReport(dialect, shown, seed_rows, tuple(verdicts), time.monotonic() - started)


@dataclass
class _Outcome:
    verdict: str = OK
    details: list[str] = field(default_factory=list)

    def fail(self, verdict: str, *details: str) -> None:
        if self.verdict in (OK, LOSSY):
            self.verdict = verdict
        self.details.extend(details)


def _one(scratch: _Scratch, rev: Script, parents: tuple[str, ...], rows: int,
         seed: int) -> tuple[RevisionVerdict, bool]:  # fmt: skip
    """Verify one revision; the scratch database is at exactly its parents.  Returns the verdict
    and whether the scratch database must be rebuilt (it is not left at the revision)."""
    doc = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
    out = _Outcome()
    scratch.seed(rows, seed)
    s0, d0 = scratch.state(), scratch.data()
    try:
        scratch.upgrade(rev.revision, safe=True)
    except Exception as exc:
        # the upgrade itself refuses the generated rows (e.g. a NOT NULL column without default):
        # verify the round trip on empty tables instead, and say so
        scratch.reset(parents)
        out.details.append(f"the upgrade fails on generated rows ({_first_line(exc)}); verified with empty tables")
        s0, d0 = scratch.state(), scratch.data()
        try:
            scratch.upgrade(rev.revision, safe=True)
        except Exception as again:
            why = f"upgrading {rev.revision} on the scratch database fails: {_first_line(again)}"
            raise SafetyError(why) from again
    s1, d1 = scratch.state(), scratch.data()
    backup = _backup_of(scratch, rev.revision)
    touched = sorted({t for t in d0 if d1.get(t) != d0[t]} | _schema_touched(s0, s1))

    for i, parent in enumerate(parents or (None,)):
        if i > 0:
            try:
                scratch.upgrade(rev.revision)
            except Exception as exc:
                out.fail(REUPGRADE_FAILS, f"upgrade after downgrading to {parents[i - 1]}: {_first_line(exc)}")
                return _verdict(rev, parents, doc, out, backup), True
        try:
            scratch.downgrade(parent or "base")
            for other in parents:
                if other != parent:  # a merge downgraded to one parent: the other comes back
                    scratch.upgrade(other)
        except Exception as exc:
            if _irreversible(exc):
                out.verdict = IRREVERSIBLE
                out.details.append(_first_line(exc))
            else:
                out.fail(DOWNGRADE_FAILS, _first_line(exc))
            return _verdict(rev, parents, doc, out, backup), not _still_at(scratch, rev.revision, s1)
        where = f" (downgraded to {parent})" if len(parents) > 1 else ""
        left = diff(s0, scratch.state())
        if left:
            out.fail(SCHEMA_MISMATCH, *[f"{d}{where}" for d in left])
        lost = _data_diff(d0, scratch.data(), touched)
        if lost and out.verdict in (OK, LOSSY):
            if backup is not None and len(parents) <= 1:
                out.verdict = LOSSY
                out.details.extend(f"downgrade loses data: {d}" for d in lost)
            else:
                out.fail(DOWNGRADE_FAILS, *[f"downgrade loses data and no snapshot holds it: {d}" for d in lost])
        try:
            scratch.upgrade(rev.revision)
        except Exception as exc:
            out.fail(REUPGRADE_FAILS, f"upgrade again{where}: {_first_line(exc)}")
            return _verdict(rev, parents, doc, out, backup), True
        differs = diff(s1, scratch.state())
        if differs:
            out.fail(REUPGRADE_FAILS, *[f"upgrade again{where}: {d}" for d in differs])
            return _verdict(rev, parents, doc, out, backup), True

    if backup is not None and len(parents) <= 1 and out.verdict in (OK, LOSSY):
        restored = _through_rollback(scratch, backup, parents[0] if parents else None, rev.revision)
        if isinstance(restored, str):
            out.fail(DOWNGRADE_FAILS, f"rollback through backup {backup}: {restored}")
            return _verdict(rev, parents, doc, out, backup), True
        off = _data_diff(d0, restored, sorted(d0))
        if off:
            out.fail(DOWNGRADE_FAILS, *[f"rollback through backup {backup} does not restore the data: {d}"
                                        for d in off])  # fmt: skip
        try:
            scratch.upgrade(rev.revision)
        except Exception:
            return _verdict(rev, parents, doc, out, backup), True
    return _verdict(rev, parents, doc, out, backup), False


def _verdict(rev: Script, parents: tuple[str, ...], doc: str, out: _Outcome, backup: str | None) -> RevisionVerdict:
    return RevisionVerdict(rev.revision, parents, doc, out.verdict, tuple(out.details), backup)


def _schema_touched(s0: SchemaState, s1: SchemaState) -> set[str]:
    before = {t.name: t for t in s0.tables if not is_safety_schema(t.schema)}
    after = {t.name: t for t in s1.tables if not is_safety_schema(t.schema)}
    return {name for name, t in before.items() if after.get(name) != t}


def _still_at(scratch: _Scratch, revision: str, s1: SchemaState) -> bool:
    try:
        return scratch.heads() == frozenset({revision}) and not diff(s1, scratch.state())
    except Exception:
        return False


def _backup_of(scratch: _Scratch, revision: str) -> str | None:
    manifests, _ = list_backups(scratch.safe)
    mine = [m for m in manifests if m.kind == "pre-revision" and m.direction == "upgrade"
            and m.revision_to == revision]  # fmt: skip
    return max(mine, key=lambda m: m.id).id if mine else None


def _through_rollback(scratch: _Scratch, backup: str, parent: str | None, revision: str) -> Checksums | str:
    """Roll the revision back with the rollback engine (replace mode); the data afterwards, or
    what went wrong."""
    from .rollback import execute_rollback, plan_rollback

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        plan = plan_rollback(scratch.safe, backup, "replace")
        result = execute_rollback(scratch.safe, plan, plan.confirmation_code)
    except Exception as exc:
        return _first_line(exc)
    finally:
        logging.disable(previous)
    if scratch.heads() != frozenset({parent} if parent else set()):
        return f"the database ends at {', '.join(sorted(scratch.heads())) or 'base'}, not {parent or 'base'}"
    if not result.ok:
        return "the rollback reports problems: " + "; ".join(str(d) for d in result.differences)[:300]
    return scratch.data()


def render_text(report: VerifyReport, verbose: bool = False) -> str:
    lines = [f"verify on {report.dialect} ({report.scratch}), {report.seed_rows} generated rows per table"]
    for r in report.revisions:
        timing = f"  {r.seconds:.2f}s" if verbose else ""
        mark = "FAIL" if r.failed else "    "
        lines.append(f"{mark} {r.revision}  {r.verdict}{timing}  {r.doc}".rstrip())
        lines += [f"       {d}" for d in r.details]
    counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n)
    lines.append(f"{len(report.revisions)} revisions in {report.seconds:.1f}s: {counts or 'nothing to verify'}")
    lines.append("FAILED" if report.failed else "every revision can be undone")
    return "\n".join(lines) + "\n"


def render_markdown(report: VerifyReport, verbose: bool = False) -> str:
    head = "| revision | verdict | details |" + (" seconds |" if verbose else "")
    rule = "|---|---|---|" + ("---|" if verbose else "")
    lines = [f"# Verify: {report.dialect}, {report.seed_rows} rows per table", "", head, rule]
    for r in report.revisions:
        details = "<br>".join(d.replace("|", "\\|") for d in r.details)
        cell = f" {r.seconds:.2f} |" if verbose else ""
        lines.append(f"| `{r.revision}` {r.doc.replace('|', '/')} | {r.verdict} | {details} |{cell}")
    lines += ["", "**FAILED**" if report.failed else "Every revision can be undone."]
    return "\n".join(lines) + "\n"
