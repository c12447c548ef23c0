"""Benchmark: ``alembic-safety backup`` of one large PostgreSQL table against ``pg_dump -Fc``.

Run from the repository root::

    .venv/bin/python bench/snapshot.py [--rows 2000000] [--rounds 3]
        [--url postgresql://postgres@127.0.0.1:5432/alembic_safety_bench]

What it does:

1. (Re)creates its own database (default ``alembic_safety_bench``; the database named in
   ``--url``) and marks it with a comment; it never drops a database that lacks that mark.
   Builds ``public.bench_rows`` server-side with ``generate_series`` (bigint primary key,
   int, timestamptz, text of 40-80 chars, a small jsonb object, numeric(12,2)), then
   ``VACUUM ANALYZE``.
2. Writes a minimal Alembic project in a temporary folder (``alembic init`` with the generic
   template, wired by ``alembic_safety.wiring``: env.py calls ``alembic_safety.install``), one
   alembic.ini per driver (``postgresql+psycopg2://`` and ``postgresql+psycopg://``).
3. Each round times, as subprocesses, ``pg_dump -Fc -t public.bench_rows -f FILE`` and
   ``alembic-safety -c INI backup bench --tables public.bench_rows`` for every driver (the
   order rotates between rounds), with each process's own peak RSS.
4. Prints medians, the ratio ours/pg_dump and PASS/MISS against the targets (ratio <= 0.7
   with checksums on, which they always are; peak RSS < 150 MB).  It is a measurement, not a
   test: it exits 0 whether targets are met or missed (1 only if a tool fails, 2 on setup
   errors).
5. Drops the database and deletes the temporary folder (unless ``--keep``).

Units: MB = 10**6 bytes.  Defaults for the server come from ALEMBIC_SAFETY_PG_HOST,
ALEMBIC_SAFETY_PG_PORT and ALEMBIC_SAFETY_PG_USER (``--url`` overrides them); a password
can be given in ``--url`` or, as for libpq, in PGPASSWORD.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

TABLE = "bench_rows"
SCHEMA = "public"
DEFAULT_DB = "alembic_safety_bench"
MARK = "alembic_safety bench database: bench/snapshot.py drops it at will"
DRIVERS = ("psycopg2", "psycopg")
DB_STORE_SCHEMA = "alembic_safety"  # the database store's default snapshot_schema
RATIO_TARGET = 0.7
RSS_TARGET_MB = 150.0
MB = 1_000_000


class SetupError(Exception):
    """The benchmark cannot run here (exit 2)."""


# -- arguments and URLs ------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows in the table (default 2,000,000)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3); medians reported")
    p.add_argument(
        "--url",
        help="server and bench database, e.g. "
        "postgresql://postgres@127.0.0.1:5432/alembic_safety_bench "
        "(a +driver part is ignored: both drivers are run)",
    )
    p.add_argument(
        "--drivers",
        default=",".join(DRIVERS),
        help="comma-separated SQLAlchemy drivers to run (default: psycopg2,psycopg)",
    )
    p.add_argument("--pg-dump", default=shutil.which("pg_dump") or "/usr/bin/pg_dump", help="pg_dump binary")
    p.add_argument(
        "--compression-level",
        type=int,
        help="zstd level for alembic-safety (default: the tool's own default)",
    )
    p.add_argument(
        "--store",
        default="files",
        help="alembic-safety's store setting (default files: the COPY -> sha256 -> zstd path these "
        "targets are about; 'database' or 'auto' measure the in-database copy instead)",
    )
    p.add_argument("--workdir", help="parent folder of the temporary project (default: system temp)")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the database and the temporary folder (their names are printed)",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the bench database if it exists with the same row count",
    )
    args = p.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        p.error("--rows and --rounds must be at least 1")
    return args


def server_url(args: argparse.Namespace) -> sa.URL:
    """The bench database's URL without a driver."""
    if args.url:
        url = sa.make_url(args.url)
        url = url.set(drivername=url.get_backend_name())
        if url.get_backend_name() != "postgresql":
            raise SetupError("--url must be a postgresql:// URL")
        return url if url.database else url.set(database=DEFAULT_DB)
    return sa.URL.create(
        "postgresql",
        username=os.environ.get("ALEMBIC_SAFETY_PG_USER", "postgres"),
        host=os.environ.get("ALEMBIC_SAFETY_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("ALEMBIC_SAFETY_PG_PORT", "5432")),
        database=DEFAULT_DB,
    )


def with_driver(url: sa.URL, driver: str) -> sa.URL:
    return url.set(drivername=f"postgresql+{driver}")


# -- database ------------------------------------------------------------------------------------
def admin_engine(url: sa.URL) -> sa.Engine:
    """AUTOCOMMIT engine on the maintenance database ``postgres`` (CREATE/DROP DATABASE)."""
    return sa.create_engine(
        with_driver(url, "psycopg2").set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )


def _db_mark(conn: sa.Connection, name: str) -> str | None:
    """The database's comment, '' when it has none, None when it does not exist."""
    row = conn.execute(
        sa.text("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = :n"),
        {"n": name},
    ).first()
    return None if row is None else str(row[0])


def drop_bench_db(url: sa.URL) -> None:
    name = str(url.database)
    eng = admin_engine(url)
    try:
        with eng.connect() as conn:
            mark = _db_mark(conn, name)
            if mark is None:
                return
            if mark != MARK:
                raise SetupError(
                    f"refusing to drop database {name!r}: it was not "
                    "created by this script (no bench mark); pick another name in --url"
                )
            q = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"DROP DATABASE {q} WITH (FORCE)")
    finally:
        eng.dispose()


