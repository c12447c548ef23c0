"""Benchmark: the rollback's whole-table restore on PostgreSQL against ``pg_restore --data-only``.

Run from the repository root::

    .venv/bin/python bench/restore.py [--rows 2000000] [--rounds 3] [--keep]
        [--url postgresql://postgres@127.0.0.1:5432/alembic_safety_bench_restore]

It creates its own database (marked by a comment; it refuses any other) with ``public.parent``
(50,000 rows) and ``public.big`` (``--rows`` rows: bigint primary key, an index on
``parent_id``, a foreign key to ``parent``; the columns of bench/snapshot.py plus
``parent_id``), and a throw-away Alembic project wired with ``alembic_safety.install(context)``
(store = database) whose one revision runs ``DELETE FROM big`` (its ``downgrade()`` is ``pass``).

Each round, in rotating order:

reference
    ``TRUNCATE big`` (untimed), then ``pg_restore --data-only -t big`` of a ``pg_dump -Fc``
    taken once at the start, into the live table (its primary key, index and foreign key in
    place, triggers on: what a DBA would run today).  Process wall time.
ours
    ``alembic upgrade`` of the revision (untimed: the hook snapshots the table, then the DELETE
    empties it), then ``alembic-safety rollback <backup> --mode replace --confirm CODE``.  Our
    time is the ``seconds`` of the ``rollback_step`` audit event of the ``restore-data`` step
    (the data step: comparable to pg_restore --data-only).  The whole process and the other
    steps are printed beside it.  After each rollback the table's count and order-independent
    checksum are compared with the original (a wrong restore stops the bench, exit 1).

A ``CHECKPOINT`` runs before every timed command.  It prints medians, the ratio (target
<= 0.25) with PASS/MISS and a Markdown row for the README; it is a measurement, not a test:
it exits 0 whether the target is met or missed (1 if a tool fails, 2 on setup errors), and
drops its database and folder at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from snapshot import GNU_TIME, Run, _audit_size, admin_engine, bench_engine, checkpoint, run_measured, with_driver
from snapshot import _audit_events as _audit
from snapshot import _tool_env as tool_env

DEFAULT_DB = "alembic_safety_bench_restore"
MARK = "alembic_safety bench database: bench/restore.py drops it at will"
PARENT_ROWS = 50_000
RATIO_TARGET = 0.25
REV = "bench_wipe"
STORE_SCHEMA = "alembic_safety"
RESTORE_STEP = "restore-data"  # rollback_plan.RESTORE


class SetupError(Exception):
    """The benchmark cannot run here (exit 2)."""


class ToolFailed(Exception):
    """A tool failed or the restore was wrong (exit 1)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows in public.big (default 2,000,000)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3); medians reported")
    p.add_argument("--url", help="server and bench database, e.g. "
                   f"postgresql://postgres@127.0.0.1:5432/{DEFAULT_DB}")  # fmt: skip
    p.add_argument("--driver", default="psycopg2", help="SQLAlchemy driver of the tools (default psycopg2)")
    p.add_argument("--pg-dump", default=shutil.which("pg_dump") or "/usr/bin/pg_dump")
    p.add_argument("--pg-restore", default=shutil.which("pg_restore") or "/usr/bin/pg_restore")
    p.add_argument("--workdir", help="parent folder of the temporary project (default: system temp)")
    p.add_argument("--keep", action="store_true", help="keep the database and the folder")
    args = p.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        p.error("--rows and --rounds must be at least 1")
    return args


