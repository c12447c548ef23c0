"""Benchmark: what the alembic-safety hooks add to ``alembic upgrade head`` of a long history.

Run from the repository root::

    .venv/bin/python bench/hooks_overhead.py [--revisions 100] [--rounds 5] [--history mixed|create] [--keep]
        [--url postgresql://postgres@127.0.0.1:5432/alembic_safety_bench_hooks]

It generates one Alembic project (``alembic init``, generic template) with ``--revisions``
revisions in one chain: each creates an empty table; in the default ``mixed`` history every 10th
also adds a column to an earlier table and every 25th drops an earlier (empty) table, which takes a
backup (``--history create``: only the empty tables, the issue's literal case).  Two copies of it
differ only in env.py and alembic.ini: ``wired`` is what ``alembic-safety init`` makes of it (the
``alembic_safety.install(context)`` line and the ``[alembic_safety]`` section with its defaults),
``plain`` is untouched.

Each round, in rotating order, each copy runs ``alembic upgrade head`` on a fresh database
(created, marked by a comment, and dropped by this script; it refuses any other), and the
process's wall time is taken.  It prints the medians, the ratio wired / plain (target <= 1.2)
with PASS/MISS, the hooks' own time from the audit log (the sum of the steps' ``seconds``) and
a Markdown row for the README.  A measurement, not a test: it exits 0 whether the target is met
or missed (1 if a tool fails, 2 on setup errors).  ``--profile FILE`` runs one more, untimed,
wired upgrade under cProfile and writes the stats there (read them with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from restore import SetupError, create_db, drop_db
from restore import server_url as restore_server_url
from snapshot import _audit_events, _audit_size, _tool_env, run_measured, with_driver

DEFAULT_DB = "alembic_safety_bench_hooks"
MARK = "alembic_safety bench database: bench/hooks_overhead.py drops it at will"
RATIO_TARGET = 1.2


class ToolFailed(Exception):
    """A tool failed (exit 1)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--revisions", type=int, default=100, help="revisions in the history (default 100)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per side (default 5); medians reported")
    p.add_argument("--url", help=f"server and bench database, e.g. postgresql://postgres@127.0.0.1:5432/{DEFAULT_DB}")
    p.add_argument("--driver", default="psycopg2", help="SQLAlchemy driver (default psycopg2)")
    p.add_argument("--workdir", help="parent folder of the temporary projects (default: system temp)")
    p.add_argument("--profile", type=Path, help="also profile one wired upgrade (cProfile) into this file")
    p.add_argument("--split", action="store_true",
                   help="also time the wired project with -x checks=off (what the step checks cost)")
    p.add_argument("--keep", action="store_true", help="keep the folder (the database is always dropped)")
    p.add_argument("--history", choices=("mixed", "create"), default="mixed",
                   help="mixed (default): every 10th revision also adds a column, every 25th drops a table; "
                        "create: every revision only creates an empty table")
    args = p.parse_args(argv)
    if args.revisions < 1 or args.rounds < 1:
        p.error("--revisions and --rounds must be at least 1")
    return args


def server_url(args: argparse.Namespace) -> sa.URL:
    return restore_server_url(args, DEFAULT_DB)


# -- the history -----------------------------------------------------------------------------------
def revision_body(n: int, history: str = "mixed") -> list[str]:
    """Revision ``n`` (1-based): a new empty table; in the ``mixed`` history every 10th also adds a
    column to the table made 5 revisions earlier, every 25th drops the table made 20 revisions
    earlier (a backup: the drop becomes a move)."""
    lines = [
        f"op.create_table('t_{n:04d}', sa.Column('id', sa.Integer, primary_key=True), "
        "sa.Column('name', sa.Text, nullable=False), sa.Column('created_at', sa.DateTime(timezone=True)))"
    ]
    if history == "create":
        return lines
    if n % 10 == 0 and n > 5:
        lines.append(f"op.add_column('t_{n - 5:04d}', sa.Column('extra', sa.Integer))")
    if n % 25 == 0 and n > 20:
        lines.append(f"op.drop_table('t_{n - 20:04d}')")
    return lines


def write_history(versions: Path, count: int, history: str = "mixed") -> None:
    for n in range(1, count + 1):
        rev, down = f"r{n:04d}", (f"r{n - 1:04d}" if n > 1 else None)
        body = "\n    ".join(revision_body(n, history))
        (versions / f"{rev}.py").write_text(
            f'"""revision {n}\n\nRevision ID: {rev}\nRevises: {down or ""}\n"""\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n    {body}\n\n\ndef downgrade():\n    pass\n",
            encoding="utf-8",
        )


