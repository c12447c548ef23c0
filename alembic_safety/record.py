"""Record a revision step's operations without running them.

The step's ``upgrade()``/``downgrade()`` is called against a recording ``Operations`` bound to
an offline MigrationContext of the live dialect: every ``op.*`` call is captured as Alembic's
own ``MigrateOperation`` object (ops are data) and nothing reaches the database.
``batch_alter_table`` blocks become ``ModifyTableOps``.  Whatever cannot be seen this way —
``op.get_bind()``/``context.get_bind()`` use, a function that raises, SQL that cannot be
parsed — is recorded as *opaque* with the reason.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from alembic.operations import BatchOperations, Operations
from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ClauseElement

from . import _compat
from .sqlinfo import SqlEffect, TableRef, analyze_sql


class _OpaqueBindUsed(Exception):
    """Raised inside the recorded function when it tries to use the database connection."""


@dataclass(frozen=True)
class Opaque:
    """Something in the step whose effect on data cannot be known without running it."""

    reason: str
    tables: tuple[TableRef, ...] = ()
    incomplete: bool = False  # the recording stopped here: what follows is unknown


@dataclass(frozen=True)
class RecordedStep:
    """A step's recorded operations and what could not be seen."""

    ops: tuple[alembic_ops.MigrateOperation, ...]
    opaque: tuple[Opaque, ...] = ()
    sql: tuple[tuple[int, tuple[SqlEffect, ...]], ...] = field(default=())  # (op index, effects)

    @property
    def complete(self) -> bool:
        return not any(o.incomplete for o in self.opaque)

    def effects_for(self, index: int) -> tuple[SqlEffect, ...]:
        for i, effects in self.sql:
            if i == index:
                return effects
        return ()


class _OpaqueBind:
    """Stands in for the connection during recording: the dialect is readable (revisions
    branch on ``bind.dialect.name``), anything else stops the recording as opaque."""

    def __init__(self, dialect: Dialect, sink: _Sink) -> None:
        self.dialect = dialect
        self.engine = self
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        # flagged before raising: a revision that swallows the exception is still opaque
        self._sink.bind_used(name)
        raise _OpaqueBindUsed(f"the revision uses the database connection (bind.{name})")

    def __enter__(self) -> _OpaqueBind:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Sink:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.ops: list[alembic_ops.MigrateOperation] = []
        self.opaque: list[Opaque] = []
        self.used = False

    def use_bind(self) -> _OpaqueBind:
        return _OpaqueBind(self.dialect, self)

    def bind_used(self, attribute: str) -> None:
        if not self.used:
            self.used = True
            self.opaque.append(Opaque(f"the revision reads or writes through the connection (bind.{attribute})"))


class _RecordingOperations(Operations):
    def __init__(self, migration_context: MigrationContext, sink: _Sink) -> None:
        super().__init__(migration_context)
        self._sink = sink

    def invoke(self, operation: Any) -> Any:
        self._sink.ops.append(operation)
        if isinstance(operation, alembic_ops.CreateTableOp):
            # revisions use the returned Table, e.g. for op.bulk_insert()
            return operation.to_table(self.migration_context)
        return None

    def get_bind(self) -> Any:
        return self._sink.use_bind()

    @contextmanager
    def batch_alter_table(  # type: ignore[override]
        self, table_name: str, schema: str | None = None, **kw: Any
    ) -> Iterator[BatchOperations]:
        inner: list[alembic_ops.MigrateOperation] = []
        batch = _RecordingBatch(self.migration_context, table_name, schema, inner, self._sink)
        yield batch
        self._sink.ops.append(alembic_ops.ModifyTableOps(table_name, inner, schema=schema))


class _RecordingBatch(BatchOperations):
    def __init__(
        self,
        migration_context: MigrationContext,
        table_name: str,
        schema: str | None,
        inner: list[alembic_ops.MigrateOperation],
        sink: _Sink,
    ) -> None:
        super().__init__(migration_context, impl=SimpleNamespace(table_name=table_name, schema=schema))  # type: ignore[arg-type]
        self._inner = inner
        self._sink = sink

    def invoke(self, operation: Any) -> Any:
        self._inner.append(operation)
        return None

    def get_bind(self) -> Any:
        return self._sink.use_bind()


