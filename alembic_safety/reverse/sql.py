"""Reversing raw SQL: the statements a revision passes to ``op.execute`` (or a folder of ``.sql``
migrations holds), undone statement by statement, last first.

Each forward statement becomes :class:`ReverseItem` s: ``sql`` (a statement that undoes it),
``manual`` (a human must decide: DML, ``DO`` blocks, enum values, anything not understood) or
``irreversible`` (the schema state before the revision lacks what the statement destroyed).
Statements that change no schema and no data (``SET``, ``SELECT``, transaction control, psql
meta-commands) produce nothing; every other statement produces at least one item.

sqlglot splits the text (its tokenizer knows dollar-quoted bodies, strings and comments) and
parses what it models (CREATE/DROP TABLE, INDEX, VIEW, ...; ALTER TABLE; DML).  What it parses
only as an opaque command (functions with plpgsql bodies, triggers, policies, row level
security, GRANT, COMMENT, ALTER ... RENAME) is read from the statement's tokens.  Identifiers in
the output are sqlglot nodes: taken from the parsed statement with their quoting, or built with
the quoting the dialect needs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

from .schema import ColumnState, ConstraintState, IndexState, ObjectState, SchemaState, TableState

# sqlglot logs a warning for every statement it parses only as an opaque Command; those are read
# from their tokens here instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

SQL = "sql"
MANUAL = "manual"
IRREVERSIBLE = "irreversible"

_DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql",
             "sqlite": "sqlite"}  # fmt: skip

SNAPSHOT_HINT = (
    "the rows as they were before are in the alembic-safety snapshot taken before this revision: "
    "`alembic-safety rollback <backup id>` brings them back"
)

# PostgreSQL's reserved key words (they must be quoted as identifiers)
_RESERVED = frozenset(
    """
ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BINARY BOTH CASE CAST CHECK COLLATE
COLLATION COLUMN CONCURRENTLY CONSTRAINT CREATE CROSS CURRENT_CATALOG CURRENT_DATE CURRENT_ROLE
CURRENT_SCHEMA CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEFAULT DEFERRABLE DESC DISTINCT DO ELSE END
EXCEPT FALSE FETCH FOR FOREIGN FREEZE FROM FULL GRANT GROUP HAVING ILIKE IN INITIALLY INNER INTERSECT
INTO IS ISNULL JOIN LATERAL LEADING LEFT LIKE LIMIT LOCALTIME LOCALTIMESTAMP NATURAL NOT NOTNULL NULL
OFFSET ON ONLY OR ORDER OUTER OVERLAPS PLACING PRIMARY REFERENCES RETURNING RIGHT SELECT SESSION_USER
SIMILAR SOME SYMMETRIC SYSTEM_USER TABLE TABLESAMPLE THEN TO TRAILING TRUE UNION UNIQUE USER USING
VARIADIC VERBOSE WHEN WHERE WINDOW WITH
""".split()  # noqa: SIM905
)

# first words of statements that change neither schema nor data
_NO_OP_HEADS = frozenset({
    "SET", "RESET", "SELECT", "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE",
    "ANALYZE", "ANALYSE", "VACUUM", "NOTIFY", "LISTEN", "UNLISTEN", "SHOW", "CHECKPOINT", "DISCARD",
    "PRAGMA", "LOCK", "EXPLAIN", "REFRESH", "DEALLOCATE", "USE",
})  # fmt: skip
_DML_HEADS = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE", "COPY", "MERGE", "REPLACE", "UPSERT"})

# object kinds this module creates and drops
_KINDS = ("TABLE", "INDEX", "VIEW", "MATERIALIZED VIEW", "SEQUENCE", "TYPE", "DOMAIN", "FUNCTION",
          "PROCEDURE", "TRIGGER", "POLICY", "EXTENSION", "SCHEMA")  # fmt: skip
# the ObjectState kinds that hold each statement kind's definition
_STATE_KINDS = {
    "VIEW": ("view",), "MATERIALIZED VIEW": ("materialized view",), "SEQUENCE": ("sequence",),
    "TYPE": ("type",), "DOMAIN": ("type", "domain"), "FUNCTION": ("function", "procedure"),
    "PROCEDURE": ("procedure", "function"), "TRIGGER": ("trigger",), "POLICY": ("policy",),
    "EXTENSION": ("extension",), "SCHEMA": ("schema",),
}  # fmt: skip
_TYPE_CONTINUATIONS = frozenset({"WITH", "WITHOUT", "VARYING", "PRECISION", "ZONE", "YEAR", "MONTH",
                                 "DAY", "HOUR", "MINUTE", "SECOND", "TO"})  # fmt: skip
_ARG_MODES = frozenset({"IN", "OUT", "INOUT", "VARIADIC"})
_STRINGS = frozenset({TokenType.STRING, TokenType.HEREDOC_STRING, TokenType.BYTE_STRING,
                      TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.BIT_STRING,
                      TokenType.HEX_STRING, TokenType.UNICODE_STRING})  # fmt: skip
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NEXTVAL = re.compile(r"""^nextval\('(?:"?[\w$]+"?\.)?"?([\w$]+)"?'(?:::regclass)?\)$""", re.IGNORECASE)
_SERIALS = {"integer": "SERIAL", "int": "SERIAL", "int4": "SERIAL", "bigint": "BIGSERIAL",
            "int8": "BIGSERIAL", "smallint": "SMALLSERIAL", "int2": "SMALLSERIAL"}  # fmt: skip


@dataclass(frozen=True)
class ReverseItem:
    """One step of undoing a forward statement.

    ``kind`` is ``"sql"`` (``text`` is a statement to run, without a trailing semicolon),
    ``"manual"`` (a human must decide; ``text`` says what) or ``"irreversible"`` (``text`` says
    why).  ``source`` is the forward statement, on one line, at most 120 characters.
    ``transactional`` is False for a statement PostgreSQL refuses to run inside a transaction
    block (``CREATE/DROP INDEX CONCURRENTLY``): run it on its own, outside one.
    """

    kind: str
    text: str
    source: str = ""
    transactional: bool = True


# -- splitting ------------------------------------------------------------------------------------
_COPY_DATA = re.compile(
    r"\bCOPY\b[^;]*?\bFROM\s+STDIN\b[^;]*;[^\n]*\n(.*?^\\\.[ \t]*$)", re.IGNORECASE | re.DOTALL | re.M
)


def _dialect(name: str) -> str:
    return _DIALECTS.get(name.lower(), name.lower())


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _tokenize(sql: str, dialect: str) -> list[Token]:
    tokens: list[Token] = Dialect.get_or_raise(dialect).tokenize(sql)
    return tokens


def split_statements(sql: str, dialect: str) -> list[str]:
    """The statements in ``sql``, without their terminating semicolons, comments between them,
    psql meta-commands (lines starting with a backslash) or ``COPY ... FROM stdin`` data.

    sqlglot's tokenizer finds the semicolons, so those inside strings, dollar-quoted bodies
    (``$$`` and named tags) and comments do not split.  Text the tokenizer cannot read (an
    unterminated string) comes back as one statement.
    """
    d = _dialect(dialect)
    # COPY data and psql meta-command lines are not SQL: blank them, keeping offsets
    masked = _COPY_DATA.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + _blank(m.group(1)), sql)
    meta = [(m.start(), m.end()) for m in re.finditer(r"^[ \t]*\\[^\n]*", masked, re.M)]
    for start, end in meta:
        masked = masked[:start] + " " * (end - start) + masked[end:]
    try:
        tokens = _tokenize(masked, d)
    except (SqlglotError, ValueError, IndexError):
        text = masked.strip()
        return [text] if text else []
    # a meta-command-looking line inside a string or body is part of it: put it back
    clean = masked
    for start, end in meta:
        if any(t.token_type in _STRINGS and t.start <= start and end <= t.end + 1 for t in tokens):
            clean = clean[:start] + sql[start:end] + clean[end:]
    statements: list[str] = []
    first: Token | None = None
    last: Token | None = None
    for token in [*tokens, None]:
        if token is None or token.token_type == TokenType.SEMICOLON:
            if first is not None and last is not None:
                statements.append(clean[first.start : last.end + 1].strip())
            first = last = None
            continue
        if first is None:
            first = token
        last = token
    return [s for s in statements if s]


# -- reversing ------------------------------------------------------------------------------------
def reverse_sql(sql: str, dialect: str, before: SchemaState | None) -> tuple[ReverseItem, ...]:
    """The items that undo ``sql``, last statement first.

    ``dialect`` is sqlglot's or SQLAlchemy's name ("postgres"/"postgresql", "mysql"/"mariadb",
    "sqlite"); ``before`` the schema state before the first statement ran (None: unknown).
    """
    d = _dialect(dialect)
    items: list[ReverseItem] = []
    for statement in reversed(split_statements(sql, d)):
        items.extend(reverse_statement(statement, d, before))
    return tuple(items)


def reverse_statement(statement: str, dialect: str, before: SchemaState | None) -> tuple[ReverseItem, ...]:
    """The items that undo one statement (empty for a statement that changes nothing)."""
    ctx = _Ctx(_dialect(dialect), before, shorten(statement), statement)
    try:
        ctx.words = _Words(statement, ctx.d)
        return tuple(_reverse(ctx))
    except Exception as exc:  # a statement this module misreads must still be reported, not lost
        return (ctx.manual(f"the statement could not be reversed automatically ({type(exc).__name__}: {exc}); "
                           "decide by hand what undoes it"),)  # fmt: skip


def shorten(statement: str, limit: int = 120) -> str:
    line = " ".join(statement.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class _Word:
    text: str  # as written (quoted identifiers without their quotes)
    kind: str  # "word" (keyword or unquoted name), "ident" (quoted name), "string", "punct", "other"
    start: int
    end: int  # inclusive

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


class _Words:
    """A statement as a list of words, read by the token-level readers below."""

    def __init__(self, sql: str, dialect: str) -> None:
        self.sql = sql
        self.items: list[_Word] = []
        for t in _tokenize(sql, dialect):
            if t.token_type in _STRINGS:
                self.items.append(_Word(t.text, "string", t.start, t.end))
            elif t.token_type == TokenType.IDENTIFIER:
                self.items.append(_Word(t.text, "ident", t.start, t.end))
            elif _WORD_RE.fullmatch(t.text.split()[0] if t.text.split() else ""):
                # multi-word keyword tokens ("DOUBLE PRECISION") become one word each
                for m in re.finditer(r"\S+", sql[t.start : t.end + 1]):
                    self.items.append(_Word(m.group(0), "word", t.start + m.start(), t.start + m.end() - 1))
            elif t.token_type in (TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA, TokenType.DOT,
                                  TokenType.L_BRACKET, TokenType.R_BRACKET, TokenType.EQ, TokenType.MOD):  # fmt: skip
                self.items.append(_Word(t.text, "punct", t.start, t.end))
            else:
                self.items.append(_Word(t.text, "other", t.start, t.end))

    def __len__(self) -> int:
        return len(self.items)

    def up(self, i: int) -> str:
        return self.items[i].upper if 0 <= i < len(self.items) else ""

    def punct(self, i: int, char: str) -> bool:
        return 0 <= i < len(self.items) and self.items[i].kind == "punct" and self.items[i].text == char

    def match(self, i: int, *words: str) -> int | None:
        """The index after ``words`` when they follow ``i``, else None."""
        for k, w in enumerate(words):
            if self.up(i + k) != w:
                return None
        return i + len(words)

    def text(self, a: int, b: int) -> str:
        """The statement's text from word ``a`` to word ``b`` inclusive, on one line."""
        if a > b or a >= len(self.items):
            return ""
        return " ".join(self.sql[self.items[a].start : self.items[min(b, len(self.items) - 1)].end + 1].split())

    def is_name_part(self, i: int) -> bool:
        return 0 <= i < len(self.items) and self.items[i].kind in ("word", "ident")

    def ident(self, i: int) -> exp.Identifier:
        w = self.items[i]
        return exp.to_identifier(w.text, quoted=w.kind == "ident")

    def name(self, i: int) -> tuple[exp.Table, int] | None:
        """A dotted name starting at ``i`` and the index after it."""
        if not self.is_name_part(i):
            return None
        parts = [self.ident(i)]
        i += 1
        while self.punct(i, ".") and self.is_name_part(i + 1):
            parts.append(self.ident(i + 1))
            i += 2
        return _table_of(parts), i

    def group(self, i: int) -> tuple[list[tuple[int, int]], int] | None:
        """The top-level comma-separated parts (index ranges, inclusive) of the parenthesised
        group opening at ``i``, and the index after its closing parenthesis."""
        if not self.punct(i, "("):
            return None
        depth, parts, start = 0, [], i + 1
        for j in range(i, len(self.items)):
            if self.punct(j, "(") or self.punct(j, "["):
                depth += 1
            elif self.punct(j, ")") or self.punct(j, "]"):
                depth -= 1
                if depth == 0:
                    if j > start:
                        parts.append((start, j - 1))
                    return parts, j + 1
            elif depth == 1 and self.punct(j, ","):
                parts.append((start, j - 1))
                start = j + 1
        return None

    def find(self, i: int, word: str) -> int | None:
        """The first top-level ``word`` at or after ``i``."""
        depth = 0
        for j in range(i, len(self.items)):
            if self.punct(j, "("):
                depth += 1
            elif self.punct(j, ")"):
                depth -= 1
            elif depth == 0 and self.up(j) == word:
                return j
        return None

    def split_top(self, a: int, b: int) -> list[tuple[int, int]]:
        """Index ranges of the top-level comma-separated parts of words ``a``..``b``."""
        depth, parts, start = 0, [], a
        for j in range(a, b + 1):
            if self.punct(j, "("):
                depth += 1
            elif self.punct(j, ")"):
                depth -= 1
            elif depth == 0 and self.punct(j, ","):
                parts.append((start, j - 1))
                start = j + 1
        parts.append((start, b))
        return [p for p in parts if p[0] <= p[1]]