def server_url(args: argparse.Namespace, default_db: str = DEFAULT_DB) -> sa.URL:
    """The bench database's URL: --url, else the test servers' environment variables."""
    if args.url:
        url = sa.make_url(args.url)
        if url.get_backend_name() != "postgresql":
            raise SetupError("--url must be a postgresql:// URL")
        url = url.set(drivername="postgresql")
        return url if url.database else url.set(database=default_db)
    return sa.URL.create(
        "postgresql",
        username=os.environ.get("ALEMBIC_SAFETY_PG_USER", "postgres"),
        host=os.environ.get("ALEMBIC_SAFETY_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("ALEMBIC_SAFETY_PG_PORT", "5432")),
        database=default_db,
    )


# -- database ------------------------------------------------------------------------------------
def _mark(conn: sa.Connection, name: str) -> str | None:
    row = conn.execute(sa.text("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
                               "WHERE datname = :n"), {"n": name}).first()  # fmt: skip
    return None if row is None else str(row[0])


def drop_db(url: sa.URL, bench_mark: str = MARK) -> None:
    """Drop the bench database: only one that carries ``bench_mark`` (its creator's comment)."""
    eng = admin_engine(url)
    try:
        with eng.connect() as conn:
            mark = _mark(conn, str(url.database))
            if mark is None:
                return
            if mark != bench_mark:
                raise SetupError(f"refusing to drop database {url.database!r}: not created by this script")
            conn.exec_driver_sql(f"DROP DATABASE {conn.dialect.identifier_preparer.quote(str(url.database))} "
                                 "WITH (FORCE)")  # fmt: skip
    finally:
        eng.dispose()


def create_db(url: sa.URL, bench_mark: str = MARK) -> None:
    """(Re)create the bench database, marked with ``bench_mark``; refuses a database without it."""
    eng = admin_engine(url)
    try:
        with eng.connect() as conn:
            mark = _mark(conn, str(url.database))
            if mark is not None and mark != bench_mark:
                raise SetupError(f"database {url.database!r} exists and was not created by this script")
    finally:
        eng.dispose()
    drop_db(url, bench_mark)
    eng = admin_engine(url)
    try:
        with eng.connect() as conn:
            q = conn.dialect.identifier_preparer.quote(str(url.database))
            conn.exec_driver_sql(f"CREATE DATABASE {q}")
            conn.execute(sa.text(f"COMMENT ON DATABASE {q} IS :mark"), {"mark": bench_mark})
    finally:
        eng.dispose()


def build(eng: sa.Engine, rows: int) -> None:
    t0 = time.perf_counter()
    print(f"building public.parent ({PARENT_ROWS:,} rows) and public.big ({rows:,} rows) ...", flush=True)
    with eng.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id integer PRIMARY KEY, name text NOT NULL)")
        conn.execute(sa.text("INSERT INTO parent SELECT i, 'parent ' || i FROM generate_series(1, :n) AS i"),
                     {"n": PARENT_ROWS})  # fmt: skip
        conn.exec_driver_sql("""
            CREATE TABLE big (
                id         bigint        NOT NULL,
                parent_id  integer       NOT NULL,
                n          integer       NOT NULL,
                created_at timestamptz   NOT NULL,
                note       text          NOT NULL,
                payload    jsonb         NOT NULL,
                amount     numeric(12,2) NOT NULL
            )""")
        conn.execute(sa.text("""
            INSERT INTO big
            SELECT i, 1 + (i * 7919) % :parents, (i * 7919) % 100000,
                   timestamptz '2020-01-01 00:00:00+00' + i * interval '17 seconds',
                   substr(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text), 1, (40 + i % 41)::int),
                   jsonb_build_object('k', i % 1000, 'ok', i % 3 = 0, 'tag', 'tag-' || (i % 97)),
                   ((i * 7907) % 100000000) / 100.0
            FROM generate_series(1::bigint, :rows) AS i"""), {"rows": rows, "parents": PARENT_ROWS})
        conn.exec_driver_sql("ALTER TABLE big ADD CONSTRAINT big_pkey PRIMARY KEY (id)")
        conn.exec_driver_sql("CREATE INDEX big_parent_id_idx ON big (parent_id)")
        conn.exec_driver_sql("ALTER TABLE big ADD CONSTRAINT big_parent_id_fkey FOREIGN KEY (parent_id) "
                             "REFERENCES parent (id)")  # fmt: skip
        conn.exec_driver_sql("VACUUM ANALYZE parent")
        conn.exec_driver_sql("VACUUM ANALYZE big")
    print(f"  built in {time.perf_counter() - t0:.1f} s", flush=True)


