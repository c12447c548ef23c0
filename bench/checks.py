"""Benchmark: the cost of the step checks against one anti-join scan of the touched table.

Run from the repository root::

    .venv/bin/python bench/checks.py [--rows 5000000] [--rounds 3] [--keep]
        [--url postgresql://postgres@127.0.0.1:5432/alembic_safety_bench_checks]

It builds ``customers`` (100,000 rows) and ``orders`` (``--rows`` rows, an index on
``customer_id``, a validated foreign key to ``customers`` and one to ``regions``) on PostgreSQL.
The step is the fast migration the checks must not slow down: ``op.add_column("orders", ...)``
plus ``op.create_foreign_key(..., postgresql_not_valid=True)`` — catalogue-only DDL that
takes milliseconds.  Each round, inside one transaction that is rolled back afterwards:

``reference``
    ``SELECT count(*) FROM orders o WHERE customer_id IS NOT NULL AND NOT EXISTS (SELECT 1
    FROM customers c WHERE c.id = o.customer_id)``: one anti-join scan of the touched table,
    what anyone verifying the new foreign key by hand would run.
``checks``
    what the hooks run around the step: the before-step row count (an estimate at this size)
    and, after the step, every step-scope check with its default policy on the tables the step
    touched and their foreign-key neighbours (the catalogue lookups, the anti-join of the
    ``NOT VALID`` key, the row-count guard, sequences, indexes, schema expectations).

It prints the medians and the ratio checks / reference (target: <= 1.5), PASS/MISS, and a
Markdown line for the README.  A measurement, not a test: it exits 0 whether the target is met
or missed (2 on setup errors).  The database (marked by a comment) is dropped at the end unless
``--keep``; ``--keep`` plus a second run reuses the tables when their row count matches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from alembic_safety.checks import StepFacts, run_checks
from alembic_safety.checks.data import measure
from alembic_safety.checks.step import catalog_for, step_context
from alembic_safety.config import SafetyConfig
from alembic_safety.record import record
from alembic_safety.snapshot.policy import risks_of

MARK = "alembic-safety bench/checks.py"
CUSTOMERS = 100_000


def step() -> None:
    import sqlalchemy as sa

    op.add_column("orders", sa.Column("note", sa.Text()))
    op.create_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"],
                          postgresql_not_valid=True)  # fmt: skip


def default_url() -> str:
    host = os.environ.get("ALEMBIC_SAFETY_PG_HOST", "127.0.0.1")
    port = os.environ.get("ALEMBIC_SAFETY_PG_PORT", "5432")
    user = os.environ.get("ALEMBIC_SAFETY_PG_USER", "postgres")
    return f"postgresql+psycopg2://{user}@{host}:{port}/alembic_safety_bench_checks"


def create_database(url: sa.URL) -> None:
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                      "WHERE datname = :d"), {"d": url.database}).first()  # fmt: skip
        if exists is not None and exists[0] != MARK:
            raise SystemExit(f"database {url.database} exists and is not this bench's; refusing to touch it")
        if exists is None:
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
            conn.execute(sa.text(f"COMMENT ON DATABASE \"{url.database}\" IS '{MARK}'"))
    admin.dispose()


def drop_database(url: sa.URL) -> None:
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def build(engine: sa.Engine, rows: int) -> None:
    with engine.begin() as conn:
        have = conn.execute(sa.text("SELECT to_regclass('orders') IS NOT NULL")).scalar()
        if have and conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == rows:
            print(f"reusing orders ({rows} rows)")
            return
        conn.execute(sa.text("DROP TABLE IF EXISTS orders, customers, regions"))
        conn.execute(sa.text("CREATE TABLE regions (id integer PRIMARY KEY, name text)"))
        conn.execute(sa.text("INSERT INTO regions SELECT g, 'r' || g FROM generate_series(1, 50) g"))
        conn.execute(sa.text("CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, "
                             "region_id integer NOT NULL REFERENCES regions (id))"))  # fmt: skip
        conn.execute(sa.text(f"INSERT INTO customers SELECT g, 'c' || g, g % 50 + 1 "
                             f"FROM generate_series(1, {CUSTOMERS}) g"))  # fmt: skip
        conn.execute(sa.text("CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id integer NOT NULL, "
                             "region_id integer NOT NULL REFERENCES regions (id), total numeric(10, 2) NOT NULL, "
                             "created_at timestamptz NOT NULL)"))  # fmt: skip
    t0 = time.monotonic()
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO orders (customer_id, region_id, total, created_at) SELECT g % :c + 1, g % 50 + 1, "
            "(g % 1000) / 10.0, now() - g * interval '1 second' FROM generate_series(1, :n) g"),
            {"c": CUSTOMERS, "n": rows})  # fmt: skip
        conn.execute(sa.text("CREATE INDEX ix_orders_customer_id ON orders (customer_id)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    print(f"built orders ({rows} rows) in {time.monotonic() - t0:.1f} s")


def one_round(engine: sa.Engine, config: SafetyConfig) -> tuple[float, float, int]:
    recorded = record(step, engine.dialect)
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            t0 = time.perf_counter()
            catalog = catalog_for(conn, None, config)
            before = {}
            for named in risks_of(recorded).named:
                ref = catalog.resolve(named)
                if ref is not None:
                    before[ref] = measure(catalog, ref, config.check_exact_rows)
            ours = time.perf_counter() - t0
            conn.execute(sa.text("ALTER TABLE orders ADD COLUMN note text"))  # the step itself (not timed)
            conn.execute(sa.text("ALTER TABLE orders ADD CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) "
                                 "REFERENCES customers (id) NOT VALID"))  # fmt: skip
            t0 = time.perf_counter()
            run = run_checks(step_context(conn, None, config, StepFacts("bench", "upgrade", recorded, before)))
            ours += time.perf_counter() - t0
            if run.errors:
                raise SystemExit(f"the checks refused the bench step: {run.errors[0].one_line()}")
            t0 = time.perf_counter()
            conn.execute(sa.text("SELECT count(*) FROM orders o WHERE customer_id IS NOT NULL AND NOT EXISTS "
                                 "(SELECT 1 FROM customers c WHERE c.id = o.customer_id)")).scalar()  # fmt: skip
            reference = time.perf_counter() - t0
        finally:
            trans.rollback()
    return ours, reference, len(run.ran)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = sa.make_url(args.url)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    try:
        create_database(url)
    except sa.exc.OperationalError as exc:
        print(f"cannot set up: {exc.orig}", file=sys.stderr)
        return 2
    engine = sa.create_engine(url)
    try:
        build(engine, args.rows)
        with tempfile.TemporaryDirectory() as tmp:
            config = SafetyConfig(backup_dir=Path(tmp))
            one_round(engine, config)  # warm the cache: both sides then read a warm table
            results = [one_round(engine, config) for _ in range(args.rounds)]
        ours = statistics.median(r[0] for r in results)
        ref = statistics.median(r[1] for r in results)
        ratio = ours / ref
        verdict = "PASS" if ratio <= 1.5 else "MISS"
        server = engine.dialect.server_version_info
        print(f"orders: {args.rows} rows; {results[0][2]} step checks; {args.rounds} rounds (medians)")
        print(f"  step checks (before + after the step): {ours:.3f} s")
        print(f"  one anti-join scan of orders:          {ref:.3f} s")
        print(f"  ratio {ratio:.2f} (target <= 1.5): {verdict}")
        print(f"\n| step checks, {args.rows:,}-row table with foreign keys (PostgreSQL "
              f"{'.'.join(map(str, server or ()))}) | {ours:.2f} s | anti-join scan {ref:.2f} s | {ratio:.2f} | "
              f"≤ 1.5 | {verdict.lower()} |")  # fmt: skip
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
