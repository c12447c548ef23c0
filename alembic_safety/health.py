"""``alembic-safety health`` and ``monitor``: the checks over the whole database, plus the
operational facts a deploy wants to see (latency, probe times, long transactions, lock
waits, table sizes).  The library part: it returns reports; ``cli.py`` prints them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from .audit import isoformat, redact_url, utcnow
from .checks import CheckFinding, run_checks
from .checks.step import full_context
from .errors import SafetyError
from .project import Project, with_database

STATUS_EXIT = {"healthy": 0, "degraded": 0, "failed": 1}
PROBED_TABLES = 10  # the largest tables get a probe query


@dataclass(frozen=True)
class HealthReport:
    """One health run.  ``as_dict`` is the ``--format json`` contract."""

    status: str  # healthy | degraded | failed
    findings: tuple[CheckFinding, ...]
    facts: Mapping[str, Any]
    checked_at: str

    @property
    def exit_code(self) -> int:
        return STATUS_EXIT[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "findings": [f.as_dict() for f in self.findings],
                "facts": dict(self.facts), "checked_at": self.checked_at}  # fmt: skip


def _ms(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return round((time.perf_counter() - start) * 1000, 3)


def _probe(conn: sa.Connection, probe: sa.Select[Any]) -> dict[str, Any]:
    """The probe's time, or why it failed (a lock held past ``lock_timeout``)."""
    try:
        if conn.dialect.name != "postgresql":
            return {"ms": _ms(lambda: conn.execute(probe).all()), "error": None}
        with conn.begin_nested():
            return {"ms": _ms(lambda: conn.execute(probe).all()), "error": None}
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig or exc).strip().splitlines()
        return {"ms": None, "error": first[0] if first else type(exc).__name__}


def _facts_and_findings(conn: sa.Connection, mctx: MigrationContext, project: Project,
                        scope: str) -> tuple[dict[str, Any], list[CheckFinding]]:  # fmt: skip
    if conn.dialect.name == "postgresql" and project.config.lock_timeout:
        # a table locked by a migration must not hang health: its probe and checks give up instead
        ms = str(max(1, int(project.config.lock_timeout * 1000)))
        conn.execute(sa.select(sa.func.set_config("lock_timeout", ms, True)))
    latency = sorted(_ms(lambda: conn.execute(sa.select(sa.literal(1))).scalar()) for _ in range(3))[1]
    ctx = full_context(conn, mctx, project.config, project.script(), scope)
    run = run_checks(ctx)
    sizes = sorted(ctx.catalog.sizes(ctx.tables), key=lambda s: (-(s.bytes or 0), -(s.rows_estimate or 0), s.table.key))
    probes = []
    for s in sizes[:PROBED_TABLES]:
        t = sa.table(s.table.name, schema=s.table.schema)
        probe = sa.select(sa.literal(1)).select_from(t).limit(1)
        probes.append({"table": s.table.key, "rows_estimate": s.rows_estimate, **_probe(conn, probe)})
    facts: dict[str, Any] = {
        "dialect": conn.dialect.name,
        "database": redact_url(conn.engine.url),
        "current": list(mctx.get_current_heads()),
        "heads": list(project.script().get_heads()),
        "latency_ms": latency,
        "probes": probes,
        "long_transactions": ctx.catalog.long_transactions(project.config.long_transaction),
        "blocked_locks": ctx.catalog.blocked(),
        "tables": [{"table": s.table.key, "rows_estimate": s.rows_estimate, "bytes": s.bytes} for s in sizes],
        "checks": {"scope": scope, "ran": list(run.ran), "seconds": round(run.seconds, 3)},
    }
    return facts, list(run.findings)


