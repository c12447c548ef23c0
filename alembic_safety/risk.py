"""Risk rules: recorded operations in, findings with stable codes out.

Every rule is a registered class with a stable ``code`` (``SAF1xx`` destroys data, ``SAF2xx``
locks/rewrites or can fail on existing data, ``SAF3xx`` breaks running code or cannot be undone,
``SAF4xx`` cannot run), a dotted ``name``, a default ``severity`` and a docstring that shows the
bad pattern and the safe alternative (the README's rule reference is generated from them).
Rules are pure: live facts (row counts, violating rows) come through :class:`Facts`, which
answers ``None`` when no database is reachable — the rule then says what it could not know.
"""

from __future__ import annotations

import abc
import functools
import inspect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import sqlalchemy as sa
import sqlglot
from alembic.operations import ops as alembic_ops
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine
from sqlglot import exp

from .record import RecordedStep, flatten, sql_text
from .sqlinfo import COLUMNS, OPAQUE, ROWS, WHOLE, SqlEffect, TableRef, sqlglot_dialect, where_columns

SEVERITIES = ("high", "medium", "low")
RANK = {"high": 3, "medium": 2, "low": 1, "never": 99}
LARGE_TABLE_ROWS = 100_000  # "populated"/"large" thresholds for lock and rewrite rules
POPULATED_ROWS = 1


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: str
    table: str | None
    column: str | None
    message: str
    allowed: str | None = None  # the reason given in a ``# safety: allow CODE reason`` comment

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name, "severity": self.severity, "table": self.table,
                "column": self.column, "message": self.message, "allowed": self.allowed}  # fmt: skip


class Facts(Protocol):
    """Live facts about the database; every method answers None when it cannot know."""

    def rows(self, table: TableRef) -> int | None: ...

    def null_count(self, table: TableRef, column: str) -> int | None: ...

    def duplicate_count(self, table: TableRef, columns: list[str]) -> int | None: ...

    def check_violations(self, table: TableRef, condition: str) -> int | None: ...

    def orphan_count(self, table: TableRef, columns: list[str], referred: TableRef,
                     referred_columns: list[str]) -> int | None: ...  # fmt: skip


class NoFacts:
    """Static analysis: nothing is known, and every question asked is remembered."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def _miss(self, what: str) -> None:
        if what not in self.unknown:
            self.unknown.append(what)

    def rows(self, table: TableRef) -> int | None:
        self._miss(f"row count of {table.key}")
        return None

    def null_count(self, table: TableRef, column: str) -> int | None:
        self._miss(f"NULLs in {table.key}.{column}")
        return None

    def duplicate_count(self, table: TableRef, columns: list[str]) -> int | None:
        self._miss(f"duplicates in {table.key}({', '.join(columns)})")
        return None

    def check_violations(self, table: TableRef, condition: str) -> int | None:
        self._miss(f"rows of {table.key} violating CHECK ({condition})")
        return None

    def orphan_count(self, table: TableRef, columns: list[str], referred: TableRef,
                     referred_columns: list[str]) -> int | None:  # fmt: skip
        self._miss(f"rows of {table.key}({', '.join(columns)}) without a match in {referred.key}")
        return None


@dataclass(frozen=True)
class RuleContext:
    """What a rule sees of one revision."""

    revision: str
    upgrade: RecordedStep
    downgrade: RecordedStep | None  # None: the revision has no downgrade() at all
    downgrade_source: str  # the downgrade function's source ("" when unknown)
    dialect: str
    facts: Facts

    def ops(self) -> Iterator[tuple[int, alembic_ops.MigrateOperation]]:
        yield from enumerate(flatten(self.upgrade.ops))

    def sql(self) -> Iterator[tuple[alembic_ops.ExecuteSQLOp, SqlEffect]]:
        for index, op in self.ops():
            if isinstance(op, alembic_ops.ExecuteSQLOp):
                for effect in self.upgrade.effects_for(index):
                    yield op, effect


class Rule(abc.ABC):
    """Base class; subclasses register themselves by defining ``code``."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    severity: ClassVar[str] = "low"
    registry: ClassVar[dict[str, type[Rule]]] = {}

    def __init_subclass__(cls, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if cls.code:
            if cls.code in Rule.registry:
                raise ValueError(f"duplicate rule code {cls.code}")
            if cls.severity not in SEVERITIES:
                raise ValueError(f"{cls.code}: bad severity {cls.severity}")
            Rule.registry[cls.code] = cls

    @abc.abstractmethod
    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        """Yield the findings of this rule for one revision."""

    def finding(self, message: str, table: TableRef | str | None = None, column: str | None = None,
                severity: str | None = None) -> Finding:  # fmt: skip
        key = table.key if isinstance(table, TableRef) else table
        return Finding(self.code, self.name, severity or self.severity, key, column, message)

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def all_rules() -> list[type[Rule]]:
    return [Rule.registry[c] for c in sorted(Rule.registry)]


_ALLOW = re.compile(r"#\s*safety:\s*allow\s+(SAF\d{3})\b[ \t]*(.*)$", re.MULTILINE)


def suppressions(source: str) -> dict[str, str]:
    """``# safety: allow SAF101 <reason>`` comments of a revision file: code -> reason."""
    return {m.group(1): (m.group(2).strip() or "no reason given") for m in _ALLOW.finditer(source)}


def evaluate(ctx: RuleContext, allowed: dict[str, str] | None = None) -> list[Finding]:
    """Run every rule; findings of allowed codes stay, marked with the reason."""
    allowed = allowed or {}
    out: list[Finding] = []
    for rule_cls in all_rules():
        for f in _run(rule_cls, ctx):
            if f.code in allowed:
                f = Finding(f.code, f.name, f.severity, f.table, f.column, f.message, allowed[f.code])
            out.append(f)
    return sorted(out, key=lambda f: (-RANK[f.severity], f.code, f.table or "", f.column or ""))


def _run(rule_cls: type[Rule], ctx: RuleContext) -> list[Finding]:
    """One rule's findings; a rule that trips over odd input reports that instead of raising."""
    try:
        return list(rule_cls().check(ctx))
    except Exception as exc:
        message = f"the rule could not analyse this revision ({type(exc).__name__}: {_one_line(exc)})"
        return [Finding(rule_cls.code, rule_cls.name, "low", None, None, message)]


def worst(findings: Iterable[Finding]) -> str | None:
    """The highest severity among findings that are not allowed."""
    live = [f.severity for f in findings if f.allowed is None]
    return max(live, key=lambda s: RANK[s]) if live else None


# ---------------------------------------------------------------------------------------------
# Helpers shared by the rules.  Everything here tolerates odd input: ops with None names,
# SQLAlchemy constructs in op.execute, custom ops, types given as classes.
# ---------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def _str(value: object) -> str | None:
    """A usable name, or None (``None``, empty, not a string)."""
    return str(value) if isinstance(value, str) and value else None


def _ref(op: object, attr: str = "table_name", schema_attr: str = "schema") -> TableRef:
    schema = getattr(op, schema_attr, None)
    return TableRef(_str(getattr(op, attr, None)) or "?", _str(schema))


def _fk_refs(op: alembic_ops.CreateForeignKeyOp) -> tuple[TableRef, TableRef]:
    kw = op.kw if isinstance(getattr(op, "kw", None), dict) else {}
    source = TableRef(_str(op.source_table) or "?", _str(kw.get("source_schema")))
    referent = TableRef(_str(op.referent_table) or "?", _str(kw.get("referent_schema")))
    return source, referent


def _kw(op: object) -> dict[str, Any]:
    kw = getattr(op, "kw", None)
    return kw if isinstance(kw, dict) else {}


def _names(cols: object) -> list[str] | None:
    """Plain column names, or None when any of them is an expression (or there are none)."""
    if not isinstance(cols, (list, tuple)) or not cols:
        return None
    names: list[str] = []
    for c in cols:
        name = c if isinstance(c, str) else (c.name if isinstance(c, sa.ColumnClause) else None)
        if not isinstance(name, str) or not name:
            return None
        names.append(name)
    return names


@functools.cache
def _dialect(name: str) -> Dialect:
    try:
        dialect: Dialect = sa.URL.create(name).get_dialect()()
    except Exception:
        dialect = DefaultDialect()
    return dialect


def _sql_string(op: alembic_ops.ExecuteSQLOp, dialect: str) -> str:
    """The text of an ``op.execute``; "" when it cannot be produced."""
    try:
        return sql_text(op, _dialect(dialect))
    except Exception:
        return ""


def _clause_sql(value: object, dialect: str) -> str | None:
    """SQL text of a string, ``sa.text()`` or expression (a CHECK condition, a default)."""
    if isinstance(value, str):
        return value
    if isinstance(value, sa.TextClause):
        return value.text
    if isinstance(value, ClauseElement):
        try:
            return str(value.compile(dialect=_dialect(dialect), compile_kwargs={"literal_binds": True}))
        except Exception:
            return None
    return None


@functools.lru_cache(maxsize=64)
def _parse(sql: str, dialect: str) -> tuple[Any, ...]:
    """sqlglot trees of the statements (cached: several rules read the same SQL; never mutated)."""
    try:
        return tuple(s for s in sqlglot.parse(sql, read=sqlglot_dialect(dialect)) if s is not None)
    except Exception:
        return ()


def _walk(ops: Iterable[Any], in_batch: bool = False) -> Iterator[tuple[alembic_ops.MigrateOperation, bool]]:
    """Ops in :func:`record.flatten` order, each with whether it sits in a batch block."""
    for op in ops:
        if isinstance(op, alembic_ops.OpContainer):
            yield from _walk(list(op.ops), in_batch or isinstance(op, alembic_ops.ModifyTableOps))
        else:
            yield op, in_batch


def _statements(step: RecordedStep, dialect: str) -> Iterator[tuple[SqlEffect, Any]]:
    """Each ``op.execute`` statement's effect with its sqlglot tree (None when not parsable)."""
    for index, op in enumerate(flatten(step.ops)):
        if not isinstance(op, alembic_ops.ExecuteSQLOp):
            continue
        effects = step.effects_for(index)
        parsed: list[Any] = list(_parse(_sql_string(op, dialect), dialect)) if effects else []
        if len(parsed) != len(effects):
            parsed = [None] * len(effects)
        yield from zip(effects, parsed, strict=True)


def _sqlglot_table(node: Any) -> TableRef | None:
    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table) or not node.name:
        return None
    return TableRef(node.name, node.db or None)


def _alter_actions(tree: Any) -> Iterator[tuple[TableRef, Any]]:
    """(table, action) of an ``ALTER TABLE`` sqlglot tree."""
    if isinstance(tree, exp.Alter) and (tree.args.get("kind") or "").upper() == "TABLE":
        table = _sqlglot_table(tree.this)
        if table is not None:
            for action in tree.args.get("actions") or []:
                yield table, action