def make_project(folder: Path, url: sa.URL, driver: str, count: int, *, wired: bool, history: str = "mixed") -> Path:
    """``alembic init`` (generic), the history, and for ``wired`` what ``alembic-safety init`` adds."""
    from alembic import command
    from alembic.config import Config

    from alembic_safety.wiring import apply_changes, plan_init

    folder.mkdir(parents=True)
    ini = folder / "alembic.ini"
    with contextlib.redirect_stdout(io.StringIO()):
        command.init(Config(str(ini)), str(folder / "migrations"), template="generic")
    if wired:
        apply_changes([c for c in plan_init(ini, folder / "migrations" / "env.py") if c.changed])
    parser = configparser.RawConfigParser()
    parser.read(ini, encoding="utf-8")
    parser.set("alembic", "sqlalchemy.url",
               with_driver(url, driver).render_as_string(hide_password=False).replace("%", "%%"))  # fmt: skip
    if wired:
        parser.set("alembic_safety", "backup_dir", str(folder / "backups").replace("%", "%%"))
    with ini.open("w", encoding="utf-8") as fh:
        parser.write(fh)
    write_history(folder / "migrations" / "versions", count, history)
    return ini


# -- measuring -------------------------------------------------------------------------------------
@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)  # wired: sum of revision_applied seconds
    backups: list[int] = field(default_factory=list)  # wired: backups taken per upgrade

    @staticmethod
    def med(values: list[float]) -> float:
        return float(statistics.median(values)) if values else float("nan")


def upgrade(alembic_exe: str, ini: Path, url: sa.URL, series: Series, *, wired: bool,
            x_args: tuple[str, ...] = ()) -> None:  # fmt: skip
    """``alembic [-x ...] upgrade head`` on a fresh database."""
    create_db(url, MARK)
    try:
        folder = ini.parent
        offset = _audit_size(folder)
        x = [a for pair in x_args for a in ("-x", pair)]
        run = run_measured([alembic_exe, "-c", str(ini), *x, "upgrade", "head"], _tool_env(folder), folder,
                           python_tool="alembic")  # fmt: skip
        if run.code != 0:
            raise ToolFailed(f"alembic upgrade head exited {run.code}: {(run.stderr or run.stdout).strip()[-2000:]}")
        series.seconds.append(run.seconds)
        if wired:
            events = _audit_events(folder, offset)
            series.steps.append(sum(float(str(e["seconds"])) for e in events if e.get("event") == "revision_applied"))
            series.backups.append(sum(1 for e in events if e.get("event") == "backup_completed"))
    finally:
        drop_db(url, MARK)


