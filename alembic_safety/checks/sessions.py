"""CHK5xx: other sessions that hold the database back (health only)."""

from __future__ import annotations

from collections.abc import Iterable

from .base import Check, CheckContext, CheckFinding


class LongTransaction(Check):
    """Another session has kept a transaction open longer than ``long_transaction``: it holds
    its locks, keeps old row versions from being vacuumed (PostgreSQL) and makes the next
    migration's ``ALTER TABLE`` wait behind it — while everything else queues behind the
    migration.

    Bad: a console session left at ``BEGIN;`` over the weekend; a worker that opens a
    transaction per job and never commits an idle one.

    Good: ``idle_in_transaction_session_timeout`` (PostgreSQL) or ``wait_timeout``; end the
    session before migrating.
    """

    code = "CHK501"
    name = "sessions.long-transaction"
    scope = "full"
    default_policy = "warn"
    dialects = ("postgresql", "mysql")

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        for tx in ctx.catalog.long_transactions(ctx.config.long_transaction) or []:
            yield self.finding(f"session {tx['pid']} has had a transaction open for {tx['seconds']:.0f} s "
                               f"({tx['state']})", None, [tx])  # fmt: skip


class BlockedLocks(Check):
    """Sessions are waiting for locks other sessions hold.  During a migration this is the
    queue that turns a one-second ``ALTER TABLE`` into an outage.

    Bad: running ``alembic upgrade`` while a long report holds ``ACCESS SHARE`` on the table
    the revision alters (without ``lock_timeout``).

    Good: set ``lock_timeout`` for migrations and retry; find the blocker (``blocked_by``)
    and end it.
    """

    code = "CHK502"
    name = "sessions.blocked-locks"
    scope = "full"
    default_policy = "warn"
    dialects = ("postgresql", "mysql")

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        for w in ctx.catalog.blocked() or []:
            yield self.finding(f"session {w['pid']} has waited {w['seconds']:.0f} s for a lock held by "
                               f"{', '.join(str(b) for b in w['blocked_by'])}", None, [w])  # fmt: skip