def _table_of(parts: Sequence[exp.Identifier]) -> exp.Table:
    if len(parts) == 1:
        return exp.Table(this=parts[0])
    if len(parts) == 2:
        return exp.Table(this=parts[1], db=parts[0])
    return exp.Table(this=parts[-1], db=parts[-2], catalog=parts[-3])


@dataclass(frozen=True)
class _Object:
    """A named object a statement creates or drops."""

    kind: str  # one of _KINDS
    name: exp.Table  # schema-qualified as written; SCHEMA and EXTENSION: the bare name
    on: exp.Table | None = None  # a trigger's, policy's or index's table
    args: tuple[str, ...] | None = None  # a function's argument types as written (None: not given)


class _Ctx:
    def __init__(self, d: str, before: SchemaState | None, source: str, statement: str) -> None:
        self.d = d
        self.before = before
        self.source = source
        self.statement = statement
        self.words: _Words = _Words("", d)
        self.pg = d == "postgres"

    # items
    def sql(self, *parts: str | exp.Expression | None, transactional: bool = True) -> ReverseItem:
        text = " ".join(p if isinstance(p, str) else p.sql(dialect=self.d) for p in parts if p is not None and p != "")
        return ReverseItem(SQL, text, self.source, transactional)

    def raw(self, definition: str) -> list[ReverseItem]:
        """A definition from the pre-state, verbatim: one item per statement it holds."""
        return [ReverseItem(SQL, s, self.source) for s in split_statements(definition, self.d)]

    def manual(self, text: str) -> ReverseItem:
        return ReverseItem(MANUAL, text, self.source)

    def irreversible(self, text: str) -> ReverseItem:
        return ReverseItem(IRREVERSIBLE, text, self.source)

    @property
    def partial(self) -> bool:
        """The pre-state was read from earlier files' text: what it lacks may still exist."""
        return self.before is not None and not self.before.complete

    def missing(self, what: str, lacks: str = "its definition is not known") -> ReverseItem:
        """The pre-state lacks ``what``: irreversible when the pre-state was reflected, a manual
        item when it was read from earlier files' text."""
        if self.partial:
            return self.manual(f"{what} is not known from the earlier files' text alone: recreate it by hand, or "
                               "run sql-rollback with --scratch-url for its exact definition")  # fmt: skip
        return self.irreversible(f"the schema before the revision has no {what}: {lacks}")

    # identifiers
    def ident(self, name: str) -> exp.Identifier:
        """An identifier for a name as the catalog spells it, quoted when the dialect needs it."""
        if self.pg:
            plain = re.fullmatch(r"[a-z_][a-z0-9_$]*", name) is not None
        else:
            plain = _WORD_RE.fullmatch(name) is not None
            plain = plain and name.upper() not in Dialect.get_or_raise(self.d).tokenizer_class.KEYWORDS
        return exp.to_identifier(name, quoted=not plain or name.upper() in _RESERVED)

    def table(self, name: str, schema: str | None) -> exp.Table:
        return exp.Table(this=self.ident(name), db=self.ident(schema) if schema else None)

    def norm(self, ident: exp.Identifier | str | None) -> str:
        """A name as the catalog holds it: unquoted PostgreSQL names fold to lower case."""
        if ident is None:
            return ""
        if isinstance(ident, str):
            return ident
        return ident.name if ident.quoted or not self.pg else ident.name.lower()

    def same(self, a: str | None, b: str | None) -> bool:
        return a == b if self.pg else (a or "").lower() == (b or "").lower()

    def schemas(self, schema: str | None) -> tuple[str | None, ...]:
        """The pre-state schema keys a name in ``schema`` (None: unqualified) may be under."""
        default = self.before.default_schema if self.before is not None else None
        defaults = {None, default, "public"} if self.pg else {None, default}
        if schema in defaults:
            return tuple(sorted(defaults, key=lambda x: x or ""))
        return (schema,)

    # pre-state lookups
    def find_table(self, name: exp.Table) -> TableState | None:
        if self.before is None:
            return None
        wanted = self.norm(name.this)
        for schema in self.schemas(self.norm(name.args.get("db")) or None):
            for t in self.before.tables:
                if self.same(t.name, wanted) and self.same(t.schema, schema):
                    return t
        return None

    def find_objects(self, kinds: Sequence[str], name: exp.Table) -> list[ObjectState]:
        if self.before is None:
            return []
        wanted = self.norm(name.this)
        schemas = self.schemas(self.norm(name.args.get("db")) or None)
        return [
            o for o in self.before.objects
            if o.kind in kinds and self.same(o.name, wanted) and any(self.same(o.schema, s) for s in schemas)
        ]  # fmt: skip

    def same_table(self, a: exp.Table | None, b: exp.Table | None) -> bool:
        if a is None or b is None:
            return False
        if not self.same(self.norm(a.this), self.norm(b.this)):
            return False
        sa_, sb = self.norm(a.args.get("db")) or None, self.norm(b.args.get("db")) or None
        return any(self.same(x, y) for x in self.schemas(sa_) for y in self.schemas(sb))


