"""What a restore may write: never more than the revision's own snapshot could have covered.

A files-store manifest is a file beside the data: whoever can edit it chooses the names a
restore writes to (the tables' ``schema``/``name`` become INSERT/UPDATE targets, the recorded
``ddl`` is executed to re-create a dropped table).  Its checksums do not help — they cover the
rows, not the names, and can be recomputed.  The trusted source is the revision file itself: a
snapshot before a step holds tables of the default schema and of the schemas the step names
(policy.py: ``at-risk``/``touched`` take named tables, ``all`` and opaque steps every table of
those schemas).  :func:`check_scope` refuses a manifest that names a table outside them, or
recorded DDL that would create anything but that table and its indexes, before anything is
written.  (An encrypted backup's manifest is also authenticated by its key: store.py.)
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot.tokenizer_core import Token, TokenType

from ..errors import BackupCorrupt
from ..record import RecordedStep
from ..sqlinfo import sqlglot_dialect
from .manifest import Manifest, TableSnapshot
from .policy import risks_of


def step_schemas(step: RecordedStep, default_schema: str | None) -> frozenset[str | None]:
    """The schemas a snapshot of ``step`` can hold tables of (None: the default schema)."""
    named = risks_of(step).named
    return frozenset({None} | {_norm(t.schema, default_schema) for t in named})


def _norm(schema: str | None, default_schema: str | None) -> str | None:
    return None if schema is None or schema == default_schema else schema


def check_scope(manifest: Manifest, schemas: Iterable[str | None], default_schema: str | None, dialect: str) -> None:
    """Raise :class:`BackupCorrupt` when ``manifest`` names a table outside ``schemas``, or
    records DDL that creates anything but its own table and that table's indexes."""
    allowed = frozenset(schemas)
    for t in manifest.tables:
        schema = _norm(t.schema, default_schema)
        if schema not in allowed:
            shown = ", ".join(sorted(s or "(default)" for s in allowed))
            raise BackupCorrupt(f"backup {manifest.id}: its manifest names {t.key}, in a schema revision "
                                f"{manifest.revision_to} does not touch (it may only hold tables of: {shown}); "
                                "the manifest was changed: nothing is restored from it")  # fmt: skip
        _check_ddl(manifest.id, t, schema, default_schema, dialect)
        _check_columns(manifest.id, t, dialect)


def _check_columns(backup_id: str, t: TableSnapshot, dialect: str) -> None:
    """A re-added column's recorded type and default become SQL (``ADD COLUMN name TYPE DEFAULT
    expr``): each must be one expression — no statement separator, no query inside."""
    for col in t.definition.get("columns") or []:
        if not isinstance(col, dict):
            continue
        for what in ("type", "default"):
            text = col.get(what)
            if text is None:
                continue
            try:
                kinds = {tok.token_type for tok in sqlglot.tokenize(str(text), read=sqlglot_dialect(dialect))}
            except sqlglot.errors.SqlglotError:
                kinds = {TokenType.SEMICOLON}
            if kinds & {TokenType.SEMICOLON, TokenType.SELECT, TokenType.INSERT, TokenType.UPDATE,
                        TokenType.DELETE}:  # fmt: skip
                raise BackupCorrupt(f"backup {backup_id}: the recorded {what} of column {col.get('name')!r} of "
                                    f"{t.key} is not a single expression; the manifest was changed: nothing is "
                                    "restored from it")  # fmt: skip


def _check_ddl(backup_id: str, t: TableSnapshot, schema: str | None, default_schema: str | None,
               dialect: str) -> None:  # fmt: skip
    for statement in t.definition.get("ddl") or []:
        target = _created_table(str(statement), dialect)
        if target is None or target[1] != t.name or _norm(target[0], default_schema) != schema:
            raise BackupCorrupt(f"backup {backup_id}: the recorded definition of {t.key} holds a statement that "
                                "does not create that table or one of its indexes; the manifest was changed: "
                                "nothing is restored from it")  # fmt: skip


def _created_table(statement: str, dialect: str) -> tuple[str | None, str] | None:
    """``(schema, table)`` that one ``CREATE TABLE`` or ``CREATE [UNIQUE] INDEX ... ON`` statement
    creates or indexes; None for anything else, or more than one statement.  Read from sqlglot's
    tokens (its parser does not know every dialect's DDL, e.g. ``UNIQUE NULLS DISTINCT``)."""
    try:
        tokens = sqlglot.tokenize(statement, read=sqlglot_dialect(dialect))
    except sqlglot.errors.SqlglotError:
        return None
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens = tokens[:-1]
    kinds = [tok.token_type for tok in tokens]
    if TokenType.SEMICOLON in kinds or kinds[:1] != [TokenType.CREATE]:
        return None
    i = 2 if kinds[1:2] == [TokenType.UNIQUE] else 1
    if kinds[i:i + 1] == [TokenType.TABLE]:
        i += 1
        if [tok.text.upper() for tok in tokens[i:i + 3]] == ["IF", "NOT", "EXISTS"]:
            i += 3
        return _name(tokens[i:], (TokenType.L_PAREN,))
    if kinds[i:i + 1] == [TokenType.INDEX] and TokenType.ON in kinds[i:]:
        i = kinds.index(TokenType.ON, i) + 1
        if kinds[i:i + 1] == [TokenType.ONLY]:
            i += 1
        return _name(tokens[i:], (TokenType.L_PAREN, TokenType.USING))
    return None


def _name(tokens: list[Token], ends: tuple[TokenType, ...]) -> tuple[str | None, str] | None:
    """A possibly schema-qualified name at the start of ``tokens``, up to one of ``ends``."""
    parts: list[str] = []
    for pos, tok in enumerate(tokens):
        if tok.token_type in ends:
            break
        if pos % 2 == 1:
            if tok.token_type != TokenType.DOT:
                return None
            continue
        parts.append(tok.text)
    else:
        return None
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None