def health(project: Project, scope: str = "full") -> HealthReport:
    """Run the checks of ``scope`` (``full``: every check; ``step``: the cheap ones) on every
    table of each database env.py connects to, and gather the facts."""
    if scope not in ("step", "full"):
        raise SafetyError(f"--scope must be step or full, not {scope!r}")
    checked_at = isoformat(utcnow())
    results = with_database(project, lambda conn, mctx: _facts_and_findings(conn, mctx, project, scope))
    findings = tuple(f for _, found in results for f in found)
    facts: dict[str, Any] = results[0][0] if len(results) == 1 else {"databases": [f for f, _ in results]}
    status = ("failed" if any(f.severity == "error" for f in findings) else
              "degraded" if findings else "healthy")  # fmt: skip
    return HealthReport(status, findings, facts, checked_at)


def _notify_failed(project: Project, report: HealthReport | None, error: str | None, where: str) -> None:
    from .notify import notify

    errors = [f.one_line() for f in report.findings if f.severity == "error"] if report is not None else []
    text = (f"alembic-safety {where}: health check failed: {len(errors)} error(s): " + "; ".join(errors[:3])
            if report is not None else f"alembic-safety {where}: health check could not run: {error}")  # fmt: skip
    notify(project.config, "health_failed", text, project.audit, status=report.status if report else "unreachable",
           findings=errors, error=error, checked_at=report.checked_at if report else None)  # fmt: skip


def record_health(project: Project, report: HealthReport) -> None:
    """Keep the result of a one-off ``health`` in the audit log (``status`` shows the last one)
    and notify ``notify_url`` when it failed."""
    project.audit.write("health", round=None, status=report.status, exit_code=report.exit_code, error=None,
                        findings=[f"{f.code} {f.table or ''}".strip() for f in report.findings])  # fmt: skip
    if report.status == "failed":
        _notify_failed(project, report, None, "health")


@dataclass(frozen=True)
class Round:
    """One monitor round: its report (or why it could not run) and what changed since the last."""

    number: int
    checked_at: str
    exit_code: int  # 0 healthy/degraded, 1 an error finding, 2 could not run
    report: HealthReport | None
    error: str | None
    new: tuple[CheckFinding, ...] = field(default=())
    resolved: tuple[CheckFinding, ...] = field(default=())

    @property
    def status(self) -> str:
        return self.report.status if self.report is not None else "unreachable"


def _key(f: CheckFinding) -> tuple[str, str | None, str]:
    return f.code, f.table, f.detail


def monitor(project: Project, interval_minutes: float, count: int | None, stop: threading.Event,
            scope: str = "full") -> Iterator[Round]:  # fmt: skip
    """Health every ``interval_minutes`` until ``count`` rounds ran or ``stop`` is set; each
    round is appended to the audit log (event ``health``)."""
    previous: dict[tuple[str, str | None, str], CheckFinding] = {}
    number = 0
    last_code = 0
    while not stop.is_set():
        number += 1
        report: HealthReport | None = None
        error: str | None = None
        try:
            report = health(project, scope)
            code = report.exit_code
        except SafetyError as exc:
            error, code = exc.message, 2
        except sa.exc.SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            error, code = f"database error: {first[0] if first else type(exc).__name__}", 2
        current = {_key(f): f for f in report.findings} if report is not None else previous
        new = tuple(f for k, f in current.items() if k not in previous)
        resolved = tuple(f for k, f in previous.items() if k not in current)
        previous = current
        checked_at = report.checked_at if report is not None else isoformat(utcnow())
        rnd = Round(number, checked_at, code, report, error, new, resolved)
        project.audit.write("health", round=number, status=rnd.status, exit_code=code, error=error,
                            findings=[f"{f.code} {f.table or ''}".strip() for f in (report.findings if report else ())],
                            new=len(new), resolved=len(resolved))  # fmt: skip
        if code and (last_code == 0 or new):  # a round turned bad, or got worse: tell once, not every round
            _notify_failed(project, report, error, f"monitor round {number}")
        last_code = code
        yield rnd
        if count is not None and number >= count:
            break
        stop.wait(max(0.0, interval_minutes * 60))