def fingerprint(eng: sa.Engine) -> tuple[int, str]:
    """Row count and an order-independent checksum of big; it must come back exactly."""
    with eng.connect() as conn:
        count, total = conn.exec_driver_sql(
            "SELECT count(*), coalesce(sum(hash_record_extended(b.*, 0)::numeric), 0)::text FROM big AS b").one()
    return int(count), str(total)


def shape(eng: sa.Engine) -> list[str]:
    """The indexes and constraints of big, as the catalogue prints them (and whether valid)."""
    with eng.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT pg_get_indexdef(indexrelid) || ' valid=' || indisvalid FROM pg_index "
            "WHERE indrelid = 'public.big'::regclass UNION ALL "
            "SELECT conname || ' ' || pg_get_constraintdef(oid) || ' validated=' || convalidated "
            "FROM pg_constraint WHERE conrelid = 'public.big'::regclass ORDER BY 1").scalars().all()
    return [str(r) for r in rows]


def clear_store(eng: sa.Engine) -> None:
    """Drop every snapshot table and catalogue row; forget the applied revision."""
    with eng.connect() as conn:
        names = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename ~ :p"),
                             {"s": STORE_SCHEMA, "p": "^b[0-9]{8}t[0-9]{12}z_[0-9]{3}$"}).scalars().all()  # fmt: skip
        for name in names:
            conn.exec_driver_sql(f'DROP TABLE {STORE_SCHEMA}."{name}"')
        if conn.exec_driver_sql(f"SELECT to_regclass('{STORE_SCHEMA}.backups')").scalar() is not None:
            conn.exec_driver_sql(f"DELETE FROM {STORE_SCHEMA}.backups")
        if conn.exec_driver_sql("SELECT to_regclass('public.alembic_version')").scalar() is not None:
            conn.exec_driver_sql("DELETE FROM public.alembic_version")


# -- the Alembic project -------------------------------------------------------------------------
def make_project(folder: Path, url: sa.URL, driver: str) -> Path:
    from alembic import command
    from alembic.config import Config

    from alembic_safety.wiring import apply_changes, plan_init

    ini = folder / "alembic.ini"
    with contextlib.redirect_stdout(io.StringIO()):
        command.init(Config(str(ini)), str(folder / "migrations"), template="generic")
    apply_changes([c for c in plan_init(ini, folder / "migrations" / "env.py") if c.changed])
    parser = configparser.RawConfigParser()
    parser.read(ini, encoding="utf-8")
    parser.set("alembic", "sqlalchemy.url",
               with_driver(url, driver).render_as_string(hide_password=False).replace("%", "%%"))  # fmt: skip
    parser.set("alembic_safety", "backup_dir", str(folder / "backups").replace("%", "%%"))
    parser.set("alembic_safety", "store", "database")
    parser.set("alembic_safety", "keep", "0")
    with ini.open("w", encoding="utf-8") as fh:
        parser.write(fh)
    (folder / "migrations" / "versions" / f"{REV}.py").write_text(
        f'"""bench: empty big\n\nRevision ID: {REV}\nRevises:\n"""\nfrom alembic import op\n\n'
        f"revision = {REV!r}\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n"
        'def upgrade():\n    op.execute("DELETE FROM big")\n\n\ndef downgrade():\n    pass\n',
        encoding="utf-8")  # fmt: skip
    return ini


def _check(run: Run, what: str) -> Run:
    if run.code != 0:
        raise ToolFailed(f"{what} exited {run.code}: {(run.stderr or run.stdout).strip()[-2000:]}")
    return run


@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)  # what is compared
    process: list[float] = field(default_factory=list)  # the whole process (ours)
    steps: dict[str, list[float]] = field(default_factory=dict)  # every rollback step (ours)
    details: list[str] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)  # peak RSS of the rollback process (ours)

    @staticmethod
    def med(values: list[float]) -> float:
        return float(statistics.median(values)) if values else float("nan")


def pg_args(url: sa.URL) -> list[str]:
    return ["-w", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
            "-d", str(url.database)]  # fmt: skip