def _reverse(ctx: _Ctx) -> list[ReverseItem]:
    w = ctx.words
    if len(w) == 0:
        return []
    head = w.up(0)
    if head in _NO_OP_HEADS and not (head == "SELECT" and w.find(1, "INTO") is not None):
        return []
    if head == "WITH" and not any(w.up(i) in _DML_HEADS for i in range(len(w))):
        return []
    try:
        tree: exp.Expr | None = sqlglot.parse_one(ctx.statement, read=ctx.d)
    except (SqlglotError, RecursionError, ValueError, IndexError):
        tree = None
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.TruncateTable, exp.Copy, exp.Merge)):
        return _reverse_dml(ctx, tree)
    if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() in (
        "TABLE", "INDEX", "VIEW", "SEQUENCE", "TYPE", "SCHEMA"
    ):  # fmt: skip
        return _reverse_create_tree(ctx, tree)
    if isinstance(tree, exp.Drop) and (tree.args.get("kind") or "").upper() in (
        "TABLE", "VIEW", "INDEX", "SEQUENCE", "TYPE", "SCHEMA"
    ):  # fmt: skip
        return _reverse_drop_tree(ctx, tree)
    if isinstance(tree, exp.Alter) and (tree.args.get("kind") or "").upper() == "TABLE":
        return _reverse_alter_table(ctx, tree)
    # everything else from the statement's words
    if head == "CREATE":
        return _reverse_create_words(ctx)
    if head == "DROP":
        return _reverse_drop_words(ctx)
    if head == "ALTER":
        return _reverse_alter_words(ctx)
    if head == "COMMENT":
        return _reverse_comment(ctx)
    if head in ("GRANT", "REVOKE"):
        return _reverse_grant(ctx)
    if head == "DO":
        return [ctx.manual("a DO block runs procedural code whose effect is not known here: read it and decide "
                           "what undoes it (and whether its changes to rows are in the snapshot)")]  # fmt: skip
    if head in _DML_HEADS or head in ("WITH", "CALL"):
        return _reverse_dml(ctx, tree)
    if tree is None:
        return [ctx.manual("sqlglot cannot parse this statement: decide by hand what undoes it")]
    return [ctx.manual(f"{' '.join(w.text(0, 1).split()[:2]).upper()} is not reversed automatically: "
                       "decide by hand what undoes it")]  # fmt: skip


# -- DML ------------------------------------------------------------------------------------------
def _target(ctx: _Ctx, tree: exp.Expr | None) -> str:
    node: exp.Expr | None = None
    if isinstance(tree, exp.TruncateTable):
        node = tree.expressions[0] if tree.expressions else None
    elif tree is not None:
        node = tree.this
    if isinstance(node, exp.Schema):
        node = node.this
    return f" {node.sql(dialect=ctx.d)}" if isinstance(node, exp.Table) else ""


def _reverse_dml(ctx: _Ctx, tree: exp.Expr | None) -> list[ReverseItem]:
    on = _target(ctx, tree)
    head = ctx.words.up(0)
    if isinstance(tree, exp.Insert) or head in ("INSERT", "REPLACE", "UPSERT"):
        if isinstance(tree, exp.Insert) and tree.args.get("conflict") is not None:
            return [ctx.manual(f"INSERT ... ON CONFLICT into{on} added rows and may have changed existing ones: "
                               f"decide which rows to delete; {SNAPSHOT_HINT}")]  # fmt: skip
        return [ctx.manual(f"INSERT into{on} added rows: decide which rows to delete (for example by the key "
                           "values it inserted), and whether later changes to them matter")]  # fmt: skip
    if isinstance(tree, exp.Copy) or head == "COPY":
        if isinstance(tree, exp.Copy) and not tree.args.get("kind"):
            return []  # COPY ... TO only reads
        return [ctx.manual(f"COPY into{on} loaded rows: decide which rows to delete")]
    if isinstance(tree, exp.Update) or head == "UPDATE":
        return [ctx.manual(f"UPDATE of{on} changed values in place: decide whether to put them back; {SNAPSHOT_HINT}")]
    if isinstance(tree, exp.Delete) or head == "DELETE":
        return [ctx.manual(f"DELETE from{on} removed rows: decide whether to put them back; {SNAPSHOT_HINT}")]
    if isinstance(tree, exp.TruncateTable) or head == "TRUNCATE":
        return [ctx.manual(f"TRUNCATE{on} removed every row: decide whether to put them back; {SNAPSHOT_HINT}")]
    return [ctx.manual(f"{head} changes rows in ways not known here: decide what undoes it; {SNAPSHOT_HINT}")]


# -- CREATE ---------------------------------------------------------------------------------------
def _reverse_create_tree(ctx: _Ctx, tree: exp.Create) -> list[ReverseItem]:
    kind = (tree.args.get("kind") or "").upper()
    target = tree.this
    on: exp.Table | None = None
    if kind == "TABLE" and isinstance(target, exp.Schema):
        target = target.this
    if kind == "INDEX":
        on = target.args.get("table")
        if not isinstance(target.this, exp.Identifier) or not isinstance(on, exp.Table):
            return [ctx.manual("CREATE INDEX without a name: the database chose the name; drop that index by hand")]
        target = exp.Table(this=target.this.copy(), db=on.args["db"].copy() if on.args.get("db") else None)
    if kind == "VIEW":
        props = tree.args.get("properties")
        if props is not None and any(isinstance(p, exp.MaterializedProperty) for p in props.expressions):
            kind = "MATERIALIZED VIEW"
    if kind == "SCHEMA":
        db = target.args.get("db") if isinstance(target, exp.Table) else None
        if not isinstance(db, exp.Identifier):
            return _reverse_create_words(ctx)
        target = exp.Table(this=db.copy())
    if not isinstance(target, exp.Table):
        return _reverse_create_words(ctx)
    obj = _Object(kind, target, on)
    return _reverse_create(ctx, obj, bool(tree.args.get("exists")), bool(tree.args.get("replace")),
                           bool(tree.args.get("concurrently")))  # fmt: skip