def _has_where(tree: Any) -> bool | None:
    """Whether a parsed DELETE/UPDATE has a WHERE (None: not parsed)."""
    if tree is None:
        return None
    return tree.args.get("where") is not None


def _created_tables(step: RecordedStep) -> set[str]:
    return {_ref(op).key for op in flatten(step.ops) if isinstance(op, alembic_ops.CreateTableOp)}


def _added_columns(step: RecordedStep) -> dict[tuple[str, str], sa.Column[Any]]:
    out: dict[tuple[str, str], sa.Column[Any]] = {}
    for op in flatten(step.ops):
        column = getattr(op, "column", None)
        if isinstance(op, alembic_ops.AddColumnOp) and isinstance(column, sa.Column) and _str(column.name):
            out[(_ref(op).key, column.name)] = column
    return out


def _writes_to(ctx: RuleContext, table: TableRef) -> bool:
    """Whether the step writes rows of ``table`` (or may: opaque SQL, the connection)."""
    if ctx.upgrade.opaque:
        return True
    for op in flatten(ctx.upgrade.ops):
        if isinstance(op, alembic_ops.BulkInsertOp) and getattr(getattr(op, "table", None), "name", None) == table.name:
            return True
    for effect, _ in _statements(ctx.upgrade, ctx.dialect):
        if effect.kind == OPAQUE or (table in effect.tables and effect.statement in ("UPDATE", "INSERT", "MERGE")):
            return True
        if effect.statement == "INSERT":  # plain INSERTs name no table in their effect
            return True
    return False


def _type(value: Any) -> TypeEngine[Any] | None:
    if value is None:
        return None
    try:
        t = sqltypes.to_instance(value)
    except Exception:
        return None
    return t if isinstance(t, TypeEngine) else None


def _type_str(t: TypeEngine[Any] | None, dialect: str) -> str:
    if t is None:
        return "an unknown type"
    try:
        return str(t.compile(dialect=_dialect(dialect)))
    except Exception:
        try:
            return str(t)
        except Exception:
            return type(t).__name__


_INT_RANKS = {"TINYINT": 1, "SMALLINT": 2, "MEDIUMINT": 3, "BIGINT": 8}
_INT_DIGITS = {1: 3, 2: 5, 3: 7, 4: 10, 8: 19}  # decimal digits an integer of that rank can need
_TEXT_WIDTH = {"bool": 5, "int": 20, "uuid": 36, "date": 10}  # characters their text form can need


def _family(t: TypeEngine[Any]) -> str:
    checks: list[tuple[type[Any], str]] = [
        (sqltypes.Boolean, "bool"), (sqltypes.Integer, "int"), (sqltypes.Float, "float"),
        (sqltypes.Numeric, "numeric"), (sqltypes.Enum, "enum"), (sqltypes.String, "string"),
        (sqltypes.DateTime, "datetime"), (sqltypes.Date, "date"), (sqltypes.Time, "time"),
        (sqltypes.Interval, "interval"), (sqltypes._Binary, "binary"), (sqltypes.JSON, "json"),
        (sqltypes.Uuid, "uuid"), (sqltypes.ARRAY, "array"),
    ]  # fmt: skip
    for cls, family in checks:
        if isinstance(t, cls):
            return family
    return type(t).__name__.lower()


def _int_rank(t: TypeEngine[Any]) -> int:
    for cls in type(t).__mro__:
        rank = _INT_RANKS.get(cls.__name__.upper())
        if rank:
            return rank
        if cls is sqltypes.SmallInteger:
            return 2
        if cls is sqltypes.BigInteger:
            return 8
    return 4


def _float_bits(t: TypeEngine[Any]) -> int:
    precision = getattr(t, "precision", None)
    if isinstance(t, sqltypes.REAL) or (isinstance(precision, int) and precision <= 24):
        return 24
    return 53


def _length(t: TypeEngine[Any]) -> int | None:
    length = getattr(t, "length", None)
    return length if isinstance(length, int) else None


def _num(t: TypeEngine[Any]) -> tuple[int | None, int | None]:
    p, s = getattr(t, "precision", None), getattr(t, "scale", None)
    return (p if isinstance(p, int) else None, s if isinstance(s, int) else None)


def type_change(old: TypeEngine[Any] | None, new: TypeEngine[Any] | None) -> tuple[bool, str]:
    """(safe, why): whether every value of ``old`` survives the conversion to ``new``."""
    if old is None or new is None:
        return False, "the old type is unknown (no existing_type=), so nothing says every value fits"
    fo, fn = _family(old), _family(new)
    if fo == fn:
        if fo == "int":
            return (
                (True, "")
                if _int_rank(new) >= _int_rank(old)
                else (False, "values outside the new integer range are rejected (PostgreSQL) or clipped (MySQL)")
            )
        if fo == "string":
            lo, ln = _length(old), _length(new)
            if ln is None or (lo is not None and ln >= lo):
                return True, ""
            return False, f"values longer than {ln} characters are rejected (PostgreSQL) or cut (MySQL)"
        if fo == "enum":
            gone = [e for e in getattr(old, "enums", []) if e not in getattr(new, "enums", [])]
            return (True, "") if not gone else (False, f"rows holding {', '.join(map(repr, gone))} have no valid value")
        if fo == "numeric":
            (po, so), (pn, sn) = _num(old), _num(new)
            if pn is None:
                return True, ""
            if po is None:
                return False, f"values beyond NUMERIC({pn}, {sn or 0}) are rejected or rounded"
            if (sn or 0) < (so or 0):
                return False, "digits after the decimal point are rounded away"
            if pn - (sn or 0) < po - (so or 0):
                return False, "values with more integer digits than the new precision are rejected"
            return True, ""
        if fo == "float":
            return (
                (True, "")
                if _float_bits(new) >= _float_bits(old)
                else (False, "double precision values are rounded to single precision")
            )
        if fo == "datetime" and getattr(old, "timezone", False) and not getattr(new, "timezone", False):
            return False, "timestamps lose their time zone (they are converted to the session's zone)"
        return True, ""
    if fn == "string":
        width = _TEXT_WIDTH.get(fo)
        ln = _length(new)
        if ln is None or (width is not None and ln >= width):
            return True, ""
        return False, f"values whose text is longer than {ln} characters are rejected or cut"
    if fo in ("string", "enum"):
        return False, (f"text that does not read as {_type_str(new, 'default')} fails the migration (PostgreSQL needs "
                       "postgresql_using=), and a USING that coerces it loses it")  # fmt: skip
    if fo == "int" and fn == "numeric":
        pn, sn = _num(new)
        if pn is None or pn - (sn or 0) >= _INT_DIGITS.get(_int_rank(old), 19):
            return True, ""
        return False, "integers with more digits than the new precision are rejected"
    if fo == "int" and fn == "float":
        bits = _float_bits(new)
        if _int_rank(old) >= 8 or (bits == 24 and _int_rank(old) >= 4):
            return False, "large integers are rounded in floating point"
        return True, ""
    if fo == "bool" and fn in ("int", "numeric"):
        return True, ""
    if fo in ("numeric", "float") and fn == "int":
        if fo == "numeric":
            po, so = _num(old)
            if so == 0 and po is not None and po <= _INT_DIGITS.get(_int_rank(new), 19):
                return True, ""
        return False, "fractions are rounded away and large values are rejected"
    if fo == "numeric" and fn == "float":
        return False, "exact decimals become approximate floating point values"
    if fo == "float" and fn == "numeric":
        return (True, "") if _num(new)[0] is None else (False, "values are rounded to the new precision and scale")
    if fo in ("int", "numeric", "float") and fn == "bool":
        return False, "every non-zero value collapses to true"
    if fo == "date" and fn == "datetime":
        return True, ""
    if fo == "datetime" and fn in ("date", "time"):
        return False, "the date or the time of day is dropped"
    return False, f"converting {fo} values to {fn} may fail or lose values"


def pg_rewrites(old: TypeEngine[Any] | None, new: TypeEngine[Any] | None) -> bool:
    """Whether PostgreSQL rewrites the table (and its indexes) for this type change."""
    if old is None or new is None:
        return True
    fo, fn = _family(old), _family(new)
    if fo == fn == "string":
        lo, ln = _length(old), _length(new)
        return not (ln is None or (lo is not None and ln >= lo))
    if fo == fn == "numeric":
        (po, so), (pn, sn) = _num(old), _num(new)
        return not (pn is None or (po is not None and sn == so and pn >= po))
    try:
        return bool(_type_str(old, "postgresql") != _type_str(new, "postgresql"))
    except Exception:
        return True


_VOLATILE = re.compile(
    r"\b(random|gen_random_uuid|gen_random_bytes|uuid_generate_v1|uuid_generate_v1mc|uuid_generate_v4|uuidv4|"
    r"uuidv7|clock_timestamp|timeofday|nextval|setseed|txid_current|pg_current_xact_id)\s*\(",
    re.IGNORECASE,
)


def _volatile_call(column: sa.Column[Any], dialect: str) -> str | None:
    """The volatile function a column's server default calls, if any.  A plain string default is
    a quoted constant, never a call; string literals inside SQL defaults are ignored."""
    arg = getattr(column.server_default, "arg", None)
    if arg is None or isinstance(arg, str):
        return None
    text = _clause_sql(arg, dialect)
    if text is None:
        return None
    m = _VOLATILE.search(re.sub(r"'(?:[^']|'')*'", "''", text))
    return m.group(1) if m else None


def _fills_itself(column: sa.Column[Any], dialect: str) -> bool:
    """Identity, computed and serial columns give every existing row a value."""
    if column.identity is not None or column.computed is not None:
        return True
    return (dialect == "postgresql" and column.primary_key and isinstance(_type(column.type), sqltypes.Integer)
            and column.autoincrement in (True, "auto"))  # fmt: skip


def _rows(ctx: RuleContext, table: TableRef) -> int | None:
    try:
        n = ctx.facts.rows(table)
    except Exception:
        return None
    return n if isinstance(n, int) else None


def _ask(fn: Any, *args: Any) -> int | None:
    try:
        n = fn(*args)
    except Exception:
        return None
    return n if isinstance(n, int) else None


