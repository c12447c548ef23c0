"""Benchmark: alembic-safety's snapshots of a large PostgreSQL table against ``pg_dump -Fc``.

Run from the repository root::

    .venv/bin/python bench/snapshot.py [--rows 2000000] [--rounds 3]
        [--cases files,db-whole,db-column,db-where,move] [--move-rows 1000000,5000000]
        [--url postgresql://postgres@127.0.0.1:5432/alembic_safety_bench]

The reference, measured in every round of the same run, is what a DBA would run today before a
risky migration: ``pg_dump -Fc -t public.bench_rows`` (default compression) of the whole table.
The cases (``--cases``, all by default):

``files``
    ``alembic-safety backup --tables public.bench_rows`` with ``store = files`` (COPY binary ->
    sha256 -> zstd -> fsync), every driver; process wall time.  Target: ratio <= 0.5, peak
    RSS < 150 MB.
``db-whole``
    the same command with ``-x store=database``: ``CREATE TABLE alembic_safety.<name> AS
    SELECT ...`` plus an in-database checksum (sum of ``hash_record_extended``), every driver;
    process wall time.  Target: ratio <= 0.3.
``db-column``
    ``alembic upgrade`` of a revision doing ``op.drop_column("bench_rows", "note")``: the
    migration hook snapshots ``(id, note)`` in the database before the step runs.  Our time is
    the ``seconds`` of the ``backup_completed`` audit event (measured inside ``take_backup``),
    compared with pg_dump of the whole table.  No target was set.
``db-where``
    the same with ``op.execute("DELETE FROM bench_rows WHERE id % 10 = 0")``: the hook
    snapshots the 10% of rows the DELETE removes.  No target was set.
``move``
    ``alembic upgrade`` of a revision doing ``op.drop_table("bench_move_<n>")`` for tables of
    ``--move-rows`` rows: the drop becomes ``ALTER TABLE ... RENAME`` + ``SET SCHEMA
    alembic_safety``.  Reported per size: the revision step's ``seconds`` (``revision_applied``
    audit event: recording the step, planning, the backup's catalogue work, the move, the
    after-step bookkeeping), its backup's ``seconds``, the whole ``alembic upgrade`` process,
    the same process for an empty revision (interpreter, imports, env.py, connection), and the
    bare statements ``RENAME`` + ``SET SCHEMA`` + ``COMMIT`` timed on a direct connection.
    Target: the step < 0.1 s at every size, and no growth with size (largest - smallest <=
    max(0.02 s, 25% of the smallest)).

Between cases the bench puts things back (not timed): the table is rebuilt after the column and
WHERE cases, a moved table is moved back, snapshot tables and catalogue rows are deleted, the
version table is emptied; and a ``CHECKPOINT`` runs before every timed command, so no run pays
for the previous one's dirty buffers.

It prints medians, ratios and PASS/MISS for every target, then the summary again as a Markdown
table.  It is a measurement, not a test: it exits 0 whether targets are met or missed (1 only if
a tool fails, 2 on setup errors).  At the end it drops its database and deletes its temporary
folder (unless ``--keep``).

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
COLUMNS = ("id", "n", "created_at", "note", "payload", "amount")
TEXT_COLUMN = "note"  # the column the db-column case drops
WHERE = "id % 10 = 0"  # the rows the db-where case deletes (10%)
MOVE_TABLE = "bench_move_{rows}"
WARMUP_TABLE = "bench_warmup"  # a tiny table for the untimed warm-up runs
SCRATCH_SCHEMA = "bench_scratch"  # where the bare-SQL move reference moves a table to
DEFAULT_DB = "alembic_safety_bench"
MARK = "alembic_safety bench database: bench/snapshot.py drops it at will"
DRIVERS = ("psycopg2", "psycopg")
CASES = ("files", "db-whole", "db-column", "db-where", "move")
DB_STORE_SCHEMA = "alembic_safety"  # the database store's default snapshot_schema
SNAPSHOT_NAME_RE = "^b[0-9]{8}t[0-9]{12}z_[0-9]{3}$"  # dbstore.SNAPSHOT_TABLE
FILES_RATIO_TARGET = 0.5
DB_WHOLE_RATIO_TARGET = 0.3
MOVE_TARGET_S = 0.1
RSS_TARGET_MB = 150.0
MB = 1_000_000

REV_NOOP = "bench_noop"
REV_COLUMN = "bench_column"
REV_WHERE = "bench_where"


def rev_move(rows: int) -> str:
    return f"bench_move_{rows}"


class SetupError(Exception):
    """The benchmark cannot run here (exit 2)."""


# -- arguments and URLs ------------------------------------------------------------------------
def _int_list(text: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("row counts must be at least 1")
    return sorted(set(values))


def _case_list(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [v for v in values if v not in CASES]
    if unknown or not values:
        raise argparse.ArgumentTypeError(
            f"unknown case(s) {', '.join(unknown) or '(none)'}; choose from {','.join(CASES)}"
        )
    return [c for c in CASES if c in values]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows in the table (default 2,000,000)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3); medians reported")
    p.add_argument(
        "--cases",
        type=_case_list,
        default=list(CASES),
        help=f"comma-separated cases to run (default: all, {','.join(CASES)}); pg_dump always runs",
    )
    p.add_argument(
        "--move-rows",
        type=_int_list,
        default=[1_000_000, 5_000_000],
        help="row counts of the tables the move case drops (default 1000000,5000000)",
    )
    p.add_argument(
        "--url",
        help="server and bench database, e.g. "
        "postgresql://postgres@127.0.0.1:5432/alembic_safety_bench "
        "(a +driver part is ignored: both drivers are run)",
    )
    p.add_argument(
        "--drivers",
        default=",".join(DRIVERS),
        help="comma-separated SQLAlchemy drivers to run (default: psycopg2,psycopg); the revision-step "
        "cases (db-column, db-where, move) run through the first one: their work is server-side",
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
        help="the store of the 'files' case (default files: the COPY -> sha256 -> zstd path its "
        "targets are about; 'database' or 'auto' measure the in-database copy there instead)",
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
        help="reuse the bench database's tables when they exist with the same row counts",
    )
    args = p.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        p.error("--rows and --rounds must be at least 1")
    args.drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    if not args.drivers:
        p.error("--drivers is empty")
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


def bench_engine(url: sa.URL, *, autocommit: bool = True) -> sa.Engine:
    """An engine on the bench database (psycopg2; a fresh connection each time)."""
    if autocommit:
        return sa.create_engine(with_driver(url, "psycopg2"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    return sa.create_engine(with_driver(url, "psycopg2"), poolclass=sa.NullPool)


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


def prepare_bench_db(url: sa.URL, tables: dict[str, int], reuse: bool) -> None:
    """Create the marked bench database (or reuse it) and build the tables {name: rows}."""
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
    if not (reuse and mark == MARK):
        drop_bench_db(url)
        eng = admin_engine(url)
        try:
            with eng.connect() as conn:
                q = conn.dialect.identifier_preparer.quote(name)
                conn.exec_driver_sql(f"CREATE DATABASE {q}")
                conn.exec_driver_sql(f"COMMENT ON DATABASE {q} IS '{MARK}'")
        finally:
            eng.dispose()
    eng = bench_engine(url)
    try:
        for table, rows in tables.items():
            if reuse and _table_ok(eng, table, rows):
                print(f"reusing {SCHEMA}.{table} ({rows:,} rows) in database {name}", flush=True)
                continue
            build_table(eng, table, rows)
        with eng.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCRATCH_SCHEMA}")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SCHEMA}.{WARMUP_TABLE}")
            conn.exec_driver_sql(
                f"CREATE TABLE {SCHEMA}.{WARMUP_TABLE} AS SELECT i AS id, md5(i::text) AS note "
                "FROM generate_series(1::bigint, 100) AS i"
            )
            conn.exec_driver_sql(f"ALTER TABLE {SCHEMA}.{WARMUP_TABLE} ADD PRIMARY KEY (id)")
    finally:
        eng.dispose()


def build_table(eng: sa.Engine, table: str, rows: int) -> None:
    """(Re)build ``public.<table>`` server-side: the same rows every time for the same count."""
    t0 = time.perf_counter()
    print(f"building {SCHEMA}.{table} with {rows:,} rows ...", flush=True)
    with eng.connect() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        conn.exec_driver_sql(f"""
            CREATE TABLE {SCHEMA}.{table} (
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
            INSERT INTO {SCHEMA}.{table}
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
        conn.exec_driver_sql(f"ALTER TABLE {SCHEMA}.{table} ADD PRIMARY KEY (id)")
        conn.exec_driver_sql(f"VACUUM ANALYZE {SCHEMA}.{table}")
    print(f"  built in {time.perf_counter() - t0:.1f} s", flush=True)


def _table_ok(eng: sa.Engine, table: str, rows: int) -> bool:
    """The table exists with the expected columns and row count (after an interrupted run it
    may lack the dropped column or the deleted rows)."""
    try:
        with eng.connect() as conn:
            cols = [
                r[0]
                for r in conn.execute(
                    sa.text(
                        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) "
                        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                    ),
                    {"t": f"{SCHEMA}.{table}"},
                )
            ]
            if tuple(cols) != COLUMNS:
                return False
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {SCHEMA}.{table}").scalar_one()) == rows
    except sa.exc.DBAPIError:
        return False


