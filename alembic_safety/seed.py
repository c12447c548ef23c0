"""Generated rows for ``verify``: every table of a database filled with ``n`` rows that respect
the column types, NOT NULL, unique constraints, simple check constraints and foreign keys
(parents are filled first and children pick their parents' keys).  Values are derived from the
row number and a seed only, so the same schema always gets the same rows.

A row the database still refuses (a check too clever to read, a trigger) is left out: seeding
inserts the whole batch in a savepoint and, when that fails, falls back to row by row.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_LOWER = re.compile(r"(>=|>)\s*\(?\s*(-?\d+(?:\.\d+)?)")
_UPPER = re.compile(r"(<=|<)\s*\(?\s*(-?\d+(?:\.\d+)?)")


@dataclass
class _Table:
    schema: str | None
    name: str
    columns: list[dict[str, Any]]
    pk: tuple[str, ...]
    fks: list[dict[str, Any]]
    checks: list[str]
    parents: set[tuple[str | None, str]] = field(default_factory=set)

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.schema, self.name)


def _tables(conn: sa.Connection, exclude: Iterable[str]) -> list[_Table]:
    insp = sa.inspect(conn)
    skip = set(exclude)
    names = [n for n in insp.get_table_names() if n not in skip]
    if not names:
        return []
    columns = insp.get_multi_columns(filter_names=names)
    pks = insp.get_multi_pk_constraint(filter_names=names)
    fks = insp.get_multi_foreign_keys(filter_names=names)
    try:
        checks = insp.get_multi_check_constraints(filter_names=names)
    except NotImplementedError:
        checks = {}
    out: list[_Table] = []
    for key in sorted(columns, key=lambda k: (k[0] or "", k[1])):
        schema, name = key
        pk: dict[str, Any] = dict(pks.get(key) or {})
        t = _Table(schema, name, [dict(c) for c in columns[key]], tuple(pk.get("constrained_columns") or ()),
                   [dict(f) for f in fks.get(key, [])],
                   [str(c.get("sqltext", "")) for c in checks.get(key, [])])  # fmt: skip
        out.append(t)
    return out


def _order(tables: list[_Table]) -> list[_Table]:
    """Parents first; a cycle is broken where it is met (its nullable keys stay NULL)."""
    by_key = {t.key: t for t in tables}
    for t in tables:
        for fk in t.fks:
            parent = (fk.get("referred_schema"), fk["referred_table"])
            if parent in by_key and parent != t.key:
                t.parents.add(parent)
    done: dict[tuple[str | None, str], None] = {}
    visiting: set[tuple[str | None, str]] = set()

    def visit(t: _Table) -> None:
        if t.key in done or t.key in visiting:
            return
        visiting.add(t.key)
        for p in sorted(t.parents, key=lambda k: (k[0] or "", k[1])):
            visit(by_key[p])
        visiting.discard(t.key)
        done[t.key] = None

    for t in tables:
        visit(t)
    return [by_key[k] for k in done]


def _skipped(col: Mapping[str, Any], pk: Sequence[str], dialect: str) -> bool:
    """Columns the database fills itself: identity, serial/autoincrement keys, computed ones."""
    if col.get("computed") is not None or col.get("identity") is not None:
        return True
    default = str(col.get("default") or "")
    if "nextval(" in default:
        return True
    if dialect in ("mysql", "mariadb") and col.get("autoincrement") is True:
        return True
    return dialect == "sqlite" and list(pk) == [col["name"]] and isinstance(col["type"], sa.Integer)


def _bounds(name: str, checks: Sequence[str]) -> tuple[list[str], float | None, float | None]:
    """Literal choices and numeric bounds of the simple checks that mention ``name``."""
    choices: list[str] = []
    low: float | None = None
    high: float | None = None
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)|\"{re.escape(name)}\"")
    for text in checks:
        if not pattern.search(text):
            continue
        others = {w for w in re.findall(r"[A-Za-z_]\w*", _LITERAL.sub("", text))} - {name}
        if others - {"IN", "in", "ANY", "ARRAY", "text", "character", "varying", "numeric", "integer",
                     "AND", "and", "OR", "or", "NOT", "not", "NULL", "null", "IS", "is", "bpchar", "bigint",
                     "length", "char_length", "LENGTH", "CHAR_LENGTH", "VALUE", "BETWEEN", "between"}:
            continue  # several columns: not simple
        literals = [m.replace("''", "'") for m in _LITERAL.findall(text)]
        if literals and ("=" in text or " in " in text.lower()):
            choices = literals
        for op, number in _LOWER.findall(text):
            v = float(number) + (1 if op == ">" else 0)
            low = v if low is None else max(low, v)
        for op, number in _UPPER.findall(text):
            v = float(number) - (1 if op == "<" else 0)
            high = v if high is None else min(high, v)
    return choices, low, high


def _value(typ: Any, name: str, i: int, seed: int, choices: Sequence[str], low: float | None,
           high: float | None) -> Any:  # fmt: skip
    n = i + seed
    if choices:
        return choices[i % len(choices)]
    if isinstance(typ, sa.Enum):
        enums = list(typ.enums)
        return enums[i % len(enums)] if enums else None
    if isinstance(typ, sa.ARRAY):
        item = _value(typ.item_type, name, i, seed, (), None, None)
        return [item]
    if isinstance(typ, sa.Boolean):
        return i % 2 == 0
    if isinstance(typ, (sa.Integer, sa.Numeric, sa.Float)):
        value = n + 1
        base = 0 if low is None else int(low)
        if low is not None:
            value = base + n
        if high is not None and value > high:
            value = int(high) - (i % max(1, int(high) - base + 1)) if high >= base else int(high)
        if isinstance(typ, sa.SmallInteger):
            value %= 30000
        if isinstance(typ, sa.Numeric) and not isinstance(typ, sa.Float) and typ.precision is not None:
            digits = typ.precision - (typ.scale or 0)
            value %= 10 ** max(digits, 1)
        return value if not isinstance(typ, sa.Numeric) or isinstance(typ, sa.Float) else decimal.Decimal(value)
    if isinstance(typ, sa.DateTime):
        moment = dt.datetime(2024, 1, 1, 12) + dt.timedelta(hours=n)
        return moment.replace(tzinfo=dt.timezone.utc) if typ.timezone else moment
    if isinstance(typ, sa.Date):
        return dt.date(2024, 1, 1) + dt.timedelta(days=n)
    if isinstance(typ, sa.Time):
        return dt.time(n % 24, n % 60)
    if isinstance(typ, sa.Interval):
        return dt.timedelta(minutes=n + 1)
    if isinstance(typ, sa.Uuid) or type(typ).__name__ == "UUID":
        value_uuid = uuid.UUID(int=(seed << 64) + i + 1)
        return value_uuid if getattr(typ, "as_uuid", True) else str(value_uuid)
    if isinstance(typ, sa.JSON):
        return {"row": n, "name": name}
    if isinstance(typ, sa.LargeBinary):
        return f"{name}-{n}".encode()
    if isinstance(typ, (pg.INET, pg.CIDR)):
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" + ("/32" if isinstance(typ, pg.CIDR) else "")
    if isinstance(typ, pg.MACADDR):
        return f"08:00:2b:{n // 65536 % 256:02x}:{n // 256 % 256:02x}:{n % 256:02x}"
    if isinstance(typ, pg.TSVECTOR):
        return f"{name} row{n}"
    if isinstance(typ, sa.String):
        length = typ.length
        text = f"{n}-{name}-" + "abcdefghijklmnopqrstuvwxyz"
        if "email" in name.lower():
            text = f"u{n}@example.com"
        if length is None:
            return text + " " + text
        return text[:length] if len(str(n)) <= length else str(n)[-length:]
    return f"{n}"


def seed_database(conn: sa.Connection, rows: int, seed: int = 0,
                  exclude: Iterable[str] = ("alembic_version",)) -> dict[str, int]:  # fmt: skip
    """Empty every table of the default schema and fill it with ``rows`` generated rows;
    returns the rows each table holds afterwards.  Runs on ``conn``; the caller commits."""
    dialect = conn.dialect.name
    tables = _order(_tables(conn, exclude))
    _empty(conn, tables)
    if rows <= 0:
        return {t.name: 0 for t in tables}
    metadata = sa.MetaData()
    keys: dict[tuple[str | None, str], dict[tuple[str, ...], list[tuple[Any, ...]]]] = {}
    counts: dict[str, int] = {}
    wanted: dict[tuple[str | None, str], set[tuple[str, ...]]] = {}
    for t in tables:
        for fk in t.fks:
            parent = (fk.get("referred_schema"), fk["referred_table"])
            wanted.setdefault(parent, set()).add(tuple(fk["referred_columns"]))
    for t in tables:
        table = sa.Table(t.name, metadata, *[sa.Column(c["name"], c["type"]) for c in t.columns], schema=t.schema)
        generated: list[dict[str, Any]] = []
        fk_cols: dict[str, tuple[dict[str, Any], int]] = {}
        for fk in t.fks:
            for pos, c in enumerate(fk["constrained_columns"]):
                fk_cols[c] = (fk, pos)
        nullable = {c["name"]: bool(c.get("nullable", True)) for c in t.columns}
        for i in range(rows):
            row: dict[str, Any] = {}
            for col in t.columns:
                cname = col["name"]
                if cname in fk_cols:
                    fk, pos = fk_cols[cname]
                    parent = (fk.get("referred_schema"), fk["referred_table"])
                    found = keys.get(parent, {}).get(tuple(fk["referred_columns"]), [])
                    if found:
                        row[cname] = found[i % len(found)][pos]
                    elif nullable[cname]:
                        row[cname] = None
                    else:
                        row[cname] = _value(col["type"], cname, i, seed, (), None, None)
                    continue
                if _skipped(col, t.pk, dialect):
                    continue
                typ = col["type"]
                if isinstance(typ, sa.types.NullType):
                    if nullable[cname]:
                        continue
                    typ = sa.String()
                choices, low, high = _bounds(cname, t.checks)
                row[cname] = _value(typ, cname, i, seed, choices, low, high)
            generated.append(row)
        _insert(conn, table, generated)
        if t.key in wanted:
            keys[t.key] = {}
            for cols in wanted[t.key]:
                stmt = sa.select(*[table.c[c] for c in cols if c in table.c])
                keys[t.key][cols] = [tuple(r) for r in conn.execute(stmt)]
        counts[t.name] = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
    return counts


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = sorted({k for r in rows for k in r})
    full = [{c: r.get(c) for c in columns} for r in rows]
    if not columns:
        for _ in rows:
            _try(conn, table.insert().values({}), None)
        return
    if _try(conn, table.insert(), full):
        return
    for r in full:
        _try(conn, table.insert(), [r])


def _try(conn: sa.Connection, stmt: Any, params: list[dict[str, Any]] | None) -> bool:
    savepoint = conn.begin_nested()
    try:
        if params is None:
            conn.execute(stmt)
        else:
            conn.execute(stmt, params)
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def _empty(conn: sa.Connection, tables: list[_Table]) -> None:
    if not tables:
        return
    prep = conn.dialect.identifier_preparer
    names = [prep.format_table(sa.Table(t.name, sa.MetaData(), schema=t.schema)) for t in tables]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
        return
    if dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        try:
            for n in names:
                conn.exec_driver_sql(f"DELETE FROM {n}")
        finally:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
        return
    for n in reversed(names):  # children first
        conn.exec_driver_sql(f"DELETE FROM {n}")