def _rows_text(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _violate(n: int) -> str:
    return f"{_rows_text(n)} {'violates' if n == 1 else 'violate'} it"


def _size_severity(rows: int | None) -> str | None:
    """Lock/rewrite rules: medium on a large table, low when the size is unknown, none below."""
    if rows is None:
        return "low"
    return "medium" if rows >= LARGE_TABLE_ROWS else None


def _size_text(rows: int | None) -> str:
    if rows is None:
        return "could not check the row count"
    return f"the table has about {_rows_text(rows)}"


_ENUM_ADD_VALUE = re.compile(r"\bALTER\s+TYPE\s+(\S+)\s+ADD\s+VALUE\b", re.IGNORECASE)


def _enum_additions(ctx: RuleContext) -> list[str]:
    """Enum types an ``ALTER TYPE ... ADD VALUE`` in the upgrade extends."""
    out: list[str] = []
    for op in flatten(ctx.upgrade.ops):
        if isinstance(op, alembic_ops.ExecuteSQLOp):
            out += [m.group(1) for m in _ENUM_ADD_VALUE.finditer(_sql_string(op, ctx.dialect))]
    return out


def _is_noop_alter(op: alembic_ops.AlterColumnOp) -> bool:
    return (op.modify_type is None and op.modify_nullable is None and op.modify_server_default is False
            and op.modify_name is None and op.modify_comment is False and not _kw(op))  # fmt: skip


def _sets_not_null(op: object) -> bool:
    return (isinstance(op, alembic_ops.AlterColumnOp) and op.modify_nullable is False
            and op.existing_nullable is not False)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Does the downgrade undo the upgrade?  Compared by table, column, index and constraint names.
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NAME_ATTRS = ("table_name", "column_name", "index_name", "constraint_name", "new_table_name", "modify_name",
               "source_table", "referent_table")  # fmt: skip
_CONSTRAINT_OPS = (alembic_ops.CreateUniqueConstraintOp, alembic_ops.CreateCheckConstraintOp,
                   alembic_ops.CreateForeignKeyOp, alembic_ops.CreatePrimaryKeyOp)  # fmt: skip


def _constraint_table(op: object) -> TableRef:
    if isinstance(op, alembic_ops.CreateForeignKeyOp):
        return _fk_refs(op)[0]
    return _ref(op)


@dataclass
class _Undoes:
    """What a downgrade does, indexed for matching against the upgrade."""

    dropped_tables: set[str] = field(default_factory=set)
    created_tables: set[str] = field(default_factory=set)
    dropped_columns: set[tuple[str, str]] = field(default_factory=set)
    added_columns: set[tuple[str, str]] = field(default_factory=set)
    altered_columns: set[tuple[str, str]] = field(default_factory=set)
    dropped_indexes: set[str] = field(default_factory=set)
    index_drops_on: set[str] = field(default_factory=set)  # tables named by a drop_index ("" = none named)
    created_indexes: set[str] = field(default_factory=set)
    dropped_constraints: set[str] = field(default_factory=set)
    constraint_drops_on: set[str] = field(default_factory=set)
    created_constraints: set[str] = field(default_factory=set)
    renamed_tables: set[tuple[str, str]] = field(default_factory=set)
    commented_tables: set[str] = field(default_factory=set)
    op_types: set[type] = field(default_factory=set)
    sql_words: set[str] = field(default_factory=set)  # identifiers in the downgrade's raw SQL
    names: set[str] = field(default_factory=set)  # every name the downgrade mentions, lowercased

    @classmethod
    def of(cls, step: RecordedStep, dialect: str) -> _Undoes:
        u = cls()
        for op in flatten(step.ops):
            u.op_types.add(type(op))
            u.names |= {n.lower() for n in (_str(getattr(op, a, None)) for a in _NAME_ATTRS) if n}
            u.names |= {n.lower() for n in [_str(getattr(getattr(op, "column", None), "name", None))] if n}
            t = _ref(op).key
            if isinstance(op, alembic_ops.DropTableOp):
                u.dropped_tables.add(t)
            elif isinstance(op, alembic_ops.CreateTableOp):
                u.created_tables.add(t)
            elif isinstance(op, alembic_ops.DropColumnOp):
                u.dropped_columns.add((t, str(op.column_name)))
            elif isinstance(op, alembic_ops.AddColumnOp):
                u.added_columns.add((t, str(getattr(op.column, "name", ""))))
            elif isinstance(op, alembic_ops.AlterColumnOp):
                u.altered_columns.add((t, str(op.column_name)))
                if op.modify_name:
                    u.altered_columns.add((t, str(op.modify_name)))
            elif isinstance(op, alembic_ops.DropIndexOp):
                u.dropped_indexes.add(str(op.index_name))
                u.index_drops_on.add(t if _str(op.table_name) else "")
            elif isinstance(op, alembic_ops.CreateIndexOp):
                u.created_indexes.add(str(op.index_name))
            elif isinstance(op, alembic_ops.DropConstraintOp):
                u.dropped_constraints.add(str(op.constraint_name))
                u.constraint_drops_on.add(t)
            elif isinstance(op, _CONSTRAINT_OPS):
                u.created_constraints.add(str(op.constraint_name))
            elif isinstance(op, alembic_ops.RenameTableOp):
                u.renamed_tables.add((t, TableRef(str(op.new_table_name), _str(op.schema)).key))
            elif isinstance(op, (alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)):
                u.commented_tables.add(t)
            elif isinstance(op, alembic_ops.ExecuteSQLOp):
                u.sql_words |= {w.lower() for w in _WORD.findall(_sql_string(op, dialect))}
        u.names |= u.sql_words
        return u

    def said(self, *names: object) -> bool:
        """Whether the downgrade's raw SQL mentions every one of ``names``."""
        words = [n.lower() for n in names if isinstance(n, str) and n]
        return bool(words) and all(w.split(".")[-1] in self.sql_words for w in words)

    def table_gone_or_back(self, table: str) -> bool:
        return table in self.dropped_tables or table in self.created_tables


def _ddl_target_names(tree: Any) -> set[str]:
    """The object a DDL statement creates, alters, drops or comments on (not the tables a view
    reads or an index is built on)."""
    if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Index):
        return {tree.this.name.lower()} if tree.this.name else set()
    targets = list(tree.args.get("tables") or []) if isinstance(tree, exp.Drop) else []
    if not targets and isinstance(tree.this, exp.Expr):
        found = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
        targets = [found] if found is not None else []
    return {t.name.lower() for t in targets if isinstance(t, exp.Expr) and t.name}


def _raw_ddl(op: alembic_ops.ExecuteSQLOp, dialect: str) -> tuple[str, set[str], bool] | None:
    """Schema changes in an ``op.execute``: (what, the names they touch, whether a snapshot
    converges them — only drops of tables and columns and column changes do); None for data."""
    what: list[str] = []
    names: set[str] = set()
    convergeable = True
    for tree in _parse(_sql_string(op, dialect), dialect):
        if isinstance(tree, exp.Command):
            keyword = str(tree.this or "").upper()
            if keyword not in ("CREATE", "ALTER", "DROP", "COMMENT"):
                continue
            convergeable = False
            rest = tree.expression if isinstance(tree.expression, str) else ""
            what.append(" ".join(f"{keyword} {rest}".split()[:3]))
            continue
        if not isinstance(tree, (exp.Create, exp.Alter, exp.Drop, exp.Comment)):
            continue
        kind = str(tree.args.get("kind") or "").upper()
        what.append(f"{type(tree).__name__.upper()} {kind}".strip())
        names |= _ddl_target_names(tree)
        drops_data = (isinstance(tree, exp.Drop) and kind == "TABLE") or (
            isinstance(tree, exp.Alter)
            and all(
                isinstance(a, (exp.Drop, exp.AlterColumn, exp.ModifyColumn)) for a in tree.args.get("actions") or [None]
            )
        )
        convergeable = convergeable and drops_data
    if not what:
        return None
    return "raw " + ", ".join(dict.fromkeys(what)), names, convergeable


def _undo_needs(op: alembic_ops.MigrateOperation, dialect: str = "") -> str | None:
    """What the downgrade must undo for this upgrade op (None: nothing, e.g. data SQL)."""
    t = _ref(op).key
    if isinstance(op, alembic_ops.CreateTableOp):
        return f"create table {t}"
    if isinstance(op, alembic_ops.DropTableOp):
        return f"drop table {t}"
    if isinstance(op, alembic_ops.AddColumnOp):
        return f"add column {t}.{getattr(op.column, 'name', '?')}"
    if isinstance(op, alembic_ops.DropColumnOp):
        return f"drop column {t}.{op.column_name}"
    if isinstance(op, alembic_ops.AlterColumnOp):
        if _is_noop_alter(op):
            return None
        return f"alter column {t}.{op.column_name}"
    if isinstance(op, alembic_ops.CreateIndexOp):
        return f"create index {op.index_name or '(unnamed)'} on {t}"
    if isinstance(op, alembic_ops.DropIndexOp):
        return f"drop index {op.index_name}"
    if isinstance(op, _CONSTRAINT_OPS):
        return f"create constraint {op.constraint_name or '(unnamed)'} on {_constraint_table(op).key}"
    if isinstance(op, alembic_ops.DropConstraintOp):
        return f"drop constraint {op.constraint_name} on {t}"
    if isinstance(op, alembic_ops.RenameTableOp):
        return f"rename table {t} to {op.new_table_name}"
    if isinstance(op, (alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)):
        return f"change the comment of table {t}"
    if isinstance(op, alembic_ops.ExecuteSQLOp):
        ddl = _raw_ddl(op, dialect)
        return None if ddl is None else ddl[0]
    if isinstance(op, alembic_ops.BulkInsertOp):
        return None
    return f"{type(op).__name__}"


def _undone(op: alembic_ops.MigrateOperation, u: _Undoes, dialect: str = "") -> bool:
    t = _ref(op).key
    if isinstance(op, alembic_ops.ExecuteSQLOp):  # raw DDL: undone when the downgrade names what it touched
        ddl = _raw_ddl(op, dialect)
        return ddl is None or all(n in u.names for n in ddl[1])
    if isinstance(op, alembic_ops.CreateTableOp):
        return t in u.dropped_tables or u.said(op.table_name)
    if isinstance(op, alembic_ops.DropTableOp):
        return t in u.created_tables or u.said(op.table_name)
    if isinstance(op, alembic_ops.AddColumnOp):
        name = str(getattr(op.column, "name", ""))
        return (t, name) in u.dropped_columns or u.table_gone_or_back(t) or u.said(op.table_name, name)
    if isinstance(op, alembic_ops.DropColumnOp):
        return (
            (t, str(op.column_name)) in u.added_columns
            or t in u.created_tables
            or u.said(op.table_name, op.column_name)
        )
    if isinstance(op, alembic_ops.AlterColumnOp):
        cols = {(t, str(op.column_name)), (t, str(op.modify_name))}
        return bool(cols & u.altered_columns) or u.table_gone_or_back(t) or u.said(op.table_name, op.column_name)
    if isinstance(op, alembic_ops.CreateIndexOp):
        if _str(op.index_name):
            return str(op.index_name) in u.dropped_indexes or t in u.dropped_tables or u.said(op.index_name)
        return t in u.dropped_tables or bool(u.index_drops_on & {t, ""})
    if isinstance(op, alembic_ops.DropIndexOp):
        return str(op.index_name) in u.created_indexes or t in u.created_tables or u.said(op.index_name)
    if isinstance(op, _CONSTRAINT_OPS):
        table = _constraint_table(op).key
        if _str(op.constraint_name):
            return (str(op.constraint_name) in u.dropped_constraints or table in u.dropped_tables
                    or u.said(op.constraint_name))  # fmt: skip
        return table in u.dropped_tables or table in u.constraint_drops_on
    if isinstance(op, alembic_ops.DropConstraintOp):
        return (not _str(op.constraint_name) or str(op.constraint_name) in u.created_constraints
                or t in u.created_tables or u.said(op.constraint_name))  # fmt: skip
    if isinstance(op, alembic_ops.RenameTableOp):
        new = TableRef(str(op.new_table_name), _str(op.schema)).key
        return (new, t) in u.renamed_tables or u.said(op.new_table_name, op.table_name)
    if isinstance(op, (alembic_ops.CreateTableCommentOp, alembic_ops.DropTableCommentOp)):
        return t in u.commented_tables or u.table_gone_or_back(t)
    try:  # a custom op: undone when the downgrade holds an op of its reverse's kind
        return type(op.reverse()) in u.op_types
    except Exception:
        return True  # cannot tell; not reported


