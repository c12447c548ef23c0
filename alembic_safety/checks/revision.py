"""CHK4xx: the revision history and the database's place in it (health only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic.util import CommandError

from .base import Check, CheckContext, CheckFinding


class SingleHead(Check):
    """The revision history has one head, and the database is at one head.  Two heads mean two
    branches were merged in version control but not in Alembic: ``alembic upgrade head``
    refuses to run, and ``heads`` deploys both in an order nobody reviewed.

    Bad: two developers each add a revision on top of ``ab12``.

    Good: ``alembic merge heads -m "merge"`` and review the merge revision.
    """

    code = "CHK401"
    name = "revision.single-head"
    scope = "full"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        if ctx.script is not None:
            heads = ctx.script.get_heads()
            if len(heads) > 1:
                yield self.finding(f"the revision history has {len(heads)} heads ({', '.join(sorted(heads))}); "
                                   "merge them: alembic merge heads")  # fmt: skip
        if ctx.migration is not None:
            current = ctx.migration.get_current_heads()
            if len(current) > 1:
                yield self.finding(f"the database is at {len(current)} heads ({', '.join(sorted(current))})")


class KnownRevision(Check):
    """The database is at a revision this project knows.  An unknown revision means the
    database was migrated from another branch or a newer release than this code, or its
    revision files were deleted: ``upgrade`` and ``downgrade`` cannot plan from there.

    Bad: deploying an older release onto a database a newer one already migrated.

    Good: deploy the code that carries the database's revision, or ``alembic stamp`` the
    database after checking its schema by hand.
    """

    code = "CHK402"
    name = "revision.known"
    scope = "full"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        if ctx.script is None or ctx.migration is None:
            return
        for rev in ctx.migration.get_current_heads():
            try:
                known = ctx.script.get_revision(rev)
            except CommandError:
                known = None
            if known is None:
                yield self.finding(f"the database is at revision {rev}, which this project does not have")


class SchemaDrift(Check):
    """The database's schema differs from ``target_metadata`` (the comparison ``alembic
    check`` makes), while the database is at head: a model change without its revision, or a
    change made by hand.  Runs only when env.py passes ``target_metadata`` to
    ``context.configure``.

    Bad: adding ``Column("archived", Boolean)`` to a model and forgetting
    ``alembic revision --autogenerate``.

    Good: every model change ships with its revision; ``alembic check`` in CI.
    """

    code = "CHK403"
    name = "revision.schema-drift"
    scope = "full"
    default_policy = "warn"

    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        if ctx.migration is None or ctx.script is None:
            return
        metadata = ctx.migration.opts.get("target_metadata")
        if metadata is None or (isinstance(metadata, (list, tuple)) and not metadata):
            return
        if set(ctx.migration.get_current_heads()) != set(ctx.script.get_heads()):
            return  # a database behind head differs from the models by design
        from alembic.autogenerate import compare_metadata

        diffs = compare_metadata(ctx.migration, metadata)
        for diff in diffs[:50]:
            text = _describe(diff)
            if ctx.catalog.safety_schema in text:
                continue
            yield self.finding(f"the database differs from target_metadata: {text}")


def _describe(diff: Any) -> str:
    if isinstance(diff, list):
        return "; ".join(_describe(d) for d in diff)
    if isinstance(diff, tuple) and diff:
        parts = [str(diff[0])]
        for item in diff[1:]:
            name = getattr(item, "name", None)
            table = getattr(getattr(item, "table", None), "name", None)
            if name is not None:
                parts.append(f"{table}.{name}" if table and table != name else str(name))
            elif isinstance(item, (str, int)) or item is None:
                parts.append(str(item))
        return " ".join(p for p in parts if p != "None")
    return str(diff)
