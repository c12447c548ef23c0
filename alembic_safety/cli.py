"""The ``alembic-safety`` command: parses, calls the library, renders.  The only module that
prints or chooses exit codes (0 success, 1 problems found, 2 usage/config/environment)."""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn

import click
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from . import project as lib
from ._version import __version__
from .audit import redact_text
from .errors import SafetyError
from .snapshot.manifest import Manifest

# a column of a type SQLAlchemy does not know (an extension's, in another schema) is read as
# PostgreSQL spells it where it matters; its warning would only break the one-line output
warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
# piped output is not cut to 80 columns: ids and paths stay whole for scripts and logs
out = Console(highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"alembic-safety: error: {redact_text(message)}", err=True)
    sys.exit(code)


class SafetyGroup(click.Group):
    """Turns every error into one line on stderr and an exit code (``--traceback`` to see more)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except SafetyError as exc:
            self._traceback(ctx)
            _fail(exc.message, exc.exit_code)
        except sa.exc.SQLAlchemyError as exc:
            self._traceback(ctx)
            orig = getattr(exc, "orig", None) or exc
            first = str(orig).strip().splitlines()
            _fail(f"database error: {first[0] if first else type(exc).__name__}")
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:
            self._traceback(ctx)
            _fail(f"unexpected {type(exc).__name__}: {exc} (run with --traceback and report it)")

    @staticmethod
    def _traceback(ctx: click.Context) -> None:
        if ctx.params.get("traceback"):
            traceback.print_exc()


@click.group(cls=SafetyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_file", default="alembic.ini", envvar="ALEMBIC_CONFIG",
              show_default=True, help="Alembic configuration file.")
@click.option("-n", "--name", default="alembic", show_default=True, help="Section of the ini file to use.")
@click.option("-x", "x_args", multiple=True, metavar="KEY=VALUE",
              help="Extra arguments for env.py; [alembic_safety] keys given here override alembic.ini.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
@click.version_option(__version__, prog_name="alembic-safety")
@click.pass_context
def main(ctx: click.Context, config_file: str, name: str, x_args: tuple[str, ...], traceback: bool) -> None:
    """Make every Alembic revision recoverable: snapshots of the data each revision step puts at
    risk, taken by `alembic upgrade`/`downgrade` once env.py calls alembic_safety.install(context)."""
    ctx.obj = {"config_file": config_file, "name": name, "x": x_args}


def _project(ctx: click.Context) -> lib.Project:
    o = ctx.find_root().obj
    return lib.load_project(o["config_file"], o["name"], o["x"])


def _no_empty(what: str, values: tuple[str | None, ...]) -> None:
    """A revision or range argument given as an empty string is a usage error, not "all"."""
    if any(v is not None and not v.strip() for v in values):
        _fail(f"{what} is empty: give a revision id (or 'from:to'), or leave it out")


def _human(n: int | None) -> str:
    from .templating import human_size

    return human_size(n)


def _table_of_backups(backups: list[Manifest] | tuple[Manifest, ...]) -> Table:
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("id", "kind", "revisions", "tables", "rows", "size"):
        t.add_column(col, justify="right" if col in ("rows", "size") else "left", no_wrap=col == "id")
    for m in backups:
        revs = (
            f"{m.revision_from or 'base'} -> {m.revision_to or 'base'}" if m.direction else (m.revision_from or "base")
        )
        t.add_row(m.id, m.kind, revs, ", ".join(x.key for x in m.tables), str(m.total_rows), _human(m.total_bytes))
    return t


# -- init ----------------------------------------------------------------------------------------
@main.command()
@click.option("--dry-run", is_flag=True, help="Show the changes without writing them.")
@click.pass_context
def init(ctx: click.Context, dry_run: bool) -> None:
    """Wire env.py (alembic_safety.install(context)) and add [alembic_safety] to alembic.ini."""
    from .wiring import apply_changes, plan_init

    project = _project(ctx)
    env_py = Path(project.script().dir) / "env.py"
    changes = plan_init(Path(project.alembic.config_file_name or "alembic.ini"), env_py)
    changed = [c for c in changes if c.changed]
    if not changed:
        out.print("Already set up: env.py calls alembic_safety.install(context) and alembic.ini has [alembic_safety].",
                  markup=False)
        return
    for c in changed:
        out.print(c.diff(), markup=False, end="")
    if dry_run:
        out.print("(dry run: nothing written)")
        return
    apply_changes(changed)
    project.audit.write("init", files=[str(c.path) for c in changed])
    out.print(f"Updated {', '.join(str(c.path) for c in changed)}. `alembic upgrade` now snapshots at-risk data "
              f"into {project.config.backup_location}.", markup=False)


# -- backup / backups / show / prune --------------------------------------------------------------
@main.command()
@click.argument("name", required=False, default="")
@click.option("--tables", help="Comma-separated tables (schema.table allowed); default: all tables.")
@click.pass_context
def backup(ctx: click.Context, name: str, tables: str | None) -> None:
    """Snapshot all tables, or the ones named, now."""
    project = _project(ctx)
    table_list = [t for t in (tables or "").split(",") if t.strip()] if tables is not None else None
    if tables is not None and not table_list:
        raise SafetyError("--tables is empty; name at least one table or leave the option out")
    show_progress = err.is_terminal
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err, disable=not show_progress, transient=True) as progress:  # fmt: skip
        tasks: dict[str, Any] = {}

        def on_progress(table: str, raw: int, rows: int) -> None:
            if table not in tasks:
                tasks[table] = progress.add_task(table, total=None)
            progress.update(tasks[table], completed=raw)

        manifests = lib.manual_backup(project, name, table_list, progress=on_progress)
    for m in manifests:
        out.print(f"Backup {m.id}: {len(m.tables)} table(s), {m.total_rows} rows, {_human(m.total_bytes)}")
        for t in m.tables:
            out.print(f"  {t.key}: {t.rows} rows, {_human(t.bytes)}, {t.checksum[:23]}…")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def backups(ctx: click.Context, fmt: str) -> None:
    """List complete backups (newest first) and any incomplete ones."""
    project = _project(ctx)
    items, incomplete = lib.list_backups(project)
    if fmt == "json":
        data = [m.summary() for m in items] + [
            {"id": i.id, "kind": None, "name": None, "created_at": None, "revision_from": None, "revision_to": None,
             "direction": None, "complete": False, "total_bytes": None, "tables": [], "reason": i.reason}
            for i in incomplete
        ]  # fmt: skip
        click.echo(json.dumps(data, indent=2))
        return
    if not items:
        out.print(f"No backups in {project.config.backup_location}.")
    else:
        out.print(_table_of_backups(items))
    for i in incomplete:
        if i.removable:
            fate = "`alembic-safety prune` removes it"
        elif i.reason.startswith("in progress"):
            fate = "still being written"
        else:
            fate = "kept as evidence, prune leaves it: remove it by hand once read"
        out.print(f"[yellow]incomplete[/yellow] {i.id}: {i.reason} (not usable; {fate})", markup=True)


@main.command()
@click.argument("backup_id")
@click.option("--verify", "do_verify", is_flag=True, help="Re-read every data file and check its checksum.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def show(ctx: click.Context, backup_id: str, do_verify: bool, fmt: str) -> None:
    """Show one backup's manifest; with --verify, check its data (exit 1 on a mismatch)."""
    project = _project(ctx)
    if do_verify:
        manifest, results = lib.verify(project, backup_id)
    else:
        manifest, results = lib.show_backup(project, backup_id), []
    bad = [r for r in results if not r.ok]
    if fmt == "json":
        data = json.loads(manifest.to_json())
        if do_verify:
            data["verify"] = [{"table": r.table, "file": r.file, "ok": r.ok, "detail": r.detail} for r in results]
        click.echo(json.dumps(data, indent=2))
    else:
        out.print(f"[bold]{manifest.id}[/bold]  {manifest.kind}  created {manifest.created_at}")
        if manifest.direction:
            out.print(f"  {manifest.direction} {manifest.revision_from or 'base'} -> {manifest.revision_to or 'base'}")
        out.print(
            f"  {manifest.dialect} {manifest.database}  store={manifest.store}  "
            f"{manifest.hash_algorithm}/{manifest.compression}"
        )
        for t in manifest.tables:
            part = "all columns" if t.columns is None else f"columns {', '.join(t.columns)}"
            if t.where:
                part += f" where {t.where}"
            counted = f"{t.rows} rows" if t.rows >= 0 else "rows counted by the first --verify"
            out.print(f"  {t.key}: {part}; {counted}, {_human(t.bytes)} ({'; '.join(t.reasons)})", markup=False)
        for note in manifest.notes:
            out.print(f"  note: {note}", markup=False)
        for r in results:
            mark = "[green]ok[/green]" if r.ok else "[red]BAD[/red]"
            out.print(f"  verify {r.table} ({r.file}): {mark} {r.detail}")
    if bad:
        click.echo(f"alembic-safety: backup {manifest.id} failed verification ({len(bad)} problem(s))", err=True)
        sys.exit(1)