_CREATE_MODIFIERS = frozenset({"TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL", "UNIQUE", "RECURSIVE",
                               "CONSTRAINT", "TRUSTED", "PROCEDURAL"})  # fmt: skip


def _reverse_create_words(ctx: _Ctx) -> list[ReverseItem]:
    w = ctx.words
    i = 1
    replace = False
    if w.match(i, "OR", "REPLACE"):
        replace, i = True, i + 2
    while w.up(i) in _CREATE_MODIFIERS:
        i += 1
    kind = w.up(i)
    if kind == "MATERIALIZED" and w.up(i + 1) == "VIEW":
        kind, i = "MATERIALIZED VIEW", i + 1
    if kind not in _KINDS:
        return [ctx.manual(f"CREATE {kind or w.text(1, 1)} is not reversed automatically: drop what it created "
                           "by hand")]  # fmt: skip
    i += 1
    concurrently = w.up(i) == "CONCURRENTLY"
    if concurrently:
        i += 1
    if_not_exists = w.match(i, "IF", "NOT", "EXISTS") is not None
    if if_not_exists:
        i += 3
    if kind == "SCHEMA" and w.up(i) == "AUTHORIZATION":
        i += 1  # CREATE SCHEMA AUTHORIZATION role: the schema is named after the role
    if kind == "INDEX" and w.up(i) == "ON":
        return [ctx.manual("CREATE INDEX without a name: the database chose the name; drop that index by hand")]
    named = w.name(i)
    if named is None:
        return [ctx.manual(f"CREATE {kind}: its name could not be read; drop it by hand")]
    name, i = named
    args: tuple[str, ...] | None = None
    on: exp.Table | None = None
    if kind in ("FUNCTION", "PROCEDURE"):
        group = w.group(i)
        if group is None:
            return [ctx.manual(f"CREATE {kind}: its argument list could not be read; drop it by hand")]
        args = _arg_types(w, group[0], procedure=kind == "PROCEDURE")
    if kind in ("TRIGGER", "POLICY", "INDEX"):
        at = w.find(i, "ON")
        table = w.name(at + 1 + (1 if w.up(at + 1) == "ONLY" else 0)) if at is not None else None
        if table is None:
            return [ctx.manual(f"CREATE {kind}: its table could not be read; drop it by hand")]
        on = table[0]
        if kind == "INDEX" and on.args.get("db") and not name.args.get("db"):
            name = exp.Table(this=name.this, db=on.args["db"].copy())
    if kind in ("SCHEMA", "EXTENSION"):
        name = exp.Table(this=name.this)
    return _reverse_create(ctx, _Object(kind, name, on, args), if_not_exists, replace, concurrently)


def _arg_types(w: _Words, parts: list[tuple[int, int]], procedure: bool) -> tuple[str, ...]:
    """Argument types of a function signature: modes, names and defaults dropped, OUT arguments
    left out (a procedure's OUT arguments are part of its signature and kept with their mode)."""
    types: list[str] = []
    for a, b in parts:
        mode = w.up(a) if w.up(a) in _ARG_MODES and a < b else ""
        if mode:
            a += 1
        if mode == "OUT" and not procedure:
            continue
        # the default: DEFAULT expr or = expr
        for j in range(a, b + 1):
            if w.up(j) == "DEFAULT" or w.punct(j, "="):
                b = j - 1
                break
        a = _skip_arg_name(w, a, b)
        text = w.text(a, b)
        types.append(f"OUT {text}" if mode == "OUT" else text)
    return tuple(types)


def _skip_arg_name(w: _Words, a: int, b: int) -> int:
    """The index where an argument's type starts (after its name, when it has one)."""
    first = w.name(a)
    if first is None:
        return a
    _, after = first
    if after > b or after > a + 1:
        return a  # a lone (possibly dotted) name is the type
    if w.punct(after, "(") or w.punct(after, "[") or w.items[after].text == "%":
        return a
    if w.up(after) in _TYPE_CONTINUATIONS:
        return a
    return a + 1


def _reverse_create(ctx: _Ctx, obj: _Object, if_not_exists: bool, replace: bool,
                    concurrently: bool) -> list[ReverseItem]:  # fmt: skip
    drop = _drop_item(ctx, obj, concurrently)
    if ctx.before is None:
        if replace:
            return [drop, ctx.manual(f"the schema before the revision is unknown: if {obj.kind} "
                                     f"{obj.name.sql(dialect=ctx.d)} existed before, restore its previous "
                                     "definition instead of dropping it")]  # fmt: skip
        return [drop]
    existing = _find(ctx, obj)
    if existing is not None and if_not_exists:
        return []  # it existed already: the statement did nothing
    if replace and isinstance(existing, ObjectState) and existing.definition:
        if obj.kind in ("TRIGGER", "VIEW"):
            # a view: CREATE OR REPLACE cannot drop the columns the replacement added
            return [drop, *ctx.raw(existing.definition), *_attached(ctx, existing)]
        return ctx.raw(existing.definition)
    if replace and isinstance(existing, ObjectState):  # it existed, by a definition not known here
        label = f"the earlier definition of {obj.kind} {obj.name.sql(dialect=ctx.d)}"
        return [ctx.missing(label) if ctx.partial else ctx.irreversible(f"{label} is not known")]
    return [drop]


def _drop_item(ctx: _Ctx, obj: _Object, concurrently: bool = False) -> ReverseItem:
    kind = obj.kind
    if kind in ("FUNCTION", "PROCEDURE"):
        signature = obj.name.sql(dialect=ctx.d) + ("(" + ", ".join(obj.args) + ")" if obj.args is not None else "")
        return ctx.sql("DROP", kind, "IF EXISTS", signature)
    if kind in ("TRIGGER", "POLICY") and ctx.pg:
        return ctx.sql("DROP", kind, "IF EXISTS", obj.name.this, "ON", obj.on)
    if kind == "INDEX" and ctx.d == "mysql":
        return ctx.sql("DROP INDEX", obj.name.this, "ON", obj.on)
    if kind == "INDEX" and concurrently:
        return ctx.sql("DROP INDEX CONCURRENTLY IF EXISTS", obj.name, transactional=False)
    return ctx.sql("DROP", kind, "IF EXISTS", obj.name)


_ATTACHED_PREFIXES = {
    "view": ("TABLE ", "VIEW ", "COLUMN "), "materialized view": ("TABLE ", "MATERIALIZED VIEW ", "COLUMN "),
    "sequence": ("SEQUENCE ",), "function": ("FUNCTION ",), "procedure": ("PROCEDURE ",), "type": ("TYPE ",),
    "domain": ("DOMAIN ",), "schema": ("SCHEMA ",),
}  # fmt: skip


def _attached(ctx: _Ctx, o: ObjectState) -> list[ReverseItem]:
    """The grants and comments of the pre-state's object ``o``: they went when it was dropped,
    and come back after its definition."""
    prefixes = _ATTACHED_PREFIXES.get(o.kind)
    if ctx.before is None or prefixes is None:
        return []
    items: list[ReverseItem] = []
    for x in ctx.before.objects:
        if x.kind not in ("grant", "comment") or not x.definition or x.schema != o.schema or x.name != o.name:
            continue
        if not x.identity.startswith(prefixes):
            continue
        if o.kind in ("function", "procedure") and f"({o.identity})" not in x.identity:
            continue  # another function of the same name
        items.extend(ctx.raw(x.definition))
    return items