class _RecordingEnvironment:
    """Stands in for ``alembic.context`` during recording: configuration and arguments come from
    the real environment, the migration context is the offline one, the bind is opaque."""

    def __init__(self, real: Any, offline: MigrationContext, sink: _Sink, offline_mode: bool) -> None:
        self._real = real
        self._offline = offline
        self._sink = sink
        self._offline_mode = offline_mode

    def get_context(self) -> MigrationContext:
        return self._offline

    def get_bind(self) -> Any:
        return self._sink.use_bind()

    def is_offline_mode(self) -> bool:
        return self._offline_mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def offline_context(dialect: Dialect, opts: dict[str, Any] | None = None) -> MigrationContext:
    """A MigrationContext that renders nothing anywhere: the recording target."""
    merged = {"as_sql": True, "output_buffer": io.StringIO(), "literal_binds": True}
    merged.update(opts or {})
    # configure() logs "Context impl ..." / "Generating static SQL": not news to the user here
    chatter = logging.getLogger("alembic.runtime.migration")
    was = chatter.disabled
    chatter.disabled = True
    try:
        return MigrationContext.configure(dialect=dialect, opts=merged)
    finally:
        chatter.disabled = was


def record(
    fn: Callable[..., Any],
    dialect: Dialect,
    *,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    environment: Any = None,
    offline_mode: bool = False,
    context_opts: dict[str, Any] | None = None,
    context: MigrationContext | None = None,
) -> RecordedStep:
    """Call ``fn`` with every ``op``/``context`` call captured; never touches a database.
    ``context``: an :func:`offline_context` to record into (one can serve every step of a run:
    nothing is executed through it), else a new one with ``context_opts``."""
    sink = _Sink(dialect)
    ctx = context if context is not None else offline_context(dialect, context_opts)
    recorder = _RecordingOperations(ctx, sink)
    env = _RecordingEnvironment(environment, ctx, sink, offline_mode)
    with _compat.proxies_swapped(recorder, env):
        try:
            fn(*args, **(kwargs or {}))
        except _OpaqueBindUsed:
            sink.opaque.append(Opaque("recording stopped at that point: the rest of the step is unknown",
                                      incomplete=True))  # fmt: skip
        except Exception as exc:  # a revision that cannot run offline is opaque, not fatal
            sink.opaque.append(Opaque(f"the function raised {type(exc).__name__}: {_one_line(exc)}", incomplete=True))
    return _analyze(sink, dialect)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def flatten(ops: tuple[alembic_ops.MigrateOperation, ...] | list[Any]) -> Iterator[alembic_ops.MigrateOperation]:
    """Ops with ModifyTableOps (batch blocks) expanded into their inner ops."""
    for op in ops:
        if isinstance(op, alembic_ops.OpContainer):
            yield from flatten(list(op.ops))
        else:
            yield op


def sql_text(op: alembic_ops.ExecuteSQLOp, dialect: Dialect) -> str:
    """The SQL of an ``op.execute``: strings as given, constructs compiled with literal values."""
    sqltext = op.sqltext
    if isinstance(sqltext, str):
        return sqltext
    if isinstance(sqltext, ClauseElement):
        return str(sqltext.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return str(sqltext)


def _analyze(sink: _Sink, dialect: Dialect) -> RecordedStep:
    sql: list[tuple[int, tuple[SqlEffect, ...]]] = []
    for index, op in enumerate(flatten(sink.ops)):
        if isinstance(op, alembic_ops.ExecuteSQLOp):
            try:
                text = sql_text(op, dialect)
            except Exception as exc:
                effects: tuple[SqlEffect, ...] = (
                    SqlEffect("opaque", "EXECUTE", reason=f"SQL construct could not be compiled: {_one_line(exc)}"),
                )
            else:
                effects = tuple(analyze_sql(text, dialect.name))
            sql.append((index, effects))
    return RecordedStep(ops=tuple(sink.ops), opaque=tuple(sink.opaque), sql=tuple(sql))