@main.command()
@click.option("--keep", type=click.IntRange(min=0), help="Complete backups to keep (default: the keep setting).")
@click.option("--dry-run", is_flag=True, help="List what would be removed.")
@click.pass_context
def prune(ctx: click.Context, keep: int | None, dry_run: bool) -> None:
    """Remove old complete backups beyond --keep and every interrupted one."""
    result = lib.prune(_project(ctx), keep, dry_run)
    verb = "would remove" if dry_run else "removed"
    for m in result.removed:
        out.print(f"{verb} {m.id} ({_human(m.total_bytes)})")
    for i in result.removed_incomplete:
        out.print(f"{verb} {i.id} ({i.reason})")
    if not result.removed and not result.removed_incomplete:
        out.print("Nothing to prune.")
    elif not dry_run:
        out.print(f"{_human(result.freed)} freed.")
    out.print(f"{result.kept} complete backup(s) kept.")


@main.command()
@click.argument("backup_id")
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path),
              help="Files store to copy into (default: backup_dir).")
@click.pass_context
def export(ctx: click.Context, backup_id: str, to: Path | None) -> None:
    """Copy an in-database backup into the files store (for off-site keeping), verified first."""
    manifest, path = lib.export_backup(_project(ctx), backup_id, to)
    out.print(f"Exported {manifest.id}: {len(manifest.tables)} table(s), {manifest.total_rows} rows, "
              f"{_human(manifest.total_bytes)} -> {path}", markup=False)