def table_facts(eng: sa.Engine, table: str = TABLE) -> dict[str, object]:
    with eng.connect() as conn:
        size, total, rows, version = conn.execute(
            sa.text(
                f"SELECT pg_table_size('{SCHEMA}.{table}'), "
                f"pg_total_relation_size('{SCHEMA}.{table}'), "
                f"(SELECT count(*) FROM {SCHEMA}.{table}), current_setting('server_version')"
            )
        ).one()  # the count(*) also warms the cache
    return {
        "table_size": int(size),
        "total_size": int(total),
        "rows": int(rows),
        "version": version,
    }


_checkpoint_ok = True


def checkpoint(eng: sa.Engine) -> None:
    """Flush dirty buffers before a timed command, so it does not pay for the previous one's
    writes (CHECKPOINT needs a superuser or pg_checkpoint; without it, skipped with a note)."""
    global _checkpoint_ok
    if not _checkpoint_ok:
        return
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
    except sa.exc.DBAPIError as exc:
        _checkpoint_ok = False
        print(f"note: CHECKPOINT not allowed ({str(exc.orig).strip()}); runs may pay for earlier writes")


# -- the database store's state between cases ---------------------------------------------------
def ensure_store(url: sa.URL) -> None:
    """Create the snapshot schema and its catalogue as the tool does on first use, so every
    timed run finds the steady state (the first backup of a database also creates them)."""
    from alembic_safety.snapshot.dbstore import DatabaseStore

    eng = bench_engine(url, autocommit=False)
    try:
        with eng.begin() as conn:
            DatabaseStore(conn, DB_STORE_SCHEMA).ensure()
    finally:
        eng.dispose()