def _convergeable(op: alembic_ops.MigrateOperation, dialect: str = "") -> bool:
    """Changes whose pre-state the snapshot records (the table's definition and the data), so a
    rollback restores them without a downgrade: dropped tables and columns, changed columns."""
    if isinstance(op, (alembic_ops.DropTableOp, alembic_ops.DropColumnOp)):
        return True
    if isinstance(op, alembic_ops.ExecuteSQLOp):
        ddl = _raw_ddl(op, dialect)
        return ddl is not None and ddl[2]
    return isinstance(op, alembic_ops.AlterColumnOp) and not op.modify_name


def _downgrade_raised(step: RecordedStep | None) -> str | None:
    if step is None:
        return None
    for o in step.opaque:
        if o.reason.startswith("the function raised"):
            return o.reason
    return None


def _downgrade_sees_connection(step: RecordedStep | None) -> bool:
    return step is not None and any(not o.reason.startswith("the function raised") for o in step.opaque)


def undo_gaps(ctx: RuleContext) -> list[tuple[alembic_ops.MigrateOperation, str]]:
    """Upgrade ops the downgrade does not undo, with what each did.  Every schema change is a gap
    when the downgrade is missing, does nothing or raises."""
    needs = [(op, what) for _, op in ctx.ops() if (what := _undo_needs(op, ctx.dialect)) is not None]
    down = ctx.downgrade
    if down is None or _downgrade_raised(down) is not None or (not down.ops and not down.opaque):
        return needs
    index = _Undoes.of(down, ctx.dialect)
    return [(op, what) for op, what in needs if not _undone(op, index, ctx.dialect)]


def _destroys(ctx: RuleContext) -> list[Finding]:
    """The findings of the data-destroying rules (SAF1xx) for this upgrade."""
    out: list[Finding] = []
    for rule_cls in all_rules():
        if rule_cls.code.startswith("SAF1"):
            out += _run(rule_cls, ctx)
    return out


def reversibility(ctx: RuleContext, snapshots: bool) -> str:
    """Whether a revision's upgrade can be taken back: ``"yes"``, ``"with-snapshot"`` or ``"no"``.

    - ``"yes"``: the downgrade undoes every schema change of the upgrade (compared by table,
      column, index and constraint names) and the upgrade destroys no data (no SAF1xx finding).
    - ``"with-snapshot"``: the schema comes back — the downgrade undoes the changes, or the only
      changes it leaves are ones the rollback converges from the snapshot's recorded table
      definitions (dropped tables, dropped columns, changed columns) — but data the upgrade
      destroys (drops, lossy retypes, DELETE/UPDATE/TRUNCATE, SQL or code that cannot be seen
      into) comes back only from the pre-revision snapshot.  Needs ``snapshots`` True.
    - ``"no"``: something cannot be taken back: an ``ALTER TYPE ... ADD VALUE`` (PostgreSQL
      cannot remove an enum value); a schema change the downgrade leaves in place — because it
      is missing, is ``pass``, raises or forgets it — that no snapshot restores (a created
      table, an added column or index, a rename, ...); or destroyed data with ``snapshots``
      False.  Anything not proven undoable counts as not undoable.
    """
    if _enum_additions(ctx):
        return "no"
    gaps = undo_gaps(ctx)
    if any(not _convergeable(op, ctx.dialect) for op, _ in gaps):
        return "no"
    destroys = _destroys(ctx)
    if not gaps and not destroys:
        return "yes"
    return "with-snapshot" if snapshots else "no"


# ---------------------------------------------------------------------------------------------
# The rules.  Each docstring: what is wrong, the bad pattern, the safe alternative.
# SAF1xx destroys data.
# ---------------------------------------------------------------------------------------------


class DropTable(Rule):
    """Dropping a table destroys every row in it.

    Bad::

        op.drop_table("invoices")

    Safe: stop writing to the table in one release, drop it in a later one, and keep the
    pre-revision snapshot (alembic-safety takes it, or moves the table aside, automatically).
    """

    code = "SAF101"
    name = "destructive.drop-table"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.DropTableOp) and _ref(op).key not in fresh:
                yield self.finding(f"drops table {_ref(op).key} and every row in it", _ref(op))
        for _, effect in ctx.sql():
            if effect.statement == "DROP TABLE":
                for t in effect.tables:
                    if t.key not in fresh:
                        yield self.finding(f"DROP TABLE {t.key} in raw SQL destroys every row", t)


class DropColumn(Rule):
    """Dropping a column destroys every value in it, and the release still running fails on
    its next query that names the column.

    Bad::

        op.drop_column("users", "legacy_email")

    Safe: first ship code that no longer reads or writes the column (SQLAlchemy:
    ``deferred()``/remove it from the model), drop it in a later revision, and keep the
    pre-revision snapshot of the primary key and the column so a rollback can put the values
    back.
    """

    code = "SAF102"
    name = "destructive.drop-column"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.DropColumnOp):
                t, c = _ref(op), str(op.column_name)
                if t.key not in fresh and (t.key, c) not in added:
                    yield self.finding(f"drops column {t.key}.{c} and every value in it", t, c)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "ALTER TABLE" or effect.kind != COLUMNS:
                continue
            if tree is None:
                for t in effect.tables:
                    yield self.finding(f"raw ALTER TABLE {t.key} drops or retypes {', '.join(effect.columns)}", t)
                continue
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
                    for col in action.args.get("tables") or [action.this]:
                        name = getattr(col, "name", None) or "?"
                        yield self.finding(f"raw SQL drops column {t.key}.{name} and every value in it", t, name)


class ColumnTypeChange(Rule):
    """Changing a column's type can lose values: narrowing (``String(100)`` to ``String(20)``,
    ``Integer`` to ``SmallInteger``), lossy casts (``Numeric`` to ``Integer`` rounds, text to a
    number drops what does not parse) and any ``postgresql_using=`` expression rewrite every
    value.  Without ``existing_type=`` the old type is unknown, so nothing shows the new type
    holds every value.  Widening with a known old type (``String(20)`` to ``String(100)``,
    ``Integer`` to ``BigInteger``) is not reported here.

    Bad::

        op.alter_column("orders", "total", type_=sa.Integer(),
                        postgresql_using="total::integer")

    Safe: say what the column was (``existing_type=sa.Numeric(12, 2)``), check the data first
    (``SELECT count(*) FROM orders WHERE total <> round(total)``), or add a new column, backfill
    and verify it, and drop the old one in a later release.
    """

    code = "SAF103"
    name = "destructive.column-type-change"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.AlterColumnOp) or op.modify_type is None:
                continue
            t, c = _ref(op), str(op.column_name)
            if t.key in fresh or (t.key, c) in added:
                continue
            old, new = _type(op.existing_type), _type(op.modify_type)
            safe, why = type_change(old, new)
            using = _clause_sql(_kw(op).get("postgresql_using"), ctx.dialect)
            if safe and not using:
                continue
            change = f"changes {t.key}.{c} from {_type_str(old, ctx.dialect)} to {_type_str(new, ctx.dialect)}"
            parts = [why] if why else []
            if using:
                parts.append(f"USING {using} rewrites every value")
            yield self.finding(f"{change}: {'; '.join(parts)}", t, c)
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None:
                    using = action.args.get("using")
                    extra = f"; USING {using.sql()} rewrites every value" if isinstance(using, exp.Expr) else ""
                    new = action.args["dtype"].sql()
                    yield self.finding(f"raw SQL changes {t.key}.{action.name} to {new}; the old type is unknown, "
                                       f"so values may not fit{extra}", t, action.name)  # fmt: skip
                elif isinstance(action, exp.ModifyColumn):
                    name = getattr(action.this, "name", None) or "?"
                    yield self.finding(f"raw SQL MODIFY redefines {t.key}.{name}; the old type is unknown, so values "
                                       "may not fit", t, name)  # fmt: skip


class Truncate(Rule):
    """``TRUNCATE`` destroys every row of the table (and, with ``CASCADE``, of every table
    that references it).

    Bad::

        op.execute("TRUNCATE audit_log")

    Safe: archive or delete in a job outside the migration, or, when the rows really must go
    with the schema change, keep the pre-revision snapshot and say so with
    ``# safety: allow SAF104 <why>``.
    """

    code = "SAF104"
    name = "destructive.truncate"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, effect in ctx.sql():
            if effect.statement == "TRUNCATE":
                for t in effect.tables:
                    if t.key not in fresh:
                        yield self.finding(f"TRUNCATE {t.key} destroys every row", t)


class DeleteAllRows(Rule):
    """``DELETE`` without a ``WHERE`` destroys every row of the table.

    Bad::

        op.execute("DELETE FROM sessions")

    Safe: put the intended predicate in the statement (``DELETE FROM sessions WHERE
    expires_at < now()``) — the snapshot then holds only those rows — or move bulk cleanup out
    of the migration into a job.
    """

    code = "SAF105"
    name = "destructive.delete-all-rows"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "DELETE" or effect.kind != WHOLE or _has_where(tree):
                continue
            for t in effect.tables:
                if t.key not in fresh:
                    yield self.finding(f"DELETE without a WHERE destroys every row of {t.key}", t)


class UpdateAllRows(Rule):
    """``UPDATE`` without a ``WHERE`` overwrites a column in every row; the old values are
    gone.  Backfilling a column the same revision adds is not reported (nothing existed).

    Bad::

        op.execute("UPDATE users SET email = lower(email)")

    Safe: write the new values to a new column, verify, then switch; or keep the snapshot of
    the primary key and the column (taken automatically) and restrict the statement with a
    ``WHERE`` that selects only the rows meant to change.
    """

    code = "SAF106"
    name = "destructive.update-all-rows"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "UPDATE" or effect.kind != COLUMNS or effect.where or _has_where(tree):
                continue
            for t in effect.tables:
                if t.key in fresh or all((t.key, c) in added for c in effect.columns):
                    continue
                cols = ", ".join(effect.columns)
                yield self.finding(f"UPDATE without a WHERE overwrites {cols} in every row of {t.key}", t,
                                   effect.columns[0] if len(effect.columns) == 1 else None)  # fmt: skip