@main.command("import")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def import_(ctx: click.Context, folder: Path) -> None:
    """Bring an exported backup folder back into the database store, verified first."""
    manifest = lib.import_backup(_project(ctx), folder)
    out.print(f"Imported {manifest.id}: {len(manifest.tables)} table(s), {manifest.total_rows} rows.", markup=False)


# -- plan --------------------------------------------------------------------------------------
@main.command()
@click.argument("range_", metavar="[RANGE]", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--fail-on", type=click.Choice(["high", "medium", "never"]), default="never", show_default=True,
              help="Exit 1 when a finding at or above this severity is not allowed.")
@click.pass_context
def plan(ctx: click.Context, range_: str | None, fmt: str, fail_on: str) -> None:
    """What pending revisions (or RANGE, as 'from:to' or one revision) do, risk, snapshot, and
    how they roll back; changes nothing."""
    from .plan import analyse

    _no_empty("RANGE", (range_,))
    from .templating import render

    result = analyse(_project(ctx), range_)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif fmt == "markdown":
        click.echo(render("plan.md.j2", plan=result, human=_human, snapshot_summary=_snapshot_summary), nl=False)
    else:
        _print_plan(result)
    if result.fails(fail_on):
        click.echo(f"alembic-safety: a finding reaches --fail-on {fail_on}", err=True)
        sys.exit(1)


def _snapshot_summary(r: Any) -> str:
    if not r.snapshot:
        return "none"
    size = sum(s.bytes_estimate or 0 for s in r.snapshot)
    unknown = any(s.bytes_estimate is None for s in r.snapshot)
    return f"{len(r.snapshot)} table(s), {'?' if unknown else _human(size)}"


def _print_plan(result: Any) -> None:
    colour = {"high": "red", "medium": "yellow", "low": "cyan"}
    if not result.revisions:
        out.print("No revision to analyse: the database is at head.")
    summary = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("revision", "message", "worst", "reversible", "snapshot"):
        summary.add_column(col)
    for r in result.revisions:
        worst = f"[{colour[r.worst]}]{r.worst}[/]" if r.worst else "none"
        summary.add_row(r.revision, r.message, worst, r.reversible, _snapshot_summary(r))
    if result.revisions:
        out.print(summary)
    for r in result.revisions:
        out.print(f"\n[bold]{r.revision}[/bold] ", end="")
        out.print(r.message, markup=False)
        for op in r.operations:
            out.print(f"  {op}", markup=False)
        for f in r.findings:
            tag = f"allowed: {f.allowed}" if f.allowed else f.severity
            out.print(f"  [{colour[f.severity]}]{f.code}[/] ", end="")
            out.print(f"{f.name} ({tag}): {f.message}", markup=False)
        for s in r.snapshot:
            cols = ", ".join(s.columns) if s.columns is not None else "all columns"
            rows = "?" if s.rows_estimate is None else s.rows_estimate
            secs = "?" if s.seconds_estimate is None else f"{s.seconds_estimate} s"
            out.print(f"  snapshot {s.table} ({cols}{' where ' + s.where if s.where else ''}): ~{rows} rows, "
                      f"{_human(s.bytes_estimate)}, {secs}{' — ' + s.note if s.note else ''}", markup=False)
        out.print(f"  reversible: {r.reversible}; rollback: " + " → ".join(
            f"{st.order}. {st.kind}{'!' if st.critical else ''}" for st in r.rollback_steps), markup=False)
    if result.unknown_facts:
        out.print("\n[bold]not known[/bold]")
        for u in result.unknown_facts:
            out.print(f"  - {u}", markup=False)


# -- status ------------------------------------------------------------------------------------
# -- generate ----------------------------------------------------------------------------------
@main.command()
@click.argument("revisions", nargs=-1, metavar="[REV ...]")
@click.option("--url", metavar="SCRATCH_URL",
              help="Server for a temporary scratch database (PostgreSQL/MySQL); default: scratch_url, or a "
                   "temporary SQLite file for SQLite projects.")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 naming every revision whose downgrade is missing or stale.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def generate(ctx: click.Context, revisions: tuple[str, ...], url: str | None, check_only: bool, show_diff: bool,
             fmt: str) -> None:  # fmt: skip
    """Write the missing downgrade() bodies (missing, pass, only raising, or generated and now
    stale) of all revisions, or of REV ...; a hand-edited generated block is never overwritten."""
    _no_empty("REV", revisions)
    from .reverse import generate as gen

    project = _project(ctx)
    if check_only and show_diff:
        _fail("--check and --diff exclude each other")
    if check_only:
        results = gen.check(project, revisions)
    else:
        with err.status("replaying the history on a scratch database ...") as spinner:
            results = gen.generate(project, revisions, url=url, write=not show_diff,
                                   progress=lambda rev: spinner.update(f"reversing {rev} ..."))  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        if show_diff:
            for r in results:
                if r.diff:
                    click.echo(r.diff, nl=False)
        if not results:
            out.print("every downgrade is present and current")
        marks = {"written": "[green]written[/green]", "would-write": "[yellow]would write[/yellow]",
                 "unchanged": "unchanged", "left-alone": "[yellow]left alone[/yellow]",
                 "needs-work": "[red]missing or stale[/red]", "ok": "ok"}  # fmt: skip
        target = err if show_diff else out
        for r in results:
            target.print(f"{r.revision}  {marks[r.action]}  {r.detail}  ({r.path})", markup=True)
            for m in r.manual:
                target.print(f"    MANUAL: {m}", markup=False)
            for m in r.irreversible:
                target.print(f"    IRREVERSIBLE: {m}", markup=False)
    if check_only and any(r.problem for r in results):
        names = ", ".join(r.revision for r in results if r.problem)
        click.echo(f"alembic-safety: downgrades missing or stale: {names}; run 'alembic-safety generate'", err=True)
        sys.exit(1)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of printing it.")
