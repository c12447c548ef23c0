"""``alembic-safety status``: the status report — where the database is, what is pending and how
risky it is, what backups exist, the last health result, recent events, and what to do next.
Rendered as text or markdown from ``templates/status/``, or as JSON (:meth:`StatusReport.as_dict`)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import Unfinished, unfinished
from .errors import SafetyError
from .plan import analyse
from .project import Project, Status, status
from .runbook import human
from .snapshot.manifest import Manifest
from .templating import render

ALL = 10**9  # status() lists this many backups: the report counts them all, shows the newest
SHOWN_BACKUPS = 5
FAILURE_EVENTS = ("step_refused", "rollback_failed", "backup_failed", "revision_failed")
LOW_SPACE = 1024 * 1024  # less free space than this in backup_dir is worth a next step


@dataclass(frozen=True)
class PendingRevision:
    revision: str
    message: str
    worst: str | None
    reversible: str

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "message": self.message, "worst": self.worst,
                "reversible": self.reversible}  # fmt: skip


@dataclass(frozen=True)
class StatusReport:
    status: Status
    all_backups: tuple[Manifest, ...]
    pending_revisions: tuple[PendingRevision, ...]
    pending_error: str | None
    last_health: dict[str, Any] | None
    last_failure: dict[str, Any] | None
    next_steps: tuple[str, ...]
    interrupted: tuple[Unfinished, ...] = ()

    @property
    def backups(self) -> tuple[Manifest, ...]:
        return self.all_backups[:SHOWN_BACKUPS]

    @property
    def backup_bytes(self) -> int:
        return sum(m.total_bytes for m in self.all_backups)

    def as_dict(self) -> dict[str, Any]:
        st = self.status
        newest = self.all_backups[0] if self.all_backups else None
        oldest = self.all_backups[-1] if self.all_backups else None
        return {
            "current": list(st.current) if st.current is not None else None,
            "heads": list(st.heads), "pending": st.pending, "database_error": st.database_error,
            "pending_revisions": [p.as_dict() for p in self.pending_revisions], "pending_error": self.pending_error,
            "backup_dir": st.backup_dir, "store": st.store, "snapshot_bytes": st.snapshot_bytes,
            "backup_summary": {"count": len(self.all_backups), "total_bytes": self.backup_bytes,
                               "newest": newest.id if newest else None, "oldest": oldest.id if oldest else None,
                               "incomplete": len(st.incomplete)},
            "backups": [m.summary() for m in self.backups],
            "incomplete_backups": [{"id": i.id, "reason": i.reason} for i in st.incomplete],
            "last_health": self.last_health, "last_failure": self.last_failure,
            "events": list(st.events), "next_steps": list(self.next_steps),
            "interrupted": [u.as_dict() for u in self.interrupted],
        }  # fmt: skip


def _last(log: list[dict[str, Any]], events: tuple[str, ...]) -> dict[str, Any] | None:
    found = None
    for e in log:
        if e.get("event") in events:
            found = e
    return found


def _first_line(value: Any) -> str:
    lines = str(value or "").strip().splitlines()
    return lines[0] if lines else ""


def _step_of(log: list[dict[str, Any]], event: dict[str, Any]) -> tuple[Any, Any] | None:
    """(revision, direction) of the step a failure event belongs to (a failed backup: the step
    its pre-revision backup protected)."""
    if event.get("event") != "backup_failed":
        return event.get("revision"), event.get("direction")
    for e in log:
        if e.get("event") == "backup_started" and e.get("backup_id") == event.get("backup_id"):
            if e.get("kind") != "pre-revision":
                return None
            upgrade = e.get("direction") == "upgrade"
            return e.get("revision_to" if upgrade else "revision_from"), e.get("direction")
    return None


def _redone(log: list[dict[str, Any]], failure: dict[str, Any]) -> bool:
    """Whether the step a failure refused was applied later (the failure is dealt with)."""
    step = _step_of(log, failure)
    if step is None:
        return False
    later = log[next(i for i, e in enumerate(log) if e is failure) + 1:]
    return any(e.get("event") == "revision_applied" and (e.get("revision"), e.get("direction")) == step
               for e in later)  # fmt: skip


def _failure_step(failure: dict[str, Any]) -> str:
    event, ts = str(failure.get("event")), failure.get("ts")
    if event == "revision_failed":
        return (f"{failure.get('direction')} {failure.get('revision_from') or 'base'} -> "
                f"{failure.get('revision_to') or 'base'} failed at {ts} ({_first_line(failure.get('error'))}); "
                f"{failure.get('note') or 'see the audit log'}: fix the cause, then run it again")  # fmt: skip
    if event == "backup_failed":
        return (f"backup {failure.get('backup_id')} failed at {ts} ({_first_line(failure.get('error'))}): the "
                "step it protected was refused and nothing of it ran; fix the cause, then run the command "
                "again")  # fmt: skip
    what = {"step_refused": "a step was refused", "rollback_failed": "a rollback failed"}[event]
    return (f"{what} at {ts} ({failure.get('revision') or failure.get('backup_id') or ''}): read it in the audit "
            "log; EMERGENCY_ROLLBACK_PLAN.md (`alembic-safety emergency`) says what to do")  # fmt: skip


def _revisions(value: Any) -> tuple[str, ...]:
    """Heads as the audit log writes them (``a+b`` for a merge point, null for base)."""
    return tuple(sorted(str(value).split("+"))) if value else ()


def _at(st: Status) -> str:
    return ", ".join(st.current or ()) or "base"


def _backup_fate(u: Unfinished, st: Status, complete: set[str], landed: bool) -> str:
    backup_id = u.backup_id
    if backup_id in complete:
        return (f"its backup {backup_id} is complete" + ("" if landed else ", but nothing of the step was applied: "
                "it is not needed for a rollback"))  # fmt: skip
    if backup_id in {i.id for i in st.incomplete}:
        return f"its backup {backup_id} is incomplete and never usable (`alembic-safety prune` removes it)"
    if u.last.get("event") == "backup_completed" and u.started.get("store") == "database":
        return f"its backup {backup_id} went with the rolled-back transaction"
    return f"its backup {backup_id} was never completed and is not listed"


def _who(u: Unfinished) -> str:
    host = u.started.get("host")
    if u.running is False:
        return "its process was killed or lost the database"
    return "killed, lost the database, or still running" + (f" on {host}" if host else "")


def _unfinished_step(u: Unfinished, st: Status, complete: set[str], dialect: str | None) -> str:
    s = u.started
    direction = str(s.get("direction"))
    what = f"{direction} {s.get('revision_from') or 'base'} -> {s.get('revision_to') or 'base'}"
    if u.running:
        return f"{what} is in progress (pid {s.get('pid')}, since {s.get('ts')}): let it finish"
    head = f"{what} started at {s.get('ts')} and never recorded its end ({_who(u)})"
    if st.current is None:
        return f"{head}; {_backup_fate(u, st, complete, False)}; see where the database is with `alembic current`"
    current = tuple(sorted(st.current))
    if current == _revisions(s.get("revision_to")):
        return (f"{head}; the database is at {_at(st)}: the step landed and {_backup_fate(u, st, complete, True)}; "
                "run `alembic-safety health` to check it")  # fmt: skip
    if current != _revisions(s.get("revision_from")):
        return f"{head}; the database is at {_at(st)}; {_backup_fate(u, st, complete, False)}"
    undone = ("PostgreSQL rolled the step back" if dialect == "postgresql" else
              "a database that commits DDL as it runs may keep part of it: compare the schema with that revision")
    return (f"{head}; the database is still at {_at(st)} ({undone}) and {_backup_fate(u, st, complete, False)}; "
            f"run `alembic {direction}` again: it takes a new snapshot")  # fmt: skip


def _unfinished_rollback(u: Unfinished, st: Status) -> str:
    s = u.started
    backup_id = s.get("backup_id")
    if u.running:
        return f"the rollback of {backup_id} is in progress (pid {s.get('pid')}, since {s.get('ts')}): let it finish"
    head = f"the rollback of {backup_id} started at {s.get('ts')} and never recorded its end ({_who(u)})"
    again = f"run `alembic-safety rollback {backup_id} --dry-run`, then the rollback again"
    if st.current is None:
        return f"{head}; see where the database is with `alembic current`, then {again}"
    current = tuple(sorted(st.current))
    if current == tuple(sorted(s.get("current") or ())):
        undone = ("nothing was rolled back: PostgreSQL undid the whole rollback" if s.get("transactional") else
                  "but this database commits DDL as it runs: it may be rolled back part-way, the state before is "
                  "in its pre-rollback backup (`alembic-safety backups`)")  # fmt: skip
        return f"{head}; the database is still at {_at(st)} ({undone}); {again}"
    if current == _revisions(s.get("target")):
        return (f"{head}; the database is at {s.get('target') or 'base'}: the rollback landed, its final checks did "
                f"not run: run `alembic-safety health` and `alembic-safety show {backup_id} --verify`")  # fmt: skip
    return f"{head}; the database is at {_at(st)}: compare it with the rollback's plan before acting"


def _unfinished_backup(u: Unfinished, st: Status) -> str:
    s = u.started
    if u.running:
        return f"backup {u.backup_id} is in progress (pid {s.get('pid')}, since {s.get('ts')})"
    fate = ("it is incomplete and never usable (`alembic-safety prune` removes it)"
            if u.backup_id in {i.id for i in st.incomplete} else "nothing of it is listed")
    return (f"the manual backup {u.backup_id} started at {s.get('ts')} never recorded its end ({_who(u)}); "
            f"{fate}; run `alembic-safety backup` again")


def _dialect(log: list[dict[str, Any]], backups: tuple[Manifest, ...]) -> str | None:
    for e in reversed(log):
        url = e.get("database")
        if isinstance(url, str) and "://" in url:
            return url.split("://", 1)[0].split("+", 1)[0]
    return backups[0].dialect if backups else None


def _interrupted_steps(st: Status, found: tuple[Unfinished, ...], dialect: str | None) -> list[str]:
    complete = {m.id for m in st.backups}
    out = []
    for u in found:
        if u.kind == "step":
            out.append(_unfinished_step(u, st, complete, dialect))
        elif u.kind == "rollback":
            out.append(_unfinished_rollback(u, st))
        else:
            out.append(_unfinished_backup(u, st))
    return out


def _backup_dir_steps(project: Project) -> list[str]:
    """backup_dir must take the audit log and (files store) the snapshots."""
    folder = Path(project.config.backup_dir)
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), None)
    if probe is None:
        return []
    if not os.access(probe, os.W_OK):  # EROFS for everyone, root included
        return [f"backup_dir {folder} is not writable: every step with something at risk (and every audit "
                "event) would be refused; make it writable or set backup_dir to a writable folder"]  # fmt: skip
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return []
    if free < LOW_SPACE:
        return [f"backup_dir {folder} has {human(free)} free: snapshots and audit events need room; free space "
                "or set backup_dir to a larger disk"]  # fmt: skip
    return []


def _pending(project: Project, st: Status) -> tuple[tuple[PendingRevision, ...], str | None]:
    if not st.pending:
        return (), None
    try:
        plan = analyse(project)
    except SafetyError as exc:
        return (), exc.message
    return tuple(PendingRevision(r.revision, r.message, r.worst, r.reversible) for r in plan.revisions), None


def _next_steps(project: Project, st: Status, pending: tuple[PendingRevision, ...], all_backups: tuple[Manifest, ...],
                health: dict[str, Any] | None, failure: dict[str, Any] | None,
                first: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    steps: list[str] = list(first)
    if st.database_error:
        steps.append("reach the database first: check sqlalchemy.url (or how env.py builds it) and the server")
    if len(st.heads) > 1:
        steps.append(f"the history has {len(st.heads)} heads: `alembic merge heads` before upgrading")
    if failure is not None:
        steps.append(_failure_step(failure))
    if health is not None and health.get("status") in ("failed", "unreachable"):
        steps.append(f"the last health check ({health.get('ts')}) {health.get('status')}: run `alembic-safety health` "
                     "and fix its error findings")  # fmt: skip
    if health is None and st.current is not None:
        steps.append("no health check recorded yet: run `alembic-safety health` for a baseline")
    if st.pending:
        risky = [p for p in pending if p.worst == "high"]
        steps.append(f"{st.pending} revision(s) pending" + (f", {len(risky)} with a high risk" if risky else "")
                     + ": review `alembic-safety plan`, then `alembic upgrade head` (snapshots are taken as it "
                       "runs)")  # fmt: skip
    if st.incomplete:
        steps.append(f"{len(st.incomplete)} incomplete backup(s): `alembic-safety prune` removes them")
    keep = project.config.keep
    if keep and len(all_backups) > keep:
        steps.append(f"{len(all_backups)} backups, more than keep = {keep}: `alembic-safety prune`")
    if not steps:
        steps.append("nothing to do: the database is at head and nothing failed")
    return steps


def status_report(project: Project, n_events: int = 10) -> StatusReport:
    st = status(project, n_backups=ALL, n_events=n_events)
    pending, pending_error = _pending(project, st)
    log = list(project.audit.read())
    health = _last(log, ("health",))
    failure = _last(log, FAILURE_EVENTS)
    if failure is not None and health is not None and str(health.get("ts")) > str(failure.get("ts")) \
            and health.get("status") == "healthy":  # fmt: skip
        failure = None  # a healthy check since: the failure was dealt with
    if failure is not None and _redone(log, failure):
        failure = None  # the step it refused was applied since
    found = tuple(unfinished(log))
    first = (*_interrupted_steps(st, found, _dialect(log, st.backups)), *_backup_dir_steps(project))
    steps = _next_steps(project, st, pending, st.backups, health, failure, first)
    return StatusReport(st, st.backups, pending, pending_error, health, failure, tuple(steps), found)


def render_status(project: Project, report: StatusReport, fmt: str) -> str:
    """The report as ``text`` or ``markdown`` (``json``: dump :meth:`StatusReport.as_dict`)."""
    override = str(project.config.templates_dir) if project.config.templates_dir else None
    name = {"text": "status/status.txt.j2", "markdown": "status/status.md.j2"}[fmt]
    return render(name, templates_dir_override=override, report=report, st=report.status, human=human)
