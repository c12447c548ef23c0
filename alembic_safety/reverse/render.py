"""Reversed operations -> the Python lines of a ``downgrade()`` body.

Operations are rendered by Alembic's own renderer (what autogenerate writes), notes become
``# MANUAL:`` comments or a ``raise alembic_safety.IrreversibleRevision(...)`` at the point
where the downgrade cannot go on.  The block around them comes from a Jinja template.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext

from .. import _compat
from ..templating import render
from .ops import DownItem, Note

BEGIN = "# >>> alembic-safety: generated downgrade"
END = "# <<< alembic-safety: end of generated downgrade"
TEMPLATE = "generate/downgrade_block.py.j2"
BASE_IMPORTS = ("from alembic import op", "import sqlalchemy as sa")
_BATCH_OPS = (alembic_ops.DropColumnOp, alembic_ops.AlterColumnOp, alembic_ops.AddConstraintOp,
              alembic_ops.DropConstraintOp)  # fmt: skip


def _register_renderers() -> None:
    """Alembic ships no Python renderer for ``rename_table`` (autogenerate never emits it); add
    one through its public extension point unless a project registered its own."""
    from alembic.autogenerate import renderers

    try:
        renderers.dispatch(alembic_ops.RenameTableOp)
        return
    except ValueError:
        pass

    @renderers.dispatch_for(alembic_ops.RenameTableOp)
    def _rename_table(autogen_context: object, op: alembic_ops.RenameTableOp) -> str:
        schema = f", schema={op.schema!r}" if op.schema else ""
        return f"op.rename_table({op.table_name!r}, {op.new_table_name!r}{schema})"


_register_renderers()


@dataclass(frozen=True)
class RenderedBody:
    lines: tuple[str, ...]  # the block between (and including) the markers, unindented
    imports: tuple[str, ...]
    manual: tuple[str, ...]
    irreversible: tuple[str, ...]


def body_hash(lines: Sequence[str]) -> str:
    """The hash of a block's content (marker lines excluded), indentation and trailing whitespace ignored."""
    content = "\n".join(line.strip() for line in lines)
    return hashlib.sha256(content.encode()).hexdigest()[:12]


def begin_marker(upgrade_hash: str, content_hash: str) -> str:
    return f"{BEGIN} (upgrade {upgrade_hash}, body {content_hash}); an edited block is kept, never overwritten"


def _batched(items: Sequence[DownItem], dialect: str) -> list[DownItem]:
    """On SQLite, table-level ops run in batch mode (ALTER TABLE cannot do them)."""
    if dialect != "sqlite":
        return list(items)
    out: list[DownItem] = []
    for item in items:
        if isinstance(item, _BATCH_OPS):
            table, schema = str(getattr(item, "table_name", "")), getattr(item, "schema", None)
            last = out[-1] if out else None
            if isinstance(last, alembic_ops.ModifyTableOps) and last.table_name == table and last.schema == schema:
                last.ops.append(item)
            else:
                out.append(alembic_ops.ModifyTableOps(table, [item], schema=schema))
        else:
            out.append(item)
    return out


def _comment(prefix: str, text: str) -> list[str]:
    wrapped = textwrap.wrap(text, width=96 - len(prefix)) or [""]
    return [f"# {prefix}{wrapped[0]}"] + [f"#   {line}" for line in wrapped[1:]]


def render_body(items: Sequence[DownItem], migration_context: MigrationContext, upgrade_hash: str) -> RenderedBody:
    dialect = migration_context.dialect.name
    imports: set[str] = set()
    lines: list[str] = []
    manual: list[str] = []
    irreversible: list[str] = []
    for item in _batched(items, dialect):
        if isinstance(item, Note):
            if item.kind == "irreversible":
                irreversible.append(item.text)
                lines += _comment("IRREVERSIBLE: ", item.text)
                message = (f"{item.text}; the data of this revision is in its pre-revision backup: "
                           "'alembic-safety backups', then 'alembic-safety rollback <backup id>'")  # fmt: skip
                lines.append(f"raise alembic_safety.IrreversibleRevision({message!r})")
                imports.add("import alembic_safety")
            else:
                manual.append(item.text)
                lines += _comment("MANUAL: ", item.text)
            continue
        rendered = _compat.render_op_lines(item, migration_context, render_as_batch=True, imports=imports)
        for chunk in rendered:
            lines.extend(chunk.splitlines())
    content = render(TEMPLATE, lines=lines).splitlines()
    body = [begin_marker(upgrade_hash, body_hash(content)), *content, END]
    needed = tuple(sorted(set(BASE_IMPORTS) | imports))
    return RenderedBody(tuple(body), needed, tuple(manual), tuple(irreversible))