def _find(ctx: _Ctx, obj: _Object) -> TableState | IndexState | ObjectState | None:
    """What the pre-state holds under ``obj``'s name (None: nothing)."""
    if ctx.before is None:
        return None
    if obj.kind == "TABLE":
        table = ctx.find_table(obj.name)
        if table is None and ctx.partial:  # known by name only
            return next(iter(ctx.find_objects(("table",), obj.name)), None)
        return table
    if obj.kind == "INDEX":
        found = _find_index(ctx, obj.name)
        return found[1] if found else None
    if obj.kind in ("SCHEMA", "EXTENSION"):  # not inside a schema: match the name alone
        name = ctx.norm(obj.name.this)
        kinds = _STATE_KINDS[obj.kind]
        return next((o for o in ctx.before.objects if o.kind in kinds and ctx.same(o.name, name)), None)
    if obj.kind in ("TRIGGER", "POLICY") and obj.on is not None:
        # named without a schema: they live in their table's schema (auth.users, say)
        named = ctx.norm(obj.name.this)
        candidates = [
            o for o in ctx.before.objects
            if o.kind in _STATE_KINDS[obj.kind] and ctx.same(o.name, named)
            and ctx.same_table(_object_table(ctx, o), obj.on)
        ]  # fmt: skip
    else:
        candidates = ctx.find_objects(_STATE_KINDS[obj.kind], obj.name)
    if obj.kind in ("FUNCTION", "PROCEDURE") and obj.args is not None:
        wanted = _canon_args(ctx, obj.args)
        candidates = [o for o in candidates if _identity_args(ctx, o, obj.kind == "PROCEDURE") == wanted]
    return candidates[0] if len(candidates) == 1 or (candidates and obj.kind not in ("FUNCTION", "PROCEDURE")) else None


def _find_index(ctx: _Ctx, name: exp.Table) -> tuple[TableState, IndexState] | None:
    if ctx.before is None:
        return None
    wanted = ctx.norm(name.this)
    schemas = ctx.schemas(ctx.norm(name.args.get("db")) or None)
    for t in ctx.before.tables:
        if any(ctx.same(t.schema, s) for s in schemas):
            for ix in t.indexes:
                if ctx.same(ix.name, wanted):
                    return t, ix
    return None


def _object_table(ctx: _Ctx, o: ObjectState) -> exp.Table | None:
    """The table a trigger or policy of the pre-state is on: from its definition, else its identity."""
    try:
        w = _Words(o.definition, ctx.d)
        at = w.find(0, "ON")
        if at is not None:
            found = w.name(at + 1 + (1 if w.up(at + 1) == "ONLY" else 0))
            if found is not None:
                return found[0]
        w = _Words(o.identity, ctx.d)
        named = w.name(0)
        return named[0] if named is not None else None
    except (SqlglotError, ValueError, IndexError):
        return None


def _canon_type(ctx: _Ctx, text: str) -> str:
    text = " ".join(text.split())
    mode = ""
    if text.upper().startswith("OUT "):
        mode, text = "out ", text[4:]
    try:
        out = exp.DataType.build(text, dialect=ctx.d, udt=True).sql(dialect=ctx.d).lower()
    except (SqlglotError, ValueError):
        out = text.lower()
    out = re.sub(r"\b(?:public|pg_catalog)\.", "", out.replace('"', ""))
    return mode + out


def _canon_args(ctx: _Ctx, args: Sequence[str]) -> tuple[str, ...]:
    return tuple(_canon_type(ctx, a) for a in args)


def _identity_args(ctx: _Ctx, o: ObjectState, procedure: bool) -> tuple[str, ...] | None:
    """A pre-state function's argument types, from its identity ("integer, text" or with names)."""
    try:
        w = _Words(f"({o.identity})", ctx.d)
        group = w.group(0)
    except (SqlglotError, ValueError, IndexError):
        return None
    if group is None:
        return None
    return _canon_args(ctx, _arg_types(w, group[0], procedure=procedure))


# -- DROP -----------------------------------------------------------------------------------------
def _reverse_drop_tree(ctx: _Ctx, tree: exp.Drop) -> list[ReverseItem]:
    kind = (tree.args.get("kind") or "").upper()
    if kind == "VIEW" and tree.args.get("materialized"):
        kind = "MATERIALIZED VIEW"
    objects: list[_Object] = []
    for t in tree.args.get("tables") or [tree.this]:
        db = t.args.get("db") if isinstance(t, exp.Table) else None
        if kind == "SCHEMA" and not t.name and isinstance(db, exp.Identifier):
            t = exp.Table(this=db.copy())
        if not isinstance(t, exp.Table):
            return _reverse_drop_words(ctx)
        objects.append(_Object(kind, t))
    return _reverse_drop(ctx, objects, bool(tree.args.get("exists")), bool(tree.args.get("cascade")),
                         bool(tree.args.get("concurrently")))  # fmt: skip


def _reverse_drop_words(ctx: _Ctx) -> list[ReverseItem]:
    w = ctx.words
    i = 1
    kind = w.up(i)
    if kind == "MATERIALIZED" and w.up(i + 1) == "VIEW":
        kind, i = "MATERIALIZED VIEW", i + 1
    if kind not in _KINDS:
        return [ctx.manual(f"DROP {kind or w.text(1, 1)} is not reversed automatically: recreate what it dropped "
                           "by hand")]  # fmt: skip
    i += 1
    concurrently = w.up(i) == "CONCURRENTLY"
    if concurrently:
        i += 1
    if_exists = w.match(i, "IF", "EXISTS") is not None
    if if_exists:
        i += 2
    objects: list[_Object] = []
    while True:
        named = w.name(i)
        if named is None:
            return [ctx.manual(f"DROP {kind}: the name could not be read; recreate it by hand")]
        name, i = named
        args: tuple[str, ...] | None = None
        if kind in ("FUNCTION", "PROCEDURE") and w.punct(i, "("):
            group = w.group(i)
            if group is None:
                return [ctx.manual(f"DROP {kind}: the argument list could not be read; recreate it by hand")]
            args = _arg_types(w, group[0], procedure=kind == "PROCEDURE")
            i = group[1]
        on: exp.Table | None = None
        if kind in ("TRIGGER", "POLICY") and w.up(i) == "ON":
            table = w.name(i + 1)
            if table is None:
                return [ctx.manual(f"DROP {kind}: the table could not be read; recreate it by hand")]
            on, i = table
        objects.append(_Object(kind, name, on, args))
        if not w.punct(i, ","):
            break
        i += 1
    return _reverse_drop(ctx, objects, if_exists, w.up(i) == "CASCADE", concurrently)


def _reverse_drop(ctx: _Ctx, objects: list[_Object], if_exists: bool, cascade: bool,
                  concurrently: bool) -> list[ReverseItem]:  # fmt: skip
    names = ", ".join(o.name.sql(dialect=ctx.d) for o in objects)
    kind = objects[0].kind if objects else ""
    if ctx.before is None:
        return [ctx.manual(f"DROP {kind} {names}: the schema before the revision is unknown, so the dropped "
                           "definition is not known here; recreate it by hand (the backup holds it)")]  # fmt: skip
    items: list[ReverseItem] = []
    later: list[ReverseItem] = []  # foreign keys, once every dropped table is back
    for obj in reversed(objects):
        label = f"{obj.kind} {obj.name.sql(dialect=ctx.d)}"
        if obj.kind == "INDEX":
            found = _find_index(ctx, obj.name)
            if found is None:
                if not if_exists or ctx.partial:
                    items.append(ctx.missing(label))
                continue
            items.append(_create_index(ctx, found[0], found[1], concurrently))
            continue
        existing = _find(ctx, obj)
        if existing is None:
            if not if_exists:  # the earlier files' text names every object of these kinds
                items.append(ctx.missing(label))
            continue
        if isinstance(existing, TableState):
            now, deferred = _create_table(ctx, existing)
            items.extend(now)
            later.extend(deferred)
        elif isinstance(existing, ObjectState):
            if existing.definition:
                items.extend(ctx.raw(existing.definition))
                items.extend(_attached(ctx, existing))
            elif obj.kind == "SCHEMA":
                items.append(ctx.sql("CREATE SCHEMA", obj.name))
            elif obj.kind == "EXTENSION":
                items.append(ctx.sql("CREATE EXTENSION IF NOT EXISTS", obj.name))
            elif ctx.partial:
                items.append(ctx.missing(label))
            else:
                items.append(ctx.irreversible(f"the schema before the revision has {label} but not its definition"))
    items.extend(later)
    if cascade:
        items.append(ctx.manual(f"DROP {kind} ... CASCADE also dropped the objects that depended on {names}: "
                                "find and recreate them by hand"))  # fmt: skip
    return items


