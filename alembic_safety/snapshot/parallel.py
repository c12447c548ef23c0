"""Parallel snapshot on PostgreSQL: several large tables copied at once, on several connections
that all read the migration's own snapshot.

When a step puts more than one large table at risk (estimated rows >= ``parallel_snapshot_min_rows``),
the files store copies them on up to ``parallel_snapshot_workers`` connections, the migration's own
included.  The order of events, inside the step's transaction:

1. the at-risk tables are locked (``SHARE ROW EXCLUSIVE``, :func:`.backup.lock_tables`): from here
   on no other session can change them until the step's transaction ends;
2. ``pg_export_snapshot()`` on the migration's connection: the snapshot of its transaction, taken
   after the locks are held;
3. each extra connection opens a ``REPEATABLE READ READ ONLY`` transaction, imports it with
   ``SET TRANSACTION SNAPSHOT`` and takes ``ACCESS SHARE`` on each table it copies (waiting at
   most ``lock_timeout``; a table it cannot lock is left to the migration's connection);
4. the migration's connection and the extra ones take tables from one queue, largest first.

Every connection therefore sees exactly the rows the migration's transaction sees, and the tables
are consistent with each other.  One condition: an importing transaction never sees the exporting
transaction's own uncommitted changes.  So the snapshot goes parallel only while the step's
transaction has written nothing yet (no transaction id assigned): with
``transaction_per_migration=True`` that is every step; with one transaction for the whole run, the
first step, and ``alembic-safety backup``.  Otherwise it stays serial and says why.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect

from ..sqlinfo import TableRef
from .engines import Engine, PgCopyEngine, driver_connection, table_clause
from .policy import SnapshotRequest

T = TypeVar("T")
READY_TIMEOUT = 10.0  # seconds the migration's connection waits for the others to connect
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")  # e.g. 00000003-0000001B-1


@dataclass(frozen=True)
class ParallelPlan:
    """How a step's tables are copied: ``connections`` at once (the migration's own included),
    taking ``order`` (positions in the request, largest first) from one queue."""

    connections: int
    order: tuple[int, ...]
    tables: tuple[TableRef, ...]  # schema-qualified, as the other connections must name them
    estimates: tuple[int, ...]  # estimated rows per position
    snapshot: str  # pg_export_snapshot() of the migration's transaction


@dataclass(frozen=True)
class Decision:
    """The plan, or why the copy stays serial (``reason`` empty when there was nothing to say:
    fewer than two large tables, parallel snapshot off, another database)."""

    plan: ParallelPlan | None
    reason: str = ""


@dataclass(frozen=True)
class ParallelResult(Generic[T]):
    results: tuple[T, ...]  # per position, in request order
    backend_pids: tuple[int, ...]  # the migration's connection first, then each extra one that copied


def estimate_rows(conn: sa.Connection, ref: TableRef, where: str | None) -> int:
    """The planner's row estimate of what the snapshot reads (free: EXPLAIN, nothing runs); it also
    covers tables never analysed, where ``pg_class.reltuples`` is -1."""
    t = table_clause(ref)
    query: sa.Select[Any] = sa.select(sa.literal_column("1")).select_from(t)
    if where is not None:
        query = query.where(sa.literal_column(where))
    compiled = query.compile(dialect=PGDialect(), compile_kwargs={"literal_binds": True})  # type: ignore[no-untyped-call]
    raw = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}").scalar_one()
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return int(plan[0]["Plan"]["Plan Rows"])


def _qualified(conn: sa.Connection, ref: TableRef) -> TableRef:
    """The table with its schema spelled out: the other connections may have another search_path."""
    if ref.schema is not None:
        return ref
    prep = conn.dialect.identifier_preparer
    schema = conn.execute(
        sa.text("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = to_regclass(:t)"), {"t": prep.format_table(table_clause(ref))}).scalar_one()  # fmt: skip
    return TableRef(ref.name, str(schema))


def decide(
    conn: sa.Connection, requests: Sequence[SnapshotRequest], engine: Engine, workers: int, min_rows: int
) -> Decision:
    """Whether (and how) to copy ``requests`` in parallel.  Call it after the tables are locked and
    before any of their rows is read: on success the migration's snapshot has just been exported."""
    if workers <= 1 or len(requests) < 2 or conn.dialect.name != "postgresql" or not isinstance(engine, PgCopyEngine):
        return Decision(None)
    estimates = tuple(estimate_rows(conn, r.table, r.where) for r in requests)
    large = sum(1 for e in estimates if e >= min_rows)
    if large < 2:
        return Decision(None)
    if conn.in_nested_transaction():
        return Decision(None, "the step runs inside a savepoint, whose snapshot cannot be exported")
    # an importing transaction does not see the exporter's own uncommitted changes: only a transaction
    # that has written nothing (no xid yet) shows the other connections what the step will see
    fn = "pg_current_xact_id_if_assigned" if (conn.dialect.server_version_info or (0,)) >= (13,) else (
        "txid_current_if_assigned")  # fmt: skip
    if conn.exec_driver_sql(f"SELECT {fn}() IS NOT NULL").scalar_one():
        return Decision(None, "the step's transaction has already written (an earlier step in the same transaction); "
                              "other connections could not see those changes")  # fmt: skip
    snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    if not _SNAPSHOT_ID.match(snapshot):
        return Decision(None, f"unexpected snapshot id {snapshot!r}")
    order = tuple(sorted(range(len(requests)), key=lambda i: -estimates[i]))
    tables = tuple(_qualified(conn, r.table) for r in requests)
    return Decision(ParallelPlan(min(workers, large), order, tables, estimates, snapshot))


