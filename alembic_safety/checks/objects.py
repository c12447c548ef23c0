"""CHK3xx: database objects that are broken without any row being wrong."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from .base import Check, CheckContext, CheckFinding


class InvalidIndex(Check):
    """An index PostgreSQL marked ``INVALID`` (``pg_index.indisvalid = false``) or not ready:
    left by a ``CREATE INDEX CONCURRENTLY`` or ``REINDEX CONCURRENTLY`` that failed or was
    cancelled.  Queries do not use it, yet every write still maintains it; a unique one no
    longer guarantees anything.

    Bad::

        with op.get_context().autocommit_block():
            op.create_index("ix_orders_created", "orders", ["created_at"],
                            postgresql_concurrently=True)   # cancelled by a statement_timeout

    Good: drop it and build it again (``DROP INDEX CONCURRENTLY``, then ``CREATE INDEX
    CONCURRENTLY``), or ``REINDEX INDEX CONCURRENTLY`` it.
    """

    code = "CHK301"
    name = "objects.invalid-index"
    dialects = ("postgresql",)

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        scope = None if ctx.scope == "full" else ctx.tables
        for ix in ctx.catalog.bad_indexes(scope):
            kind = "unique index" if ix.unique else "index"
            yield self.finding(f"{kind} {ix.name} is INVALID (a failed or cancelled concurrent build): drop and "
                               "rebuild it", ix.table)  # fmt: skip


class SequenceBehind(Check):
    """A sequence that owns a column (``serial``, ``identity``) would hand out a value its
    column already holds: rows were inserted with explicit ids (``op.bulk_insert`` with
    ``id``, a data copy, a restore) and the sequence was not moved on, so the next insert that
    relies on the default fails with a duplicate key.  Compared with ``max(column)`` (an index
    lookup on a key column).

    Bad::

        op.bulk_insert(countries, [{"id": 1, "code": "FR"}, {"id": 2, "code": "DE"}])

    Good: move the sequence past the data in the same revision::

        op.execute("SELECT setval(pg_get_serial_sequence('countries', 'id'), "
                   "(SELECT max(id) FROM countries))")
    """

    code = "CHK302"
    name = "objects.sequence-behind"
    dialects = ("postgresql",)
    default_policy = "warn"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        for seq in ctx.catalog.owned_sequences(ctx.data_tables):
            if seq.increment <= 0:
                continue
            t = sa.table(seq.table.name, sa.column(seq.column), schema=seq.table.schema)
            top = ctx.conn.execute(sa.select(sa.func.max(t.c[seq.column]))).scalar()
            if top is not None and int(top) >= seq.next_value:
                yield self.finding(f"sequence {seq.sequence} would hand out {seq.next_value} next, but "
                                   f"{seq.table.key}.{seq.column} already reaches {top}: the next insert "
                                   "using the default fails; setval() it past the maximum", seq.table,
                                   [{seq.column: int(top)}])  # fmt: skip