def _create_table(ctx: _Ctx, t: TableState) -> tuple[list[ReverseItem], list[ReverseItem]]:
    """CREATE TABLE and what belongs to the table, and its foreign keys (to add after)."""
    name = ctx.table(t.name, t.schema)
    elements = [_column_sql(ctx, t, c) for c in t.columns]
    deferred: list[ReverseItem] = []
    for con in t.constraints:
        if con.kind == "foreign key":
            deferred.append(ctx.sql("ALTER TABLE", name, "ADD", _constraint_sql(ctx, con)))
        else:
            elements.append(_constraint_sql(ctx, con))
    items = [ctx.sql("CREATE TABLE", name, "(" + ", ".join(elements) + ")")]
    constraint_names = {c.name for c in t.constraints if c.name}
    items.extend(_create_index(ctx, t, ix) for ix in t.indexes if ix.name not in constraint_names)
    if t.comment is not None:
        items.append(ctx.sql("COMMENT ON TABLE", name, "IS", exp.Literal.string(t.comment)))
    for c in t.columns:
        if c.comment is not None:
            items.append(ctx.sql("COMMENT ON COLUMN", exp.Column(this=ctx.ident(c.name), table=name.this,
                                                                  db=name.args.get("db")),
                                 "IS", exp.Literal.string(c.comment)))  # fmt: skip
    if t.row_level_security and ctx.pg:
        items.append(ctx.sql("ALTER TABLE", name, "ENABLE ROW LEVEL SECURITY"))
    if ctx.before is not None:  # triggers, policies and grants went with the table
        for o in ctx.before.objects:
            if not o.definition:
                continue
            if o.kind in ("trigger", "policy"):
                on = _object_table(ctx, o)
            elif o.kind == "grant":
                on = _grant_table(ctx, o.definition)
            else:
                continue
            if ctx.same_table(on, name):
                items.extend(ctx.raw(o.definition))
    return items, deferred


def _grant_table(ctx: _Ctx, definition: str) -> exp.Table | None:
    try:
        w = _Words(definition, ctx.d)
    except (SqlglotError, ValueError, IndexError):
        return None
    at = w.find(0, "ON")
    if at is None or w.up(0) != "GRANT":
        return None
    i = at + 1
    if w.up(i) in ("SCHEMA", "FUNCTION", "PROCEDURE", "SEQUENCE", "TYPE", "DOMAIN", "DATABASE", "ALL", "LANGUAGE"):
        return None
    if w.up(i) == "TABLE":
        i += 1
    found = w.name(i)
    return found[0] if found else None


def _column_sql(ctx: _Ctx, t: TableState, c: ColumnState) -> str:
    parts: list[str | exp.Expression] = [ctx.ident(c.name)]
    type_, default = c.type, c.default
    m = _NEXTVAL.match(default.strip()) if default and ctx.pg else None
    serial = _SERIALS.get(type_.strip().lower())
    if m is not None and serial is not None and m.group(1) == f"{t.name}_{c.name}_seq":
        type_, default = serial, None  # an owned sequence: SERIAL creates it again
    parts.append(type_)
    generated = getattr(c, "generated", None)
    if generated:
        parts.append(generated)
    elif default is not None:
        parts += ["DEFAULT", default]
    if c.identity and c.identity.upper().startswith(("GENERATED", "AUTO_INCREMENT")):
        parts.append(c.identity)
    elif c.identity and ctx.pg:
        parts.append("GENERATED ALWAYS AS IDENTITY" if "always" in c.identity.lower()
                     else "GENERATED BY DEFAULT AS IDENTITY")  # fmt: skip
    if not c.nullable:
        parts.append("NOT NULL")
    return " ".join(p if isinstance(p, str) else p.sql(dialect=ctx.d) for p in parts)


def _constraint_sql(ctx: _Ctx, con: ConstraintState) -> str:
    cols = "(" + ", ".join(ctx.ident(c).sql(dialect=ctx.d) for c in con.columns) + ")"
    head = f"CONSTRAINT {ctx.ident(con.name).sql(dialect=ctx.d)} " if con.name else ""
    definition = con.definition.strip()
    if con.kind == "primary key":
        body = f"PRIMARY KEY {cols} {definition}".rstrip()
    elif con.kind == "unique":
        body = definition if definition.upper().startswith("UNIQUE") else f"UNIQUE {cols} {definition}".rstrip()
    elif con.kind == "foreign key":
        body = definition if definition.upper().startswith("FOREIGN KEY") else f"FOREIGN KEY {cols} {definition}"
    elif con.kind == "check":
        not_valid = definition.upper().endswith(" NOT VALID")
        if not_valid:
            definition = definition[: -len(" NOT VALID")].rstrip()
        body = definition if definition.upper().startswith("CHECK") else f"CHECK ({definition})"
        body += " NOT VALID" if not_valid else ""
    else:  # exclude and others: the definition is the whole constraint
        body = definition
    return head + body


def _create_index(ctx: _Ctx, t: TableState, ix: IndexState, concurrently: bool = False) -> ReverseItem:
    definition = ix.definition.strip()
    if definition.upper().startswith("CREATE"):
        text = definition.rstrip(";").strip()
        if concurrently and ctx.pg:
            text = re.sub(r"^(CREATE\s+(?:UNIQUE\s+)?INDEX)\s+", r"\1 CONCURRENTLY ", text, count=1, flags=re.I)
        return ReverseItem(SQL, text, ctx.source, transactional=not concurrently)
    using = ""
    m = re.match(r"USING\s+(\w+)\s*", definition, re.I)
    if m:
        using, definition = f"USING {m.group(1)}", definition[m.end() :]
    cols = []
    for c in ix.columns:
        if t.column(c) is not None:
            cols.append(ctx.ident(c).sql(dialect=ctx.d))
        else:
            cols.append(c if c.startswith("(") else f"({c})")
    return ctx.sql("CREATE", "UNIQUE" if ix.unique else "", "INDEX", "CONCURRENTLY" if concurrently else "",
                   ctx.ident(ix.name), "ON", ctx.table(t.name, t.schema), using, "(" + ", ".join(cols) + ")",
                   definition, transactional=not concurrently)  # fmt: skip


# -- ALTER ----------------------------------------------------------------------------------------
def _reverse_alter_table(ctx: _Ctx, tree: exp.Alter) -> list[ReverseItem]:
    table = tree.this
    if not isinstance(table, exp.Table):
        return [ctx.manual("ALTER TABLE: the table could not be read; decide by hand what undoes it")]
    ts = ctx.find_table(table)
    items: list[ReverseItem] = []
    for action in reversed(tree.args.get("actions") or []):
        items.extend(_reverse_action(ctx, table, ts, action))
    return items


def _reverse_action(ctx: _Ctx, table: exp.Table, ts: TableState | None, action: exp.Expression) -> list[ReverseItem]:
    alter = ("ALTER TABLE", table)
    col_if_exists = "IF EXISTS" if ctx.pg else ""
    if isinstance(action, exp.ColumnDef):
        if action.args.get("exists") and ts is not None and ts.column(ctx.norm(action.this)) is not None:
            return []  # ADD COLUMN IF NOT EXISTS of a column that was there
        return [ctx.sql(*alter, "DROP COLUMN", col_if_exists, action.this)]
    if isinstance(action, exp.AddConstraint):
        out: list[ReverseItem] = []
        for con in action.expressions:
            if isinstance(con, exp.Constraint):
                out.append(ctx.sql(*alter, "DROP CONSTRAINT", col_if_exists, con.this))
            elif isinstance(con, exp.PrimaryKey) and ctx.pg:
                pkey = ctx.ident(f"{ctx.norm(table.this)}_pkey")
                out.append(ctx.sql(*alter, "DROP CONSTRAINT", col_if_exists, pkey))
            else:
                out.append(ctx.manual("a constraint added without a name got one the database chose: drop it by "
                                      "that name"))  # fmt: skip
        return out
    if isinstance(action, exp.Drop):
        kind = (action.args.get("kind") or "").upper()
        exists = bool(action.args.get("exists"))
        out = []
        for target in action.args.get("tables") or [action.this]:
            ident = target.this if isinstance(target, (exp.Column, exp.Table)) else target
            if not isinstance(ident, exp.Identifier):
                return [ctx.manual(f"ALTER TABLE DROP {kind}: the name could not be read; recreate it by hand")]
            if kind == "COLUMN":
                out.extend(_restore_column(ctx, table, ts, ident, exists))
            elif kind == "CONSTRAINT":
                out.extend(_restore_constraint(ctx, table, ts, ident, exists))
            else:
                return [ctx.manual(f"ALTER TABLE DROP {kind} is not reversed automatically: recreate it by hand")]
        return out
    if isinstance(action, exp.AlterColumn):
        return _reverse_alter_column(ctx, table, ts, action)
    if isinstance(action, exp.RenameColumn):
        old, new = action.this, action.args.get("to")
        if isinstance(old, exp.Column) and isinstance(new, exp.Column):
            return [ctx.sql(*alter, "RENAME COLUMN", new.this, "TO", old.this)]
    if isinstance(action, exp.AlterRename):
        new = action.this
        if isinstance(new, exp.Table):
            return [ctx.sql("ALTER TABLE", _renamed(table, new.this), "RENAME TO", table.this)]
    return [ctx.manual(f"ALTER TABLE action `{action.sql(dialect=ctx.d)}` is not reversed automatically: decide by "
                       "hand what undoes it")]  # fmt: skip


