"""Every use of a private or semi-private Alembic API lives here, so an Alembic upgrade that
changes one of them breaks in one place."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import alembic.context as _context_module
import alembic.op as _op_module
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

_ORIGINALS: dict[type, Callable[..., Any]] = {}


def current_migration_context() -> MigrationContext | None:
    """The MigrationContext whose migrations are running now (the ``op`` proxy's), if any."""
    proxy = _op_module.__dict__.get("_proxy")
    ctx = getattr(proxy, "migration_context", None)
    return ctx if isinstance(ctx, MigrationContext) else None


@contextmanager
def proxies_swapped(op_obj: Any, context_obj: Any) -> Iterator[None]:
    """Point the ``alembic.op`` and ``alembic.context`` module proxies at other objects for the
    duration (how a revision's ``upgrade()`` is recorded instead of run)."""
    prev_op = _op_module.__dict__.get("_proxy")
    prev_ctx = _context_module.__dict__.get("_proxy")
    _op_module.__dict__["_proxy"] = op_obj
    _context_module.__dict__["_proxy"] = context_obj
    try:
        yield
    finally:
        _op_module.__dict__["_proxy"] = prev_op
        _context_module.__dict__["_proxy"] = prev_ctx


def environment_context(context: Any) -> Any:
    """The EnvironmentContext behind ``alembic.context`` (or the object itself)."""
    if context is _context_module:
        return _context_module.__dict__.get("_proxy")
    return context


def add_version_apply_callback(ctx: MigrationContext, callback: Callable[..., None]) -> None:
    """Append an ``on_version_apply`` callback after ``context.configure()`` ran (idempotent)."""
    existing = tuple(ctx.on_version_apply_callbacks or ())
    if callback not in existing:
        ctx.on_version_apply_callbacks = (*existing, callback)


def emit_offline(ctx: MigrationContext, sql: str) -> None:
    """Write a statement into an offline (``--sql``) script, with the dialect's terminator."""
    ctx.impl.static_output(sql.rstrip() + ctx.impl.command_terminator)


def emit_offline_comment(ctx: MigrationContext, text: str) -> None:
    ctx.impl.static_output("\n".join(f"-- {line}" for line in text.splitlines()))


def original_implementation(op_cls: type) -> Callable[..., Any]:
    """Alembic's own implementation of an operation, even while ours replaces it."""
    return _ORIGINALS.get(op_cls) or Operations._to_impl._registry[(op_cls, "default")]


@contextmanager
def implementations_replaced(mapping: dict[type, Callable[..., Any]]) -> Iterator[None]:
    """``Operations.implementation_for(op, replace=True)`` for the duration, then Alembic's own
    implementations are put back (the registry is process-wide)."""
    saved = {cls: Operations._to_impl._registry[(cls, "default")] for cls in mapping}
    for cls, fn in mapping.items():
        _ORIGINALS[cls] = saved[cls]
        Operations.implementation_for(cls, replace=True)(fn)
    try:
        yield
    finally:
        for cls, fn in saved.items():
            Operations.implementation_for(cls, replace=True)(fn)
            _ORIGINALS.pop(cls, None)


def transaction_begun_by_env(ctx: MigrationContext) -> bool:
    """Whether env.py began the connection's transaction itself (before configure())."""
    return bool(getattr(ctx, "_in_external_transaction", False))


def render_op_lines(op: Any, migration_context: MigrationContext, *, render_as_batch: bool,
                    imports: set[str]) -> list[str]:  # fmt: skip
    """Alembic's Python rendering of one operation (what autogenerate writes into a revision);
    the imports the rendered code needs are added to ``imports``."""
    from alembic.autogenerate.api import AutogenContext
    from alembic.autogenerate.render import render_op

    opts = {"sqlalchemy_module_prefix": "sa.", "alembic_module_prefix": "op.", "render_item": None,
            "render_as_batch": render_as_batch, "user_module_prefix": None}  # fmt: skip
    chatter = logging.getLogger("alembic.runtime.plugins")  # "setting up autogenerate plugin ..."
    was = chatter.disabled
    chatter.disabled = True
    try:
        autogen = AutogenContext(migration_context, opts=opts)
    finally:
        chatter.disabled = was
    autogen.imports = imports
    # the renderer leaves indentation of batch blocks to mako's printer, as autogenerate does
    from mako.pygen import PythonPrinter  # type: ignore[import-untyped]

    buf = io.StringIO()
    printer = PythonPrinter(buf)
    for line in render_op(autogen, op):
        printer.writeline(line)
    printer.close()
    return [line for line in buf.getvalue().splitlines() if line.strip()]


# hooks.py keeps a revision's own upgrade()/downgrade() on its wrapper under this attribute
WRAPPED_ATTRIBUTE = "__alembic_safety_original__"


def own_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A revision's own function, not alembic-safety's wrapper around it (hooks.py)."""
    inner = getattr(fn, WRAPPED_ATTRIBUTE, fn)
    return inner if callable(inner) else fn


def step_transaction(ctx: MigrationContext) -> Any:
    """The transaction Alembic gives one migration step (``begin_transaction(_per_migration=True)``):
    env.py's own transaction when it runs everything in one, else one begun and committed here
    (``transaction_per_migration``, non-transactional DDL).  A context manager."""
    return ctx.begin_transaction(_per_migration=True)


def migration_steps(script: Any, target: str, current: Any, upgrade: bool) -> Any:
    """The steps ``command.upgrade``/``command.downgrade`` hand to env.py's ``run_migrations``,
    computed on an already loaded ScriptDirectory: a caller running many commands (verify)
    loads the revision files once instead of once per command."""
    if upgrade:
        return script._upgrade_revs(target, current)
    return script._downgrade_revs(target, current)