@click.option("--events", "n_events", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the latest audit events to include.")
@click.pass_context
def status(ctx: click.Context, fmt: str, out_file: Path | None, n_events: int) -> None:
    """The status report: current and head revisions, pending revisions and their highest risk,
    backups, the last health result, recent events and the recommended next steps."""
    from .report import render_status, status_report

    project = _project(ctx)
    report = status_report(project, n_events=n_events)
    if fmt == "json":
        text = json.dumps(report.as_dict(), indent=2, default=str) + "\n"
    else:
        text = render_status(project, report, fmt)
    text = redact_text(text)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text, encoding="utf-8")
        out.print(f"status report written to {out_file}", markup=False)
    else:
        click.echo(text, nl=False)
    if report.status.database_error:
        _fail(report.status.database_error)


# -- health / monitor ----------------------------------------------------------------------------
@main.command()
@click.option("--scope", type=click.Choice(["step", "full"]), default="full", show_default=True,
              help="full: every check; step: only the cheap per-step checks, on every table.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def health(ctx: click.Context, scope: str, fmt: str) -> None:
    """Integrity checks over the whole database plus operational facts; exit 1 on an error finding."""
    from .health import health as run_health
    from .health import record_health

    project = _project(ctx)
    report = run_health(project, scope)
    record_health(project, report)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _print_health(report)
    if report.exit_code:
        sys.exit(report.exit_code)


def _print_health(report: Any) -> None:
    colour = {"healthy": "green", "degraded": "yellow", "failed": "red"}[report.status]
    out.print(f"[bold]health[/bold] [{colour}]{report.status}[/]  checked at {report.checked_at}")
    dbs = report.facts.get("databases") or [report.facts]
    for f in dbs:
        out.print(f"  {f['database']}  current {', '.join(f['current']) or 'base'}  heads {', '.join(f['heads'])}  "
                  f"latency {f['latency_ms']} ms  checks {', '.join(f['checks']['ran'])} in {f['checks']['seconds']} s",
                  markup=False)  # fmt: skip
        for p in f["probes"]:
            size = next((t["bytes"] for t in f["tables"] if t["table"] == p["table"]), None)
            out.print(f"  table {p['table']}: ~{p['rows_estimate'] if p['rows_estimate'] is not None else '?'} rows, "
                      f"{_human(size)}, probe " + (f"{p['ms']} ms" if p["error"] is None else f"failed: {p['error']}"),
                      markup=False)  # fmt: skip
        for key, label in (("long_transactions", "long transaction"), ("blocked_locks", "blocked")):
            for item in f.get(key) or []:
                out.print(f"  {label}: session {item['pid']}, {item['seconds']} s: {item.get('query') or ''}",
                          markup=False)  # fmt: skip
    for finding in report.findings:
        tag = "red" if finding.severity == "error" else "yellow"
        out.print(f"  [{tag}]{finding.severity}[/] ", end="")
        out.print(finding.one_line(), markup=False)
    if not report.findings:
        out.print("  no problem found")


@main.command()
@click.option("--interval", type=click.FloatRange(min=0), default=5.0, show_default=True, metavar="MINUTES",
              help="Minutes between rounds.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N rounds (default: until stopped).")
@click.option("--scope", type=click.Choice(["step", "full"]), default="full", show_default=True)
@click.pass_context
def monitor(ctx: click.Context, interval: float, count: int | None, scope: str) -> None:
    """Repeat health: one status line per round, details when findings change; each round goes to
    the audit log.  Stops on Ctrl-C/SIGTERM; exits with the worst status seen."""
    import signal
    import threading

    from .health import monitor as run_monitor

    project = _project(ctx)
    stop = threading.Event()
    stopped_by: list[str] = []

    def on_signal(signum: int, frame: Any) -> None:
        stopped_by.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    worst = 0
    try:
        for rnd in run_monitor(project, interval, count, stop, scope):
            worst = max(worst, rnd.exit_code)
            if rnd.report is None:
                out.print(f"{rnd.checked_at}  round {rnd.number}  [red]unreachable[/]  ", end="")
                out.print(rnd.error or "", markup=False)
                continue
            r = rnd.report
            errors = sum(1 for f in r.findings if f.severity == "error")
            facts = r.facts.get("databases", [r.facts])[0]
            colour = {"healthy": "green", "degraded": "yellow", "failed": "red"}[r.status]
            out.print(f"{rnd.checked_at}  round {rnd.number}  [{colour}]{r.status}[/]  {errors} error(s), "
                      f"{len(r.findings) - errors} warning(s)  latency {facts['latency_ms']} ms")  # fmt: skip
            for f in rnd.new:
                out.print(f"  + {f.severity} ", end="")
                out.print(f.one_line(), markup=False)
            for f in rnd.resolved:
                out.print("  - resolved ", end="")
                out.print(f.one_line(), markup=False)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stopped_by:
        out.print(f"stopped ({stopped_by[0]}); worst exit status {worst}")
    if worst:
        sys.exit(worst)


# -- rollback ----------------------------------------------------------------------------------
@main.command()
@click.argument("backup_id")
@click.option("--mode", type=click.Choice(["merge", "replace"]), default="merge", show_default=True,
              help="merge: put back what the revisions destroyed, keep what was written since; replace: the "
                   "snapshotted tables and columns end exactly as in the backup.")
@click.option("--dry-run", is_flag=True, help="Print the plan (and its confirmation code); change nothing.")
@click.option("--execute-in-transaction", is_flag=True,
              help="With --dry-run, PostgreSQL only: run every step in one transaction, report what happened "
                   "(rows restored, checks, comparison with the backup), then roll it all back.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--confirm", "confirm_code", metavar="CODE",
              help="The confirmation code the plan shows (required without a terminal).")
@click.pass_context
def rollback(ctx: click.Context, backup_id: str, mode: str, dry_run: bool, execute_in_transaction: bool, fmt: str,
             confirm_code: str | None) -> None:  # fmt: skip
    """Downgrade to the state before BACKUP_ID's revision and bring its data back (plan first:
    --dry-run shows every step, what data is kept or lost, and the confirmation code)."""
    from .errors import ConfirmationRequired
    from .rollback import execute_rollback, plan_rollback, rehearse_rollback

    if execute_in_transaction and not dry_run:
        _fail("--execute-in-transaction is a kind of --dry-run: pass both (nothing is changed)")
    project = _project(ctx)
    plan = plan_rollback(project, backup_id, mode)
    def show_plan() -> None:
        out.print(f"[bold]Rollback plan[/bold] for backup {plan.backup_id} ({plan.mode})", markup=True)
        out.print(f"  database {plan.database}: {'+'.join(plan.current)} -> {plan.target or 'base'}, revisions "
                  + ", ".join(r.revision + ("" if r.backup_id else " (no backup)") for r in plan.revisions)
                  + " (newest first)", markup=False)  # fmt: skip
        one = "PostgreSQL: steps 2-6 run in one transaction; any failure leaves the database as it is now"
        out.print("  " + (one if plan.transactional else "not one transaction here: the rollback stops at the "
                          "first failure"), markup=False)  # fmt: skip
        for st in plan.steps:
            out.print(f"  {st.order}. {st.action}" + (" [critical]" if st.critical else "") + f" (~{st.seconds} s)",
                      markup=False)  # fmt: skip
        out.print("  data:", markup=False)
        for d in plan.data:
            out.print(f"    {d.effect:<8} {d.table}: {d.detail}", markup=False)
        for n in plan.notes:
            out.print(f"  note: {n}", markup=False)
        out.print(f"  estimated time: {plan.estimated_seconds} s", markup=False)
        out.print(f"  confirmation code: [bold]{plan.confirmation_code}[/bold]")

    if dry_run and execute_in_transaction:
        if not plan.transactional:
            _fail(f"--dry-run --execute-in-transaction needs transactional DDL (PostgreSQL); {plan.dialect} "
                  "commits DDL as it runs, so it could not be undone: use --dry-run alone")
        if fmt == "text":
            show_plan()
        rehearsed = rehearse_rollback(project, plan)
        if fmt == "json":
            out.print_json(json.dumps(rehearsed.as_dict(), default=str))
        else:
            _print_rollback_result(rehearsed)
        if not rehearsed.ok:
            sys.exit(1)
        return
    if dry_run:
        if fmt == "json":
            out.print_json(json.dumps(plan.as_dict()))
        else:
            show_plan()
            out.print("(dry run: nothing changed)")
        return
    if confirm_code is None:
        if not sys.stdin.isatty():
            _fail(str(ConfirmationRequired(
                f"no terminal and no --confirm: nothing was changed; run 'alembic-safety rollback {plan.backup_id} "
                "--dry-run' to see the plan and its code, then pass --confirm CODE")))
        show_plan()
        if not click.confirm("Do you understand what data is lost and what is kept (above)?", default=False):
            _fail("rollback cancelled: nothing was changed")
        if not click.confirm(f"Roll the database back to {plan.target or 'base'} now?", default=False):
            _fail("rollback cancelled: nothing was changed")
        confirm_code = str(click.prompt("Type the confirmation code shown in the plan", default="", show_default=False))
    elif fmt == "text":
        show_plan()
    result = execute_rollback(project, plan, confirm_code)
    if fmt == "json":
        out.print_json(json.dumps(result.as_dict(), default=str))
    else:
        _print_rollback_result(result)
    if not result.ok:
        sys.exit(1)


def _print_rollback_result(result: Any) -> None:
    if result.dry_run:
        status = "[green]would succeed[/green]" if result.ok else "[red]would end with problems[/red]"
        out.print(f"\ndry run in one transaction: the rollback {status}; it would leave the database at "
                  f"{result.revision or 'base'} ({result.seconds:.2f} s)")  # fmt: skip
    else:
        status = "[green]done[/green]" if result.ok else "[red]done, with problems[/red]"
        out.print(f"\nrollback {status}: the database is at {result.revision or 'base'} ({result.seconds:.2f} s)")
        out.print(f"pre-rollback backup: {result.pre_rollback_id or 'none'}", markup=False)
    for step in result.steps:
        out.print(f"  {step.order}. {step.kind}: {step.action} ({step.seconds} s)"
                  + (f" — {step.detail}" if step.detail else ""), markup=False)  # fmt: skip
    for c in result.converged:
        out.print(f"  converged: {c}", markup=False)
    for d in result.differences:
        out.print(f"  [yellow]still differs[/yellow]: {d}")
    for t in result.tables:
        mark = "ok" if t.ok else "MISMATCH"
        counts = f"{t.inserted} inserted, {t.updated} updated, {t.deleted} deleted; " if result.dry_run else ""
        out.print(f"  {t.table}: {t.how}, {counts}{t.detail} [{mark}]", markup=False)
    for f in result.findings:
        out.print(f"  {f.severity} ", end="")
        out.print(f.one_line(), markup=False)
    if result.dry_run:
        out.print("(dry run: every change was rolled back; nothing changed)")
    else:
        out.print(f"incident report: {result.report_path}", markup=False)


# -- docs / emergency --------------------------------------------------------------------------
@main.command()
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the runbooks (default: rollback/ beside the versions folder).")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 listing every missing, stale or extra file (for CI).")
@click.pass_context
def docs(ctx: click.Context, folder: Path | None, check_only: bool) -> None:
    """Write a rollback runbook per revision (<revision>_<slug>_rollback.md) and
    EMERGENCY_ROLLBACK_PLAN.md; deterministic, so they diff cleanly in review."""
    from .runbook import check_docs, write_docs

    project = _project(ctx)
    if check_only:
        result = check_docs(project, folder)
        if result.ok:
            out.print(f"the runbooks in {result.folder} are current", markup=False)
            return
        for what, names in (("missing", result.missing), ("stale", result.stale), ("extra", result.extra)):
            for name in names:
                click.echo(f"{what}: {result.folder / name}")
        click.echo(f"alembic-safety: the runbooks in {result.folder} are not current; run 'alembic-safety docs'",
                   err=True)  # fmt: skip
        sys.exit(1)
    written = write_docs(project, folder)
    for name in written.written:
        out.print(f"written   {written.folder / name}", markup=False)
    for name in written.removed:
        out.print(f"removed   {written.folder / name} (its revision is gone)", markup=False)
    out.print(f"{len(written.written)} written, {len(written.unchanged)} unchanged, {len(written.removed)} removed "
              f"in {written.folder}", markup=False)  # fmt: skip


