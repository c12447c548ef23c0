"""``alembic-safety status``: the status report — where the database is, what is pending and how
risky it is, what backups exist, the last health result, recent events, and what to do next.
Rendered as text or markdown from ``templates/status/``, or as JSON (:meth:`StatusReport.as_dict`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import SafetyError
from .plan import analyse
from .project import Project, Status, status
from .runbook import human
from .snapshot.manifest import Manifest
from .templating import render

ALL = 10**9  # status() lists this many backups: the report counts them all, shows the newest
SHOWN_BACKUPS = 5
FAILURE_EVENTS = ("step_refused", "rollback_failed", "backup_failed")


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
        }  # fmt: skip


def _last(project: Project, events: tuple[str, ...]) -> dict[str, Any] | None:
    found = None
    for e in project.audit.read():
        if e.get("event") in events:
            found = e
    return found


def _pending(project: Project, st: Status) -> tuple[tuple[PendingRevision, ...], str | None]:
    if not st.pending:
        return (), None
    try:
        plan = analyse(project)
    except SafetyError as exc:
        return (), exc.message
    return tuple(PendingRevision(r.revision, r.message, r.worst, r.reversible) for r in plan.revisions), None


def _next_steps(project: Project, st: Status, pending: tuple[PendingRevision, ...], all_backups: tuple[Manifest, ...],
                health: dict[str, Any] | None, failure: dict[str, Any] | None) -> list[str]:  # fmt: skip
    steps: list[str] = []
    if st.database_error:
        steps.append("reach the database first: check sqlalchemy.url (or how env.py builds it) and the server")
    if len(st.heads) > 1:
        steps.append(f"the history has {len(st.heads)} heads: `alembic merge heads` before upgrading")
    if failure is not None:
        what = {"step_refused": "a step was refused", "rollback_failed": "a rollback failed",
                "backup_failed": "a backup failed"}[str(failure.get("event"))]  # fmt: skip
        steps.append(f"{what} at {failure.get('ts')} ({failure.get('revision') or failure.get('backup_id') or ''}): "
                     "read it in the audit log; EMERGENCY_ROLLBACK_PLAN.md (`alembic-safety emergency`) says what "
                     "to do")  # fmt: skip
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
    health = _last(project, ("health",))
    failure = _last(project, FAILURE_EVENTS)
    if failure is not None and health is not None and str(health.get("ts")) > str(failure.get("ts")) \
            and health.get("status") == "healthy":  # fmt: skip
        failure = None  # a healthy check since: the failure was dealt with
    steps = _next_steps(project, st, pending, st.backups, health, failure)
    return StatusReport(st, st.backups, pending, pending_error, health, failure, tuple(steps))


def render_status(project: Project, report: StatusReport, fmt: str) -> str:
    """The report as ``text`` or ``markdown`` (``json``: dump :meth:`StatusReport.as_dict`)."""
    override = str(project.config.templates_dir) if project.config.templates_dir else None
    name = {"text": "status/status.txt.j2", "markdown": "status/status.md.j2"}[fmt]
    return render(name, templates_dir_override=override, report=report, st=report.status, human=human)