class DeleteWhere(Rule):
    """``DELETE ... WHERE`` destroys the rows the predicate selects.

    Severity medium, not high: the loss is bounded by the ``WHERE``, the snapshot keeps
    exactly the rows it selects, and a bounded data fix is a legitimate part of a migration.
    A wrong predicate still loses data, so review it; high is kept for statements that destroy
    a whole table or column.

    Bad::

        op.execute("DELETE FROM orders WHERE status = 'test'")  # how many rows is that in production?

    Safe: count first (``SELECT count(*) FROM orders WHERE status = 'test'``), keep the
    predicate simple so the snapshot can select the same rows, and record the reason with
    ``# safety: allow SAF107 <why>``.
    """

    code = "SAF107"
    name = "destructive.delete-where"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement != "DELETE" or not (effect.kind == ROWS or (effect.kind == WHOLE and _has_where(tree))):
                continue
            for t in effect.tables:
                if t.key in fresh:
                    continue
                if effect.where:
                    yield self.finding(f"DELETE destroys the rows of {t.key} WHERE {effect.where}", t)
                else:
                    yield self.finding(f"DELETE destroys the rows of {t.key} its WHERE selects (the WHERE joins "
                                       "other tables, so the snapshot takes the whole table)", t)  # fmt: skip


class UpdateWhere(Rule):
    """``UPDATE ... WHERE`` (and upserts: ``INSERT ... ON CONFLICT DO UPDATE``, ``MERGE``)
    overwrites values in the rows it selects.

    Severity medium, not high, for the same reason as SAF107: the loss is bounded by the
    predicate and the snapshot keeps the old values of exactly those rows.

    Bad::

        op.execute("UPDATE prices SET amount = amount * 100 WHERE currency = 'JPY'")

    Safe: write to a new column and switch when verified, or keep the statement idempotent and
    its predicate simple (the snapshot selects the same rows) and record the reason with
    ``# safety: allow SAF108 <why>``.
    """

    code = "SAF108"
    name = "destructive.update-where"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for effect, tree in _statements(ctx.upgrade, ctx.dialect):
            if effect.statement in ("INSERT", "MERGE") and effect.kind == WHOLE:
                for t in effect.tables:
                    if t.key not in fresh:
                        what = effect.reason or effect.statement
                        yield self.finding(f"{what} overwrites existing rows of {t.key}", t)
                continue
            if effect.statement != "UPDATE" or effect.kind != COLUMNS or not (effect.where or _has_where(tree)):
                continue
            for t in effect.tables:
                if t.key in fresh or all((t.key, c) in added for c in effect.columns):
                    continue
                where = f" WHERE {effect.where}" if effect.where else " its WHERE selects"
                yield self.finding(f"UPDATE overwrites {', '.join(effect.columns)} in the rows of {t.key}{where}", t,
                                   effect.columns[0] if len(effect.columns) == 1 else None)  # fmt: skip


class OpaqueSql(Rule):
    """SQL that cannot be analysed — unparsable text, ``DO`` blocks, procedural code, commands
    the parser does not know, ``DROP ... CASCADE`` — may change or delete any data.  Unknown SQL
    never means "nothing at risk": the snapshot takes every table it names, or all of them.

    Bad::

        op.execute("DO $$ BEGIN EXECUTE 'DELETE FROM ' || tbl; END $$")

    Safe: plain statements alembic-safety can read (``DELETE FROM t WHERE ...``), or Alembic
    operations; when the SQL must stay, record what it does with
    ``# safety: allow SAF109 <what it touches>``.
    """

    code = "SAF109"
    name = "destructive.opaque-sql"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        for _, effect in ctx.sql():
            if effect.kind == OPAQUE:
                where = f" (touches {', '.join(t.key for t in effect.tables)})" if effect.tables else ""
                table = effect.tables[0] if effect.tables else None
                yield self.finding(f"{effect.statement} in op.execute cannot be analysed: {effect.reason}{where}; it "
                                   "may change or delete any data", table)  # fmt: skip


class OpaqueStep(Rule):
    """A revision that reads or writes through the connection (``op.get_bind()``,
    ``context.get_bind()``), or whose function raised while it was recorded, cannot be seen
    into: what it does to data is unknown, and nothing after that point was recorded.  Reading
    only ``op.get_bind().dialect`` is fine and not reported.

    Bad::

        conn = op.get_bind()
        for row in conn.execute(sa.text("SELECT id, payload FROM events")):
            conn.execute(sa.text("UPDATE events SET payload = :p WHERE id = :i"), ...)

    Safe: express the change as ``op.execute()`` statements or Alembic operations (set-based
    SQL is faster too); keep the connection for reading its dialect only, or record what the
    code touches with ``# safety: allow SAF110 <what it touches>``.
    """

    code = "SAF110"
    name = "destructive.opaque-code"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        reasons = list(dict.fromkeys(o.reason for o in ctx.upgrade.opaque))
        if reasons:
            tables = [t for o in ctx.upgrade.opaque for t in o.tables]
            yield self.finding(f"the upgrade cannot be seen into: {'; '.join(reasons)}; it may change or delete any "
                               "data", tables[0] if tables else None)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# SAF2xx: locks or rewrites a populated table, or fails on the data already there.
# ---------------------------------------------------------------------------------------------


class AddNotNullColumn(Rule):
    """Adding a ``NOT NULL`` column without a server default fails as soon as the table has
    rows: PostgreSQL has no value to put in them (SQLite refuses it even on an empty table
    outside batch mode; MySQL silently fills the type's implicit default — 0, '' — instead).
    Identity, computed and serial columns fill themselves and are not reported.

    Bad::

        op.add_column("users", sa.Column("tenant_id", sa.Integer(), nullable=False))

    Safe: give it a constant ``server_default`` (no rewrite on PostgreSQL 11+), or add it
    nullable, backfill, and set ``NOT NULL`` in a later step::

        op.add_column("users", sa.Column("tenant_id", sa.Integer(), nullable=True))
        op.execute("UPDATE users SET tenant_id = 1")
        op.alter_column("users", "tenant_id", nullable=False, existing_type=sa.Integer())
    """

    code = "SAF201"
    name = "fails.add-not-null-column"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for op, in_batch in _walk(ctx.upgrade.ops):
            column = getattr(op, "column", None)
            if not isinstance(op, alembic_ops.AddColumnOp) or not isinstance(column, sa.Column):
                continue
            t = _ref(op)
            if column.nullable or column.server_default is not None or _fills_itself(column, ctx.dialect):
                continue
            if t.key in fresh:
                continue
            what = f"adds NOT NULL column {t.key}.{column.name} without a server default"
            if ctx.dialect == "sqlite" and not in_batch:
                yield self.finding(f"{what}: SQLite refuses it even on an empty table", t, column.name)
                continue
            rows = _rows(ctx, t)
            if rows == 0:
                continue
            if ctx.dialect in ("mysql", "mariadb"):
                n = "every existing row" if rows is None else _rows_text(rows)
                yield self.finding(f"{what}: MySQL fills {n} with the type's implicit default", t, column.name,
                                   severity="low")  # fmt: skip
            elif rows is None:
                yield self.finding(f"{what}: fails if the table has rows; could not check the row count", t,
                                   column.name)  # fmt: skip
            else:
                yield self.finding(f"{what}: fails, the table has {_rows_text(rows)}", t, column.name)


class SetNotNull(Rule):
    """``alter_column(nullable=False)`` fails when any row holds NULL, and on PostgreSQL scans
    the whole table under an ACCESS EXCLUSIVE lock to find out.  With live facts the rule
    counts the NULLs; without them it says it could not check.

    Bad::

        op.alter_column("users", "email", nullable=False)

    Safe: backfill first (``UPDATE users SET email = ... WHERE email IS NULL``), then on a large
    PostgreSQL table add ``CHECK (email IS NOT NULL) NOT VALID``, ``VALIDATE CONSTRAINT`` it,
    and only then set NOT NULL (PostgreSQL 12+ uses the valid check and skips the scan).
    """

    code = "SAF202"
    name = "fails.set-not-null"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if not _sets_not_null(op):
                continue
            t, c = _ref(op), str(getattr(op, "column_name", "?"))
            if t.key in fresh:
                continue
            what = f"sets {t.key}.{c} NOT NULL"
            new = added.get((t.key, c))
            if new is not None:
                rows = _rows(ctx, t)
                if rows == 0 or new.server_default is not None or _fills_itself(new, ctx.dialect):
                    continue
                if _writes_to(ctx, t):
                    yield self.finding(f"{what}; the column is added in this revision, so whether the backfill "
                                       "leaves NULLs could not be checked", t, c)  # fmt: skip
                elif rows is None:
                    yield self.finding(f"{what}; the column is added without a default in this revision, so every "
                                       "existing row holds NULL and it fails if the table has rows (could not "
                                       "check the row count)", t, c)  # fmt: skip
                else:
                    yield self.finding(f"{what}: {_violate(rows)} (the column is added in this revision without "
                                       "a default), so it fails", t, c)  # fmt: skip
                continue
            nulls = _ask(ctx.facts.null_count, t, c)
            if nulls is None:
                yield self.finding(f"{what}; fails if any row holds NULL — could not check", t, c)
            elif nulls > 0:
                yield self.finding(f"{what}: {_violate(nulls)} (hold NULL), so it fails", t, c)


def _constraint_verdict(ctx: RuleContext, t: TableRef, cols: list[str] | None, count: Any,
                        nulls_pass: bool) -> tuple[str, int | None] | None:  # fmt: skip
    """None: no finding; else (kind, violating rows) with kind "count", "unknown" or "new"."""
    added = _added_columns(ctx.upgrade)
    new = [added[(t.key, c)] for c in cols or [] if (t.key, c) in added]
    if new:
        rows = _rows(ctx, t)
        if rows == 0:
            return None
        if nulls_pass and all(c.server_default is None for c in new) and not _writes_to(ctx, t):
            return None  # every existing row holds NULL in the new column, which the constraint accepts
        return "new", None
    if cols is None:
        return "unknown", None
    n = _ask(count)
    if n is None:
        return "unknown", None
    return ("count", n) if n > 0 else None