@main.command()
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the plan to this file instead of printing it.")
@click.pass_context
def emergency(ctx: click.Context, out_file: Path | None) -> None:
    """The emergency rollback plan for this project: incident steps with its real commands, the
    current head and the newest backups."""
    from .runbook import render_emergency

    text = redact_text(render_emergency(_project(ctx)))
    if out_file is None:
        click.echo(text, nl=False)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text, encoding="utf-8")
    out.print(f"emergency plan written to {out_file}", markup=False)


# -- verify ------------------------------------------------------------------------------------
@main.command()
@click.argument("range_", metavar="[RANGE]", required=False)
@click.option("--url", metavar="SCRATCH_URL",
              help="Server for a temporary scratch database (never the project's own); default: scratch_url, or "
                   "a temporary SQLite file for SQLite projects.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--seed-rows", type=click.IntRange(min=0), default=10, show_default=True,
              help="Generated rows per table before each revision.")
@click.option("--verbose", is_flag=True, help="Show the time each revision took.")
@click.pass_context
def verify(ctx: click.Context, range_: str | None, url: str | None, fmt: str, seed_rows: int, verbose: bool) -> None:
    """Round-trip every revision (or RANGE) on a scratch database: upgrade with snapshots, downgrade,
    compare schema and data, restore through rollback, upgrade again; exit 1 on any failure."""
    from . import verify as lib_verify

    _no_empty("RANGE", (range_,))

    with err.status("verifying on a scratch database ...") as spinner:
        def progress(v: Any) -> None:
            if verbose:
                err.print(f"{v.revision}  {v.verdict}  {v.seconds:.2f}s", markup=False)
            spinner.update(f"verified {v.revision} ...")

        report = lib_verify.verify(_project(ctx), range_, url=url, seed_rows=seed_rows, progress=progress)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    elif fmt == "markdown":
        click.echo(lib_verify.render_markdown(report, verbose), nl=False)
    else:
        click.echo(lib_verify.render_text(report, verbose), nl=False)
    if report.failed:
        failed = ", ".join(r.revision for r in report.revisions if r.failed)
        click.echo(f"alembic-safety: revisions that cannot be undone cleanly: {failed}", err=True)
        sys.exit(1)


