"""What a SQL string given to ``op.execute`` does to data, read with sqlglot.

Each statement becomes a :class:`SqlEffect`: which tables it touches and whether it can destroy
rows (whole tables), values (primary key + columns) or only the rows a WHERE selects.  Anything
sqlglot cannot read, or reads only as an opaque command, is ``opaque``: unknown SQL never means
"nothing at risk".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlglot is imported when SQL is first read: a step without SQL never pays for it
    from sqlglot import exp

# sqlglot logs a warning for every statement it falls back to an opaque Command for; those
# statements are reported through SqlEffect instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

SQLGLOT_DIALECTS = {
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "mssql": "tsql",
    "oracle": "oracle",
}

# kinds
WHOLE = "whole"  # every row of the table may be lost
COLUMNS = "columns"  # values of some columns may be lost (all rows, or the WHERE's rows)
ROWS = "rows"  # the rows a WHERE selects may be lost (all columns)
SCHEMA = "schema"  # changes schema only; no row or value is lost
OPAQUE = "opaque"  # cannot tell

# Commands sqlglot does not model but which, by their first words, cannot lose table data.
_HARMLESS_PREFIXES = (
    "CREATE", "COMMENT", "GRANT", "REVOKE", "SET", "RESET", "ANALYZE", "VACUUM", "REINDEX",
    "REFRESH", "NOTIFY", "LISTEN", "SELECT", "SHOW", "ALTER TYPE", "ALTER SEQUENCE",
    "ALTER INDEX", "ALTER VIEW", "ALTER FUNCTION", "ALTER PROCEDURE", "ALTER EXTENSION",
    "ALTER TRIGGER", "ALTER POLICY", "ALTER SCHEMA", "ALTER ROLE", "ALTER USER",
    "ALTER DEFAULT PRIVILEGES", "ALTER MATERIALIZED VIEW", "ALTER DOMAIN", "PRAGMA",
    "DISCARD", "SECURITY LABEL", "CHECKPOINT", "LOCK",
)  # fmt: skip
# DROP of these kinds loses no row (without CASCADE).
_SCHEMA_ONLY_DROPS = {
    "VIEW", "INDEX", "FUNCTION", "PROCEDURE", "TRIGGER", "SEQUENCE", "POLICY",
    "MATERIALIZED VIEW", "RULE", "CONSTRAINT", "AGGREGATE", "OPERATOR", "STATISTICS",
}  # fmt: skip


@dataclass(frozen=True)
class TableRef:
    name: str
    schema: str | None = None

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class SqlEffect:
    """One statement's effect on data."""

    kind: str
    statement: str  # e.g. "DELETE", "ALTER TABLE", "DO"
    tables: tuple[TableRef, ...] = ()
    columns: tuple[str, ...] = ()
    where: str | None = None
    reason: str = ""


def sqlglot_dialect(dialect_name: str) -> str | None:
    return SQLGLOT_DIALECTS.get(dialect_name)


def _table(t: exp.Expression) -> TableRef | None:
    from sqlglot import exp
    if isinstance(t, exp.Schema):
        t = t.this
    if not isinstance(t, exp.Table) or not t.name:
        return None
    return TableRef(t.name, t.db or None)


def _cols_in_subqueries(node: exp.Expr) -> set[int]:
    from sqlglot import exp
    return {id(c) for sub in node.find_all(exp.Subquery, exp.Select) for c in sub.find_all(exp.Column)}