def profile(alembic_exe: str, ini: Path, url: sa.URL, out: Path) -> None:
    create_db(url, MARK)
    try:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(out.resolve()), alembic_exe, "-c", str(ini), "upgrade",
               "head"]  # fmt: skip
        proc = subprocess.run(cmd, env=_tool_env(ini.parent), cwd=ini.parent, capture_output=True, text=True,
                              check=False)  # fmt: skip
        if proc.returncode != 0:
            raise ToolFailed(f"profiled upgrade exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    finally:
        drop_db(url, MARK)


@dataclass(frozen=True)
class Result:
    revisions: int
    rounds: int
    plain: float
    wired: float
    ratio: float
    steps: float  # median sum of the wired steps' own seconds
    backups: int
    plain_rounds: tuple[float, ...]
    wired_rounds: tuple[float, ...]
    no_checks: float | None = None  # wired with -x checks=off, when measured
    history: str = "mixed"

    @property
    def verdict(self) -> str:
        return "PASS" if self.ratio <= RATIO_TARGET else "MISS"

    def markdown(self) -> str:
        what = "creating empty tables" if self.history == "create" else "of empty tables, 4 drops, 9 added columns"
        return (f"| hooks on `alembic upgrade head`, {self.revisions} revisions {what} | {self.wired:.2f} s | "
                f"plain {self.plain:.2f} s | {self.ratio:.2f} | ≤ {RATIO_TARGET} | {self.verdict.lower()} |")


def measure(url: sa.URL, driver: str, revisions: int, rounds: int, workdir: str | None = None,
            keep: bool = False, profile_to: Path | None = None, split: bool = False,
            history: str = "mixed") -> Result:  # fmt: skip
    """Both projects, ``rounds`` fresh-database upgrades each (rotating which goes first), medians.
    ``split`` adds a third side, the wired project with ``-x checks=off`` (the snapshot hooks
    alone), to show what the step checks cost."""
    alembic_exe = str(Path(sys.executable).parent / "alembic")
    if not Path(alembic_exe).exists():
        alembic_exe = shutil.which("alembic") or alembic_exe
    folder = Path(tempfile.mkdtemp(prefix="alembic-safety-bench-hooks-", dir=workdir))
    try:
        inis = {wired: make_project(folder / ("wired" if wired else "plain"), url, driver, revisions, wired=wired,
                                    history=history)
                for wired in (True, False)}  # fmt: skip
        series = {True: Series(), False: Series()}
        no_checks = Series()
        sides: list[tuple[str, bool, tuple[str, ...], Series]] = [
            ("wired", True, (), series[True]), ("plain", False, (), series[False])]
        if split:
            sides.append(("wired, checks=off", True, ("checks=off",), no_checks))
        for _, wired, x_args, _ in sides:  # warm-up (bytecode caches, the server's catalogue), not reported
            upgrade(alembic_exe, inis[wired], url, Series(), wired=wired, x_args=x_args)
        for rnd in range(rounds):
            for label, wired, x_args, ser in sides[rnd % len(sides):] + sides[:rnd % len(sides)]:
                upgrade(alembic_exe, inis[wired], url, ser, wired=wired, x_args=x_args)
                print(f"round {rnd + 1}/{rounds}: {label:<18} {ser.seconds[-1]:6.2f} s", flush=True)
        if profile_to is not None:
            profile(alembic_exe, inis[True], url, profile_to)
        plain, wired_s = Series.med(series[False].seconds), Series.med(series[True].seconds)
        return Result(revisions, rounds, plain, wired_s, wired_s / plain, Series.med(series[True].steps),
                      int(statistics.median(series[True].backups)), tuple(series[False].seconds),
                      tuple(series[True].seconds), Series.med(no_checks.seconds) if split else None,
                      history)  # fmt: skip
    finally:
        if keep:
            print(f"kept: folder {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def report(result: Result) -> None:
    print()
    print("=" * 96)
    print(f"hooks overhead: `alembic upgrade head` of {result.revisions} revisions ({result.history} history) on a "
          f"fresh PostgreSQL database, median of {result.rounds}")  # fmt: skip
    for label, median, values in (("plain (no alembic-safety)  ", result.plain, result.plain_rounds),
                                  ("wired (alembic-safety init)", result.wired, result.wired_rounds)):
        print(f"  {label} {median:7.2f} s  (rounds: {', '.join(f'{x:.2f}' for x in values)})")
    if result.no_checks is not None:
        ratio = result.no_checks / result.plain
        print(f"  wired, -x checks=off         {result.no_checks:7.2f} s  (ratio {ratio:.2f}: "
              "the snapshot hooks without the step checks)")  # fmt: skip
    print(f"  inside the wired run: the steps' own seconds sum to {result.steps:.2f} s; {result.backups} backups")
    print(f"  ratio {result.ratio:.2f}, target <= {RATIO_TARGET}: {result.verdict}")
    print("=" * 96)
    print()
    print("markdown:")
    print()
    print(result.markdown())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = server_url(args)
    except SetupError as exc:
        print(f"bench/hooks_overhead.py: {exc}", file=sys.stderr)
        return 2
    loads = os.getloadavg()
    print(f"load average at start: {'/'.join(f'{x:.2f}' for x in loads)}")
    try:
        result = measure(url, args.driver, args.revisions, args.rounds, args.workdir, args.keep, args.profile,
                         args.split, args.history)
    except sa.exc.OperationalError as exc:
        print(f"bench/hooks_overhead.py: cannot reach PostgreSQL: {str(exc.orig).strip()}", file=sys.stderr)
        return 2
    except SetupError as exc:
        print(f"bench/hooks_overhead.py: {exc}", file=sys.stderr)
        return 2
    except ToolFailed as exc:
        print(f"bench/hooks_overhead.py: {exc}", file=sys.stderr)
        return 1
    report(result)
    print(f"load average at end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