class AddUnique(Rule):
    """Adding a UNIQUE constraint or unique index fails when existing rows share a value.
    With live facts the rule counts the rows whose values occur more than once (NULLs never
    collide); without them it says it could not check.

    Bad::

        op.create_unique_constraint("uq_users_email", "users", ["email"])

    Safe: find and resolve the duplicates first
    (``SELECT email, count(*) FROM users GROUP BY email HAVING count(*) > 1``); on a large
    PostgreSQL table build the index with ``CREATE UNIQUE INDEX CONCURRENTLY`` and attach it
    with ``ADD CONSTRAINT ... UNIQUE USING INDEX``.
    """

    code = "SAF203"
    name = "fails.add-unique"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.CreateUniqueConstraintOp):
                label = f"UNIQUE constraint {op.constraint_name or '(unnamed)'}"
            elif isinstance(op, alembic_ops.CreateIndexOp) and op.unique:
                label = f"unique index {op.index_name or '(unnamed)'}"
            else:
                continue
            t = _ref(op)
            if t.key in fresh:
                continue
            cols = _names(op.columns)
            partial = any(k.endswith("_where") for k in _kw(op))
            if partial:
                cols = None
            verdict = _constraint_verdict(ctx, t, cols, functools.partial(ctx.facts.duplicate_count, t, cols or []),
                                          nulls_pass=True)  # fmt: skip
            if verdict is None:
                continue
            on = f"{t.key}({', '.join(cols)})" if cols else t.key
            kind, n = verdict
            if kind == "count":
                msg = f"adds {label} on {on}: {_violate(n or 0)} (duplicate values), so it fails"
            elif kind == "new":
                msg = f"adds {label} on {on}: depends on the values this revision writes — could not check"
            else:
                why = "a partial or expression index" if cols is None else "fails if existing rows share a value"
                msg = f"adds {label} on {on}: {why} — could not check"
            yield self.finding(msg, t, cols[0] if cols and len(cols) == 1 else None)


class AddCheck(Rule):
    """Adding a CHECK constraint fails when an existing row violates it.  With live facts the
    rule counts the violating rows (those for which the condition is false); without them it
    says it could not check.  On PostgreSQL, ``postgresql_not_valid=True`` skips existing rows
    and is not reported.

    Bad::

        op.create_check_constraint("ck_orders_total", "orders", "total >= 0")

    Safe: fix the rows first, or on PostgreSQL add it ``NOT VALID`` (new rows are checked at
    once), fix the old rows, then ``ALTER TABLE orders VALIDATE CONSTRAINT ck_orders_total``
    in a later revision.
    """

    code = "SAF204"
    name = "fails.add-check"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.CreateCheckConstraintOp):
                continue
            t = _ref(op)
            if t.key in fresh or (ctx.dialect == "postgresql" and _kw(op).get("postgresql_not_valid")):
                continue
            condition = _clause_sql(op.condition, ctx.dialect)
            label = f"CHECK {op.constraint_name or '(unnamed)'} ({condition or '?'}) on {t.key}"
            cols = None if condition is None else sorted(_condition_columns(condition, ctx.dialect) or [])
            if condition is None:
                yield self.finding(f"adds {label}: the condition could not be read — could not check", t)
                continue
            verdict = _constraint_verdict(ctx, t, cols, functools.partial(ctx.facts.check_violations, t, condition),
                                          nulls_pass=False)  # fmt: skip
            if verdict is None:
                continue
            kind, n = verdict
            if kind == "count":
                yield self.finding(f"adds {label}: {_violate(n or 0)}, so it fails", t)
            elif kind == "new":
                yield self.finding(f"adds {label}: depends on the values this revision writes — could not check", t)
            else:
                yield self.finding(f"adds {label}: fails if an existing row violates it — could not check", t)


def _condition_columns(condition: str, dialect: str) -> set[str] | None:
    try:
        return where_columns(condition, dialect)
    except Exception:
        return None


class AddForeignKey(Rule):
    """Adding a FOREIGN KEY fails when an existing row points at a missing parent.  With live
    facts the rule counts the orphan rows (all key columns set, no matching parent); without
    them it says it could not check.  On PostgreSQL, ``postgresql_not_valid=True`` skips
    existing rows and is not reported.

    Bad::

        op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"])

    Safe: delete or repair the orphans first
    (``SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id)``),
    or on PostgreSQL add it with ``postgresql_not_valid=True`` and validate it in a later
    revision.
    """

    code = "SAF205"
    name = "fails.add-foreign-key"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.CreateForeignKeyOp):
                continue
            src, ref = _fk_refs(op)
            if src.key in fresh or (ctx.dialect == "postgresql" and _kw(op).get("postgresql_not_valid")):
                continue
            cols, rcols = _names(op.local_cols), _names(op.remote_cols)
            label = (f"FOREIGN KEY {op.constraint_name or '(unnamed)'} {src.key}({', '.join(cols or ['?'])}) -> "
                     f"{ref.key}({', '.join(rcols or ['?'])})")  # fmt: skip
            if ref.key in fresh and _rows(ctx, src) != 0:
                yield self.finding(f"adds {label}: the parent table is created in this revision, so every existing "
                                   "row with a key set is an orphan — could not check", src)  # fmt: skip
                continue
            usable = cols is not None and rcols is not None and len(cols) == len(rcols) and bool(cols)
            ask = functools.partial(ctx.facts.orphan_count, src, cols or [], ref, rcols or [])
            verdict = _constraint_verdict(ctx, src, cols if usable else None, ask, nulls_pass=True)
            if verdict is None:
                continue
            kind, n = verdict
            col = cols[0] if cols and len(cols) == 1 else None
            if kind == "count":
                yield self.finding(f"adds {label}: {_violate(n or 0)} (no matching parent), so it fails",
                                   src, col)  # fmt: skip
            elif kind == "new":
                yield self.finding(f"adds {label}: depends on the values this revision writes — could not check",
                                   src, col)  # fmt: skip
            else:
                yield self.finding(f"adds {label}: fails if an existing row has no parent — could not check", src, col)


class BlockingIndex(Rule):
    """On PostgreSQL, ``CREATE INDEX`` without ``CONCURRENTLY`` (and adding a UNIQUE
    constraint, which builds one) blocks every write to the table until the index is built —
    minutes on a large table.  Reported as medium on tables of at least ``LARGE_TABLE_ROWS``
    (100,000) rows, low when the size could not be checked; tables created in the same
    revision are empty and not reported.

    Bad::

        op.create_index("ix_events_user_id", "events", ["user_id"])

    Safe: build it concurrently, outside the migration's transaction::

        with op.get_context().autocommit_block():
            op.create_index("ix_events_user_id", "events", ["user_id"],
                            postgresql_concurrently=True)
    """

    code = "SAF206"
    name = "lock.index-without-concurrently"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh = _created_tables(ctx.upgrade)
        targets: list[tuple[TableRef, str]] = []
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.CreateIndexOp) and not _kw(op).get("postgresql_concurrently"):
                targets.append((_ref(op), f"creates index {op.index_name or '(unnamed)'}"))
            elif isinstance(op, alembic_ops.CreateUniqueConstraintOp):
                targets.append((_ref(op), f"adds UNIQUE constraint {op.constraint_name or '(unnamed)'} (builds an "
                                          "index)"))  # fmt: skip
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "INDEX" \
                    and not tree.args.get("concurrently"):  # fmt: skip
                table = _sqlglot_table(tree.this.args.get("table")) if isinstance(tree.this, exp.Index) else None
                if table is not None:
                    targets.append((table, f"raw CREATE INDEX {tree.this.name or '(unnamed)'}"))
        for t, what in targets:
            if t.key in fresh:
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                yield self.finding(f"{what} on {t.key} without CONCURRENTLY: writes to the table block until it is "
                                   f"built; {_size_text(rows)}", t, severity=severity)  # fmt: skip


class ValidatingConstraint(Rule):
    """On PostgreSQL, adding a FOREIGN KEY or CHECK without ``NOT VALID``, or setting NOT
    NULL, checks every existing row while holding a lock that blocks writes (a foreign key
    also locks the referenced table).  Reported as medium on tables of at least
    ``LARGE_TABLE_ROWS`` (100,000) rows, low when the size could not be checked.

    Bad::

        op.create_foreign_key("fk_events_user", "events", "users", ["user_id"], ["id"])

    Safe: add it ``NOT VALID`` (only new rows are checked, the lock is brief) and validate in a
    later revision, which takes a lock that lets writes continue::

        op.create_foreign_key("fk_events_user", "events", "users", ["user_id"], ["id"],
                              postgresql_not_valid=True)
        # next revision:
        op.execute("ALTER TABLE events VALIDATE CONSTRAINT fk_events_user")
    """

    code = "SAF207"
    name = "lock.constraint-validation"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, (alembic_ops.CreateForeignKeyOp, alembic_ops.CreateCheckConstraintOp)):
                if _kw(op).get("postgresql_not_valid"):
                    continue
                t = _constraint_table(op)
                kind = "FOREIGN KEY" if isinstance(op, alembic_ops.CreateForeignKeyOp) else "CHECK"
                what = f"adds {kind} {op.constraint_name or '(unnamed)'} without NOT VALID"
            elif _sets_not_null(op):
                t = _ref(op)
                what = f"sets {t.key}.{getattr(op, 'column_name', '?')} NOT NULL"
            else:
                continue
            if t.key in fresh:
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                yield self.finding(f"{what}: every row of {t.key} is checked while writes are blocked; "
                                   f"{_size_text(rows)}", t, severity=severity)  # fmt: skip


class VolatileDefault(Rule):
    """On PostgreSQL 11+ adding a column with a constant default is instant, but a volatile
    default — ``random()``, ``gen_random_uuid()``, ``uuid_generate_v4()``,
    ``clock_timestamp()``, ``nextval()`` (serial and identity columns) — must be computed for
    every row, so the table is rewritten under an ACCESS EXCLUSIVE lock.  (``now()`` and
    ``CURRENT_TIMESTAMP`` are stable, not volatile: one value for all rows, no rewrite.  Before
    PostgreSQL 11 every default rewrote.)  Medium on tables of at least ``LARGE_TABLE_ROWS``
    (100,000) rows, low when the size could not be checked.

    Bad::

        op.add_column("events", sa.Column("uid", postgresql.UUID(),
                      server_default=sa.text("gen_random_uuid()")))

    Safe: add the column without a default (or with a constant one), set the volatile default
    for new rows with ``alter_column(server_default=...)``, and backfill existing rows in
    batches outside the migration.
    """

    code = "SAF208"
    name = "rewrite.volatile-default"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            column = getattr(op, "column", None)
            if not isinstance(op, alembic_ops.AddColumnOp) or not isinstance(column, sa.Column):
                continue
            t = _ref(op)
            if t.key in fresh:
                continue
            call = _volatile_call(column, ctx.dialect)
            if call is not None:
                why = f"its default calls {call}(), which is volatile"
            elif _fills_itself(column, ctx.dialect) and column.computed is None:
                why = "identity and serial columns draw a sequence value for every row"
            else:
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                yield self.finding(f"adds column {t.key}.{column.name}: {why}, so the table is rewritten under an "
                                   f"exclusive lock; {_size_text(rows)}", t, column.name,
                                   severity=severity)  # fmt: skip