class _Worker(threading.Thread):
    """One extra connection: imports the snapshot, then copies tables from the queue."""

    def __init__(self, engine: sa.Engine, plan: ParallelPlan, jobs: queue.SimpleQueue[int],
                 copy: Callable[[sa.Connection, int], Any], lock_timeout: float, shared: _Shared) -> None:  # fmt: skip
        super().__init__(name="alembic-safety-snapshot", daemon=True)
        self.engine, self.plan, self.jobs, self.copy = engine, plan, jobs, copy
        self.lock_timeout, self.shared = lock_timeout, shared
        self.pid: int | None = None
        self.copied = 0
        self.raw: Any = None  # the driver connection, for cancel()

    def run(self) -> None:
        try:
            conn = self.engine.connect()
        except Exception:  # e.g. max_connections: the migration's connection copies the rest
            self.shared.arrive()
            return
        try:
            with conn:
                self.raw = driver_connection(conn)
                imported = self._import(conn)
                self.shared.arrive()
                if not imported:
                    return
                while not self.shared.stop.is_set():
                    try:
                        position = self.jobs.get_nowait()
                    except queue.Empty:
                        return
                    if not self._lock(conn, position):
                        self.shared.give_back(position)
                        return  # the transaction is aborted: this connection is done
                    result = self.copy(conn, position)
                    self.shared.done(position, result)
                    self.copied += 1
        except BaseException as exc:  # handed to the migration's thread, which raises it
            self.shared.fail(exc)
        finally:
            self.raw = None

    def _import(self, conn: sa.Connection) -> bool:
        try:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{self.plan.snapshot}'")  # id checked by decide()
            self.pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"),
                         {"v": f"{max(1, int(self.lock_timeout * 1000))}ms"})  # fmt: skip
        except sa.exc.DBAPIError:
            return False
        return True

    def _lock(self, conn: sa.Connection, position: int) -> bool:
        """ACCESS SHARE before the first byte is written: a session queued for a stronger lock
        behind the migration's would otherwise block this connection while the migration waits
        for it.  A table it cannot lock in time goes back to the migration's connection."""
        prep = conn.dialect.identifier_preparer
        name = prep.format_table(table_clause(self.plan.tables[position]))
        try:
            conn.exec_driver_sql(f"LOCK TABLE {name} IN ACCESS SHARE MODE")
        except sa.exc.DBAPIError:
            return False
        return True

    def cancel(self) -> None:
        raw = self.raw
        if raw is not None:
            try:
                raw.cancel()
            except Exception:  # nothing running, or the connection already closed
                return


class _Shared:
    def __init__(self, workers: int) -> None:
        self.waiting = workers
        self.ready = threading.Event()
        if not workers:
            self.ready.set()
        self.lock = threading.Lock()
        self.results: dict[int, Any] = {}
        self.returned: list[int] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def arrive(self) -> None:
        """A worker is ready to copy (or gave up): once all are, every connection starts at once."""
        with self.lock:
            self.waiting -= 1
            if self.waiting <= 0:
                self.ready.set()

    def done(self, position: int, result: Any) -> None:
        with self.lock:
            self.results[position] = result

    def give_back(self, position: int) -> None:
        with self.lock:
            self.returned.append(position)

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(exc)
        self.stop.set()


def copy_parallel(
    conn: sa.Connection,
    plan: ParallelPlan,
    copy: Callable[[sa.Connection, int], T],
    lock_timeout: float,
) -> ParallelResult[T]:
    """Run ``copy(connection, position)`` for every position of the plan: the extra connections and
    the migration's own (``conn``) take positions from one queue.  The first error stops the others
    (their statements are cancelled) and is raised once every thread has ended."""
    jobs: queue.SimpleQueue[int] = queue.SimpleQueue()
    for position in plan.order:
        jobs.put(position)
    shared = _Shared(plan.connections - 1)
    workers = [_Worker(conn.engine, plan, jobs, copy, lock_timeout, shared) for _ in range(plan.connections - 1)]
    for w in workers:
        w.start()
    try:
        # the tables are shared out once every connection can take one (connecting takes a few
        # milliseconds; without the wait the migration's connection alone would copy small tables)
        shared.ready.wait(READY_TIMEOUT)
        while not shared.stop.is_set():
            try:
                position = jobs.get_nowait()
            except queue.Empty:
                break
            shared.done(position, copy(conn, position))
        if shared.errors:
            raise shared.errors[0]
        for w in workers:
            w.join()
        if shared.errors:
            raise shared.errors[0]
        for position in shared.returned:  # tables an extra connection could not lock
            shared.done(position, copy(conn, position))
    except BaseException:
        shared.stop.set()
        for w in workers:
            w.cancel()
        for w in workers:
            w.join()
        raise
    missing = [p for p in plan.order if p not in shared.results]
    if missing:  # cannot happen: every position is taken from the queue or given back
        raise RuntimeError(f"parallel snapshot lost table positions {missing}")
    pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    pids = (pid, *(w.pid for w in workers if w.copied and w.pid is not None))
    return ParallelResult(tuple(shared.results[i] for i in range(len(plan.order))), pids)