# -- sql-rollback ------------------------------------------------------------------------------
@main.command("sql-rollback")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 listing every missing or stale rollback file (for CI).")
@click.option("--scratch-url", metavar="URL",
              help="Replay the folder in one rolled-back transaction on this PostgreSQL database (where the "
                   "folder starts from) to read the exact state before each file; nothing is kept there.")
@click.option("--emergency", is_flag=True, help="Also write EMERGENCY_ROLLBACK_PLAN.md for the folder.")
@click.option("--apply", "target", metavar="TARGET",
              help="Run the rollback scripts of every migration newer than TARGET (a version, a file name or "
                   "'base'), newest first, in one transaction on --url, after a backup of the tables they touch.")
@click.option("--url", metavar="URL", help="With --apply: the database to roll back.")
@click.option("--dry-run", is_flag=True, help="With --apply: print the plan and its confirmation code; change nothing.")
@click.option("--confirm", "confirm_code", metavar="CODE",
              help="With --apply: the confirmation code the plan shows (required without a terminal).")
@click.option("--backup-dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --apply: where the pre-rollback backup and the audit log go [default: backups/ beside "
                   "FOLDER, or ALEMBIC_SAFETY_BACKUP_DIR].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="With --apply: the plan and the result as text or JSON.")
def sql_rollback(folder: Path, check_only: bool, scratch_url: str | None, emergency: bool, target: str | None,
                 url: str | None, dry_run: bool, confirm_code: str | None, backup_dir: Path | None,
                 fmt: str) -> None:  # fmt: skip
    """Write NNNN_name_rollback.sql and NNNN_name_rollback.md for every raw SQL migration
    NNNN_name.sql in FOLDER (no database needed); hand-edited rollback files are left alone.
    With --apply TARGET --url URL, run them on a database instead."""
    if target is not None:
        if check_only or emergency or scratch_url:
            _fail("--apply runs the rollback scripts: it does not take --check, --emergency or --scratch-url")
        if not url:
            _fail("--apply needs --url URL: the database to roll back")
        _sql_rollback_apply(folder, target, url, dry_run, confirm_code, backup_dir, fmt)
        return
    for flag, given in (("--url", url), ("--dry-run", dry_run), ("--confirm", confirm_code),
                        ("--backup-dir", backup_dir)):  # fmt: skip
        if given:
            _fail(f"{flag} goes with --apply TARGET")
    from .sqlrollback import forward_files, sync_emergency_plan, sync_folder

    states = None
    if scratch_url:
        from .sqlrollback.replay import replay_states

        states = replay_states(scratch_url, forward_files(folder))
    result = sync_folder(folder, check=check_only, states=states)
    if emergency:
        sync_emergency_plan(folder, result, check=check_only)
    for path in result.edited:
        note = "its migration changed since: review it by hand" if path in result.stale else "left alone"
        click.echo(f"edited: {path} (edited by hand; {note})")
    if check_only:
        for what, paths in (("missing", result.missing), ("stale", result.stale)):
            for path in paths:
                if path not in result.edited:
                    click.echo(f"{what}: {path}")
        if not result.ok:
            click.echo(f"alembic-safety: the rollback files in {folder} are not current; run "
                       f"'alembic-safety sql-rollback {folder}'", err=True)  # fmt: skip
            sys.exit(1)
        out.print(f"the rollback files in {folder} are current", markup=False)
        return
    for path in result.written:
        out.print(f"written   {path}", markup=False)
    out.print(f"{len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.edited)} edited by "
              f"hand in {folder}", markup=False)  # fmt: skip
    if any(p in result.stale for p in result.edited):
        sys.exit(1)


def _sql_rollback_apply(folder: Path, target: str, url: str, dry_run: bool, confirm_code: str | None,
                        backup_dir: Path | None, fmt: str) -> None:  # fmt: skip
    from .config import load_config
    from .sqlrollback.apply import apply_plan, plan_apply

    plan = plan_apply(folder, url, target)

    def show_plan() -> None:
        out.print(f"[bold]sql-rollback plan[/bold] for {plan.folder}", markup=True)
        out.print(f"  database {plan.database}: roll back to {plan.target}, {len(plan.steps)} migration(s), newest "
                  "first, in one transaction", markup=False)  # fmt: skip
        for step in plan.steps:
            extra = f" ({step.note})" if step.note else ""
            out.print(f"  {step.version}  {step.script.name}: {len(step.statements)} statement(s){extra}", markup=False)
            for line in step.manual:
                out.print(f"      MANUAL: {line}", markup=False)
        tables = ", ".join(t.key for t in plan.tables) or "none (the scripts touch no existing table)"
        out.print(f"  backed up first: {tables}", markup=False)
        if plan.history:
            out.print("  history: their rows in supabase_migrations.schema_migrations are deleted in the same "
                      "transaction", markup=False)  # fmt: skip
        for note in plan.notes:
            out.print(f"  note: {note}", markup=False)
        out.print(f"  confirmation code: [bold]{plan.confirmation_code}[/bold]")

    if dry_run:
        if fmt == "json":
            out.print_json(json.dumps(plan.as_dict()))
        else:
            show_plan()
            for step in plan.steps:
                out.print(f"\n-- {step.script.name}", markup=False)
                for statement in step.statements:
                    out.print(f"{statement};", markup=False)
            out.print("(dry run: nothing changed)")
        return
    if not plan.steps:
        out.print(f"nothing to roll back: no applied migration of {folder} is newer than {plan.target}", markup=False)
        return
    if confirm_code is None:
        if not sys.stdin.isatty():
            _fail(f"no terminal and no --confirm: nothing was changed; run 'alembic-safety sql-rollback {folder} "
                  f"--apply {target} --url URL --dry-run' to see the plan and its code, then pass --confirm CODE")
        show_plan()
        if not click.confirm(f"Run these {len(plan.steps)} rollback script(s) now?", default=False):
            _fail("sql-rollback cancelled: nothing was changed")
        confirm_code = str(click.prompt("Type the confirmation code shown in the plan", default="", show_default=False))
    elif fmt == "text":
        show_plan()
    overrides = {"backup_dir": str(backup_dir.resolve())} if backup_dir is not None else None
    config = load_config({}, here=folder.resolve().parent, x_args=overrides)
    result = apply_plan(plan, url, config, confirm_code)
    if fmt == "json":
        out.print_json(json.dumps({"plan": plan.as_dict(), "backup_id": result.backup_id,
                                   "statements": result.statements, "ok": True}))  # fmt: skip
        return
    backup = f"; pre-rollback backup {result.backup_id} in {config.backup_dir}" if result.backup_id else ""
    out.print(f"rolled back to {plan.target}: {len(plan.steps)} script(s), {result.statements} statement(s) in one "
              f"transaction{backup}", markup=False)  # fmt: skip


# -- demo --------------------------------------------------------------------------------------
@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Build the demo project here (kept) instead of a temporary folder.")
def demo(directory: Path | None) -> None:
    """The whole story on an embedded SQLite: a destructive revision, snapshotted, verified, and
    rolled back with its data (checksum for checksum)."""
    from .demo import run_demo

    def tell(folder: Path) -> None:
        out.print(f"[bold]alembic-safety demo[/bold] in {folder}\n")
        out.print("1. A new Alembic project (`alembic init`) on SQLite, wired by `alembic-safety init`:")
        result = run_demo(folder)
        for c in result.wiring:
            added = [line[1:].strip() for line in c.diff().splitlines()
                     if line.startswith("+") and not line.startswith("+++") and line[1:].strip()]
            out.print(f"   {c.path.name}: + " + "; + ".join(a for a in added if not a.startswith("#")), markup=False)
        out.print("\n2. `alembic upgrade head` ran three revisions; alembic-safety said:")
        for line in result.alembic_output.splitlines():
            if "alembic.safety" in line or "Running upgrade" in line:
                out.print(f"   {line.strip()}", markup=False)
        out.print("\n3. Backups now on disk:")
        out.print(_table_of_backups(result.backups))
        r = result.risky
        out.print(f"\n4. The risky revision {r.revision_to} ({r.name}) destroyed:")
        for what, n in result.lost.items():
            out.print(f"   - {what}: {n} value(s)/row(s)")
        out.print(f"   Before it ran, backup {r.id} copied:")
        for t in r.tables:
            part = "all columns" if t.columns is None else f"columns {', '.join(t.columns)}"
            if t.where:
                part += f" where {t.where}"
            out.print(f"   - {t.key} ({part}): {t.rows} rows", markup=False)
        ok = all(v.ok for v in result.verified)
        out.print(f"\n5. `alembic-safety show {r.id} --verify`: "
                  + ("[green]every checksum matches[/green]" if ok else "[red]CHECKSUM MISMATCH[/red]"))
        out.print("   The phone numbers read back from the snapshot equal the destroyed ones: "
                  + ("[green]yes[/green]" if result.digest_match else "[red]NO[/red]"))
        rb = result.rollback
        out.print(f"\n6. `alembic-safety rollback {r.id} --confirm {rb.plan.confirmation_code}` "
                  f"({rb.plan.mode}): the database is at {rb.revision or 'base'} again "
                  + ("[green]ok[/green]" if rb.ok else "[red]with problems[/red]"))
        for change in rb.converged:
            out.print(f"   converged: {change}", markup=False)
        for outcome in rb.tables:
            out.print(f"   {outcome.table}: {outcome.how}, {outcome.detail}", markup=False)
        out.print("   Checksums (sha256 of each table's rows in primary-key order), before the risky revision "
                  "and after the rollback:")
        for table, was in result.before.items():
            now = result.after.get(table)
            same = now == was
            out.print(f"   - {table}: {was.rows} rows {was.sha256[:16]}… before, "
                      + (f"{now.rows} rows {now.sha256[:16]}… after: " if now else "missing after: ")
                      + ("[green]same[/green]" if same else "[red]DIFFERENT[/red]"))
        out.print("   The data is back, checksum for checksum: "
                  + ("[green]yes[/green]" if result.data_back else "[red]NO[/red]"))
        out.print("\nIn plain words: the revision dropped a column, deleted rows and dropped a table; every value "
                  "it destroyed was in a checksummed backup that names the revision, and `rollback` put it all back.")
        if not (ok and result.digest_match):
            _fail("the demo's backup did not verify", 1)
        if not (rb.ok and result.data_back):
            _fail("the demo's rollback did not bring the data back checksum for checksum", 1)

    if directory is not None:
        tell(directory)
    else:
        with tempfile.TemporaryDirectory(prefix="alembic-safety-demo-") as tmp:
            tell(Path(tmp))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI in-process (tests); returns the exit code."""
    try:
        main.main(args=argv, prog_name="alembic-safety", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