def create_bench_db(url: sa.URL, rows: int, reuse: bool) -> None:
    name = str(url.database)
    eng = admin_engine(url)
    try:
        with eng.connect() as conn:
            mark = _db_mark(conn, name)
            if mark is not None and mark != MARK:
                raise SetupError(
                    f"database {name!r} exists and was not created by this script; pick another name in --url"
                )
    finally:
        eng.dispose()
    if reuse and mark == MARK and _row_count(url) == rows:
        print(f"reusing database {name} ({rows:,} rows)", flush=True)
        return
    drop_bench_db(url)
    eng = admin_engine(url)
    try:
        with eng.connect() as conn:
            q = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"CREATE DATABASE {q}")
            conn.exec_driver_sql(f"COMMENT ON DATABASE {q} IS '{MARK}'")
    finally:
        eng.dispose()
    t0 = time.perf_counter()
    print(f"building {SCHEMA}.{TABLE} with {rows:,} rows in database {name} ...", flush=True)
    eng = sa.create_engine(with_driver(url, "psycopg2"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql(f"""
                CREATE TABLE {SCHEMA}.{TABLE} (
                    id         bigint        NOT NULL,
                    n          integer       NOT NULL,
                    created_at timestamptz   NOT NULL,
                    note       text          NOT NULL,
                    payload    jsonb         NOT NULL,
                    amount     numeric(12,2) NOT NULL
                )""")
            # server-side generation; the primary key is built after the load (faster)
            conn.execute(
                sa.text(f"""
                INSERT INTO {SCHEMA}.{TABLE}
                SELECT i,
                       (i * 7919) % 100000,
                       timestamptz '2020-01-01 00:00:00+00' + i * interval '17 seconds',
                       substr(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text),
                              1, (40 + i % 41)::int),
                       jsonb_build_object('k', i % 1000, 'ok', i % 3 = 0,
                                          'tag', 'tag-' || (i % 97)),
                       ((i * 7907) % 100000000) / 100.0
                FROM generate_series(1::bigint, :rows) AS i"""),
                {"rows": rows},
            )
            conn.exec_driver_sql(f"ALTER TABLE {SCHEMA}.{TABLE} ADD PRIMARY KEY (id)")
            conn.exec_driver_sql(f"VACUUM ANALYZE {SCHEMA}.{TABLE}")
    finally:
        eng.dispose()
    print(f"  built in {time.perf_counter() - t0:.1f} s", flush=True)


def _row_count(url: sa.URL) -> int | None:
    eng = sa.create_engine(with_driver(url, "psycopg2"), poolclass=sa.NullPool)
    try:
        with eng.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {SCHEMA}.{TABLE}").scalar_one())
    except sa.exc.DBAPIError:
        return None
    finally:
        eng.dispose()


def table_facts(url: sa.URL) -> dict[str, object]:
    eng = sa.create_engine(with_driver(url, "psycopg2"), poolclass=sa.NullPool)
    try:
        with eng.connect() as conn:
            size, total, rows, version = conn.execute(
                sa.text(
                    f"SELECT pg_table_size('{SCHEMA}.{TABLE}'), "
                    f"pg_total_relation_size('{SCHEMA}.{TABLE}'), "
                    f"(SELECT count(*) FROM {SCHEMA}.{TABLE}), current_setting('server_version')"
                )
            ).one()  # the count(*) also warms the cache
    finally:
        eng.dispose()
    return {
        "table_size": int(size),
        "total_size": int(total),
        "rows": int(rows),
        "version": version,
    }


# -- the Alembic project -------------------------------------------------------------------------
def make_project(folder: Path, url: sa.URL, drivers: list[str], level: int | None, store: str) -> dict[str, Path]:
    """``alembic init`` (generic) + ``alembic-safety init``; one ini per driver.  Returns
    {driver: ini path}."""
    from alembic import command
    from alembic.config import Config

    from alembic_safety.wiring import apply_changes, plan_init

    ini = folder / "alembic.ini"
    cfg = Config(str(ini))
    with contextlib.redirect_stdout(io.StringIO()):  # alembic init's "Creating directory ..."
        command.init(cfg, str(folder / "migrations"), template="generic")
    apply_changes([c for c in plan_init(ini, folder / "migrations" / "env.py") if c.changed])
    backup_dir = folder / "backups"
    inis: dict[str, Path] = {}
    for driver in drivers:
        parser = configparser.RawConfigParser()  # raw: keeps alembic's %(here)s as written
        parser.read(ini, encoding="utf-8")
        u = with_driver(url, driver).render_as_string(hide_password=False)
        parser.set("alembic", "sqlalchemy.url", u.replace("%", "%%"))
        parser.set("alembic_safety", "backup_dir", str(backup_dir).replace("%", "%%"))
        parser.set("alembic_safety", "keep", "0")  # the bench removes each backup itself
        parser.set("alembic_safety", "store", store)
        if level is not None:
            parser.set("alembic_safety", "compression_level", str(level))
        path = folder / f"alembic-{driver}.ini"
        with path.open("w", encoding="utf-8") as fh:
            parser.write(fh)
        inis[driver] = path
    return inis


# -- measuring one process -----------------------------------------------------------------------
GNU_TIME = "/usr/bin/time"
# Fallback launcher for alembic-safety when GNU time is absent: the console script's own code,
# plus the peak RSS of this interpreter's address space (VmHWM) written at exit.
_HWM_LAUNCHER = """\
import atexit, sys
rss_file = sys.argv.pop(1)
def _hwm():
    with open('/proc/self/status') as st:
        kib = next(line.split()[1] for line in st if line.startswith('VmHWM:'))
    with open(rss_file, 'w') as out:
        out.write(kib)
atexit.register(_hwm)
sys.argv[0] = 'alembic-safety'
from alembic_safety.cli import main
sys.exit(main())
"""


@dataclass
class Run:
    seconds: float
    rss_kib: int | None
    code: int
    stdout: str
    stderr: str


def run_measured(cmd: list[str], env: dict[str, str], scratch: Path, *, python_tool: bool = False) -> Run:
    """Run ``cmd``: its wall time and the peak RSS of *that process alone*.

    Peak RSS, and the traps avoided:

    * ``getrusage(RUSAGE_CHILDREN)``: its ru_maxrss is the maximum over *all* children reaped
      so far (pg_dump, the other driver, earlier rounds); a delta of a maximum means nothing.
    * ``os.wait4(pid)`` on a child of *this* process: per child, but Linux folds the RSS high
      water mark of the address space that ``exec`` replaces into the new program's maxrss,
      and a child forked (or vforked) from this script starts with this script's address
      space (~70 MB with SQLAlchemy loaded).  Measured: ``/bin/true`` spawned from a 300 MB
      Python process reports 318 MB.  The same inflates ``ru_maxrss`` of RUSAGE_SELF in any
      wrapper we fork.
    * So the tool is launched by GNU ``/usr/bin/time -f %M`` (RSS ~1 MB): it forks the tool
      from its own small address space and reports the wait4 ru_maxrss (KiB) of that one
      child, which is the tool's own peak (neither tool starts children of its own).
    * Without GNU time, alembic-safety runs through a launcher that executes the console
      script's code and writes its own ``VmHWM`` from /proc at exit: the high water mark of
      the address space exec created, so nothing inherited counts.  pg_dump's RSS is then not
      reported.
    Output goes to files, not pipes, so nothing needs reading while we wait.
    """
    out_path, err_path, rss_path = (
        scratch / "stdout.txt",
        scratch / "stderr.txt",
        scratch / "rss.txt",
    )
    rss_path.unlink(missing_ok=True)
    if Path(GNU_TIME).exists():
        full = [GNU_TIME, "-f", "%M", "-o", str(rss_path), *cmd]
    elif python_tool:
        full = [sys.executable, "-c", _HWM_LAUNCHER, str(rss_path), *cmd[1:]]
    else:
        full = cmd
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, check=False)
        seconds = time.perf_counter() - t0
    rss: int | None = None
    if rss_path.exists():
        lines = rss_path.read_text().split()  # GNU time may prefix "Command exited with ..."
        rss = int(lines[-1]) if lines and lines[-1].isdigit() else None
    return Run(
        seconds,
        rss,
        proc.returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


@dataclass
class Series:
    label: str
    seconds: list[float] = field(default_factory=list)
    inproc: list[float] = field(default_factory=list)  # take_backup's own time (audit log)
    size: list[int] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    def med(self, name: str) -> float:
        values = getattr(self, name)
        return float(statistics.median(values)) if values else float("nan")


class ToolFailed(Exception):
    pass


def measure_pg_dump(args: argparse.Namespace, url: sa.URL, folder: Path, series: Series) -> None:
    target = folder / "pg_dump.dump"
    target.unlink(missing_ok=True)
    cmd = [
        args.pg_dump,
        "-Fc",
        "-w",
        "-t",
        f"{SCHEMA}.{TABLE}",
        "-f",
        str(target),
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
        "-d",
        url.database,
    ]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    run = run_measured(cmd, env, folder)
    if run.code != 0:
        raise ToolFailed(f"pg_dump exited {run.code}: {run.stderr.strip()}")
    series.seconds.append(run.seconds)
    if run.rss_kib is not None:
        series.rss_kib.append(run.rss_kib)
    series.size.append(target.stat().st_size)
    target.unlink()


def measure_ours(exe: str, ini: Path, folder: Path, url: sa.URL, series: Series) -> None:
    cmd = [exe, "-c", str(ini), "backup", "bench", "--tables", f"{SCHEMA}.{TABLE}"]
    # alembic-safety reads ALEMBIC_SAFETY_<SETTING> variables: the child must see only our ini
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_SAFETY_") and k != "ALEMBIC_CONFIG"}
    run = run_measured(cmd, env, folder, python_tool=True)
    if run.code != 0:
        raise ToolFailed(f"alembic-safety exited {run.code}: {(run.stderr or run.stdout).strip()}")
    backup_id = next(
        (line.split()[1].rstrip(":") for line in run.stdout.splitlines() if line.startswith("Backup ")),
        None,
    )
    if backup_id is None:
        raise ToolFailed(f"cannot find the backup id in alembic-safety's output: {run.stdout!r}")
    backup_dir = folder / "backups"
    done = [
        event
        for event in map(json.loads, (backup_dir / "audit.jsonl").read_text("utf-8").splitlines())
        if event.get("event") == "backup_completed" and event.get("backup_id") == backup_id
    ]
    if not done:
        raise ToolFailed(f"no backup_completed event for {backup_id} in the audit log")
    series.seconds.append(run.seconds)
    if run.rss_kib is not None:
        series.rss_kib.append(run.rss_kib)
    series.inproc.append(float(done[-1]["seconds"]))
    series.size.append(int(done[-1]["bytes"]))  # stored bytes: the .zst files for store = files
    path = backup_dir / backup_id
    if (path / "manifest.json").is_file():  # the files store
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        series.raw.append(sum(int(t.get("raw_bytes") or 0) for t in manifest["tables"]))
        shutil.rmtree(path)
    else:  # the database store: its copies live in a schema of the bench database
        eng = sa.create_engine(with_driver(url, "psycopg2"), poolclass=sa.NullPool)
        try:
            with eng.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {DB_STORE_SCHEMA} CASCADE")
        finally:
            eng.dispose()


# -- report ------------------------------------------------------------------------------------
def _mb(n: float) -> str:
    return "n/a" if math.isnan(n) else f"{n / MB:.1f}"


def report(
    facts: dict[str, object],
    url: sa.URL,
    args: argparse.Namespace,
    pg: Series,
    ours: dict[str, Series],
) -> None:
    table_size = int(str(facts["table_size"]))
    rss_how = (
        "GNU time %M" if Path(GNU_TIME).exists() else "VmHWM at exit (no /usr/bin/time: pg_dump's RSS not measured)"
    )
    print()
    print("=" * 86)
    print(f"alembic-safety snapshot benchmark: medians of {args.rounds} round(s); MB = 10^6 bytes")
    print(f"  server   PostgreSQL {facts['version']}, {url.render_as_string(hide_password=True)}")
    print(
        f"  table    {SCHEMA}.{TABLE}: {int(str(facts['rows'])):,} rows, pg_table_size "
        f"{_mb(table_size)} MB (with indexes {_mb(int(str(facts['total_size'])))} MB)"
    )
    print(f"  machine  {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; peak RSS by {rss_how}")
    level = args.compression_level if args.compression_level is not None else "tool default"
    if args.store == "files":
        print(f"  ours     store = files: zstd level {level}, sha256 checksum (always on), fsync")
    else:
        print(f"  ours     store = {args.store} (targets below were set for store = files)")
    print()
    head = f"  {'tool':<36}{'seconds':>9}{'output MB':>11}{'peak RSS MB':>13}{'table MB/s':>12}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    pg_s = pg.med("seconds")
    rows = [("pg_dump -Fc -t (default gzip)", pg)]
    rows += [(f"alembic-safety backup [{d}]", s) for d, s in ours.items()]
    for label, ser in rows:
        secs = ser.med("seconds")
        print(
            f"  {label:<36}{secs:>9.2f}{_mb(ser.med('size')):>11}"
            f"{_mb(ser.med('rss_kib') * 1024):>13}"
            f"{table_size / MB / secs:>12.1f}"
        )
    print()
    print(f"  per round (s): pg_dump {', '.join(f'{x:.2f}' for x in pg.seconds)}")
    for driver, ser in ours.items():
        print(
            f"  per round (s): {driver} {', '.join(f'{x:.2f}' for x in ser.seconds)}; "
            f"inside take_backup (audit log) {ser.med('inproc'):.2f}, the rest is interpreter "
            f"start, imports and env.py; COPY stream {_mb(ser.med('raw'))} MB"
        )
    print()
    print("targets")
    for driver, ser in ours.items():
        ratio = ser.med("seconds") / pg_s
        rss = ser.med("rss_kib") * 1024 / MB
        verdict = "PASS" if ratio <= RATIO_TARGET else "MISS"
        print(f"  [{driver}] seconds ours/pg_dump = {ratio:.2f}   target <= {RATIO_TARGET} (checksums on)   {verdict}")
        verdict = "n/a" if math.isnan(rss) else ("PASS" if rss < RSS_TARGET_MB else "MISS")
        print(f"  [{driver}] peak RSS = {_mb(rss * MB)} MB   target < {RSS_TARGET_MB:.0f} MB   {verdict}")
    print("=" * 86)


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = server_url(args)
    except SetupError as exc:
        print(f"bench/snapshot.py: {exc}", file=sys.stderr)
        return 2
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    exe = str(Path(sys.executable).parent / "alembic-safety")
    if not Path(exe).exists():
        exe = shutil.which("alembic-safety") or exe
    for tool in (exe, args.pg_dump):
        if not Path(tool).exists():
            print(f"bench/snapshot.py: {tool} not found", file=sys.stderr)
            return 2
    folder = Path(tempfile.mkdtemp(prefix="alembic-safety-bench-", dir=args.workdir))
    code = 0
    created = False  # drop only a database this run created or reused (it carries our mark)
    try:
        try:
            create_bench_db(url, args.rows, args.reuse)
            created = True
        except sa.exc.OperationalError as exc:
            print(f"bench/snapshot.py: cannot reach PostgreSQL: {str(exc.orig).strip()}", file=sys.stderr)
            return 2
        except SetupError as exc:
            print(f"bench/snapshot.py: {exc}", file=sys.stderr)
            return 2
        facts = table_facts(url)
        inis = make_project(folder, url, drivers, args.compression_level, args.store)
        pg = Series("pg_dump")
        ours = {d: Series(d) for d in drivers}
        jobs = ["pg_dump", *drivers]
        for rnd in range(args.rounds):
            order = jobs[rnd % len(jobs) :] + jobs[: rnd % len(jobs)]  # rotate: no tool always first
            for job in order:
                if job == "pg_dump":
                    measure_pg_dump(args, url, folder, pg)
                    took = pg.seconds[-1]
                else:
                    measure_ours(exe, inis[job], folder, url, ours[job])
                    took = ours[job].seconds[-1]
                print(f"round {rnd + 1}/{args.rounds}: {job:<9} {took:7.2f} s", flush=True)
        report(facts, url, args, pg, ours)
    except ToolFailed as exc:
        print(f"bench/snapshot.py: {exc}", file=sys.stderr)
        code = 1
    finally:
        if args.keep:
            print(f"kept: database {url.database}, folder {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            try:
                if created:
                    drop_bench_db(url)
            except sa.exc.OperationalError as exc:
                print(f"bench/snapshot.py: could not drop {url.database}: {exc.orig}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