def _renamed(name: exp.Table, new: exp.Identifier) -> exp.Table:
    """``name`` after RENAME TO ``new``: same schema, new name."""
    db = name.args.get("db")
    return exp.Table(this=new.copy(), db=db.copy() if db is not None else None)


def _restore_column(ctx: _Ctx, table: exp.Table, ts: TableState | None, ident: exp.Identifier,
                    exists: bool) -> list[ReverseItem]:  # fmt: skip
    label = f"column {ident.sql(dialect=ctx.d)} of {table.sql(dialect=ctx.d)}"
    if ctx.before is None:
        return [ctx.manual(f"DROP COLUMN: the schema before the revision is unknown; recreate {label} by hand")]
    col = ts.column(ctx.norm(ident)) if ts is not None else None
    if ts is None or col is None:
        return [] if exists and not ctx.partial else [ctx.missing(label, "its type is not known")]
    alter = ("ALTER TABLE", table)
    items = [ctx.sql(*alter, "ADD COLUMN", _column_sql(ctx, ts, col))]
    # the database dropped the constraints and indexes that used the column
    for con in ts.constraints:
        if col.name in con.columns or (not con.columns and col.name in _columns_in(ctx, con.definition)):
            items.append(ctx.sql(*alter, "ADD", _constraint_sql(ctx, con)))
    constraint_names = {c.name for c in ts.constraints if c.name}
    for ix in ts.indexes:
        uses = col.name in ix.columns or any(ts.column(c) is None and col.name in c for c in ix.columns)
        if ix.name not in constraint_names and uses:
            items.append(_create_index(ctx, ts, ix))
    if col.comment is not None:
        items.append(ctx.sql("COMMENT ON COLUMN", exp.Column(this=ctx.ident(col.name), table=table.this,
                                                              db=table.args.get("db")),
                             "IS", exp.Literal.string(col.comment)))  # fmt: skip
    return items


def _columns_in(ctx: _Ctx, expression: str) -> set[str]:
    """The column names a check constraint's SQL refers to."""
    text = expression.strip()
    text = text[len("CHECK") :] if text.upper().startswith("CHECK") else text
    try:
        tree = sqlglot.parse_one(text, read=ctx.d)
    except (SqlglotError, RecursionError, ValueError, IndexError):
        return set(_WORD_RE.findall(text))
    return {ctx.norm(c.this) for c in tree.find_all(exp.Column) if isinstance(c.this, exp.Identifier)}


def _restore_constraint(ctx: _Ctx, table: exp.Table, ts: TableState | None, ident: exp.Identifier,
                        exists: bool) -> list[ReverseItem]:  # fmt: skip
    label = f"constraint {ident.sql(dialect=ctx.d)} of {table.sql(dialect=ctx.d)}"
    if ctx.before is None:
        return [ctx.manual(f"DROP CONSTRAINT: the schema before the revision is unknown; recreate {label} by hand")]
    con = next((c for c in ts.constraints if ctx.same(c.name, ctx.norm(ident))), None) if ts is not None else None
    if con is None:
        return [] if exists and not ctx.partial else [ctx.missing(label)]
    return [ctx.sql("ALTER TABLE", table, "ADD", _constraint_sql(ctx, con))]


def _reverse_alter_column(ctx: _Ctx, table: exp.Table, ts: TableState | None,
                          action: exp.AlterColumn) -> list[ReverseItem]:  # fmt: skip
    ident = action.this
    col = ts.column(ctx.norm(ident)) if ts is not None else None
    alter = ("ALTER TABLE", table, "ALTER COLUMN", ident)
    label = f"column {ident.sql(dialect=ctx.d)} of {table.sql(dialect=ctx.d)}"
    args = action.args
    if args.get("dtype") is not None:
        if col is None:
            return [ctx.manual(f"ALTER COLUMN TYPE: the previous type of {label} is not known; change it back by hand")]
        return [ctx.sql(*alter, "TYPE", col.type, "USING", ident.sql(dialect=ctx.d) + "::" + col.type)]
    if args.get("default") is not None or (args.get("drop") and args.get("allow_null") is None):
        if col is None:
            return [ctx.manual(f"ALTER COLUMN DEFAULT: the previous default of {label} is not known; put it back "
                               "by hand")]  # fmt: skip
        if col.default is None:
            return [ctx.sql(*alter, "DROP DEFAULT")]
        return [ctx.sql(*alter, "SET DEFAULT", col.default)]
    if args.get("allow_null") is False:  # SET NOT NULL
        return [ctx.sql(*alter, "DROP NOT NULL")] if col is None or col.nullable else []
    if args.get("allow_null") is True:  # DROP NOT NULL
        return [ctx.sql(*alter, "SET NOT NULL")] if col is None or not col.nullable else []
    return [ctx.manual(f"ALTER COLUMN `{action.sql(dialect=ctx.d)}` is not reversed automatically: decide by hand "
                       "what undoes it")]  # fmt: skip


_RENAMEABLE = ("FUNCTION", "PROCEDURE", "AGGREGATE", "VIEW", "MATERIALIZED VIEW", "TYPE", "DOMAIN", "SEQUENCE",
               "INDEX", "SCHEMA", "TRIGGER", "POLICY", "TABLE")  # fmt: skip


def _reverse_alter_words(ctx: _Ctx) -> list[ReverseItem]:
    w = ctx.words
    i = 1
    kind = w.up(i)
    if kind == "MATERIALIZED" and w.up(i + 1) == "VIEW":
        kind, i = "MATERIALIZED VIEW", i + 1
    if kind not in _RENAMEABLE:
        return [ctx.manual(f"ALTER {kind or w.text(1, 1)} is not reversed automatically: decide by hand what "
                           "undoes it")]  # fmt: skip
    i += 1
    if_exists = w.match(i, "IF", "EXISTS") is not None
    if if_exists:
        i += 2
    if kind == "TABLE" and w.up(i) == "ONLY":
        i += 1
    named = w.name(i)
    if named is None:
        return [ctx.manual(f"ALTER {kind}: the name could not be read; decide by hand what undoes it")]
    name, i = named
    if w.punct(i, "*"):
        i += 1
    signature = ""
    if kind in ("FUNCTION", "PROCEDURE", "AGGREGATE") and w.punct(i, "("):
        group = w.group(i)
        if group is None:
            return [ctx.manual(f"ALTER {kind}: the argument list could not be read; decide by hand")]
        signature = "(" + ", ".join(_arg_types(w, group[0], procedure=kind == "PROCEDURE")) + ")"
        i = group[1]
    on: exp.Table | None = None
    if kind in ("TRIGGER", "POLICY") and w.up(i) == "ON":
        table = w.name(i + 1)
        if table is None:
            return [ctx.manual(f"ALTER {kind}: the table could not be read; decide by hand")]
        on, i = table
    if kind == "TABLE":
        return _reverse_alter_table_words(ctx, name, i)
    if w.match(i, "RENAME", "TO") and w.is_name_part(i + 2) and i + 3 == len(w):
        new = w.ident(i + 2)
        if kind == "SCHEMA":
            return [ctx.sql("ALTER SCHEMA", new, "RENAME TO", name.this)]
        target = new if kind in ("TRIGGER", "POLICY") else _renamed(name, new)
        return [ctx.sql("ALTER", kind, "IF EXISTS" if if_exists else "",
                        target.sql(dialect=ctx.d) + signature, "ON" if on is not None else "", on,
                        "RENAME TO", name.this)]  # fmt: skip
    if kind == "SEQUENCE" and w.match(i, "OWNED", "BY") and i + 3 <= len(w):
        previous = _find(ctx, _Object("SEQUENCE", name)) if ctx.before is not None else None
        if isinstance(previous, ObjectState) and "OWNED BY" in previous.definition.upper():
            return [ctx.manual(f"ALTER SEQUENCE {name.sql(dialect=ctx.d)} OWNED BY: it was owned by a column "
                               "before; set that owner back by hand")]  # fmt: skip
        return [ctx.sql("ALTER SEQUENCE IF EXISTS", name, "OWNED BY NONE")]
    if kind == "TYPE" and w.match(i, "ADD", "VALUE"):
        value = next((x.text for x in w.items[i:] if x.kind == "string"), "?")
        return [ctx.manual(f"ALTER TYPE {name.sql(dialect=ctx.d)} ADD VALUE {exp.Literal.string(value).sql(ctx.d)}: "
                           "PostgreSQL cannot drop a value from an enum type; to undo it, make sure no row uses "
                           "the value, then recreate the type without it (create the new type, ALTER the columns "
                           "that use it with USING col::text::new_type, drop the old type, rename the new "
                           "one)")]  # fmt: skip
    if kind == "TYPE" and w.match(i, "RENAME", "VALUE") and w.up(i + 3) == "TO":
        old, new_value = w.items[i + 2], w.items[i + 4] if i + 4 < len(w) else None
        if old.kind == "string" and new_value is not None and new_value.kind == "string":
            return [ctx.sql("ALTER TYPE", name, "RENAME VALUE", exp.Literal.string(new_value.text), "TO",
                            exp.Literal.string(old.text))]  # fmt: skip
    return [ctx.manual(f"ALTER {kind} {w.text(i, len(w) - 1)} is not reversed automatically: decide by hand what "
                       "undoes it")]  # fmt: skip