class TypeChangeRewrite(Rule):
    """On PostgreSQL most column type changes rewrite the whole table and its indexes under an
    ACCESS EXCLUSIVE lock — ``Integer`` to ``BigInteger`` included.  Only a few are free:
    lengthening a ``VARCHAR``, ``VARCHAR`` to ``TEXT``, raising a ``NUMERIC`` precision at the
    same scale.  Medium on tables of at least ``LARGE_TABLE_ROWS`` (100,000) rows, low when
    the size could not be checked.

    Bad::

        op.alter_column("events", "id", type_=sa.BigInteger(), existing_type=sa.Integer())

    Safe: add a new column of the new type, fill it in batches (and keep it filled with a
    trigger), then switch names in a short revision; or plan a maintenance window.
    """

    code = "SAF209"
    name = "rewrite.column-type"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "postgresql":
            return
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if not isinstance(op, alembic_ops.AlterColumnOp) or op.modify_type is None:
                continue
            t, c = _ref(op), str(op.column_name)
            if t.key in fresh or (t.key, c) in added:
                continue
            old, new = _type(op.existing_type), _type(op.modify_type)
            if not pg_rewrites(old, new) and not _kw(op).get("postgresql_using"):
                continue
            rows = _rows(ctx, t)
            severity = _size_severity(rows)
            if severity is not None:
                verb = "may rewrite the table (the old type is unknown)" if old is None else "rewrites the table"
                yield self.finding(f"changing {t.key}.{c} to {_type_str(new, ctx.dialect)} {verb} and its indexes "
                                   f"under an exclusive lock; {_size_text(rows)}", t, c, severity=severity)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# SAF3xx: breaks the code still running, or cannot be undone.
# ---------------------------------------------------------------------------------------------


class RenameTable(Rule):
    """Renaming a table breaks the release that is still running: every query it sends names
    the old table and fails until the last old instance is replaced.

    Severity medium: no data is lost and the downgrade renames it back, but during a rolling
    deploy the failures are an outage as real as a lock.  (Low would fit a deploy that stops
    the application first.)

    Bad::

        op.rename_table("customer", "customers")

    Safe: expand and contract — create the new table (or a view with the new name over the
    old one), ship code that uses the new name, and drop the old name in a later revision.
    """

    code = "SAF301"
    name = "compat.rename-table"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh = _created_tables(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.RenameTableOp) and _ref(op).key not in fresh:
                yield self.finding(f"renames table {_ref(op).key} to {op.new_table_name}: the running release "
                                   "still queries the old name and fails until it is replaced", _ref(op))  # fmt: skip
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.AlterRename) and t.key not in fresh:
                    new = _sqlglot_table(action.this)
                    yield self.finding(f"raw SQL renames table {t.key} to {new.key if new else '?'}: the running "
                                       "release still queries the old name", t)  # fmt: skip


class RenameColumn(Rule):
    """Renaming a column breaks the release that is still running: its queries name the old
    column and fail until the last old instance is replaced.

    Severity medium, for the same reason as SAF301: nothing is lost, the downgrade renames it
    back, but a rolling deploy sees errors.

    Bad::

        op.alter_column("users", "name", new_column_name="full_name")

    Safe: expand and contract — add the new column, write both (or sync with a trigger),
    backfill, switch reads, and drop the old column in a later revision.
    """

    code = "SAF302"
    name = "compat.rename-column"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        fresh, added = _created_tables(ctx.upgrade), _added_columns(ctx.upgrade)
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.AlterColumnOp) and op.modify_name and op.modify_name != op.column_name:
                t, c = _ref(op), str(op.column_name)
                if t.key not in fresh and (t.key, c) not in added:
                    yield self.finding(f"renames column {t.key}.{c} to {op.modify_name}: the running release still "
                                       "uses the old name and fails until it is replaced", t, c)  # fmt: skip
        for _, tree in _statements(ctx.upgrade, ctx.dialect):
            for t, action in _alter_actions(tree):
                if isinstance(action, exp.RenameColumn) and t.key not in fresh:
                    old, new = getattr(action.this, "name", "?"), getattr(action.args.get("to"), "name", "?")
                    yield self.finding(f"raw SQL renames column {t.key}.{old} to {new}: the running release still "
                                       "uses the old name", t, old)  # fmt: skip


class EnumAddValue(Rule):
    """``ALTER TYPE ... ADD VALUE`` cannot be undone: PostgreSQL cannot remove a value from an
    enum, so the downgrade has to recreate the type and convert every column that uses it (and
    fails while any row holds the new value).  Before PostgreSQL 12 it cannot run inside a
    transaction block at all; since 12 it can, but the new value is unusable until that
    transaction commits.

    Bad::

        op.execute("ALTER TYPE order_status ADD VALUE 'refunded'")

    Safe: accept it as one-way and say so (``# safety: allow SAF303 one-way``), run it in
    ``op.get_context().autocommit_block()``, and use the value only in a later revision; or use
    a lookup table or a CHECK constraint instead of an enum when values come and go.
    """

    code = "SAF303"
    name = "irreversible.enum-add-value"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        for type_name in _enum_additions(ctx):
            yield self.finding(f"ALTER TYPE {type_name} ADD VALUE cannot be undone: PostgreSQL cannot remove an "
                               "enum value")  # fmt: skip


class DowngradeMissing(Rule):
    """The revision has no ``downgrade()``: ``alembic downgrade`` cannot step back over it, and
    a rollback has only the snapshot to go on.

    Bad::

        def upgrade():
            op.add_column("users", sa.Column("plan", sa.String(20)))
        # no downgrade()

    Safe: write the downgrade (``alembic-safety generate`` fills it from the upgrade's ops)::

        def downgrade():
            op.drop_column("users", "plan")
    """

    code = "SAF304"
    name = "downgrade.missing"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.downgrade is None and (ctx.upgrade.ops or ctx.upgrade.opaque):
            yield self.finding("the revision has no downgrade(): it cannot be stepped back over")


class DowngradeEmpty(Rule):
    """The ``downgrade()`` does nothing (``pass``) although the upgrade changes the schema:
    ``alembic downgrade`` "succeeds" and leaves every change in place, so the revision history
    and the database disagree.

    Bad::

        def downgrade():
            pass

    Safe: undo each upgrade operation in reverse order (``alembic-safety generate`` writes
    them), or raise with an explanation when the change really is one-way.
    """

    code = "SAF305"
    name = "downgrade.empty"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        down = ctx.downgrade
        if down is None or down.ops or down.opaque:
            return
        needs = [what for _, op in ctx.ops() if (what := _undo_needs(op, ctx.dialect)) is not None]
        if needs:
            yield self.finding(f"downgrade() does nothing but the upgrade changes the schema ({_listed(needs)})")


class DowngradeRaises(Rule):
    """The ``downgrade()`` raises (typically ``NotImplementedError``): ``alembic downgrade``
    stops at this revision.  Deliberate markers for one-way changes are legitimate — say so
    with ``# safety: allow SAF306 <why>`` — but the rollback then relies on the snapshot.

    Bad::

        def downgrade():
            raise NotImplementedError()

    Safe: undo what can be undone and keep only the truly irreversible part as an explicit,
    explained marker; alembic-safety's snapshot restores dropped tables and columns.
    """

    code = "SAF306"
    name = "downgrade.raises"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        reason = _downgrade_raised(ctx.downgrade)
        if reason is not None:
            yield self.finding(f"downgrade() cannot run: {reason}")


class DowngradeIncomplete(Rule):
    """The ``downgrade()`` does not undo everything the upgrade did (compared by table,
    column, index and constraint names): a table the upgrade creates is not dropped, an added
    column or index stays, a rename is not reversed.  Running the upgrade again then fails
    ("already exists"), and the schema after a downgrade is not the one before the upgrade.

    Bad::

        def upgrade():
            op.create_table("plans", sa.Column("id", sa.Integer, primary_key=True))
            op.create_index("ix_users_plan", "users", ["plan_id"])

        def downgrade():
            op.drop_table("plans")  # the index stays

    Safe: undo every operation, in reverse order::

        def downgrade():
            op.drop_index("ix_users_plan", table_name="users")
            op.drop_table("plans")
    """

    code = "SAF307"
    name = "downgrade.incomplete"
    severity = "medium"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        down = ctx.downgrade
        if down is None or _downgrade_raised(down) is not None or (not down.ops and not down.opaque):
            return  # SAF304, SAF306, SAF305
        gaps = undo_gaps(ctx)
        if not gaps:
            return
        severity = None
        tail = ""
        if _downgrade_sees_connection(down):
            severity, tail = "low", " (it also uses the connection, which may undo them out of sight)"
        for op, what in gaps:
            t = _constraint_table(op)
            yield self.finding(f"downgrade() does not undo: {what}{tail}", t if t.name != "?" else None,
                               severity=severity)  # fmt: skip


def _listed(items: list[str], limit: int = 4) -> str:
    head = "; ".join(items[:limit])
    return head + (f"; and {len(items) - limit} more" if len(items) > limit else "")


# ---------------------------------------------------------------------------------------------
# SAF4xx: cannot run.  High: the revision stops part-way, and where DDL is not transactional
# (MySQL, MariaDB) everything before the failing statement stays applied.
# ---------------------------------------------------------------------------------------------


class DropUnnamed(Rule):
    """``op.drop_constraint(None, ...)`` cannot run (there is no name to drop), and
    ``op.drop_index(None, ...)`` drops a made-up name that does not exist.  This usually comes
    from an autogenerated revision whose constraint had no name in the database.

    Bad::

        op.drop_constraint(None, "orders", type_="foreignkey")

    Safe: use the real name from the database (``\\d orders`` in psql, or
    ``sa.inspect(bind).get_foreign_keys("orders")``), and configure a naming convention on
    the MetaData so future constraints always have one.
    """

    code = "SAF401"
    name = "invalid.drop-unnamed"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.DropConstraintOp) and not _str(op.constraint_name):
                yield self.finding(f"drop_constraint(None) on {_ref(op).key} cannot run: the constraint has no name",
                                   _ref(op))  # fmt: skip
            elif isinstance(op, alembic_ops.DropIndexOp) and not _str(op.index_name):
                yield self.finding(f"drop_index(None) on {_ref(op).key} cannot run: the index has no name", _ref(op))


class NoColumns(Rule):
    """An index, unique or primary key constraint without columns, or a foreign key whose
    local and referenced column lists are empty or differ in length, cannot be created.

    Bad::

        op.create_index("ix_orders", "orders", [])
        op.create_foreign_key("fk_o_u", "orders", "users", ["user_id", "org_id"], ["id"])

    Safe: name the columns, one referenced column per local column::

        op.create_foreign_key("fk_o_u", "orders", "users", ["user_id"], ["id"])
    """

    code = "SAF402"
    name = "invalid.no-columns"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.CreateIndexOp) and not op.columns:
                yield self.finding(f"create_index {op.index_name or '(unnamed)'} on {_ref(op).key} has no columns",
                                   _ref(op))  # fmt: skip
            elif isinstance(op, (alembic_ops.CreateUniqueConstraintOp, alembic_ops.CreatePrimaryKeyOp)) \
                    and not op.columns:  # fmt: skip
                yield self.finding(f"{type(op).__name__} {op.constraint_name or '(unnamed)'} on {_ref(op).key} has "
                                   "no columns", _ref(op))  # fmt: skip
            elif isinstance(op, alembic_ops.CreateForeignKeyOp):
                local, remote = list(op.local_cols or []), list(op.remote_cols or [])
                if not local or len(local) != len(remote):
                    src = _fk_refs(op)[0]
                    yield self.finding(f"create_foreign_key {op.constraint_name or '(unnamed)'} on {src.key} has "
                                       f"{len(local)} local and {len(remote)} referenced columns", src)  # fmt: skip