def pg_env(url: sa.URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def measure_pg_restore(args: argparse.Namespace, url: sa.URL, eng: sa.Engine, dump: Path, folder: Path,
                       series: Series) -> None:  # fmt: skip
    with eng.connect() as conn:
        conn.exec_driver_sql("TRUNCATE big")
    checkpoint(eng)
    cmd = [args.pg_restore, "--data-only", "--no-owner", "-t", "big", *pg_args(url), str(dump)]
    run = _check(run_measured(cmd, pg_env(url), folder), "pg_restore")
    series.seconds.append(run.seconds)


def measure_ours(exe: str, alembic_exe: str, ini: Path, folder: Path, eng: sa.Engine, series: Series) -> None:
    env = tool_env(folder)
    _check(run_measured([alembic_exe, "-c", str(ini), "upgrade", REV], env, folder, python_tool="alembic"),
           f"alembic upgrade {REV}")  # fmt: skip
    listing = run_measured([exe, "-c", str(ini), "backups", "--format", "json"], env, folder,
                           python_tool="alembic-safety")  # fmt: skip
    listed = json.loads(_check(listing, "alembic-safety backups").stdout)
    backup_id = next(b["id"] for b in listed if b["kind"] == "pre-revision" and b["revision_to"] == REV)
    dry = run_measured([exe, "-c", str(ini), "rollback", backup_id, "--mode", "replace", "--dry-run", "--format",
                        "json"], env, folder, python_tool="alembic-safety")  # fmt: skip
    plan = json.loads(_check(dry, "alembic-safety rollback --dry-run").stdout)
    checkpoint(eng)
    offset = _audit_size(folder)
    run = _check(run_measured([exe, "-c", str(ini), "rollback", backup_id, "--mode", "replace", "--confirm",
                               plan["confirmation_code"], "--format", "json"], env, folder,
                              python_tool="alembic-safety"), "alembic-safety rollback")  # fmt: skip
    result = json.loads(run.stdout)
    if not result.get("ok"):
        raise ToolFailed(f"the rollback reported a problem: {json.dumps(result)[:2000]}")
    steps = [e for e in _audit(folder, offset) if e.get("event") == "rollback_step"]
    restore = [float(str(e["seconds"])) for e in steps if e.get("kind") == RESTORE_STEP]
    if len(restore) != 1:
        raise ToolFailed(f"expected one {RESTORE_STEP} step in the audit log, found {len(restore)}")
    series.seconds.append(restore[0])
    series.process.append(run.seconds)
    if run.rss_kib is not None:
        series.rss_kib.append(run.rss_kib)
    for e in steps:
        series.steps.setdefault(str(e["kind"]), []).append(float(str(e["seconds"])))
    big = next((t for t in result["tables"] if t["table"].endswith("big")), None)
    series.details.append(str(big["detail"]) if big else "")
    clear_store(eng)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = server_url(args)
    except SetupError as exc:
        print(f"bench/restore.py: {exc}", file=sys.stderr)
        return 2
    bindir = Path(sys.executable).parent
    exe = str(bindir / "alembic-safety") if (bindir / "alembic-safety").exists() else shutil.which("alembic-safety")
    alembic_exe = str(bindir / "alembic") if (bindir / "alembic").exists() else shutil.which("alembic")
    for tool in (exe, alembic_exe, args.pg_dump, args.pg_restore):
        if not tool or not Path(tool).exists():
            print(f"bench/restore.py: {tool} not found", file=sys.stderr)
            return 2
    assert exe is not None and alembic_exe is not None
    loads_start = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="alembic-safety-bench-restore-", dir=args.workdir))
    created = False
    eng: sa.Engine | None = None
    code = 0
    try:
        try:
            create_db(url)
            created = True
            eng = bench_engine(url)
            build(eng, args.rows)
        except sa.exc.OperationalError as exc:
            print(f"bench/restore.py: cannot reach PostgreSQL: {str(exc.orig).strip()}", file=sys.stderr)
            return 2
        except SetupError as exc:
            print(f"bench/restore.py: {exc}", file=sys.stderr)
            return 2
        original, original_shape = fingerprint(eng), shape(eng)
        with eng.connect() as conn:
            size = int(conn.exec_driver_sql("SELECT pg_table_size('public.big')").scalar_one())
            total = int(conn.exec_driver_sql("SELECT pg_total_relation_size('public.big')").scalar_one())
            version = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        dump = folder / "big.dump"
        _check(run_measured([args.pg_dump, "-Fc", "-t", "public.big", "-f", str(dump), *pg_args(url)], pg_env(url),
                            folder), "pg_dump")  # fmt: skip
        ini = make_project(folder, url, args.driver)
        pg, ours = Series(), Series()
        jobs = ["pg_restore", "ours"]
        for rnd in range(args.rounds):
            tag = f"round {rnd + 1}/{args.rounds}:"
            for job in jobs[rnd % 2 :] + jobs[: rnd % 2]:
                if job == "pg_restore":
                    measure_pg_restore(args, url, eng, dump, folder, pg)
                    print(f"{tag} pg_restore --data-only        {pg.seconds[-1]:7.2f} s", flush=True)
                else:
                    measure_ours(exe, alembic_exe, ini, folder, eng, ours)
                    print(f"{tag} rollback restore-data step    {ours.seconds[-1]:7.2f} s "
                          f"(whole rollback process {ours.process[-1]:.2f} s)", flush=True)  # fmt: skip
                if fingerprint(eng) != original or shape(eng) != original_shape:
                    raise ToolFailed(f"after {job} the table differs from the original (rows, checksum, "
                                     "indexes or constraints)")  # fmt: skip
        ratio = ours.med(ours.seconds) / pg.med(pg.seconds)
        verdict = "PASS" if ratio <= RATIO_TARGET else "MISS"
        loads_end = os.getloadavg()
        width = 96
        print()
        print("=" * width)
        print(f"alembic-safety restore benchmark: medians of {args.rounds} round(s)")
        print(f"  server   PostgreSQL {version}, {url.render_as_string(hide_password=True)}")
        print(f"  table    public.big: {original[0]:,} rows, {size / 1e6:.1f} MB ({total / 1e6:.1f} MB with "
              f"indexes); primary key, index on parent_id, foreign key to parent ({PARENT_ROWS:,} rows)")  # fmt: skip
        print(f"  machine  {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; driver {args.driver}; "
              f"GNU time {'yes' if Path(GNU_TIME).exists() else 'no'}")  # fmt: skip
        print("  load     1/5/15-min load average at start " + "/".join(f"{x:.2f}" for x in loads_start)
              + ", at end " + "/".join(f"{x:.2f}" for x in loads_end))  # fmt: skip
        print()
        print(f"  pg_restore --data-only -t big into the live table     {pg.med(pg.seconds):7.2f} s  "
              f"(rounds: {', '.join(f'{x:.2f}' for x in pg.seconds)})")  # fmt: skip
        print(f"  rollback --mode replace, restore-data step            {ours.med(ours.seconds):7.2f} s  "
              f"(rounds: {', '.join(f'{x:.2f}' for x in ours.seconds)})")  # fmt: skip
        print(f"  rollback --mode replace, whole process                {ours.med(ours.process):7.2f} s")
        for kind, values in ours.steps.items():
            print(f"    step {kind:<22} {ours.med(values):7.2f} s")
        if ours.details:
            print(f"  restore detail: {ours.details[-1]}")
        print()
        print(f"  ratio (restore-data step / pg_restore) {ratio:.3f}, target <= {RATIO_TARGET}: {verdict}")
        print("=" * width)
        print()
        print("markdown:")
        print()
        print("| case | ours | pg_restore | ratio | target | result |")
        print("|---|---:|---:|---:|---|---|")
        print(f"| whole-table restore, {original[0]:,} rows (rollback `restore-data` step) | "
              f"{ours.med(ours.seconds):.2f} s | {pg.med(pg.seconds):.2f} s | {ratio:.2f} | ≤ {RATIO_TARGET} | "
              f"{verdict.lower()} |")  # fmt: skip
    except ToolFailed as exc:
        print(f"bench/restore.py: {exc}", file=sys.stderr)
        code = 1
    finally:
        if eng is not None:
            eng.dispose()
        if args.keep:
            print(f"kept: database {url.database}, folder {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            if created:
                try:
                    drop_db(url)
                except (sa.exc.OperationalError, SetupError) as exc:
                    print(f"bench/restore.py: could not drop {url.database}: {exc}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