def where_columns(where_sql: str, dialect_name: str) -> set[str] | None:
    """Columns of the target table a WHERE text refers to (None when it cannot be read)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        node = sqlglot.parse_one(where_sql, read=sqlglot_dialect(dialect_name))
    except SqlglotError:
        return None
    inner = _cols_in_subqueries(node)
    return {c.name for c in node.find_all(exp.Column) if id(c) not in inner}


def analyze_sql(sql: str, dialect_name: str) -> list[SqlEffect]:
    """Split ``sql`` into statements and classify each."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    read = sqlglot_dialect(dialect_name)
    try:
        parsed = sqlglot.parse(sql, read=read)
    except (SqlglotError, RecursionError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [SqlEffect(OPAQUE, _first_words(sql), reason=f"SQL could not be parsed: {first}")]
    effects = [_classify(stmt, read) for stmt in parsed if stmt is not None]
    return effects or [SqlEffect(SCHEMA, "EMPTY")]


def _first_words(sql: str, n: int = 2) -> str:
    return " ".join(sql.split()[:n]).upper() or "EMPTY"


def _classify(stmt: exp.Expr, read: str | None) -> SqlEffect:
    from sqlglot import exp

    if isinstance(stmt, exp.Drop):
        kind = (stmt.args.get("kind") or "").upper()
        tables = tuple(t for t in (_table(x) for x in stmt.args.get("tables") or [stmt.this]) if t)
        if kind == "TABLE":
            return SqlEffect(WHOLE, "DROP TABLE", tables, reason="DROP TABLE")
        if kind in _SCHEMA_ONLY_DROPS and not stmt.args.get("cascade"):
            return SqlEffect(SCHEMA, f"DROP {kind}")
        return SqlEffect(OPAQUE, f"DROP {kind}", reason=f"DROP {kind} may remove tables or columns")
    if isinstance(stmt, exp.TruncateTable):
        tables = tuple(t for t in (_table(x) for x in stmt.expressions) if t)
        return SqlEffect(WHOLE, "TRUNCATE", tables, reason="TRUNCATE")
    if isinstance(stmt, exp.Delete):
        table = _table(stmt.this)
        if table is None:
            return SqlEffect(OPAQUE, "DELETE", reason="DELETE target not understood")
        where = stmt.args.get("where")
        simple = not stmt.args.get("using") and not stmt.this.alias and where is not None
        if where is not None and simple:
            return SqlEffect(ROWS, "DELETE", (table,), where=where.this.sql(dialect=read),
                             reason="DELETE ... WHERE")  # fmt: skip
        return SqlEffect(WHOLE, "DELETE", (table,), reason="DELETE without a usable WHERE")
    if isinstance(stmt, exp.Update):
        table = _table(stmt.this)
        cols = tuple(
            e.this.name for e in stmt.expressions if isinstance(e, exp.EQ) and isinstance(e.this, exp.Column)
        )
        if table is None or len(cols) != len(stmt.expressions):
            return SqlEffect(OPAQUE, "UPDATE", (table,) if table else (), reason="UPDATE not understood")
        where = stmt.args.get("where")
        simple = not stmt.args.get("from_") and not stmt.args.get("from") and not stmt.this.alias
        where_sql = where.this.sql(dialect=read) if (where is not None and simple) else None
        return SqlEffect(COLUMNS, "UPDATE", (table,), cols, where_sql, reason="UPDATE")
    if isinstance(stmt, exp.Alter):
        return _classify_alter(stmt)
    if isinstance(stmt, exp.Insert):
        table = _table(stmt.this)
        if stmt.args.get("conflict") is not None or stmt.args.get("overwrite"):
            return SqlEffect(
                WHOLE, "INSERT", (table,) if table else (), reason="INSERT that updates or overwrites rows"
            )
        return SqlEffect(SCHEMA, "INSERT")
    if isinstance(stmt, exp.Merge):
        table = _table(stmt.this)
        return SqlEffect(WHOLE, "MERGE", (table,) if table else (), reason="MERGE")
    if isinstance(stmt, (exp.Create, exp.Select, exp.Set, exp.Comment, exp.Transaction,
                         exp.Commit, exp.Rollback, exp.Pragma, exp.Grant, exp.Revoke, exp.Analyze)):  # fmt: skip
        return SqlEffect(SCHEMA, type(stmt).__name__.upper())
    if isinstance(stmt, exp.Command):
        expr = stmt.expression
        rest = expr if isinstance(expr, str) else (expr.sql() if expr is not None else "")
        text = f"{stmt.this} {rest}".upper()
        words = " ".join(text.replace("'", " ").split())
        if words.startswith(_HARMLESS_PREFIXES):
            return SqlEffect(SCHEMA, _first_words(words))
        return SqlEffect(OPAQUE, _first_words(words), reason=f"{_first_words(words)} is not understood")
    return SqlEffect(OPAQUE, type(stmt).__name__.upper(), reason=f"{type(stmt).__name__} statement not understood")


def _classify_alter(stmt: exp.Alter) -> SqlEffect:
    from sqlglot import exp

    kind = (stmt.args.get("kind") or "").upper()
    table = _table(stmt.this)
    if kind != "TABLE" or table is None:
        return SqlEffect(SCHEMA, f"ALTER {kind}")
    risky: list[str] = []
    for action in stmt.args.get("actions") or []:
        if isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
            risky.extend(c.name for c in action.args.get("tables") or [action.this] if c is not None)
        elif isinstance(action, exp.AlterColumn):
            if action.args.get("dtype") is not None or action.args.get("allow_null") is not None:
                risky.append(action.this.name)
        elif isinstance(action, exp.ModifyColumn):
            risky.append(action.this.name)
        elif isinstance(action, (exp.ColumnDef, exp.AddConstraint, exp.RenameColumn,
                                 exp.AlterRename, exp.Drop, exp.Set)):  # fmt: skip
            continue
        else:
            return SqlEffect(OPAQUE, "ALTER TABLE", (table,),
                             reason=f"ALTER TABLE action {type(action).__name__} not understood")  # fmt: skip
    if risky:
        return SqlEffect(COLUMNS, "ALTER TABLE", (table,), tuple(risky), reason="ALTER TABLE drops or retypes columns")
    return SqlEffect(SCHEMA, "ALTER TABLE", (table,))