class AlterColumnNothing(Rule):
    """``op.alter_column()`` with nothing to change — only ``existing_*`` arguments — emits no
    SQL at all.  Usually an argument was forgotten (``nullable=``, ``type_=``,
    ``new_column_name=``), so the revision does less than its author thinks.

    Bad::

        op.alter_column("users", "email", existing_type=sa.String(255))

    Safe: pass the change itself, or delete the call::

        op.alter_column("users", "email", existing_type=sa.String(255), nullable=False)
    """

    code = "SAF403"
    name = "invalid.alter-column-nothing"
    severity = "low"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.AlterColumnOp) and _is_noop_alter(op):
                yield self.finding(f"alter_column on {_ref(op).key}.{op.column_name} changes nothing and emits no SQL",
                                   _ref(op), str(op.column_name))  # fmt: skip


class MySqlIncomplete(Rule):
    """On MySQL and MariaDB, Alembic cannot run ``alter_column`` that renames a column or
    changes its nullability or comment without ``existing_type=`` (``CHANGE``/``MODIFY``
    restate the whole column), nor ``drop_constraint`` without ``type_=`` (there is no
    generic ``DROP CONSTRAINT``).

    Bad::

        op.alter_column("users", "email", nullable=False)
        op.drop_constraint("fk_orders_user", "orders")

    Safe: restate the column and name the constraint kind::

        op.alter_column("users", "email", nullable=False, existing_type=sa.String(255),
                        existing_server_default=None)
        op.drop_constraint("fk_orders_user", "orders", type_="foreignkey")
    """

    code = "SAF404"
    name = "invalid.mysql-incomplete"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect not in ("mysql", "mariadb"):
            return
        for _, op in ctx.ops():
            if isinstance(op, alembic_ops.AlterColumnOp) and op.existing_type is None and op.modify_type is None:
                if op.modify_name or op.modify_nullable is not None or op.modify_comment is not False:
                    yield self.finding(f"alter_column on {_ref(op).key}.{op.column_name} needs existing_type= on "
                                       "MySQL (CHANGE/MODIFY restate the whole column)", _ref(op),
                                       str(op.column_name))  # fmt: skip
            elif isinstance(op, alembic_ops.DropConstraintOp) and _str(op.constraint_name) \
                    and not op.constraint_type:  # fmt: skip
                yield self.finding(f"drop_constraint {op.constraint_name} on {_ref(op).key} needs type_= on MySQL "
                                   "(there is no generic DROP CONSTRAINT)", _ref(op))  # fmt: skip


class SqliteNeedsBatch(Rule):
    """SQLite's ``ALTER TABLE`` cannot add or drop constraints or change a column's type,
    nullability or default; outside a ``batch_alter_table`` block those operations fail.

    Bad::

        op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"])

    Safe: put them in a batch block, which recreates the table with the change::

        with op.batch_alter_table("orders") as batch:
            batch.create_foreign_key("fk_orders_user", "users", ["user_id"], ["id"])
    """

    code = "SAF405"
    name = "invalid.sqlite-needs-batch"
    severity = "high"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.dialect != "sqlite":
            return
        for op, in_batch in _walk(ctx.upgrade.ops):
            if in_batch:
                continue
            if isinstance(op, (*_CONSTRAINT_OPS, alembic_ops.DropConstraintOp)):
                t = _constraint_table(op)
                yield self.finding(f"{type(op).__name__} on {t.key} outside batch_alter_table cannot run on SQLite", t)
            elif isinstance(op, alembic_ops.AlterColumnOp) and (
                    op.modify_type is not None or op.modify_nullable is not None
                    or op.modify_server_default is not False):  # fmt: skip
                yield self.finding(f"alter_column on {_ref(op).key}.{op.column_name} outside batch_alter_table cannot "
                                   "run on SQLite", _ref(op), str(op.column_name))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Live facts: the Facts protocol answered from a database connection.
# ---------------------------------------------------------------------------------------------


class LiveFacts:
    """Facts read through a SQLAlchemy Connection; every question it cannot answer (missing
    table or column, a timeout, a type mismatch in a foreign key) answers None and is listed in
    ``unknown``.

    - ``rows``: PostgreSQL ``pg_class.reltuples`` when positive (an estimate, free), otherwise
      ``count(*)``; MySQL/MariaDB ``information_schema.TABLES.TABLE_ROWS`` when positive,
      otherwise ``count(*)``; other databases ``count(*)``.  Cached per table.
    - ``null_count``: rows where the column is NULL.
    - ``duplicate_count``: rows whose (non-NULL) key occurs more than once — every row of
      each duplicated group.
    - ``check_violations``: rows for which the condition is false (NULL passes, as in CHECK).
    - ``orphan_count``: rows with every key column set and no matching referenced row.

    Identifiers are quoted by SQLAlchemy (``sa.table``/``sa.column``), never formatted into
    SQL.  On PostgreSQL each query runs in a SAVEPOINT under ``statement_timeout`` (so a
    failure or timeout leaves the caller's transaction usable); elsewhere a failed query does
    not abort the transaction.
    """

    def __init__(self, conn: sa.Connection, timeout_seconds: float | None = 30.0) -> None:
        self.conn = conn
        self.timeout_seconds = timeout_seconds
        self.unknown: list[str] = []
        self._rows: dict[TableRef, int | None] = {}

    @property
    def _name(self) -> str:
        return str(self.conn.dialect.name)

    def _miss(self, what: str, exc: BaseException | None = None) -> None:
        text = what if exc is None else f"{what} ({type(exc).__name__}: {_one_line(exc)[:120]})"
        if text not in self.unknown:
            self.unknown.append(text)

    def _scalar(self, what: str, stmt: sa.Executable) -> Any:
        try:
            if self._name != "postgresql":
                return self.conn.execute(stmt).scalar()
            with self.conn.begin_nested():
                previous = None
                if self.timeout_seconds:
                    previous = self.conn.execute(sa.select(sa.func.current_setting("statement_timeout"))).scalar()
                    ms = str(max(1, int(self.timeout_seconds * 1000)))
                    self.conn.execute(sa.select(sa.func.set_config("statement_timeout", ms, True)))
                value = self.conn.execute(stmt).scalar()
                if previous is not None:
                    self.conn.execute(sa.select(sa.func.set_config("statement_timeout", str(previous), True)))
                return value
        except Exception as exc:
            self._miss(what, exc)
            return None

    def _count(self, what: str, stmt: sa.Executable) -> int | None:
        value = self._scalar(what, stmt)
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            self._miss(what)
            return None

    @staticmethod
    def _table(ref: TableRef, *columns: str) -> sa.TableClause:
        return sa.table(ref.name, *(sa.column(c) for c in dict.fromkeys(columns)), schema=ref.schema)

    def rows(self, table: TableRef) -> int | None:
        if table not in self._rows:
            self._rows[table] = self._count_rows(table)
        return self._rows[table]

    def _count_rows(self, table: TableRef) -> int | None:
        what = f"row count of {table.key}"
        estimate: Any = None
        if self._name == "postgresql":
            qualified = self.conn.dialect.identifier_preparer.format_table(self._table(table))
            stmt = sa.text("SELECT c.reltuples FROM pg_class c WHERE c.oid = to_regclass(:name)").bindparams(
                name=qualified)  # fmt: skip
            estimate = self._scalar(what, stmt)
            if estimate is None and what not in self.unknown:
                exists = self._scalar(what, sa.text("SELECT to_regclass(:name) IS NOT NULL").bindparams(name=qualified))
                if exists is False:
                    self._miss(f"{what} (no such table)")
                    return None
        elif self._name in ("mysql", "mariadb"):
            count_col: sa.ColumnClause[Any] = sa.column("TABLE_ROWS")
            schema_col: sa.ColumnClause[Any] = sa.column("TABLE_SCHEMA")
            name_col: sa.ColumnClause[Any] = sa.column("TABLE_NAME")
            info = sa.table("TABLES", count_col, schema_col, name_col, schema="information_schema")
            schema = sa.literal(table.schema) if table.schema else sa.func.database()
            query = sa.select(count_col).select_from(info).where(schema_col == schema, name_col == table.name)
            estimate = self._scalar(what, query)
        try:
            if estimate is not None and float(estimate) > 0:
                return round(float(estimate))
        except (TypeError, ValueError):
            pass
        return self._count(what, sa.select(sa.func.count()).select_from(self._table(table)))

    def null_count(self, table: TableRef, column: str) -> int | None:
        t = self._table(table, column)
        return self._count(f"NULLs in {table.key}.{column}",
                           sa.select(sa.func.count()).select_from(t).where(t.c[column].is_(None)))  # fmt: skip

    def duplicate_count(self, table: TableRef, columns: list[str]) -> int | None:
        what = f"duplicates in {table.key}({', '.join(columns)})"
        if not columns:
            self._miss(what)
            return None
        t = self._table(table, *columns)
        keys = [t.c[c] for c in dict.fromkeys(columns)]
        groups = (sa.select(sa.func.count().label("n")).select_from(t).where(*(k.is_not(None) for k in keys))
                  .group_by(*keys).having(sa.func.count() > 1).subquery("dup"))  # fmt: skip
        return self._count(what, sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0)))

    def check_violations(self, table: TableRef, condition: str) -> int | None:
        what = f"rows of {table.key} violating CHECK ({condition})"
        t = self._table(table)
        # the condition is the revision's own SQL; the table name is quoted by SQLAlchemy
        violated = sa.text("NOT (" + condition + ")")
        return self._count(what, sa.select(sa.func.count()).select_from(t).where(violated))

    def orphan_count(self, table: TableRef, columns: list[str], referred: TableRef,
                     referred_columns: list[str]) -> int | None:  # fmt: skip
        what = f"rows of {table.key}({', '.join(columns)}) without a match in {referred.key}"
        if not columns or len(columns) != len(referred_columns):
            self._miss(what)
            return None
        child = self._table(table, *columns).alias("child")
        parent = self._table(referred, *referred_columns).alias("parent")
        match = sa.and_(*(parent.c[r] == child.c[c] for c, r in zip(columns, referred_columns, strict=True)))
        stmt = (sa.select(sa.func.count()).select_from(child)
                .where(*(child.c[c].is_not(None) for c in columns))
                .where(~sa.exists().where(match)))  # fmt: skip
        return self._count(what, stmt)
