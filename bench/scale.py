"""Benchmark: every ratio of the README's Performance section at several table sizes, in one run.

Run from the repository root::

    .venv/bin/python bench/scale.py [--sizes 100000,1000000,5000000] [--rounds 1]
        [--parallel-tables 2] [--driver psycopg2] [--host 127.0.0.1 --port 5432 --user postgres]

For each size it runs, each against its reference in the same run (the code is that of the
single-size benchmarks, imported from them):

snapshot (bench/snapshot.py)
    ``alembic-safety backup --tables public.bench_rows`` with ``store = files`` (COPY binary ->
    sha256 -> zstd -> fsync) against ``pg_dump -Fc -t public.bench_rows``; process wall times and
    peak RSS.  Target: ratio <= 0.5, peak RSS < 150 MB.
parallel snapshot
    ``alembic-safety backup`` of ``--parallel-tables`` tables of that size at once, with
    ``parallel_snapshot_workers = 1`` (one table after the other) and with the default workers and
    ``parallel_snapshot_min_rows`` at the size (one connection per table, sharing one exported
    snapshot); the ratio parallel / serial is the speed-up.  No target: on 2 cores it is bounded
    by the server's and the compressor's CPU.
restore (bench/restore.py)
    the ``restore-data`` step of ``alembic-safety rollback <id> --mode replace`` of a table emptied
    by ``DELETE FROM big`` against ``pg_restore --data-only -t big``; peak RSS of the rollback
    process.  Target: ratio <= 0.25.
step checks (bench/checks.py)
    the before-step count and the step checks of an ``add_column`` + ``NOT VALID`` foreign key
    step on ``orders`` of that size against one anti-join scan.  Target: ratio <= 1.5.

Each part creates its own database (marked by a comment; the parts refuse a database that is not
theirs) and drops it when done, so at most one size's tables exist at a time (5,000,000 rows: about
1 GB per table; check ``df -h`` first).  It prints one table of ratios with the targets and a
Markdown version for the README; exit 0 whether targets are met or missed, 1 if a tool fails or a
restore is wrong, 2 on setup errors.  On 2 cores a run of all three sizes takes 15-25 minutes.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import checks as checks_bench
import restore as restore_bench
import snapshot as snapshot_bench
import sqlalchemy as sa

from alembic_safety.config import SafetyConfig

SIZES = (100_000, 1_000_000, 5_000_000)
DBS = {"snapshot": "alembic_safety_bench_scale", "restore": "alembic_safety_bench_scale_restore",
       "checks": "alembic_safety_bench_scale_checks"}  # fmt: skip
SNAPSHOT_TARGET = snapshot_bench.FILES_RATIO_TARGET
RESTORE_TARGET = restore_bench.RATIO_TARGET
CHECKS_TARGET = 1.5
RSS_TARGET_MB = snapshot_bench.RSS_TARGET_MB
MB = 1_000_000


def _sizes(text: str) -> list[int]:
    try:
        values = sorted({int(x.replace("_", "")) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of row counts: {text!r}") from None
    if not values or values[0] < 1000:
        raise argparse.ArgumentTypeError("sizes must be at least 1000 rows")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=_sizes, default=list(SIZES),
                   help="comma-separated row counts (default 100000,1000000,5000000)")  # fmt: skip
    p.add_argument("--rounds", type=int, default=1, help="timed rounds per measurement (default 1); medians")
    p.add_argument("--parallel-tables", type=int, default=2, help="tables in the parallel case (default 2; 0 skips)")
    p.add_argument("--parts", default="snapshot,parallel,restore,checks",
                   help="comma-separated parts to run (default: all)")  # fmt: skip
    p.add_argument("--driver", default="psycopg2", help="SQLAlchemy driver of the tools (default psycopg2)")
    p.add_argument("--host", default=os.environ.get("ALEMBIC_SAFETY_PG_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("ALEMBIC_SAFETY_PG_PORT", "5432")))
    p.add_argument("--user", default=os.environ.get("ALEMBIC_SAFETY_PG_USER", "postgres"))
    p.add_argument("--pg-dump", default=shutil.which("pg_dump") or "/usr/bin/pg_dump")
    p.add_argument("--pg-restore", default=shutil.which("pg_restore") or "/usr/bin/pg_restore")
    p.add_argument("--workdir", help="parent folder of the temporary projects (default: system temp)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.parallel_tables < 0:
        p.error("--rounds must be at least 1 and --parallel-tables at least 0")
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = set(args.parts) - {"snapshot", "parallel", "restore", "checks"}
    if unknown or not args.parts:
        p.error(f"unknown part(s): {', '.join(sorted(unknown)) or '(none)'}")
    return args


def url_for(args: argparse.Namespace, part: str) -> sa.URL:
    return sa.URL.create("postgresql", username=args.user, host=args.host, port=args.port, database=DBS[part])


def med(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass(frozen=True)
class Tools:
    safety: str
    alembic: str


@dataclass(frozen=True)
class SnapshotFigures:
    ours: float
    pg_dump: float
    inproc: float  # the backup_completed event's seconds: the snapshot without the process start
    rss_ours_mb: float
    rss_pg_dump_mb: float
    table_mb: float


@dataclass(frozen=True)
class ParallelFigures:
    tables: int
    serial: float  # backup_completed seconds (process start-up excluded: it is the same for both)
    parallel: float
    serial_process: float
    parallel_process: float
    connections: int
    rss_mb: float


@dataclass(frozen=True)
class RestoreFigures:
    ours: float
    pg_restore: float
    rss_mb: float


@dataclass(frozen=True)
class ChecksFigures:
    ours: float
    anti_join: float


@dataclass
class SizeFigures:
    rows: int
    snapshot: SnapshotFigures | None = None
    parallel: ParallelFigures | None = None
    restore: RestoreFigures | None = None
    checks: ChecksFigures | None = None


# -- snapshot and parallel snapshot (bench/snapshot.py) -----------------------------------------
def run_snapshot(args: argparse.Namespace, tools: Tools, rows: int, out: SizeFigures) -> None:
    url = url_for(args, "snapshot")
    extra = [f"{snapshot_bench.TABLE}_{i}" for i in range(2, args.parallel_tables + 1)]
    parallel = "parallel" in args.parts and args.parallel_tables >= 2
    tables = {snapshot_bench.TABLE: rows, **({t: rows for t in extra} if parallel else {})}
    folder = Path(tempfile.mkdtemp(prefix="alembic-safety-bench-scale-", dir=args.workdir))
    eng: sa.Engine | None = None
    try:
        snapshot_bench.prepare_bench_db(url, tables, reuse=False)
        eng = snapshot_bench.bench_engine(url)
        facts = snapshot_bench.table_facts(eng)
        inis = snapshot_bench.make_project(folder, url, [args.driver], None, "files", [])
        ini = inis[args.driver]
        # warm-up, untimed: bytecode caches, the version table, the audit log
        snapshot_bench.measure_ours(tools.safety, ini, folder, eng, snapshot_bench.Series("warm-up"), [],
                                    snapshot_bench.WARMUP_TABLE)  # fmt: skip
        pg, ours = snapshot_bench.Series("pg_dump"), snapshot_bench.Series("files")
        serial, par = snapshot_bench.Series("serial"), snapshot_bench.Series("parallel")
        connections: list[int] = []
        dump_args = argparse.Namespace(pg_dump=args.pg_dump)
        for rnd in range(args.rounds):
            tag = f"{rows:>11,} rows, round {rnd + 1}/{args.rounds}:"
            if "snapshot" in args.parts:
                snapshot_bench.checkpoint(eng)
                snapshot_bench.measure_pg_dump(dump_args, url, folder, pg)
                snapshot_bench.checkpoint(eng)
                snapshot_bench.measure_ours(tools.safety, ini, folder, eng, ours, [])
                print(f"{tag} pg_dump {pg.seconds[-1]:.2f} s, files store snapshot {ours.seconds[-1]:.2f} s",
                      flush=True)  # fmt: skip
            if parallel:
                snapshot_bench.checkpoint(eng)
                one = ["-x", "parallel_snapshot_workers=1"]
                snapshot_bench.measure_ours(tools.safety, ini, folder, eng, serial, one, more_tables=tuple(extra))
                snapshot_bench.checkpoint(eng)
                large = ["-x", f"parallel_snapshot_min_rows={min(rows // 2, 1_000_000)}"]
                events = snapshot_bench.measure_ours(tools.safety, ini, folder, eng, par, large,
                                                     more_tables=tuple(extra))  # fmt: skip
                used = [int(str(e["connections"])) for e in events if e.get("event") == "snapshot_parallel"]
                if not used:
                    reason = [str(e.get("reason")) for e in events if e.get("event") == "snapshot_serial"]
                    raise snapshot_bench.ToolFailed(f"the parallel snapshot stayed serial: {reason or 'no reason'}")
                connections.append(used[0])
                print(f"{tag} {len(extra) + 1} tables: serial {serial.inproc[-1]:.2f} s (process "
                      f"{serial.seconds[-1]:.2f} s), parallel {par.inproc[-1]:.2f} s (process {par.seconds[-1]:.2f} s) "
                      f"on {used[0]} connections", flush=True)  # fmt: skip
        if "snapshot" in args.parts:
            out.snapshot = SnapshotFigures(ours.med("seconds"), pg.med("seconds"), ours.med("inproc"),
                                           ours.med("rss_kib") * 1024 / MB,
                                           pg.med("rss_kib") * 1024 / MB,
                                           int(str(facts["table_size"])) / MB)  # fmt: skip
        if parallel:
            out.parallel = ParallelFigures(len(extra) + 1, serial.med("inproc"), par.med("inproc"),
                                           serial.med("seconds"), par.med("seconds"), max(connections),
                                           par.med("rss_kib") * 1024 / MB)  # fmt: skip
    finally:
        if eng is not None:
            eng.dispose()
        shutil.rmtree(folder, ignore_errors=True)
        snapshot_bench.drop_bench_db(url)


# -- restore (bench/restore.py) ------------------------------------------------------------------
def run_restore(args: argparse.Namespace, tools: Tools, rows: int, out: SizeFigures) -> None:
    url = url_for(args, "restore")
    mark = restore_bench.MARK
    folder = Path(tempfile.mkdtemp(prefix="alembic-safety-bench-scale-restore-", dir=args.workdir))
    eng: sa.Engine | None = None
    try:
        restore_bench.create_db(url, mark)
        eng = snapshot_bench.bench_engine(url)
        restore_bench.build(eng, rows)
        original, original_shape = restore_bench.fingerprint(eng), restore_bench.shape(eng)
        dump = folder / "big.dump"
        restore_bench._check(snapshot_bench.run_measured(
            [args.pg_dump, "-Fc", "-t", "public.big", "-f", str(dump), *restore_bench.pg_args(url)],
            restore_bench.pg_env(url), folder), "pg_dump")  # fmt: skip
        ini = restore_bench.make_project(folder, url, args.driver)
        pg, ours = restore_bench.Series(), restore_bench.Series()
        tool_args = argparse.Namespace(pg_restore=args.pg_restore)
        for rnd in range(args.rounds):
            restore_bench.measure_pg_restore(tool_args, url, eng, dump, folder, pg)
            if restore_bench.fingerprint(eng) != original:
                raise restore_bench.ToolFailed("after pg_restore the table differs from the original")
            restore_bench.measure_ours(tools.safety, tools.alembic, ini, folder, eng, ours)
            if restore_bench.fingerprint(eng) != original or restore_bench.shape(eng) != original_shape:
                raise restore_bench.ToolFailed("after the rollback the table differs from the original (rows, "
                                               "checksum, indexes or constraints)")  # fmt: skip
            print(f"{rows:>11,} rows, round {rnd + 1}/{args.rounds}: pg_restore {pg.seconds[-1]:.2f} s, "
                  f"restore-data step {ours.seconds[-1]:.2f} s", flush=True)  # fmt: skip
        rss = med([float(x) for x in ours.rss_kib]) * 1024 / MB
        out.restore = RestoreFigures(ours.med(ours.seconds), pg.med(pg.seconds), rss)
    finally:
        if eng is not None:
            eng.dispose()
        shutil.rmtree(folder, ignore_errors=True)
        restore_bench.drop_db(url, mark)


# -- step checks (bench/checks.py) ---------------------------------------------------------------
def run_checks(args: argparse.Namespace, rows: int, out: SizeFigures) -> None:
    url = url_for(args, "checks").set(drivername="postgresql+psycopg2")
    checks_bench.create_database(url)
    engine = sa.create_engine(url)
    try:
        checks_bench.build(engine, rows)
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            config = SafetyConfig(backup_dir=Path(tmp))
            checks_bench.one_round(engine, config)  # warm-up: both sides then read a warm table
            results = [checks_bench.one_round(engine, config) for _ in range(args.rounds)]
        out.checks = ChecksFigures(med([r[0] for r in results]), med([r[1] for r in results]))
        print(f"{rows:>11,} rows: step checks {out.checks.ours:.3f} s, anti-join {out.checks.anti_join:.3f} s",
              flush=True)  # fmt: skip
    finally:
        engine.dispose()
        checks_bench.drop_database(url)


# -- report --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    case: str
    ours: str
    reference: str
    ratio: str
    target: str
    result: str


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("pass" if ok else "miss")


def rows_for(fig: SizeFigures) -> list[Row]:
    n = f"{fig.rows:,} rows"
    out: list[Row] = []
    if fig.snapshot is not None:
        s = fig.snapshot
        ratio = s.ours / s.pg_dump
        out.append(Row(f"snapshot, files store, {n} ({s.table_mb:.0f} MB)", f"{s.ours:.2f} s",
                       f"pg_dump -Fc {s.pg_dump:.2f} s", f"{ratio:.2f}", f"≤ {SNAPSHOT_TARGET}",
                       _verdict(ratio <= SNAPSHOT_TARGET)))  # fmt: skip
        out.append(Row(f"  the same, snapshot alone (backup_completed seconds), {n}", f"{s.inproc:.2f} s",
                       f"pg_dump -Fc {s.pg_dump:.2f} s", f"{s.inproc / s.pg_dump:.2f}", "—", ""))  # fmt: skip
        out.append(Row(f"peak RSS of the snapshot, {n}", f"{s.rss_ours_mb:.0f} MB",
                       f"pg_dump {s.rss_pg_dump_mb:.0f} MB", "-", f"< {RSS_TARGET_MB:.0f} MB",
                       _verdict(None if math.isnan(s.rss_ours_mb) else s.rss_ours_mb < RSS_TARGET_MB)))  # fmt: skip
    if fig.parallel is not None:
        p = fig.parallel
        out.append(Row(f"parallel snapshot, {p.tables} tables of {n}, {p.connections} connections (snapshot alone)",
                       f"{p.parallel:.2f} s", f"serial {p.serial:.2f} s", f"{p.parallel / p.serial:.2f}", "—", ""))
        out.append(Row(f"  the same, whole `alembic-safety backup` process, {p.tables} tables of {n}",
                       f"{p.parallel_process:.2f} s", f"serial {p.serial_process:.2f} s",
                       f"{p.parallel_process / p.serial_process:.2f}", "—", ""))  # fmt: skip
        out.append(Row(f"peak RSS of the parallel snapshot, {p.tables} tables of {n}", f"{p.rss_mb:.0f} MB", "-", "-",
                       f"< {RSS_TARGET_MB:.0f} MB",
                       _verdict(None if math.isnan(p.rss_mb) else p.rss_mb < RSS_TARGET_MB)))  # fmt: skip
    if fig.restore is not None:
        r = fig.restore
        ratio = r.ours / r.pg_restore
        out.append(Row(f"restore (rollback `restore-data`), {n}", f"{r.ours:.2f} s", f"pg_restore {r.pg_restore:.2f} s",
                       f"{ratio:.2f}", f"≤ {RESTORE_TARGET}", _verdict(ratio <= RESTORE_TARGET)))  # fmt: skip
        out.append(Row(f"peak RSS of the rollback, {n}", f"{r.rss_mb:.0f} MB", "-", "-", f"< {RSS_TARGET_MB:.0f} MB",
                       _verdict(None if math.isnan(r.rss_mb) else r.rss_mb < RSS_TARGET_MB)))  # fmt: skip
    if fig.checks is not None:
        c = fig.checks
        ratio = c.ours / c.anti_join
        out.append(Row(f"step checks, {n}", f"{c.ours:.3f} s", f"anti-join {c.anti_join:.3f} s", f"{ratio:.2f}",
                       f"≤ {CHECKS_TARGET}", _verdict(ratio <= CHECKS_TARGET)))  # fmt: skip
    return out


def report(figures: list[SizeFigures], args: argparse.Namespace, loads: tuple[tuple[float, ...], ...]) -> None:
    rows = [r for fig in figures for r in rows_for(fig)]
    width = max(len(r.case) for r in rows) if rows else 20
    print()
    print("=" * (width + 70))
    print(f"alembic-safety at scale: medians of {args.rounds} round(s); driver {args.driver}; {os.cpu_count()} CPUs; "
          f"load {'/'.join(f'{x:.2f}' for x in loads[0])} at start, {'/'.join(f'{x:.2f}' for x in loads[1])} at end")
    print(f"  {'case':<{width}}  {'ours':>9}  {'reference':<22}{'ratio':>6}  {'target':<9}result")
    for r in rows:
        print(f"  {r.case:<{width}}  {r.ours:>9}  {r.reference:<22}{r.ratio:>6}  {r.target:<9}{r.result}")
    print("=" * (width + 70))
    print()
    print("markdown:")
    print()
    print("| case | ours | reference | ratio | target | result |")
    print("|---|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r.case} | {r.ours} | {r.reference} | {r.ratio} | {r.target} | {r.result} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bindir = Path(sys.executable).parent
    tools = Tools(str(bindir / "alembic-safety"), str(bindir / "alembic"))
    for tool in (tools.safety, tools.alembic, args.pg_dump, args.pg_restore):
        if not Path(tool).exists():
            print(f"bench/scale.py: {tool} not found", file=sys.stderr)
            return 2
    start = os.getloadavg()
    figures: list[SizeFigures] = []
    try:
        for rows in args.sizes:
            fig = SizeFigures(rows)
            figures.append(fig)
            if "snapshot" in args.parts or "parallel" in args.parts:
                run_snapshot(args, tools, rows, fig)
            if "restore" in args.parts:
                run_restore(args, tools, rows, fig)
            if "checks" in args.parts:
                run_checks(args, rows, fig)
    except sa.exc.OperationalError as exc:
        print(f"bench/scale.py: cannot reach PostgreSQL: {str(exc.orig).strip()}", file=sys.stderr)
        return 2
    except (snapshot_bench.SetupError, restore_bench.SetupError) as exc:
        print(f"bench/scale.py: {exc}", file=sys.stderr)
        return 2
    except (snapshot_bench.ToolFailed, restore_bench.ToolFailed) as exc:
        print(f"bench/scale.py: {exc}", file=sys.stderr)
        report(figures, args, (start, os.getloadavg()))
        return 1
    report(figures, args, (start, os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
