"""The reverse of a revision whose upgrade could not be recorded completely (it uses the
connection, e.g. ``op.get_bind()``): computed by *comparing* the schema after it with the schema
before it, as ``alembic revision --autogenerate`` compares models with a database.

Alembic's ``produce_migrations`` (against the scratch database at the post-state, with the
reflected pre-state as the target metadata) gives the table-level operations; objects outside
tables (types, functions, views, triggers, policies, ...) come from the two :class:`SchemaState`
values: what the revision created is dropped, what it dropped or replaced is put back from its
recorded definition.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext

from .ops import Before, DownItem, Note, _create_index, _portable_table
from .schema import ObjectState, SchemaState
from .sql import reverse_sql

# the order objects are dropped in (dependants first) and created in (dependencies first)
_DROP_FIRST = ("policy", "trigger", "materialized view", "view", "function")
_CREATE_FIRST = ("schema", "extension", "type", "sequence", "function")
_DROP_LAST = ("type", "sequence", "schema")
_CREATE_LAST = ("view", "materialized view", "trigger", "policy", "comment", "grant")


def reverse_by_comparison(conn: sa.Connection, before: Before,
                          version_table: str = "alembic_version") -> list[DownItem]:  # fmt: skip
    """Operations that turn the database ``conn`` is connected to (the post-state) back into
    ``before`` (the pre-state)."""
    pre, post = before.state, _post_state(conn)
    out: list[DownItem] = []
    if pre is not None:
        out += _objects(pre, post, _DROP_FIRST, before, drop=True)
        out += _objects(pre, post, _CREATE_FIRST, before, drop=False)
    out += _table_ops(conn, before, post, version_table)
    if pre is not None:
        out += _objects(pre, post, _DROP_LAST, before, drop=True)
        out += _objects(pre, post, _CREATE_LAST, before, drop=False)
        for o in post.objects:
            if o.kind == "extension" and not pre.objects_of("extension", o.name):
                out.append(Note("manual", f"the upgrade created extension {o.name}; it is not dropped "
                                          "(other objects may use it): drop it here if nothing does"))  # fmt: skip
    return out


def _post_state(conn: sa.Connection) -> SchemaState:
    from .schema import reflect_state

    return reflect_state(conn)


def _same_column(op: alembic_ops.AlterColumnOp, before: Before, post: SchemaState) -> bool:
    pre = before.state
    if pre is None:
        return False
    a, b = pre.table(op.table_name, op.schema), post.table(op.table_name, op.schema)
    return a is not None and b is not None and a.column(op.column_name) == b.column(op.column_name)


def _table_ops(conn: sa.Connection, before: Before, post: SchemaState, version_table: str) -> list[DownItem]:
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return not (type_ == "table" and name == version_table)

    mc = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True,
                                                "include_object": include})  # fmt: skip
    script = produce_migrations(mc, before.metadata)
    ops = list(script.upgrade_ops.ops) if script.upgrade_ops is not None else []
    if before.dialect.name != "sqlite":  # batch blocks only where ALTER TABLE needs them
        ops = [sub for op in ops for sub in (op.ops if isinstance(op, alembic_ops.ModifyTableOps) else [op])]
    out: list[DownItem] = []
    for op in ops:
        if isinstance(op, alembic_ops.AlterColumnOp) and _same_column(op, before, post):
            continue  # a comparison artefact (e.g. a sequence default rendered two ways)
        if isinstance(op, alembic_ops.CreateTableOp):
            table = before.metadata.tables.get(f"{op.schema}.{op.table_name}" if op.schema else op.table_name)
            if table is not None:
                rebuilt = _portable_table(table, before)
                out.append(alembic_ops.CreateTableOp.from_table(rebuilt))
                indexes = sorted(rebuilt.indexes, key=lambda i: str(i.name))
                out += [_create_index(i) for i in indexes]
                continue
        out.append(op)
    return out


def _objects(pre: SchemaState, post: SchemaState, kinds: tuple[str, ...], before: Before,
             drop: bool) -> list[DownItem]:  # fmt: skip
    """Drop what the revision added (``drop``), or put back what it removed or changed."""
    out: list[DownItem] = []
    pre_keys = {o.key: o for o in pre.objects}
    post_keys = {o.key: o for o in post.objects}
    for kind in kinds:
        if drop:
            for key, o in post_keys.items():
                if o.kind == kind and key not in pre_keys:
                    out += _drop(o, before, pre)
                elif o.kind == kind and kind in ("view", "materialized view") \
                        and pre_keys[key].definition != o.definition:  # fmt: skip
                    out += _drop(o, before, pre)  # re-created from the old definition below
        else:
            for key, o in pre_keys.items():
                changed = key in post_keys and post_keys[key].definition != o.definition
                if o.kind == kind and (key not in post_keys or changed):
                    out += [alembic_ops.ExecuteSQLOp(stmt) for stmt in _statements(o.definition, before)]
    return out


def _drop(o: ObjectState, before: Before, pre: SchemaState) -> list[DownItem]:
    """The drop of an object the revision created: the reverse of its own definition."""
    out: list[DownItem] = []
    for item in reverse_sql(o.definition, before.dialect.name, pre):
        if item.kind == "sql" and item.text.upper().startswith(("DROP", "ALTER TABLE", "REVOKE", "COMMENT")):
            out.append(alembic_ops.ExecuteSQLOp(item.text))
        elif item.kind != "sql":
            out.append(Note(item.kind, item.text))
    return out


def _statements(definition: str, before: Before) -> list[str]:
    from .sql import split_statements

    return split_statements(definition, before.dialect.name)