def snapshot_tables(conn: sa.Connection) -> list[str]:
    rows = conn.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename ~ :p ORDER BY 1"),
        {"s": DB_STORE_SCHEMA, "p": SNAPSHOT_NAME_RE},
    )
    return [r[0] for r in rows]


def clear_store(eng: sa.Engine) -> None:
    """Drop every snapshot table and catalogue row; forget the applied revisions."""
    with eng.connect() as conn:
        for name in snapshot_tables(conn):
            conn.exec_driver_sql(f'DROP TABLE {DB_STORE_SCHEMA}."{name}"')
        conn.exec_driver_sql(f"DELETE FROM {DB_STORE_SCHEMA}.backups")
        if conn.exec_driver_sql("SELECT to_regclass('public.alembic_version')").scalar() is not None:
            conn.exec_driver_sql("DELETE FROM public.alembic_version")


def move_back(eng: sa.Engine, table: str) -> None:
    """Put the table the move case moved into the snapshot schema back where it was (O(1))."""
    with eng.connect() as conn:
        names = snapshot_tables(conn)
        if len(names) != 1:
            raise ToolFailed(f"expected one moved table in {DB_STORE_SCHEMA} after dropping {table}, found {names}")
        conn.exec_driver_sql(f'ALTER TABLE {DB_STORE_SCHEMA}."{names[0]}" SET SCHEMA {SCHEMA}')
        conn.exec_driver_sql(f'ALTER TABLE {SCHEMA}."{names[0]}" RENAME TO {table}')
        conn.exec_driver_sql(f"DELETE FROM {DB_STORE_SCHEMA}.backups")
        conn.exec_driver_sql("DELETE FROM public.alembic_version")


def bare_move_seconds(url: sa.URL, table: str) -> float:
    """The reference: ``ALTER TABLE .. RENAME`` + ``ALTER TABLE .. SET SCHEMA`` + ``COMMIT`` on a
    direct connection, what the move costs the database; then moved back (not timed)."""
    eng = bench_engine(url, autocommit=False)
    tmp = f"{table}_moving"
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()  # connected and warm
            conn.commit()
            t0 = time.perf_counter()
            conn.exec_driver_sql(f"ALTER TABLE {SCHEMA}.{table} RENAME TO {tmp}")
            conn.exec_driver_sql(f"ALTER TABLE {SCHEMA}.{tmp} SET SCHEMA {SCRATCH_SCHEMA}")
            conn.commit()
            seconds = time.perf_counter() - t0
            conn.exec_driver_sql(f"ALTER TABLE {SCRATCH_SCHEMA}.{tmp} SET SCHEMA {SCHEMA}")
            conn.exec_driver_sql(f"ALTER TABLE {SCHEMA}.{tmp} RENAME TO {table}")
            conn.commit()
    finally:
        eng.dispose()
    return seconds


# -- the Alembic project -------------------------------------------------------------------------
def revision_text(revision: str, message: str, body: str) -> str:
    """A revision file: its own base (down_revision None), so each case upgrades one step."""
    return (
        f'"""{message}\n\nRevision ID: {revision}\nRevises:\n"""\n'
        "from alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n    {body}\n\n\ndef downgrade():\n    pass\n"
    )


def make_project(
    folder: Path, url: sa.URL, drivers: list[str], level: int | None, store: str, move_rows: list[int]
) -> dict[str, Path]:
    """``alembic init`` (generic) + ``alembic-safety init``; one ini per driver; one revision
    per revision-step case.  Returns {driver: ini path}."""
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
        parser.set("alembic_safety", "store", store)  # the database cases add -x store=database
        if level is not None:
            parser.set("alembic_safety", "compression_level", str(level))
        path = folder / f"alembic-{driver}.ini"
        with path.open("w", encoding="utf-8") as fh:
            parser.write(fh)
        inis[driver] = path
    versions = folder / "migrations" / "versions"
    revisions = {
        REV_NOOP: ("bench: an empty revision", "pass"),
        REV_COLUMN: ("bench: drop a text column", f"op.drop_column({TABLE!r}, {TEXT_COLUMN!r})"),
        REV_WHERE: ("bench: delete 10% of the rows", f"op.execute({f'DELETE FROM {TABLE} WHERE {WHERE}'!r})"),
    }
    for rows in move_rows:
        revisions[rev_move(rows)] = (
            f"bench: drop a {rows}-row table",
            f"op.drop_table({MOVE_TABLE.format(rows=rows)!r})",
        )
    for rev, (message, body) in revisions.items():
        (versions / f"{rev}.py").write_text(revision_text(rev, message, body), encoding="utf-8")
    return inis


