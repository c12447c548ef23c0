"""A database's schema as comparable data: what a round trip must put back exactly.

:class:`SchemaState` is reflected from a live connection (:func:`reflect_state`) and is the
pre-state that the reversers consult (the previous definition of a function, a view, an enum
type, a dropped constraint's options) and the yardstick of a round trip (:func:`diff`).
Column order is not part of the comparison; everything else is.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

# Object kinds outside tables.  PostgreSQL has all of them; other dialects only views.
OBJECT_KINDS = (
    "schema", "extension", "type", "sequence", "function", "view", "materialized view",
    "trigger", "policy", "comment", "grant",
)  # fmt: skip


@dataclass(frozen=True)
class ColumnState:
    name: str
    type: str  # compiled for the dialect, normalised (e.g. "VARCHAR(40)", "INTEGER")
    nullable: bool
    default: str | None  # server default as the database reports it, normalised; None = none
    comment: str | None = None
    identity: str | None = None  # identity / autoincrement description, None when not one
    generated: str | None = None  # "GENERATED ALWAYS AS (expr) STORED|VIRTUAL", None when not one


@dataclass(frozen=True)
class ConstraintState:
    kind: str  # "primary key" | "unique" | "foreign key" | "check"
    name: str | None
    columns: tuple[str, ...]
    definition: str  # FK: "REFERENCES s.t (c) ON DELETE CASCADE DEFERRABLE ..."; check: its SQL; else ""
    # FK clauses as (clause, value) in a fixed order: ("ON DELETE", "CASCADE"), ("ON UPDATE", ...),
    # ("MATCH", "FULL"), ("DEFERRABLE", "INITIALLY DEFERRED"), ("NOT VALID", "yes"); defaults left out
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IndexState:
    name: str
    columns: tuple[str, ...]  # column names or expressions as the database reports them
    unique: bool
    definition: str = ""  # dialect extras that matter: partial WHERE, method, INCLUDE, ...


@dataclass(frozen=True)
class TableState:
    schema: str | None  # None = the connection's default schema
    name: str
    columns: tuple[ColumnState, ...]
    constraints: tuple[ConstraintState, ...] = ()
    indexes: tuple[IndexState, ...] = ()
    comment: str | None = None
    row_level_security: bool = False
    force_row_level_security: bool = False
    # table options that a rebuild must keep, as sorted (name, value): MySQL engine/charset/collation,
    # SQLite WITHOUT ROWID / STRICT, PostgreSQL reloptions / partitioning
    options: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def column(self, name: str) -> ColumnState | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class ObjectState:
    """A schema object outside tables, identified by kind + schema + name + identity.

    ``identity`` disambiguates what the name alone does not: a function's identity argument
    types (``"integer, text"``), a trigger's or policy's table, a comment's target, a grant's
    object and grantee.  ``definition`` is the full SQL that recreates it
    (``pg_get_functiondef``, ``CREATE VIEW ... AS`` + ``pg_get_viewdef``, ``pg_get_triggerdef``,
    ``CREATE TYPE ... AS ENUM (...)``, ``CREATE POLICY ...``, ``COMMENT ON ...``, ``GRANT ...``).
    """

    kind: str
    schema: str | None
    name: str
    identity: str = ""
    definition: str = ""

    @property
    def key(self) -> tuple[str, str | None, str, str]:
        return (self.kind, self.schema, self.name, self.identity)


@dataclass(frozen=True)
class SchemaState:
    dialect: str
    tables: tuple[TableState, ...]
    objects: tuple[ObjectState, ...] = ()
    default_schema: str | None = None  # the name that ``None`` stands for (e.g. "public", "main")
    # False: read from migration files' text, not reflected (sql-rollback without a scratch
    # database): tables are known by name only, and what is missing may still exist
    complete: bool = True

    def table(self, name: str, schema: str | None = None) -> TableState | None:
        """The table ``name`` in ``schema`` (None: the default schema)."""
        return next((t for t in self.tables if t.name == name and t.schema == schema), None)

    def objects_of(self, kind: str, name: str | None = None, schema: str | None = None,
                   identity: str | None = None) -> tuple[ObjectState, ...]:  # fmt: skip
        """Objects of ``kind``, narrowed by name, schema (None: any) and identity when given."""
        return tuple(
            o for o in self.objects
            if o.kind == kind and (name is None or o.name == name) and (schema is None or o.schema == schema)
            and (identity is None or o.identity == identity)
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (lists and dicts of str/bool/None); :meth:`from_dict` reads it back."""
        return {
            "format": 1,
            "dialect": self.dialect,
            "default_schema": self.default_schema,
            "tables": [_table_dict(t) for t in self.tables],
            "objects": [
                {"kind": o.kind, "schema": o.schema, "name": o.name, "identity": o.identity,
                 "definition": o.definition}
                for o in self.objects
            ],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemaState:
        return cls(
            dialect=str(data["dialect"]),
            tables=tuple(_table_from(t) for t in data.get("tables", ())),
            objects=tuple(
                ObjectState(kind=o["kind"], schema=o.get("schema"), name=o["name"],
                            identity=o.get("identity", ""), definition=o.get("definition", ""))
                for o in data.get("objects", ())
            ),
            default_schema=data.get("default_schema"),
        )  # fmt: skip


def _pairs(items: Iterable[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in items)


def _table_dict(t: TableState) -> dict[str, Any]:
    return {
        "schema": t.schema,
        "name": t.name,
        "columns": [
            {"name": c.name, "type": c.type, "nullable": c.nullable, "default": c.default,
             "comment": c.comment, "identity": c.identity, "generated": c.generated}
            for c in t.columns
        ],
        "constraints": [
            {"kind": c.kind, "name": c.name, "columns": list(c.columns), "definition": c.definition,
             "options": [list(o) for o in c.options]}
            for c in t.constraints
        ],
        "indexes": [
            {"name": i.name, "columns": list(i.columns), "unique": i.unique, "definition": i.definition}
            for i in t.indexes
        ],
        "comment": t.comment,
        "row_level_security": t.row_level_security,
        "force_row_level_security": t.force_row_level_security,
        "options": [list(o) for o in t.options],
    }  # fmt: skip


def _table_from(d: Mapping[str, Any]) -> TableState:
    return TableState(
        schema=d.get("schema"),
        name=d["name"],
        columns=tuple(
            ColumnState(name=c["name"], type=c["type"], nullable=bool(c["nullable"]), default=c.get("default"),
                        comment=c.get("comment"), identity=c.get("identity"), generated=c.get("generated"))
            for c in d.get("columns", ())
        ),
        constraints=tuple(
            ConstraintState(kind=c["kind"], name=c.get("name"), columns=tuple(c.get("columns", ())),
                            definition=c.get("definition", ""), options=_pairs(c.get("options", ())))
            for c in d.get("constraints", ())
        ),
        indexes=tuple(
            IndexState(name=i["name"], columns=tuple(i.get("columns", ())), unique=bool(i["unique"]),
                       definition=i.get("definition", ""))
            for i in d.get("indexes", ())
        ),
        comment=d.get("comment"),
        row_level_security=bool(d.get("row_level_security", False)),
        force_row_level_security=bool(d.get("force_row_level_security", False)),
        options=_pairs(d.get("options", ())),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# reflection

SAFETY_SCHEMA_PREFIX = "alembic_safety"
_MYSQL = ("mysql", "mariadb")
_KIND_ORDER = {k: i for i, k in enumerate(OBJECT_KINDS)}
_CONSTRAINT_ORDER = {"primary key": 0, "unique": 1, "foreign key": 2, "check": 3, "exclude": 4}
_FK_CLAUSES = ("ON DELETE", "ON UPDATE", "MATCH", "DEFERRABLE", "NOT VALID")
_IDENT = r'(?:"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[\w$]+)'
_PG_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)


def _not_extension_member(catalog: str, oid: str) -> str:
    """SQL condition: the object ``oid`` of system catalog ``catalog`` is not part of an extension
    (``catalog`` and ``oid`` are fixed strings of this module, never user input)."""
    return (f"NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass "
            f"AND d.objid = {oid} AND d.deptype = 'e')")  # fmt: skip


def is_safety_schema(name: str | None) -> bool:
    """The alembic-safety snapshot schema (``alembic_safety`` and ``alembic_safety*``)."""
    return name is not None and name.startswith(SAFETY_SCHEMA_PREFIX)


def reflect_state(
    conn: sa.Connection,
    *,
    schemas: tuple[str | None, ...] = (None,),
    exclude_tables: frozenset[str] = frozenset({"alembic_version"}),
    exclude_schemas: frozenset[str] = frozenset(),
) -> SchemaState:
    """Everything a migration round trip must restore exactly, read from ``conn``.

    ``schemas``: the schemas whose tables and objects are read (None: the default schema).  The
    alembic-safety snapshot schemas, ``exclude_schemas`` and the tables named in
    ``exclude_tables`` are left out.  On PostgreSQL the list of schemas and of extensions covers
    the whole database.  Tables, indexes and constraints keep the default schema as ``None``;
    PostgreSQL objects carry their real schema name, MySQL/SQLite objects ``None`` for the
    default schema.
    """
    insp = sa.inspect(conn)
    default = insp.default_schema_name
    excluded = frozenset(exclude_schemas)
    wanted: list[str | None] = []
    for s in schemas:
        n = None if s is None or s == default else s
        if (n is not None and (is_safety_schema(n) or n in excluded)) or n in wanted:
            continue
        wanted.append(n)
    r = _Reflector(conn, insp, default, frozenset(exclude_tables), excluded)
    tables: list[TableState] = []
    for s in wanted:
        tables += r.tables(s)
    tables.sort(key=lambda t: (t.schema or "", t.name))
    objects = sorted(set(r.objects(wanted)), key=_object_sort_key)
    return SchemaState(dialect=conn.dialect.name, tables=tuple(tables), objects=tuple(objects),
                       default_schema=default)  # fmt: skip


def _object_sort_key(o: ObjectState) -> tuple[int, str, str, str]:
    return (_KIND_ORDER.get(o.kind, len(_KIND_ORDER)), o.schema or "", o.name, o.identity)


def _constraint_sort_key(c: ConstraintState) -> tuple[int, str, tuple[str, ...], str]:
    return (_CONSTRAINT_ORDER.get(c.kind, 9), c.name or "", c.columns, c.definition)


def _ws(text: str) -> str:
    return " ".join(text.split())


def _strip_parens(text: str) -> str:
    """``((x))`` -> ``x``: outer parentheses that enclose the whole text."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        body, end = _paren_body(text, 0)
        if end != len(text) - 1:
            break
        text = body.strip()
    return text


def _paren_body(text: str, start: int) -> tuple[str, int]:
    """The text inside the first ``(`` at or after ``start`` up to its matching ``)``, and the
    index of that ``)`` (-1 if unbalanced).  Quotes are respected."""
    i = text.find("(", start)
    if i < 0:
        return "", -1
    depth, quote, j = 0, "", i
    while j < len(text):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "[":
            quote = "]"
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j
        j += 1
    return text[i + 1 :], -1


def _split_top(text: str) -> list[str]:
    """``text`` split at commas outside parentheses and quotes."""
    items: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "[":
            quote = "]"
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [x for x in items if x]


def _unquote(ident: str) -> str:
    if len(ident) >= 2 and ident[0] in "\"`[":
        close = "]" if ident[0] == "[" else ident[0]
        if ident[-1] == close:
            body = ident[1:-1]
            return body if close == "]" else body.replace(close * 2, close)
    return ident


def _norm_default(value: Any) -> str | None:
    """A server default as reported, stable: whitespace collapsed, redundant outer parentheses
    removed; ``NULL`` (also ``NULL::type``) counts as no default."""
    if value is None:
        return None
    text = _strip_parens(_ws_outside_quotes(str(value)))
    if re.fullmatch(r"(?i)null(::[\w ]+)?", text) or text == "":
        return None
    return text


_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`)")


def _ws_outside_quotes(text: str) -> str:
    parts = _QUOTED.split(text)
    return "".join(p if i % 2 else re.sub(r"\s+", " ", p) for i, p in enumerate(parts)).strip()


def canonical_sql(text: str, *, fold_case: bool = False) -> str:
    """A comparison form of a SQL fragment: whitespace outside quotes collapsed and dropped next
    to punctuation, a trailing ``;`` removed, and (``fold_case``) letters outside quotes lowered
    and plain identifiers unquoted (``"orders"`` is ``orders``)."""
    parts = _QUOTED.split(text.strip().rstrip(";").strip())
    out = []
    for i, p in enumerate(parts):
        if i % 2 == 0:
            p = re.sub(r"\s+", " ", p)
            p = re.sub(r"\s*([(),;=<>+*/|-])\s*", r"\1", p)
            if fold_case:
                p = p.lower()
        elif fold_case and re.fullmatch(r'"[A-Za-z_][A-Za-z0-9_$]*"', p):
            p = p[1:-1].lower()  # SQLite stores "orders" after a rename where orders was written
        out.append(p)
    return "".join(out).strip()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fk_clause(key: str, value: str) -> str:
    return "NOT VALID" if key == "NOT VALID" else f"{key} {value}"


def _fk_suffix(options: Iterable[tuple[str, str]]) -> str:
    return "".join(" " + _fk_clause(k, v) for k, v in options)


def _fk_options(opts: Mapping[str, Any], dialect: str, not_valid: bool = False) -> tuple[tuple[str, str], ...]:
    def action(v: Any) -> str | None:
        a = _ws(str(v or "")).upper()
        if not a or a == "NO ACTION" or (dialect in _MYSQL and a == "RESTRICT"):
            return None
        return a

    found: dict[str, str] = {}
    if d := action(opts.get("ondelete")):
        found["ON DELETE"] = d
    if u := action(opts.get("onupdate")):
        found["ON UPDATE"] = u
    match = _ws(str(opts.get("match") or "")).upper()
    if match and match not in ("SIMPLE", "NONE"):
        found["MATCH"] = match
    if opts.get("deferrable"):
        found["DEFERRABLE"] = "INITIALLY " + (str(opts.get("initially") or "IMMEDIATE")).upper()
    if not_valid:
        found["NOT VALID"] = "yes"
    return tuple((k, found[k]) for k in _FK_CLAUSES if k in found)


def _pg_identity(identity: Mapping[str, Any]) -> str:
    kind = "ALWAYS" if identity.get("always") else "BY DEFAULT"
    parts = [f"START WITH {identity.get('start')}", f"INCREMENT BY {identity.get('increment')}",
             f"MINVALUE {identity.get('minvalue')}", f"MAXVALUE {identity.get('maxvalue')}",
             f"CACHE {identity.get('cache')}"]  # fmt: skip
    if identity.get("cycle"):
        parts.append("CYCLE")
    return f"GENERATED {kind} AS IDENTITY ({' '.join(parts)})"


def _sqlite_type(declared: str) -> str:
    t = _ws(declared).upper()
    t = re.sub(r"\s*\(\s*", "(", t)
    t = re.sub(r"\s*\)", ")", t)
    return re.sub(r"\s*,\s*", ", ", t)


class _Reflector:
    def __init__(self, conn: sa.Connection, insp: sa.Inspector, default: str | None,
                 exclude_tables: frozenset[str], exclude_schemas: frozenset[str]) -> None:  # fmt: skip
        self.conn = conn
        self.insp = insp
        self.default = default
        self.exclude_tables = exclude_tables
        self.exclude_schemas = exclude_schemas
        self.dialect = conn.dialect
        self.name = conn.dialect.name
        self.q: Callable[[str], str] = conn.dialect.identifier_preparer.quote

    # -- helpers

    def rows(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        return list(self.conn.execute(sa.text(sql), params).all())

    def qualified(self, schema: str | None, name: str) -> str:
        return f"{self.q(schema)}.{self.q(name)}" if schema else self.q(name)

    def real(self, schema: str | None) -> str:
        return schema if schema is not None else (self.default or "")

    def type_str(self, t: Any) -> str:
        try:
            return _ws(str(t.compile(dialect=self.dialect)))
        except Exception:
            return _ws(str(type(t).__name__)).upper()

    def pg_column_types(self, schema: str) -> dict[tuple[str, str], str]:
        """(table, column) -> the type as PostgreSQL spells it (``format_type``)."""
        return {(str(r.relname), str(r.attname)): str(r.typ) for r in self.rows(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS typ FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND a.attnum > 0 AND NOT a.attisdropped", schema=schema)}  # fmt: skip

    def column(self, c: Mapping[str, Any], type_text: str | None = None) -> ColumnState:
        identity: str | None = None
        if c.get("identity"):
            identity = _pg_identity(c["identity"])
        elif c.get("autoincrement") is True and self.name in _MYSQL:
            identity = "AUTO_INCREMENT"
        generated: str | None = None
        if computed := c.get("computed"):
            kind = "STORED" if computed.get("persisted") else "VIRTUAL"
            generated = f"GENERATED ALWAYS AS ({_strip_parens(str(computed.get('sqltext') or ''))}) {kind}"
        if type_text is None or not isinstance(c["type"], sa.types.NullType):
            type_text = self.type_str(c["type"])
        return ColumnState(name=c["name"], type=type_text, nullable=bool(c.get("nullable", True)),
                           default=None if generated else _norm_default(c.get("default")),
                           comment=c.get("comment") or None, identity=identity, generated=generated)  # fmt: skip

    # -- tables

    def tables(self, schema: str | None) -> list[TableState]:
        names = [n for n in self.insp.get_table_names(schema=schema) if n not in self.exclude_tables]
        if not names:
            return []
        if self.name == "sqlite":
            return [self.sqlite_table(schema, n) for n in names]
        return self.generic_tables(schema, names)

    def generic_tables(self, schema: str | None, names: list[str]) -> list[TableState]:
        insp = self.insp
        kw: dict[str, Any] = {"schema": schema, "filter_names": names}
        with warnings.catch_warnings():  # a type SQLAlchemy does not know (an extension's, say): read below
            warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
            cols = insp.get_multi_columns(**kw)
        unknown = any(isinstance(c["type"], sa.types.NullType) for found in cols.values() for c in found)
        pg_types = self.pg_column_types(self.real(schema)) if unknown and self.name == "postgresql" else {}
        pks = insp.get_multi_pk_constraint(**kw)
        fks = insp.get_multi_foreign_keys(**kw)
        comments = insp.get_multi_table_comment(**kw)
        table_opts = insp.get_multi_table_options(**kw)
        pg = self.name == "postgresql"
        if pg:
            idx = insp.get_multi_indexes(**kw)
            uqs = insp.get_multi_unique_constraints(**kw)
            cks = insp.get_multi_check_constraints(**kw)
            extra = self.pg_table_extras(self.real(schema))
        else:
            my = self.mysql_table_extras(self.real(schema))
        out = []
        for name in names:
            key = (schema, name)
            if key not in cols:
                continue
            columns = tuple(self.column(c, pg_types.get((name, c["name"]))) for c in cols[key])
            constraints: list[ConstraintState] = []
            indexes: list[IndexState] = []
            pk: Mapping[str, Any] = pks.get(key) or {}
            fk_list = fks.get(key, [])
            options: dict[str, str] = {}
            rls = force = False
            if pg:
                cinfo = extra["constraints"].get(name, {})
                if pk.get("constrained_columns"):
                    extras = self.pg_key_extras(pk, cinfo.get(pk.get("name") or ""))
                    constraints.append(ConstraintState("primary key", pk.get("name"),
                                                       tuple(pk["constrained_columns"]), extras))  # fmt: skip
                for u in uqs.get(key, []):
                    extras = self.pg_key_extras(u, cinfo.get(u.get("name") or ""))
                    constraints.append(ConstraintState("unique", u.get("name"), tuple(u["column_names"]), extras))
                for ck in cks.get(key, []):
                    info = cinfo.get(ck.get("name") or "")
                    text = _ws(str(ck.get("sqltext") or ""))
                    if info is not None and not info["validated"]:
                        text += " NOT VALID"
                    constraints.append(ConstraintState("check", ck.get("name"), (), text))
                for cname, info in cinfo.items():
                    if info["type"] == "x":
                        constraints.append(ConstraintState("exclude", cname, tuple(info["columns"]), info["def"]))
                for fk in fk_list:
                    info = cinfo.get(fk.get("name") or "")
                    constraints.append(self.fk(fk, not_valid=info is not None and not info["validated"]))
                defs = extra["indexes"].get(name, {})
                for ix in idx.get(key, []):
                    if ix.get("duplicates_constraint"):
                        continue
                    exprs = ix.get("expressions") or [c or "" for c in ix.get("column_names", [])]
                    ix_name = str(ix.get("name"))
                    indexes.append(IndexState(ix_name, tuple(str(e) for e in exprs), bool(ix.get("unique")),
                                              defs.get(ix_name, "")))  # fmt: skip
                rls, force, pg_opts = extra["tables"].get(name, (False, False, {}))
                options.update(pg_opts)
            else:
                if pk.get("constrained_columns"):
                    constraints.append(ConstraintState("primary key", pk.get("name"),
                                                       tuple(pk["constrained_columns"]), ""))  # fmt: skip
                fk_cons = [self.fk(fk) for fk in fk_list]
                constraints += fk_cons
                constraints += my["checks"].get(name, [])
                for ix in my["indexes"].get(name, []):
                    if ix.unique:
                        plain = re.fullmatch(r"USING BTREE \([^()]*\)", ix.definition) and " DESC" not in ix.definition
                        constraints.append(ConstraintState("unique", ix.name, ix.columns,
                                                           "" if plain else ix.definition))  # fmt: skip
                    elif not any(ix.columns == fk.columns and ix.name in (fk.name, fk.columns[0]) for fk in fk_cons):
                        indexes.append(ix)  # not the index a foreign key created implicitly
                for k, v in (table_opts.get(key) or {}).items():
                    if k not in ("mysql_comment", "mysql_auto_increment") and v is not None:
                        options[k] = str(v)
            found_comment: Mapping[str, Any] = comments.get(key) or {}
            comment = found_comment.get("text") or None
            out.append(TableState(schema=schema, name=name, columns=columns,
                                  constraints=tuple(sorted(constraints, key=_constraint_sort_key)),
                                  indexes=tuple(sorted(indexes, key=lambda i: i.name)), comment=comment,
                                  row_level_security=rls, force_row_level_security=force,
                                  options=tuple(sorted(options.items()))))  # fmt: skip
        return out

    def fk(self, fk: Mapping[str, Any], *, not_valid: bool = False) -> ConstraintState:
        options = _fk_options(fk.get("options") or {}, self.name, not_valid)
        ref_schema = fk.get("referred_schema")
        if ref_schema == self.default:
            ref_schema = None
        referred = ", ".join(self.q(c) for c in fk.get("referred_columns") or [])
        definition = f"REFERENCES {self.qualified(ref_schema, fk['referred_table'])} ({referred})"
        return ConstraintState("foreign key", fk.get("name"), tuple(fk.get("constrained_columns") or ()),
                               definition + _fk_suffix(options), options)  # fmt: skip

    # -- PostgreSQL

    @staticmethod
    def pg_key_extras(reflected: Mapping[str, Any], info: Mapping[str, Any] | None) -> str:
        parts = []
        opts = reflected.get("dialect_options") or {}
        if opts.get("postgresql_nulls_not_distinct"):
            parts.append("NULLS NOT DISTINCT")
        if include := opts.get("postgresql_include"):
            parts.append(f"INCLUDE ({', '.join(include)})")
        if info is not None and info["deferrable"]:
            parts.append("DEFERRABLE INITIALLY " + ("DEFERRED" if info["deferred"] else "IMMEDIATE"))
        return " ".join(parts)

    def pg_table_extras(self, schema: str) -> dict[str, Any]:
        tables: dict[str, tuple[bool, bool, dict[str, str]]] = {}
        for r in self.rows(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relpersistence::text AS persistence, "
            "c.reloptions::text[] AS reloptions, "
            "CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey, "
            "pn.nspname AS parent_schema, pc.relname AS parent, "
            "CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition "
            "LEFT JOIN pg_class pc ON pc.oid = i.inhparent LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p')", s=schema):  # fmt: skip
            opts: dict[str, str] = {}
            if r.persistence == "u":
                opts["persistence"] = "UNLOGGED"
            if r.reloptions:
                opts["with"] = ", ".join(sorted(r.reloptions))
            if r.partkey:
                opts["partition by"] = str(r.partkey)
            if r.parent is not None and r.bound is not None:
                opts["partition of"] = f"{self.qualified(r.parent_schema, r.parent)} {r.bound}"
            tables[r.relname] = (bool(r.relrowsecurity), bool(r.relforcerowsecurity), opts)
        constraints: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.rows(
            "SELECT r.relname, c.conname, c.contype::text AS contype, c.condeferrable, c.condeferred, "
            "c.convalidated, pg_get_constraintdef(c.oid) AS ddl, "
            "ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o) "
            "      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) AS cols "
            "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = :s", s=schema):  # fmt: skip
            constraints.setdefault(r.relname, {})[r.conname] = {
                "type": r.contype, "deferrable": bool(r.condeferrable), "deferred": bool(r.condeferred),
                "validated": bool(r.convalidated), "def": str(r.ddl), "columns": list(r.cols or []),
            }  # fmt: skip
        indexes: dict[str, dict[str, str]] = {}
        for r in self.rows(
            "SELECT t.relname AS tname, i.relname AS iname, pg_get_indexdef(i.oid) AS ddl "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = :s", s=schema):  # fmt: skip
            indexes.setdefault(r.tname, {})[r.iname] = str(r.ddl)
        return {"tables": tables, "constraints": constraints, "indexes": indexes}

    # -- MySQL / MariaDB

    def mysql_table_extras(self, schema: str) -> dict[str, Any]:
        stats = self.conn.execute(sa.text(
            "SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = :s "
            "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"), {"s": schema}).mappings().all()  # fmt: skip
        grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for row in stats:
            r = {str(k).upper(): v for k, v in row.items()}
            if r["INDEX_NAME"] == "PRIMARY":
                continue
            grouped.setdefault((str(r["TABLE_NAME"]), str(r["INDEX_NAME"])), []).append(r)
        indexes: dict[str, list[IndexState]] = {}
        for (table, name), parts in grouped.items():
            cols: list[str] = []
            rendered: list[str] = []
            for p in parts:
                col = p.get("COLUMN_NAME")
                text = str(col) if col is not None else f"({p.get('EXPRESSION')})"
                cols.append(text)
                item = self.q(str(col)) if col is not None else text
                if p.get("SUB_PART") is not None:
                    item += f"({p['SUB_PART']})"
                if p.get("COLLATION") == "D":
                    item += " DESC"
                rendered.append(item)
            first = parts[0]
            definition = f"USING {first.get('INDEX_TYPE') or 'BTREE'} ({', '.join(rendered)})"
            if str(first.get("IGNORED") or "").upper() == "YES" or str(first.get("IS_VISIBLE") or "").upper() == "NO":
                definition += " INVISIBLE"
            if first.get("INDEX_COMMENT"):
                definition += f" COMMENT {_literal(str(first['INDEX_COMMENT']))}"
            unique = str(first.get("NON_UNIQUE")) in ("0", "False")
            indexes.setdefault(table, []).append(IndexState(name, tuple(cols), unique, definition))
        is_mariadb = bool(getattr(self.dialect, "is_mariadb", False))
        join_table = "AND cc.TABLE_NAME = tc.TABLE_NAME " if is_mariadb else ""
        checks: dict[str, list[ConstraintState]] = {}
        for c in self.rows(
            "SELECT tc.TABLE_NAME AS tname, cc.CONSTRAINT_NAME AS cname, cc.CHECK_CLAUSE AS clause "
            "FROM information_schema.TABLE_CONSTRAINTS tc JOIN information_schema.CHECK_CONSTRAINTS cc "
            "ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME "
            + join_table + "WHERE tc.CONSTRAINT_TYPE = 'CHECK' AND tc.TABLE_SCHEMA = :s", s=schema):  # fmt: skip
            checks.setdefault(str(c.tname), []).append(
                ConstraintState("check", str(c.cname), (), _ws(_strip_parens(str(c.clause)))))
        return {"indexes": indexes, "checks": checks}

    # -- SQLite

    def sqlite_table(self, schema: str | None, name: str) -> TableState:
        s = schema or "main"
        master = f"{self.q(s)}.sqlite_master"
        sql = str(self.conn.execute(sa.text(f"SELECT sql FROM {master} WHERE type = 'table' AND name = :n"),
                                    {"n": name}).scalar() or "")  # fmt: skip
        body, end = _paren_body(sql, 0)
        items = _split_top(body)
        tail = sql[end + 1 :].upper() if end >= 0 else ""
        options: dict[str, str] = {}
        if re.search(r"\bWITHOUT\s+ROWID\b", tail):
            options["sqlite_with_rowid"] = "false"
        if re.search(r"\bSTRICT\b", tail):
            options["sqlite_strict"] = "true"
        table_items: list[tuple[str | None, str, str]] = []  # (constraint name, kind, item)
        col_items: dict[str, str] = {}
        for item in items:
            m = re.match(rf"(?is)\s*(?:CONSTRAINT\s+({_IDENT})\s+)?(PRIMARY\s+KEY|UNIQUE|CHECK|FOREIGN\s+KEY)\b", item)
            if m:
                table_items.append((_unquote(m.group(1)) if m.group(1) else None, _ws(m.group(2)).upper(), item))
            elif cm := re.match(rf"\s*({_IDENT})", item):
                col_items[_unquote(cm.group(1)).lower()] = item

        def cols_of(item: str) -> tuple[str, ...]:
            inner, _ = _paren_body(item, 0)
            return tuple(_unquote(re.split(r"\s+", p.strip())[0]) for p in _split_top(inner))

        def named(kind: str, columns: Sequence[str]) -> str | None:
            for cname, k, item in table_items:
                if k == kind and tuple(c.lower() for c in cols_of(item)) == tuple(c.lower() for c in columns):
                    return cname
            if len(columns) == 1:
                item = col_items.get(columns[0].lower(), "")
                kind_re = kind.replace(" ", r"\s+")
                m = re.search(rf"(?is)\bCONSTRAINT\s+({_IDENT})\s+{kind_re}\b", item)
                if m:
                    return _unquote(m.group(1))
            return None

        xinfo = self.rows("SELECT * FROM pragma_table_xinfo(:t, :s)", t=name, s=s)
        pk_cols = [r.name for r in sorted((r for r in xinfo if r.pk), key=lambda r: r.pk)]
        rowid = (len(pk_cols) == 1 and "sqlite_with_rowid" not in options
                 and _sqlite_type(next(r.type for r in xinfo if r.name == pk_cols[0]) or "") == "INTEGER")  # fmt: skip
        columns = []
        for r in xinfo:
            if r.hidden == 1:
                continue
            generated = None
            if r.hidden in (2, 3):
                item = col_items.get(str(r.name).lower(), "")
                m = re.search(r"(?is)\bAS\s*\(", item)
                expr = _paren_body(item, m.end() - 1)[0] if m else ""
                kind = "STORED" if r.hidden == 3 else "VIRTUAL"
                generated = f"GENERATED ALWAYS AS ({_ws(_strip_parens(expr))}) {kind}"
            identity = None
            if rowid and r.name == pk_cols[0]:
                identity = "ROWID AUTOINCREMENT" if re.search(r"(?i)\bAUTOINCREMENT\b", sql) else "ROWID"
            columns.append(ColumnState(name=r.name, type=_sqlite_type(r.type or ""), nullable=not r.notnull,
                                       default=_norm_default(r.dflt_value), identity=identity,
                                       generated=generated))  # fmt: skip
        constraints: list[ConstraintState] = []
        if pk_cols:
            constraints.append(ConstraintState("primary key", named("PRIMARY KEY", pk_cols), tuple(pk_cols), ""))
        index_sql = {str(r.name): str(r.sql or "") for r in self.rows(
            f"SELECT name, sql FROM {master} WHERE type = 'index' AND tbl_name = :t", t=name)}  # fmt: skip
        indexes: list[IndexState] = []
        for ix in self.rows("SELECT * FROM pragma_index_list(:t, :s)", t=name, s=s):
            if ix.origin not in ("u", "c"):
                continue
            info = self.rows("SELECT * FROM pragma_index_xinfo(:i, :s) WHERE key = 1 ORDER BY seqno",
                             i=ix.name, s=s)  # fmt: skip
            if ix.origin == "u":
                ucols = tuple(str(r.name) for r in info)
                constraints.append(ConstraintState("unique", named("UNIQUE", ucols), ucols, ""))
                continue
            ddl = index_sql.get(ix.name, "")
            on = re.search(rf"(?is)\bON\s+{_IDENT}(?:\s*\.\s*{_IDENT})?\s*\(", ddl)
            elements = _split_top(_paren_body(ddl, on.end() - 1)[0]) if on else []
            icols = tuple(
                str(r.name) if r.cid >= 0 and r.name is not None
                else (elements[i] if i < len(elements) else "<expression>")
                for i, r in enumerate(info)
            )  # fmt: skip
            indexes.append(IndexState(str(ix.name), icols, bool(ix.unique), ddl.strip()))
        for item_name, kind, item in table_items:
            if kind == "CHECK":
                constraints.append(ConstraintState("check", item_name, (), _ws(_strip_parens(_paren_body(item, 0)[0]))))
        for item in col_items.values():
            for m in re.finditer(rf"(?is)(?:\bCONSTRAINT\s+({_IDENT})\s+)?\bCHECK\s*\(", item):
                expr = _paren_body(item, m.end() - 1)[0]
                cname = _unquote(m.group(1)) if m.group(1) else None
                constraints.append(ConstraintState("check", cname, (), _ws(_strip_parens(expr))))
        fk_rows: dict[int, list[sa.Row[Any]]] = {}
        for r in self.rows("SELECT * FROM pragma_foreign_key_list(:t, :s)", t=name, s=s):
            fk_rows.setdefault(int(r.id), []).append(r)
        for rows in fk_rows.values():
            rows.sort(key=lambda r: int(r.seq))
            from_cols = tuple(str(r._mapping["from"]) for r in rows)
            to_cols = [str(r.to) for r in rows if r.to is not None]
            item_text, fk_name = "", None
            for cname, kind, item in table_items:
                if kind == "FOREIGN KEY" and tuple(c.lower() for c in cols_of(item)) == tuple(
                        c.lower() for c in from_cols):  # fmt: skip
                    item_text, fk_name = item, cname
                    break
            else:
                if len(from_cols) == 1:
                    item_text = col_items.get(from_cols[0].lower(), "")
                    m = re.search(rf"(?is)\bCONSTRAINT\s+({_IDENT})\s+REFERENCES\b", item_text)
                    fk_name = _unquote(m.group(1)) if m else None
            ref_at = re.search(r"(?is)\bREFERENCES\b", item_text)
            clauses = item_text[ref_at.end():] if ref_at else ""
            deferrable = re.search(r"(?is)(\bNOT\s+)?\bDEFERRABLE\b(?:\s+INITIALLY\s+(DEFERRED|IMMEDIATE))?", clauses)
            opts: dict[str, Any] = {"ondelete": rows[0].on_delete, "onupdate": rows[0].on_update,
                                    "match": rows[0].match}  # fmt: skip
            if deferrable and not deferrable.group(1):
                opts["deferrable"] = True
                opts["initially"] = deferrable.group(2) or "IMMEDIATE"
            fk = {"name": fk_name, "constrained_columns": list(from_cols), "referred_schema": schema,
                  "referred_table": str(rows[0].table), "referred_columns": to_cols, "options": opts}  # fmt: skip
            constraints.append(self.fk(fk))
        return TableState(schema=schema, name=name, columns=tuple(columns),
                          constraints=tuple(sorted(constraints, key=_constraint_sort_key)),
                          indexes=tuple(sorted(indexes, key=lambda i: i.name)),
                          options=tuple(sorted(options.items())))  # fmt: skip

    # -- objects

    def objects(self, wanted: list[str | None]) -> list[ObjectState]:
        if self.name == "postgresql":
            return self.pg_objects([self.real(s) for s in wanted])
        out: list[ObjectState] = []
        for s in wanted:
            if self.name == "sqlite":
                out += self.sqlite_objects(s)
            elif self.name in _MYSQL:
                out += self.mysql_objects(s)
        return out

    def sqlite_objects(self, schema: str | None) -> list[ObjectState]:
        master = f"{self.q(schema or 'main')}.sqlite_master"
        out = []
        for r in self.rows(f"SELECT type, name, tbl_name, sql FROM {master} WHERE type IN ('view', 'trigger')"):
            identity = str(r.tbl_name) if r.type == "trigger" else ""
            out.append(ObjectState(str(r.type), schema, str(r.name), identity, str(r.sql or "").strip()))
        return out

    def mysql_objects(self, schema: str | None) -> list[ObjectState]:
        real = self.real(schema)
        out = []
        for r in self.rows("SELECT TABLE_NAME AS name FROM information_schema.VIEWS WHERE TABLE_SCHEMA = :s", s=real):
            row = self.conn.exec_driver_sql(f"SHOW CREATE VIEW {self.qualified(real, str(r.name))}").first()
            out.append(ObjectState("view", schema, str(r.name), "", str(row[1]) if row else ""))
        for r in self.rows(
            "SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS tname, ACTION_TIMING AS timing, "
            "EVENT_MANIPULATION AS event, ACTION_STATEMENT AS body FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_SCHEMA = :s", s=real):  # fmt: skip
            definition = (f"CREATE TRIGGER {self.q(str(r.name))} {r.timing} {r.event} ON {self.q(str(r.tname))} "
                          f"FOR EACH ROW {r.body}")  # fmt: skip
            out.append(ObjectState("trigger", schema, str(r.name), str(r.tname), definition))
        for r in self.rows("SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS rtype FROM information_schema.ROUTINES "
                           "WHERE ROUTINE_SCHEMA = :s", s=real):  # fmt: skip
            kind = "PROCEDURE" if str(r.rtype).upper() == "PROCEDURE" else "FUNCTION"
            row = self.conn.exec_driver_sql(f"SHOW CREATE {kind} {self.qualified(real, str(r.name))}").first()
            definition = str(row[2]) if row is not None and row[2] is not None else ""
            out.append(ObjectState("function", schema, str(r.name), "", definition))
        return out

    def pg_objects(self, schemas: list[str]) -> list[ObjectState]:
        q = self.q
        out: list[ObjectState] = []
        user_schemas: list[str] = []
        for r in self.rows(
            "SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner FROM pg_namespace n WHERE "
            + _PG_USER_SCHEMA + " AND " + _not_extension_member("pg_namespace", "n.oid")):  # fmt: skip
            if is_safety_schema(r.nspname) or r.nspname in self.exclude_schemas:
                continue
            user_schemas.append(r.nspname)
            out.append(ObjectState("schema", r.nspname, r.nspname, "",
                                   f"CREATE SCHEMA {q(r.nspname)} AUTHORIZATION {q(r.owner)}"))  # fmt: skip
        for r in self.rows("SELECT e.extname, n.nspname, e.extversion FROM pg_extension e "
                           "JOIN pg_namespace n ON n.oid = e.extnamespace"):  # fmt: skip
            out.append(ObjectState("extension", r.nspname, r.extname, "",
                                   f"CREATE EXTENSION IF NOT EXISTS {q(r.extname)} WITH SCHEMA {q(r.nspname)} "
                                   f"VERSION {_literal(r.extversion)}"))  # fmt: skip
        if schemas:
            out += self.pg_schema_objects(schemas)
        out += self.pg_grants(schemas, user_schemas)
        return out

    def pg_schema_objects(self, schemas: list[str]) -> list[ObjectState]:
        q, qn = self.q, self.qualified
        out: list[ObjectState] = []
        p = {"schemas": schemas}
        in_schemas = "n.nspname::text = ANY(CAST(:schemas AS text[]))"
        # types: enums, domains, composite types
        for r in self.rows(
            "SELECT n.nspname, t.typname, t.typtype::text AS typtype, "
            "ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) "
            "  AS labels, "
            "format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull, t.typdefault, "
            "(SELECT co.collname::text FROM pg_collation co WHERE co.oid = t.typcollation AND t.typtype = 'd' "
            "   AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)) AS coll, "
            "ARRAY(SELECT c.conname::text FROM pg_constraint c WHERE c.contypid = t.oid ORDER BY c.conname) "
            "  AS con_names, "
            "ARRAY(SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.contypid = t.oid "
            "      ORDER BY c.conname) AS con_defs, "
            "ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 "
            "      AND NOT a.attisdropped ORDER BY a.attnum) AS att_names, "
            "ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = t.typrelid "
            "      AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS att_types "
            "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE " + in_schemas + " AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND "
            "(SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')) AND "
            + _not_extension_member("pg_type", "t.oid"), **p):  # fmt: skip
            name = qn(r.nspname, r.typname)
            if r.typtype == "e":
                labels = ", ".join(_literal(x) for x in r.labels)
                definition = f"CREATE TYPE {name} AS ENUM ({labels})"
            elif r.typtype == "d":
                definition = f"CREATE DOMAIN {name} AS {r.base}"
                if r.coll:
                    definition += f" COLLATE {q(r.coll)}"
                if r.typdefault is not None:
                    definition += f" DEFAULT {r.typdefault}"
                if r.typnotnull:
                    definition += " NOT NULL"
                for cname, cdef in zip(r.con_names, r.con_defs, strict=False):
                    definition += f" CONSTRAINT {q(cname)} {cdef}"
            else:
                attrs = ", ".join(f"{q(a)} {t}" for a, t in zip(r.att_names, r.att_types, strict=False))
                definition = f"CREATE TYPE {name} AS ({attrs})"
            out.append(ObjectState("type", r.nspname, r.typname, "", definition))
        # sequences (identity sequences belong to their column)
        for r in self.rows(
            "SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL) AS typ, s.seqstart, s.seqincrement, "
            "s.seqmin, s.seqmax, s.seqcache, s.seqcycle, tn.nspname AS owner_schema, tc.relname AS owner_table, "
            "a.attname AS owner_column "
            "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid "
            "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
            "LEFT JOIN pg_class tc ON tc.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace "
            "LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "WHERE " + in_schemas + " AND (d.deptype IS NULL OR d.deptype <> 'i') AND "
            + _not_extension_member("pg_class", "c.oid"), **p):  # fmt: skip
            definition = (f"CREATE SEQUENCE {qn(r.nspname, r.relname)} AS {r.typ} INCREMENT BY {r.seqincrement} "
                          f"MINVALUE {r.seqmin} MAXVALUE {r.seqmax} START WITH {r.seqstart} CACHE {r.seqcache} "
                          f"{'CYCLE' if r.seqcycle else 'NO CYCLE'}")  # fmt: skip
            if r.owner_table is not None:
                definition += f" OWNED BY {qn(r.owner_schema, r.owner_table)}.{q(r.owner_column)}"
            out.append(ObjectState("sequence", r.nspname, r.relname, "", definition))
        # functions and procedures
        for r in self.rows(
            "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) AS args, "
            "pg_get_functiondef(p.oid) AS ddl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE " + in_schemas + " AND p.prokind IN ('f', 'p') AND "
            + _not_extension_member("pg_proc", "p.oid"), **p):  # fmt: skip
            out.append(ObjectState("function", r.nspname, r.proname, str(r.args), str(r.ddl).strip()))
        # views and materialized views (with their indexes)
        for r in self.rows(
            "SELECT n.nspname, c.relname, c.relkind::text AS relkind, pg_get_viewdef(c.oid) AS ddl, "
            "c.reloptions::text[] AS reloptions, c.relispopulated, "
            "ARRAY(SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid "
            "      WHERE x.indrelid = c.oid ORDER BY ic.relname) AS indexes "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE " + in_schemas + " AND c.relkind IN ('v', 'm') AND "
            + _not_extension_member("pg_class", "c.oid"), **p):  # fmt: skip
            query = str(r.ddl).strip().rstrip(";").strip()
            with_ = f" WITH ({', '.join(sorted(r.reloptions))})" if r.reloptions else ""
            name = qn(r.nspname, r.relname)
            if r.relkind == "v":
                definition = f"CREATE OR REPLACE VIEW {name}{with_} AS {query}"
                out.append(ObjectState("view", r.nspname, r.relname, "", definition))
            else:
                data = "WITH DATA" if r.relispopulated else "WITH NO DATA"
                statements = [f"CREATE MATERIALIZED VIEW {name}{with_} AS {query} {data}", *r.indexes]
                out.append(ObjectState("materialized view", r.nspname, r.relname, "", ";\n".join(statements)))
        # triggers
        for r in self.rows(
            "SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid) AS ddl, t.tgenabled::text AS enabled "
            "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE " + in_schemas + " AND NOT t.tgisinternal AND "
            + _not_extension_member("pg_trigger", "t.oid"), **p):  # fmt: skip
            definition = str(r.ddl)
            state = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}.get(r.enabled)
            if state:
                definition += f";\nALTER TABLE {qn(r.nspname, r.relname)} {state} TRIGGER {q(r.tgname)}"
            out.append(ObjectState("trigger", r.nspname, r.tgname, r.relname, definition))
        # row-level security policies
        for r in self.rows(
            "SELECT n.nspname, c.relname, p.polname, p.polpermissive, p.polcmd::text AS cmd, "
            "0 = ANY(p.polroles) AS to_public, "
            "ARRAY(SELECT a.rolname::text FROM pg_roles a WHERE a.oid = ANY(p.polroles) ORDER BY 1) AS roles, "
            "pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck "
            "FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE " + in_schemas, **p):  # fmt: skip
            cmd = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}.get(r.cmd, "ALL")
            roles = (["PUBLIC"] if r.to_public else []) + [q(x) for x in r.roles]
            definition = (f"CREATE POLICY {q(r.polname)} ON {qn(r.nspname, r.relname)} "
                          f"AS {'PERMISSIVE' if r.polpermissive else 'RESTRICTIVE'} FOR {cmd} "
                          f"TO {', '.join(roles) or 'PUBLIC'}")  # fmt: skip
            if r.qual is not None:
                definition += f" USING ({_strip_parens(r.qual)})"
            if r.withcheck is not None:
                definition += f" WITH CHECK ({_strip_parens(r.withcheck)})"
            out.append(ObjectState("policy", r.nspname, r.polname, r.relname, definition))
        out += self.pg_comments(schemas)
        return out

    def pg_comments(self, schemas: list[str]) -> list[ObjectState]:
        q, qn = self.q, self.qualified
        p = {"schemas": schemas}
        in_schemas = "n.nspname::text = ANY(CAST(:schemas AS text[]))"
        out: list[ObjectState] = []
        rel_kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE",
                     "S": "SEQUENCE"}  # fmt: skip
        for r in self.rows(
            "SELECT n.nspname, c.relname, c.relkind::text AS relkind, d.objsubid, a.attname, d.description "
            "FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0 "
            "WHERE " + in_schemas + " AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND "
            + _not_extension_member("pg_class", "c.oid"), **p):  # fmt: skip
            if r.objsubid:
                target = f"COLUMN {qn(r.nspname, r.relname)}.{q(r.attname)}"
                identity = f"COLUMN {r.nspname}.{r.relname}.{r.attname}"
            else:
                target = f"{rel_kinds[r.relkind]} {qn(r.nspname, r.relname)}"
                identity = f"{rel_kinds[r.relkind]} {r.nspname}.{r.relname}"
            out.append(ObjectState("comment", r.nspname, r.relname, identity,
                                   f"COMMENT ON {target} IS {_literal(r.description)}"))  # fmt: skip
        for r in self.rows(
            "SELECT n.nspname, p.proname, p.prokind::text AS prokind, "
            "pg_get_function_identity_arguments(p.oid) AS args, d.description "
            "FROM pg_description d JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND d.objoid = p.oid "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE " + in_schemas + " AND "
            + _not_extension_member("pg_proc", "p.oid"), **p):  # fmt: skip
            kind = "PROCEDURE" if r.prokind == "p" else "FUNCTION"
            out.append(ObjectState("comment", r.nspname, r.proname, f"{kind} {r.nspname}.{r.proname}({r.args})",
                                   f"COMMENT ON {kind} {qn(r.nspname, r.proname)}({r.args}) IS "
                                   f"{_literal(r.description)}"))  # fmt: skip
        for r in self.rows(
            "SELECT n.nspname, t.typname, t.typtype::text AS typtype, d.description FROM pg_description d "
            "JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND d.objoid = t.oid "
            "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE " + in_schemas + " AND "
            + _not_extension_member("pg_type", "t.oid"), **p):  # fmt: skip
            kind = "DOMAIN" if r.typtype == "d" else "TYPE"
            out.append(ObjectState("comment", r.nspname, r.typname, f"{kind} {r.nspname}.{r.typname}",
                                   f"COMMENT ON {kind} {qn(r.nspname, r.typname)} IS {_literal(r.description)}"))
        for r in self.rows(
            "SELECT n.nspname, d.description FROM pg_description d JOIN pg_namespace n "
            "ON d.classoid = 'pg_namespace'::regclass AND d.objoid = n.oid WHERE " + in_schemas, **p):  # fmt: skip
            out.append(ObjectState("comment", r.nspname, r.nspname, f"SCHEMA {r.nspname}",
                                   f"COMMENT ON SCHEMA {q(r.nspname)} IS {_literal(r.description)}"))  # fmt: skip
        return out

    def pg_grants(self, schemas: list[str], user_schemas: list[str]) -> list[ObjectState]:
        """Privileges granted to roles other than the owner (PUBLIC included), one object per
        (object, grantee); defaults (``acldefault``) count, so a function's EXECUTE for PUBLIC
        shows until it is revoked."""
        q, qn = self.q, self.qualified
        grantee = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee"
        found: dict[tuple[str, str, str, str, str], dict[str, bool]] = {}
        rows: list[tuple[str, str, str, str, str, str, bool]] = []  # kind, schema, name, sql target, id, ...
        if schemas:
            p = {"schemas": schemas}
            in_schemas = "n.nspname::text = ANY(CAST(:schemas AS text[]))"
            for r in self.rows(
                "SELECT n.nspname, c.relname, c.relkind::text AS relkind, " + grantee + ", a.privilege_type, "
                "a.is_grantable FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
                "aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", "
                "c.relowner))) a WHERE " + in_schemas + " AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
                "AND a.grantee <> c.relowner AND " + _not_extension_member("pg_class", "c.oid"), **p):  # fmt: skip
                kind = "SEQUENCE" if r.relkind == "S" else "TABLE"
                rows.append((r.nspname, r.relname, f"{kind} {qn(r.nspname, r.relname)}",
                             f"{kind} {r.nspname}.{r.relname}", r.grantee, r.privilege_type, bool(r.is_grantable)))
            for r in self.rows(
                "SELECT n.nspname, p.proname, p.prokind::text AS prokind, "
                "pg_get_function_identity_arguments(p.oid) AS args, " + grantee + ", a.privilege_type, "
                "a.is_grantable FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, "
                "aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE " + in_schemas
                + " AND p.prokind IN ('f', 'p') AND a.grantee <> p.proowner AND "
                + _not_extension_member("pg_proc", "p.oid"), **p):  # fmt: skip
                kind = "PROCEDURE" if r.prokind == "p" else "FUNCTION"
                rows.append((r.nspname, r.proname, f"{kind} {qn(r.nspname, r.proname)}({r.args})",
                             f"{kind} {r.nspname}.{r.proname}({r.args})", r.grantee, r.privilege_type,
                             bool(r.is_grantable)))  # fmt: skip
        if user_schemas:
            for r in self.rows(
                "SELECT n.nspname, " + grantee + ", a.privilege_type, a.is_grantable FROM pg_namespace n, "
                "aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
                "WHERE n.nspname::text = ANY(CAST(:schemas AS text[])) AND a.grantee <> n.nspowner",
                schemas=user_schemas):  # fmt: skip
                rows.append((r.nspname, r.nspname, f"SCHEMA {q(r.nspname)}", f"SCHEMA {r.nspname}", r.grantee,
                             r.privilege_type, bool(r.is_grantable)))  # fmt: skip
        for schema, name, target, ident, who, privilege, grantable in rows:
            privs = found.setdefault((schema, name, target, ident, who), {})
            privs[privilege] = privs.get(privilege, False) or grantable
        out = []
        for (schema, name, target, ident, who), privs in found.items():
            role = "PUBLIC" if who == "PUBLIC" else q(who)
            plain = sorted(k for k, g in privs.items() if not g)
            with_option = sorted(k for k, g in privs.items() if g)
            statements = [f"GRANT {', '.join(plain)} ON {target} TO {role}"] if plain else []
            if with_option:
                statements.append(f"GRANT {', '.join(with_option)} ON {target} TO {role} WITH GRANT OPTION")
            out.append(ObjectState("grant", schema, name, f"{ident} TO {who}", ";\n".join(statements)))
        return out


# ---------------------------------------------------------------------------------------------
# comparison


def diff(before: SchemaState, after: SchemaState) -> tuple[str, ...]:
    """What differs between two states, one readable line each (empty: equal).

    Column order is not a difference.  Constraints and indexes pair up by name first, then by
    content (so two unnamed SQLite constraints compare by what they say), then by kind and
    columns; a pair whose names differ reports the rename.  SQL fragments compare with
    whitespace normalised (and, on SQLite, whose stored SQL is the text as written, case-folded).
    """
    fold = before.dialect == "sqlite"
    out: list[str] = []
    if before.dialect != after.dialect:
        out.append(f"dialect {before.dialect} -> {after.dialect}")
    b_tables = {(t.schema, t.name): t for t in before.tables}
    a_tables = {(t.schema, t.name): t for t in after.tables}
    for key in sorted(b_tables.keys() | a_tables.keys(), key=lambda k: (k[0] or "", k[1])):
        b, a = b_tables.get(key), a_tables.get(key)
        if a is None and b is not None:
            out.append(f"table {b.key}: missing")
        elif b is None and a is not None:
            out.append(f"table {a.key}: extra")
        elif a is not None and b is not None:
            out += _diff_table(b, a, fold)
    table_names = {(_real_schema(t.schema, st), t.name) for st in (before, after) for t in st.tables}
    b_objs = {o.key: o for o in before.objects if not _table_comment(o, table_names)}
    a_objs = {o.key: o for o in after.objects if not _table_comment(o, table_names)}
    kinds = {k: i for i, k in enumerate(OBJECT_KINDS)}
    for okey in sorted(b_objs.keys() | a_objs.keys(),
                       key=lambda k: (kinds.get(k[0], len(kinds)), k[1] or "", k[2], k[3])):  # fmt: skip
        bo, ao = b_objs.get(okey), a_objs.get(okey)
        if ao is None and bo is not None:
            out.append(f"{_object_label(bo)}: missing")
        elif bo is None and ao is not None:
            out.append(f"{_object_label(ao)}: extra")
        elif ao is not None and bo is not None:
            out += _diff_object(bo, ao, fold)
    return tuple(out)


def _real_schema(schema: str | None, state: SchemaState) -> str | None:
    return schema if schema is not None else state.default_schema


def _table_comment(o: ObjectState, tables: set[tuple[str | None, str]]) -> bool:
    """A comment on a table or its columns: :class:`TableState` compares those itself."""
    return o.kind == "comment" and o.identity.startswith(("TABLE ", "COLUMN ")) and (o.schema, o.name) in tables


def _show(value: object) -> str:
    if value is None or value == "":
        return "(none)"
    return repr(value) if isinstance(value, str) else str(value)


def _cols(columns: Sequence[str]) -> str:
    return f"({', '.join(columns)})"


def _diff_table(b: TableState, a: TableState, fold: bool) -> list[str]:
    t = f"table {b.key}"
    out: list[str] = []
    a_cols = {c.name: c for c in a.columns}
    b_cols = {c.name: c for c in b.columns}
    for bc in b.columns:
        ac = a_cols.get(bc.name)
        if ac is None:
            out.append(f"{t}: column {bc.name} missing")
            continue
        if bc.type != ac.type:
            out.append(f"{t}: column {bc.name} type {bc.type} -> {ac.type}")
        if bc.nullable != ac.nullable:
            out.append(f"{t}: column {bc.name} {_null(bc.nullable)} -> {_null(ac.nullable)}")
        if not _same_sql(bc.default, ac.default, fold):
            out.append(f"{t}: column {bc.name} default {bc.default or '(none)'} -> {ac.default or '(none)'}")
        if bc.comment != ac.comment:
            out.append(f"{t}: column {bc.name} comment {_show(bc.comment)} -> {_show(ac.comment)}")
        if bc.identity != ac.identity:
            out.append(f"{t}: column {bc.name} identity {bc.identity or '(none)'} -> {ac.identity or '(none)'}")
        if not _same_sql(bc.generated, ac.generated, fold):
            out.append(f"{t}: column {bc.name} {bc.generated or 'not generated'} -> {ac.generated or 'not generated'}")
    out += [f"{t}: column {ac.name} extra" for ac in a.columns if ac.name not in b_cols]
    if b.comment != a.comment:
        out.append(f"{t}: comment {_show(b.comment)} -> {_show(a.comment)}")
    if b.row_level_security != a.row_level_security:
        out.append(f"{t}: row level security {_on(b.row_level_security)} -> {_on(a.row_level_security)}")
    if b.force_row_level_security != a.force_row_level_security:
        out.append(f"{t}: force row level security {_on(b.force_row_level_security)} -> "
                   f"{_on(a.force_row_level_security)}")  # fmt: skip
    b_opts, a_opts = dict(b.options), dict(a.options)
    for k in sorted(b_opts.keys() | a_opts.keys()):
        if b_opts.get(k) != a_opts.get(k):
            out.append(f"{t}: option {k} {b_opts.get(k) or '(none)'} -> {a_opts.get(k) or '(none)'}")
    out += _diff_constraints(b, a, fold)
    out += _diff_indexes(b, a, fold)
    return out


def _null(nullable: bool) -> str:
    return "NULL" if nullable else "NOT NULL"


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _same_sql(x: str | None, y: str | None, fold: bool) -> bool:
    if x is None or y is None:
        return x is y
    return canonical_sql(x, fold_case=fold) == canonical_sql(y, fold_case=fold)


def _fk_reference(c: ConstraintState) -> str:
    suffix = _fk_suffix(c.options)
    return c.definition[: len(c.definition) - len(suffix)] if suffix and c.definition.endswith(suffix) else c.definition


def _pair_up(before: Sequence[Any], after: Sequence[Any], named: Callable[[Any], object],
             same: Callable[[Any, Any], bool], similar: Callable[[Any, Any], bool]
             ) -> tuple[list[tuple[Any, Any]], list[Any], list[Any]]:  # fmt: skip
    """Pairs (by name, then same content, then similar), the unpaired before and after items."""
    b_left, a_left = list(before), list(after)
    pairs: list[tuple[Any, Any]] = []

    def by_name(x: Any, y: Any) -> bool:
        return named(x) is not None and named(x) == named(y)

    for rule in (by_name, same, similar):
        for bi in list(b_left):
            ai = next((y for y in a_left if rule(bi, y)), None)
            if ai is not None:
                pairs.append((bi, ai))
                b_left.remove(bi)
                a_left.remove(ai)
    return pairs, b_left, a_left


def _diff_constraints(b: TableState, a: TableState, fold: bool) -> list[str]:
    def label(c: ConstraintState) -> str:
        ident = c.name if c.name is not None else _cols(c.columns) if c.columns else _cols([c.definition])
        return f"{c.kind} {ident} on {b.key}"

    def content(c: ConstraintState) -> tuple[str, tuple[str, ...], str]:
        return (c.kind, c.columns, canonical_sql(c.definition, fold_case=fold))

    pairs, missing, extra = _pair_up(
        b.constraints, a.constraints,
        named=lambda c: (c.kind, c.name) if c.name is not None else None,
        same=lambda x, y: content(x) == content(y),
        similar=lambda x, y: x.kind == y.kind and x.columns == y.columns and (x.columns or x.kind == "primary key"),
    )  # fmt: skip
    out = [f"{label(c)}: missing" for c in missing] + [f"{label(c)}: extra" for c in extra]
    for bc, ac in pairs:
        lb = label(bc)
        if bc.name != ac.name:
            out.append(f"{lb}: name {bc.name or '(none)'} -> {ac.name or '(none)'}")
        if bc.columns != ac.columns:
            out.append(f"{lb}: columns {_cols(bc.columns)} -> {_cols(ac.columns)}")
        if bc.kind == "foreign key":
            bo, ao = dict(bc.options), dict(ac.options)
            for k in _FK_CLAUSES:
                if bo.get(k) != ao.get(k):
                    out.append(f"{lb}: {k} {bo.get(k) or '(none)'} -> {ao.get(k) or '(none)'}")
            if not _same_sql(_fk_reference(bc), _fk_reference(ac), fold):
                out.append(f"{lb}: {_fk_reference(bc)} -> {_fk_reference(ac)}")
        elif not _same_sql(bc.definition, ac.definition, fold):
            out.append(f"{lb}: definition {bc.definition or '(none)'} -> {ac.definition or '(none)'}")
    return sorted(out)


def _diff_indexes(b: TableState, a: TableState, fold: bool) -> list[str]:
    def label(i: IndexState) -> str:
        return f"index {i.name} on {b.key}"

    def body(i: IndexState) -> str:  # the definition without the index's own name
        return canonical_sql(i.definition.replace(i.name, "\0"), fold_case=fold)

    pairs, missing, extra = _pair_up(
        b.indexes, a.indexes, named=lambda i: i.name,
        same=lambda x, y: (x.unique, x.columns, body(x)) == (y.unique, y.columns, body(y)),
        similar=lambda x, y: x.columns == y.columns,
    )  # fmt: skip
    out = [f"{label(i)}: missing" for i in missing] + [f"{label(i)}: extra" for i in extra]
    for bi, ai in pairs:
        lb = label(bi)
        if bi.name != ai.name:
            out.append(f"{lb}: name {bi.name} -> {ai.name}")
        if bi.unique != ai.unique:
            out.append(f"{lb}: {'unique' if bi.unique else 'not unique'} -> {'unique' if ai.unique else 'not unique'}")
        if bi.columns != ai.columns:
            out.append(f"{lb}: columns {_cols(bi.columns)} -> {_cols(ai.columns)}")
        elif bi.unique == ai.unique and body(bi) != body(ai):
            out.append(f"{lb}: definition {bi.definition or '(none)'} -> {ai.definition or '(none)'}")
    return sorted(out)


def _object_label(o: ObjectState) -> str:
    qualified = f"{o.schema}.{o.name}" if o.schema else o.name
    if o.kind == "function":
        return f"function {qualified}({o.identity})"
    if o.kind in ("trigger", "policy"):
        table = f"{o.schema}.{o.identity}" if o.schema else o.identity
        return f"{o.kind} {o.name} on {table}"
    if o.kind in ("comment", "grant"):
        return f"{o.kind} on {o.identity}"
    return f"{o.kind} {qualified}" + (f" [{o.identity}]" if o.identity else "")


_ENUM = re.compile(r"(?is)^CREATE\s+TYPE\s+.+?\s+AS\s+ENUM\s*\((.*)\)\s*$")


def enum_labels(definition: str) -> tuple[str, ...] | None:
    """The labels of a ``CREATE TYPE ... AS ENUM (...)`` definition, in order (None: not one)."""
    m = _ENUM.match(definition.strip())
    if not m:
        return None
    return tuple(x.replace("''", "'") for x in re.findall(r"'((?:[^']|'')*)'", m.group(1)))


def _diff_object(b: ObjectState, a: ObjectState, fold: bool) -> list[str]:
    if _same_sql(b.definition, a.definition, fold):
        return []
    label = _object_label(b)
    bl, al = enum_labels(b.definition), enum_labels(a.definition)
    if bl is not None and al is not None:
        def show(labels: tuple[str, ...]) -> str:
            return "(" + ",".join(_literal(x) for x in labels) + ")"

        return [f"{label}: labels {show(bl)} -> {show(al)}"]
    short = all("\n" not in d and len(d) <= 200 for d in (b.definition, a.definition))
    if short and b.kind not in ("function", "view", "materialized view", "trigger"):
        return [f"{label}: {b.definition or '(none)'} -> {a.definition or '(none)'}"]
    return [f"{label}: definition differs"]