def _reverse_alter_table_words(ctx: _Ctx, table: exp.Table, i: int) -> list[ReverseItem]:
    """ALTER TABLE actions sqlglot does not model (row level security, RENAME CONSTRAINT), one by
    one; the others are parsed again on their own."""
    w = ctx.words
    ts = ctx.find_table(table)
    items: list[ReverseItem] = []
    alter = ("ALTER TABLE", table)
    opposite = {"ENABLE": "DISABLE", "DISABLE": "ENABLE", "FORCE": "NO FORCE"}
    for a, b in reversed(w.split_top(i, len(w) - 1)):
        if w.match(a, "NO", "FORCE", "ROW", "LEVEL", "SECURITY") == b + 1:
            items.append(ctx.sql(*alter, "FORCE ROW LEVEL SECURITY"))
        elif w.up(a) in opposite and w.match(a + 1, "ROW", "LEVEL", "SECURITY") == b + 1:
            verb = w.up(a)
            if verb in ("ENABLE", "DISABLE") and ts is not None and ts.row_level_security == (verb == "ENABLE"):
                continue  # already so before
            items.append(ctx.sql(*alter, opposite[verb], "ROW LEVEL SECURITY"))
        elif w.match(a, "RENAME", "CONSTRAINT") and w.up(a + 3) == "TO" and a + 4 == b:
            items.append(ctx.sql(*alter, "RENAME CONSTRAINT", w.ident(a + 4), "TO", w.ident(a + 2)))
        else:
            action = f"ALTER TABLE {table.sql(dialect=ctx.d)} {w.text(a, b)}"
            try:
                tree = sqlglot.parse_one(action, read=ctx.d)
            except (SqlglotError, RecursionError, ValueError, IndexError):
                tree = None
            if isinstance(tree, exp.Alter):
                for act in reversed(tree.args.get("actions") or []):
                    items.extend(_reverse_action(ctx, table, ts, act))
            else:
                items.append(ctx.manual(f"ALTER TABLE action `{w.text(a, b)}` is not reversed automatically: "
                                        "decide by hand what undoes it"))  # fmt: skip
    return items


# -- COMMENT, GRANT -------------------------------------------------------------------------------
def _reverse_comment(ctx: _Ctx) -> list[ReverseItem]:
    w = ctx.words
    is_at = None
    depth = 0
    for j in range(len(w)):
        if w.punct(j, "("):
            depth += 1
        elif w.punct(j, ")"):
            depth -= 1
        elif depth == 0 and w.up(j) == "IS":
            is_at = j
    if w.up(1) != "ON" or is_at is None or is_at < 3:
        return [ctx.manual("COMMENT: the statement could not be read; put the previous comment back by hand")]
    target = _comment_target(ctx, w, 2, is_at - 1)
    previous = _previous_comment(ctx, w, 2, is_at - 1, target)
    value: str | exp.Expression = "NULL" if previous is None else exp.Literal.string(previous)
    return [ctx.sql("COMMENT ON", w.text(2, is_at - 1), "IS", value)]


def _comment_target(ctx: _Ctx, w: _Words, a: int, b: int) -> tuple[str, ...]:
    """A comparable key of a COMMENT ON target (words ``a``..``b``)."""
    key: list[str] = []
    j = a
    while j <= b:
        item = w.items[j]
        if item.kind in ("word", "ident"):
            name = ctx.norm(w.ident(j))
            if not (name.lower() == "public" and w.punct(j + 1, ".")):
                key.append(name.upper() if item.kind == "word" and name.upper() in (*_KINDS, "COLUMN", "ON",
                                                                                      "CONSTRAINT", "MATERIALIZED")
                           else name)  # fmt: skip
            elif w.punct(j + 1, "."):
                j += 1
        elif w.punct(j, "("):
            group = w.group(j)
            if group is not None:
                key.append("(" + ", ".join(_canon_args(ctx, _arg_types(w, group[0], procedure=False))) + ")")
                j = group[1]
                continue
        elif item.kind != "punct" or item.text not in ".":
            key.append(item.text)
        j += 1
    return tuple(key)


def _previous_comment(ctx: _Ctx, w: _Words, a: int, b: int, target: tuple[str, ...]) -> str | None:
    if ctx.before is None:
        return None
    kind = w.up(a)
    named = w.name(a + 1)
    if kind == "TABLE" and named is not None:
        ts = ctx.find_table(named[0])
        if ts is not None:
            return ts.comment
    if kind == "COLUMN" and named is not None:
        full = named[0]
        parts = [p for p in (full.args.get("catalog"), full.args.get("db"), full.this) if p is not None]
        if len(parts) >= 2:
            ts = ctx.find_table(_table_of(parts[:-1]))
            col = ts.column(ctx.norm(parts[-1])) if ts is not None else None
            if col is not None:
                return col.comment
            if ts is not None:
                return None
    for o in ctx.before.objects:
        if o.kind != "comment" or not o.definition:
            continue
        try:
            ow = _Words(o.definition, ctx.d)
        except (SqlglotError, ValueError, IndexError):
            continue
        is_at = max((j for j in range(len(ow)) if ow.up(j) == "IS"), default=None)
        if is_at is None or ow.up(1) != "ON":
            continue
        if _comment_target(ctx, ow, 2, is_at - 1) == target:
            value = ow.items[is_at + 1] if is_at + 1 < len(ow) else None
            return value.text if value is not None and value.kind == "string" else None
    return None


def _reverse_grant(ctx: _Ctx) -> list[ReverseItem]:
    w = ctx.words
    n = len(w)
    if w.up(0) == "GRANT":
        to = w.find(1, "TO")
        if to is None or to == n - 1:
            return [ctx.manual("GRANT: the statement could not be read; revoke what it granted by hand")]
        end = next((j for j in range(to + 1, n) if w.up(j) in ("WITH", "GRANTED")), n)
        return [ctx.sql("REVOKE", w.text(1, to - 1), "FROM", w.text(to + 1, end - 1))]
    i = 1
    option = w.match(i, "GRANT", "OPTION", "FOR") is not None or w.match(i, "ADMIN", "OPTION", "FOR") is not None
    if option:
        i += 3
    frm = w.find(i, "FROM")
    if frm is None or frm == n - 1:
        return [ctx.manual("REVOKE: the statement could not be read; grant back what it revoked by hand")]
    end = next((j for j in range(frm + 1, n) if w.up(j) in ("CASCADE", "RESTRICT", "GRANTED")), n)
    with_option = ("WITH " + w.up(1) + " OPTION") if option else ""
    return [ctx.sql("GRANT", w.text(i, frm - 1), "TO", w.text(frm + 1, end - 1), with_option)]