# -- measuring one process -----------------------------------------------------------------------
GNU_TIME = "/usr/bin/time"
# Fallback launcher when GNU time is absent: the console script's own code, plus the peak RSS
# of this interpreter's address space (VmHWM) written at exit.
_HWM_LAUNCHER = """\
import atexit, sys
rss_file = sys.argv.pop(1)
def _hwm():
    with open('/proc/self/status') as st:
        kib = next(line.split()[1] for line in st if line.startswith('VmHWM:'))
    with open(rss_file, 'w') as out:
        out.write(kib)
atexit.register(_hwm)
sys.argv[0] = {prog!r}
{entry}
"""
_ENTRIES = {
    "alembic-safety": "from alembic_safety.cli import main\nsys.exit(main())",
    "alembic": "from alembic.config import main\nsys.exit(main())",
}


@dataclass
class Run:
    seconds: float
    rss_kib: int | None
    code: int
    stdout: str
    stderr: str


def run_measured(cmd: list[str], env: dict[str, str], scratch: Path, *, python_tool: str | None = None) -> Run:
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
    * Without GNU time, a Python tool (``python_tool``: its console script's name) runs
      through a launcher that executes the console script's code and writes its own ``VmHWM``
      from /proc at exit: the high water mark of the address space exec created, so nothing
      inherited counts.  pg_dump's RSS is then not reported.
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
    elif python_tool is not None:
        launcher = _HWM_LAUNCHER.format(prog=python_tool, entry=_ENTRIES[python_tool])
        full = [sys.executable, "-c", launcher, str(rss_path), *cmd[1:]]
    else:
        full = cmd
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        # cwd: the throw-away project, as a user runs alembic; alembic.ini's prepend_sys_path = .
        # would otherwise put whatever folder the bench was started from first on sys.path
        proc = subprocess.run(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=scratch, check=False)
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
    seconds: list[float] = field(default_factory=list)  # the process's wall time
    inproc: list[float] = field(default_factory=list)  # take_backup's own time (audit log)
    step: list[float] = field(default_factory=list)  # the revision step's time (audit log)
    size: list[int] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)  # the move case's bare-SQL reference

    def med(self, name: str) -> float:
        values = getattr(self, name)
        return float(statistics.median(values)) if values else float("nan")


class ToolFailed(Exception):
    pass


def _tool_env(folder: Path) -> dict[str, str]:
    """The environment of alembic-safety and alembic.

    * alembic-safety reads ALEMBIC_SAFETY_<SETTING> variables: the child must see only our ini.
    * Bytecode: with PYTHONDONTWRITEBYTECODE set (as in some CI images) and an editable install,
      every start compiles the package from source, which an installed wheel never does.  The
      tools get their own bytecode cache in the bench folder instead (PYTHONPYCACHEPREFIX),
      filled by the warm-up runs, so each timed start is a normal, warm start.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ALEMBIC_SAFETY_") and k not in ("ALEMBIC_CONFIG", "PYTHONDONTWRITEBYTECODE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    return env


def _audit_events(folder: Path, offset: int) -> list[dict[str, object]]:
    path = folder / "backups" / "audit.jsonl"
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(offset)
        return [json.loads(line) for line in fh.read().decode("utf-8").splitlines() if line.strip()]


def _audit_size(folder: Path) -> int:
    path = folder / "backups" / "audit.jsonl"
    return path.stat().st_size if path.exists() else 0


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
        str(url.database),
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


def measure_ours(
    exe: str,
    ini: Path,
    folder: Path,
    eng: sa.Engine,
    series: Series,
    x_args: list[str],
    table: str = TABLE,
    *,
    more_tables: tuple[str, ...] = (),
) -> list[dict[str, object]]:
    """``alembic-safety [-x ...] -c INI backup bench --tables public.bench_rows[,more_tables]``;
    returns the audit events the backup wrote."""
    names = ",".join(f"{SCHEMA}.{t}" for t in (table, *more_tables))
    cmd = [exe, "-c", str(ini), *x_args, "backup", "bench", "--tables", names]
    offset = _audit_size(folder)
    run = run_measured(cmd, _tool_env(folder), folder, python_tool="alembic-safety")
    if run.code != 0:
        raise ToolFailed(f"alembic-safety exited {run.code}: {(run.stderr or run.stdout).strip()}")
    backup_id = next(
        (line.split()[1].rstrip(":") for line in run.stdout.splitlines() if line.startswith("Backup ")),
        None,
    )
    if backup_id is None:
        raise ToolFailed(f"cannot find the backup id in alembic-safety's output: {run.stdout!r}")
    events = [e for e in _audit_events(folder, offset) if e.get("backup_id") == backup_id]
    done = [e for e in events if e.get("event") == "backup_completed"]
    if not done:
        raise ToolFailed(f"no backup_completed event for {backup_id} in the audit log")
    series.seconds.append(run.seconds)
    if run.rss_kib is not None:
        series.rss_kib.append(run.rss_kib)
    series.inproc.append(float(str(done[-1]["seconds"])))
    series.size.append(int(str(done[-1]["bytes"])))  # stored bytes: .zst files, or snapshot table size
    series.rows.append(int(str(done[-1]["rows"])))
    path = folder / "backups" / backup_id
    if (path / "manifest.json").is_file():  # the files store
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        series.raw.append(sum(int(t.get("raw_bytes") or 0) for t in manifest["tables"]))
        shutil.rmtree(path)
    else:  # the database store: its copies live in the bench database's snapshot schema
        clear_store(eng)
    return events


@dataclass
class StepResult:
    backup_id: str | None
    moved: list[str]


def measure_step(
    alembic_exe: str, ini: Path, folder: Path, revision: str, series: Series, *, expect_backup: bool = True
) -> StepResult:
    """``alembic -c INI -x store=database upgrade REVISION``: the process's wall time and peak
    RSS, and from the audit log the step's and its backup's own seconds."""
    cmd = [alembic_exe, "-c", str(ini), "-x", "store=database", "upgrade", revision]
    offset = _audit_size(folder)
    run = run_measured(cmd, _tool_env(folder), folder, python_tool="alembic")
    if run.code != 0:
        raise ToolFailed(f"alembic upgrade {revision} exited {run.code}: {(run.stderr or run.stdout).strip()}")
    events = _audit_events(folder, offset)
    applied = [e for e in events if e.get("event") == "revision_applied" and e.get("revision") == revision]
    if not applied:
        raise ToolFailed(f"no revision_applied event for {revision} in the audit log")
    backup_id = applied[-1].get("backup_id")
    done = [e for e in events if e.get("event") == "backup_completed" and e.get("backup_id") == backup_id]
    if expect_backup and not done:
        raise ToolFailed(f"alembic upgrade {revision}: no snapshot was taken (stderr: {run.stderr.strip()})")
    series.seconds.append(run.seconds)
    if run.rss_kib is not None:
        series.rss_kib.append(run.rss_kib)
    series.step.append(float(str(applied[-1]["seconds"])))
    moved: list[str] = []
    if done:
        series.inproc.append(float(str(done[-1]["seconds"])))
        series.size.append(int(str(done[-1]["bytes"])))
        series.rows.append(int(str(done[-1]["rows"])))
        listed = done[-1].get("moved")
        moved = [str(m) for m in listed] if isinstance(listed, list) else []
    return StepResult(str(backup_id) if backup_id else None, moved)


# -- report ------------------------------------------------------------------------------------
def _mb(n: float) -> str:
    return "n/a" if math.isnan(n) else f"{n / MB:.1f}"


def _s(x: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def _rounds(values: list[float], digits: int = 2) -> str:
    return ", ".join(f"{x:.{digits}f}" for x in values)


@dataclass
class Verdict:
    case: str
    ours: str
    pg_dump: str
    ratio: str
    target: str
    result: str


def _pass(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def report(
    facts: dict[str, object],
    move_facts: dict[int, dict[str, object]],
    url: sa.URL,
    args: argparse.Namespace,
    pg: Series,
    files: dict[str, Series],
    dbwhole: dict[str, Series],
    steps: dict[str, Series],
    moves: dict[int, Series],
    noop: Series,
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> list[Verdict]:
    table_size = int(str(facts["table_size"]))
    rss_how = (
        "GNU time %M" if Path(GNU_TIME).exists() else "VmHWM at exit (no /usr/bin/time: pg_dump's RSS not measured)"
    )
    step_driver = args.drivers[0]
    pg_s = pg.med("seconds")
    width = 96
    print()
    print("=" * width)
    print(f"alembic-safety snapshot benchmark: medians of {args.rounds} round(s); MB = 10^6 bytes")
    print(f"  server   PostgreSQL {facts['version']}, {url.render_as_string(hide_password=True)}")
    print(
        f"  table    {SCHEMA}.{TABLE}: {int(str(facts['rows'])):,} rows, pg_table_size "
        f"{_mb(table_size)} MB (with indexes {_mb(int(str(facts['total_size'])))} MB)"
    )
    print(f"  machine  {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; peak RSS by {rss_how}")
    print(
        "  load     1/5/15-min load average at start "
        + "/".join(f"{x:.2f}" for x in loads[0])
        + ", at end "
        + "/".join(f"{x:.2f}" for x in loads[1])
    )
    print(
        f"  baseline pg_dump -Fc -t {SCHEMA}.{TABLE} (default compression), whole table, every round: "
        f"what a DBA would run today; median {_s(pg_s)} s"
    )
    print("  a CHECKPOINT runs (untimed) before every timed command")

    # -- whole-table backups --------------------------------------------------------------------
    print()
    print("whole-table backups: `alembic-safety backup --tables` against pg_dump, process wall time")
    level = args.compression_level if args.compression_level is not None else "tool default"
    if "files" in args.cases:
        how = (
            f"zstd level {level}, sha256 (always on), fsync"
            if args.store == "files"
            else "(targets were set for store = files)"
        )
        print(f"  files case:    store = {args.store}: {how}")
    if "db-whole" in args.cases:
        print(
            "  db-whole case: -x store=database: CREATE TABLE alembic_safety.<name> AS SELECT, "
            "checksum sum(hash_record_extended)"
        )
    head = f"  {'tool':<40}{'seconds':>9}{'in backup':>11}{'output MB':>11}{'peak RSS MB':>13}{'table MB/s':>12}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    rows: list[tuple[str, Series]] = [("pg_dump -Fc -t (default compression)", pg)]
    rows += [(f"files store [{d}]", s) for d, s in files.items()]
    rows += [(f"database store [{d}]", s) for d, s in dbwhole.items()]
    for label, ser in rows:
        secs = ser.med("seconds")
        print(
            f"  {label:<40}{_s(secs):>9}{_s(ser.med('inproc')):>11}{_mb(ser.med('size')):>11}"
            f"{_mb(ser.med('rss_kib') * 1024):>13}{table_size / MB / secs:>12.1f}"
        )
    print("  (in backup: the backup_completed event's seconds, inside take_backup; the rest of the")
    print("   process is interpreter start, imports, env.py, connecting and the commit)")
    print(f"  per round (s): pg_dump {_rounds(pg.seconds)}")
    for kind, group in (("files", files), ("database", dbwhole)):
        for driver, ser in group.items():
            extra = f"; COPY stream {_mb(ser.med('raw'))} MB" if ser.raw else ""
            print(f"  per round (s): {kind} [{driver}] {_rounds(ser.seconds)}; in backup {_rounds(ser.inproc)}{extra}")

    # -- snapshots taken by a revision step -----------------------------------------------------
    labels = {
        REV_COLUMN: f'1 column: op.drop_column("{TABLE}", "{TEXT_COLUMN}")',
        REV_WHERE: f'10% of rows: op.execute("DELETE FROM {TABLE} WHERE {WHERE}")',
    }
    if steps:
        print()
        print(f"snapshots taken by a revision step: `alembic upgrade` (store = database, {step_driver})")
        head = f"  {'revision':<70}{'backup s':>9}{'step s':>8}{'upgrade s':>11}{'rows':>11}{'stored MB':>11}"
        print(head)
        print("  " + "-" * (len(head) - 2))
        for rev, ser in steps.items():
            print(
                f"  {labels[rev]:<70}{_s(ser.med('inproc')):>9}{_s(ser.med('step')):>8}{_s(ser.med('seconds')):>11}"
                f"{int(ser.med('rows')):>11,}{_mb(ser.med('size')):>11}"
            )
        print("  backup s: the backup_completed event's seconds (our time below); step s: the revision_applied")
        print("  event's seconds (snapshot + the step's own work); upgrade s: the whole alembic process")
        for rev, ser in steps.items():
            print(f"  per round (s): {rev} backup {_rounds(ser.inproc)}; step {_rounds(ser.step)}")

    # -- drop-as-move ---------------------------------------------------------------------------
    if moves:
        print()
        print(f"drop-as-move: `alembic upgrade` of op.drop_table(...) (store = database, {step_driver})")
        sizes = list(moves)
        head = f"  {'':<50}" + "".join(f"{n:>15,}" for n in sizes)
        print(head + "  rows")
        print("  " + "-" * (len(head) - 2 + 6))

        def line(label: str, values: list[str]) -> None:
            print(f"  {label:<50}" + "".join(f"{v:>15}" for v in values))

        line("table size with indexes, MB", [_mb(int(str(move_facts[n]["total_size"]))) for n in sizes])
        line("revision step, s (revision_applied seconds)", [_s(moves[n].med("step"), 3) for n in sizes])
        line("  its backup, s (backup_completed seconds)", [_s(moves[n].med("inproc"), 3) for n in sizes])
        line("bare SQL RENAME + SET SCHEMA + COMMIT, s", [_s(moves[n].med("bare"), 4) for n in sizes])
        line("whole `alembic upgrade` process, s", [_s(moves[n].med("seconds")) for n in sizes])
        line("  same for an empty revision (baseline), s", [_s(noop.med("seconds"))] * len(sizes))
        line("peak RSS of `alembic upgrade`, MB", [_mb(moves[n].med("rss_kib") * 1024) for n in sizes])
        for n in sizes:
            ser = moves[n]
            print(
                f"  per round (s): {n:,} rows: step {_rounds(ser.step, 3)}; backup {_rounds(ser.inproc, 3)}; "
                f"bare {_rounds(ser.bare, 4)}; upgrade {_rounds(ser.seconds)}"
            )
        print(f"  per round (s): empty revision: upgrade {_rounds(noop.seconds)}; step {_rounds(noop.step, 3)}")

    # -- targets ----------------------------------------------------------------------------------
    verdicts: list[Verdict] = []
    pg_txt = f"{_s(pg_s)} s"
    for driver, ser in files.items():
        ratio = ser.med("seconds") / pg_s
        verdicts.append(
            Verdict(
                f"files store, whole table [{driver}]",
                f"{_s(ser.med('seconds'))} s",
                pg_txt,
                f"{ratio:.2f}",
                f"<= {FILES_RATIO_TARGET}",
                _pass(ratio <= FILES_RATIO_TARGET),
            )
        )
    for driver, ser in dbwhole.items():
        ratio = ser.med("seconds") / pg_s
        verdicts.append(
            Verdict(
                f"database store, whole table [{driver}]",
                f"{_s(ser.med('seconds'))} s",
                pg_txt,
                f"{ratio:.2f}",
                f"<= {DB_WHOLE_RATIO_TARGET}",
                _pass(ratio <= DB_WHOLE_RATIO_TARGET),
            )
        )
    step_names = {
        REV_COLUMN: "database store, 1 column (drop_column step)",
        REV_WHERE: "database store, 10% of rows (DELETE WHERE step)",
    }
    for rev, ser in steps.items():
        ratio = ser.med("inproc") / pg_s
        verdicts.append(Verdict(step_names[rev], f"{_s(ser.med('inproc'))} s", pg_txt, f"{ratio:.2f}", "none set", "-"))
    for n, ser in moves.items():
        step = ser.med("step")
        verdicts.append(
            Verdict(
                f"drop-as-move, {n:,} rows (revision step)",
                f"{_s(step, 3)} s",
                "-",
                "-",
                f"< {MOVE_TARGET_S} s",
                _pass(step < MOVE_TARGET_S),
            )
        )
    if len(moves) >= 2:
        small, large = min(moves), max(moves)
        a, b = moves[small].med("step"), moves[large].med("step")
        allowed = max(0.02, 0.25 * a)
        verdicts.append(
            Verdict(
                f"drop-as-move, growth {small:,} -> {large:,} rows",
                f"{b - a:+.3f} s",
                "-",
                "-",
                f"<= +{allowed:.3f} s",
                _pass(b - a <= allowed),
            )
        )
    for label, group in (("files store", files), ("database store", dbwhole)):
        for driver, ser in group.items():
            rss = ser.med("rss_kib") * 1024 / MB
            verdicts.append(
                Verdict(
                    f"peak RSS, {label} [{driver}]",
                    f"{_mb(rss * MB)} MB",
                    f"{_mb(pg.med('rss_kib') * 1024)} MB",
                    "-",
                    f"< {RSS_TARGET_MB:.0f} MB",
                    _pass(None if math.isnan(rss) else rss < RSS_TARGET_MB),
                )
            )
    print()
    print(f"summary: ours against pg_dump -Fc -t of the whole table ({pg_txt}), median of {args.rounds} round(s)")
    print("  whole-table rows time the process; revision-step rows time the snapshot inside the step")
    print("  (backup_completed seconds); the move rows time the whole revision step (revision_applied)")
    head = f"  {'case':<52}{'ours':>10}{'pg_dump':>10}{'ratio':>7}  {'target':<14}{'result':<6}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for v in verdicts:
        print(f"  {v.case:<52}{v.ours:>10}{v.pg_dump:>10}{v.ratio:>7}  {v.target:<14}{v.result:<6}")
    print("=" * width)
    print()
    print("markdown:")
    print()
    print("| case | ours | pg_dump | ratio | target | result |")
    print("|---|---:|---:|---:|---|---|")
    for v in verdicts:
        target = v.target.replace("<=", "≤")
        print(f"| {v.case} | {v.ours} | {v.pg_dump} | {v.ratio} | {target} | {v.result} |")
    return verdicts


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = server_url(args)
    except SetupError as exc:
        print(f"bench/snapshot.py: {exc}", file=sys.stderr)
        return 2
    drivers: list[str] = args.drivers
    cases: list[str] = args.cases
    bindir = Path(sys.executable).parent
    exe = str(bindir / "alembic-safety")
    if not Path(exe).exists():
        exe = shutil.which("alembic-safety") or exe
    alembic_exe = str(bindir / "alembic")
    if not Path(alembic_exe).exists():
        alembic_exe = shutil.which("alembic") or alembic_exe
    for tool in (exe, alembic_exe, args.pg_dump):
        if not Path(tool).exists():
            print(f"bench/snapshot.py: {tool} not found", file=sys.stderr)
            return 2
    uses_db = any(c != "files" for c in cases) or args.store != "files"
    step_cases = [rev for case, rev in (("db-column", REV_COLUMN), ("db-where", REV_WHERE)) if case in cases]
    move_rows: list[int] = args.move_rows if "move" in cases else []
    loads_start = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="alembic-safety-bench-", dir=args.workdir))
    code = 0
    created = False  # drop only a database this run created or reused (it carries our mark)
    eng: sa.Engine | None = None
    try:
        try:
            tables = {TABLE: args.rows, **{MOVE_TABLE.format(rows=n): n for n in move_rows}}
            created = True  # from here on the database is ours (prepare refuses any other)
            prepare_bench_db(url, tables, args.reuse)
            if uses_db:
                ensure_store(url)
        except sa.exc.OperationalError as exc:
            print(f"bench/snapshot.py: cannot reach PostgreSQL: {str(exc.orig).strip()}", file=sys.stderr)
            return 2
        except SetupError as exc:
            created = False
            print(f"bench/snapshot.py: {exc}", file=sys.stderr)
            return 2
        eng = bench_engine(url)
        facts = table_facts(eng)
        move_facts = {n: table_facts(eng, MOVE_TABLE.format(rows=n)) for n in move_rows}
        inis = make_project(folder, url, drivers, args.compression_level, args.store, move_rows)
        step_ini = inis[drivers[0]]
        pg = Series("pg_dump")
        files = {d: Series(d) for d in drivers} if "files" in cases else {}
        dbwhole = {d: Series(d) for d in drivers} if "db-whole" in cases else {}
        steps = {rev: Series(rev) for rev in step_cases}
        moves = {n: Series(str(n)) for n in move_rows}
        noop = Series(REV_NOOP)
        # warm-up, not reported: fills the tools' bytecode cache (every driver, both stores),
        # compiles the revision files, creates alembic_version
        warm_ups: list[list[str]] = ([[]] if files else []) + ([["-x", "store=database"]] if dbwhole else [])
        for driver in dict.fromkeys([*files, *dbwhole]):
            for x_args in warm_ups:
                measure_ours(exe, inis[driver], folder, eng, Series("warm-up"), x_args, WARMUP_TABLE)
        if step_cases or move_rows:
            measure_step(alembic_exe, step_ini, folder, REV_NOOP, Series("warm-up"), expect_backup=False)
        if uses_db:
            clear_store(eng)
        jobs = [("pg_dump", "")]
        jobs += [("files", d) for d in files]
        jobs += [("db-whole", d) for d in dbwhole]
        for rnd in range(args.rounds):
            tag = f"round {rnd + 1}/{args.rounds}:"
            order = jobs[rnd % len(jobs) :] + jobs[: rnd % len(jobs)]  # rotate: no tool always first
            for job, driver in order:
                checkpoint(eng)
                if job == "pg_dump":
                    measure_pg_dump(args, url, folder, pg)
                    print(f"{tag} pg_dump              {pg.seconds[-1]:7.2f} s", flush=True)
                elif job == "files":
                    measure_ours(exe, inis[driver], folder, eng, files[driver], [])
                    ser = files[driver]
                    print(
                        f"{tag} files    [{driver:<8}]  {ser.seconds[-1]:7.2f} s (in backup {ser.inproc[-1]:.2f})",
                        flush=True,
                    )
                else:
                    measure_ours(exe, inis[driver], folder, eng, dbwhole[driver], ["-x", "store=database"])
                    ser = dbwhole[driver]
                    print(
                        f"{tag} database [{driver:<8}]  {ser.seconds[-1]:7.2f} s (in backup {ser.inproc[-1]:.2f})",
                        flush=True,
                    )
            for rev in step_cases:
                checkpoint(eng)
                measure_step(alembic_exe, step_ini, folder, rev, steps[rev])
                ser = steps[rev]
                case = "db-column" if rev == REV_COLUMN else "db-where"
                print(
                    f"{tag} {case:<20} backup {ser.inproc[-1]:.2f} s, step {ser.step[-1]:.2f} s, "
                    f"upgrade {ser.seconds[-1]:.2f} s",
                    flush=True,
                )
                clear_store(eng)
                build_table(eng, TABLE, args.rows)  # put the column / the rows back
            if move_rows:
                checkpoint(eng)
                measure_step(alembic_exe, step_ini, folder, REV_NOOP, noop, expect_backup=False)
                clear_store(eng)
                print(
                    f"{tag} {'empty revision':<20} upgrade {noop.seconds[-1]:.2f} s, step {noop.step[-1]:.3f} s",
                    flush=True,
                )
            for n in move_rows:
                table = MOVE_TABLE.format(rows=n)
                ser = moves[n]
                checkpoint(eng)
                result = measure_step(alembic_exe, step_ini, folder, rev_move(n), ser)
                if result.moved != [table]:
                    raise ToolFailed(f"alembic upgrade {rev_move(n)}: {table} was not moved (moved: {result.moved})")
                move_back(eng, table)
                checkpoint(eng)
                ser.bare.append(bare_move_seconds(url, table))
                print(
                    f"{tag} move {n:>11,} rows  step {ser.step[-1]:.3f} s, backup {ser.inproc[-1]:.3f} s, "
                    f"bare SQL {ser.bare[-1]:.4f} s, upgrade {ser.seconds[-1]:.2f} s",
                    flush=True,
                )
        report(facts, move_facts, url, args, pg, files, dbwhole, steps, moves, noop, (loads_start, os.getloadavg()))
    except ToolFailed as exc:
        print(f"bench/snapshot.py: {exc}", file=sys.stderr)
        code = 1
    finally:
        if eng is not None:
            eng.dispose()
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
