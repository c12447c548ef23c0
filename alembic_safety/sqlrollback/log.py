"""The schema state before a raw SQL migration, read from the text of the files before it.

No database is needed: functions, procedures, views, materialized views, triggers, policies,
types and sequences are known by their CREATE statement (and the ALTERs since), tables, schemas
and extensions by name, comments by their last COMMENT ON.  The state is marked incomplete
(``SchemaState.complete`` False): the reverser then asks a human for what it lacks (a dropped
column's type, say) instead of calling it irreversible.  :mod:`.replay` reads the exact state
from a database instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..reverse.schema import ObjectState, SchemaState
from ..reverse.sql import _arg_types, _Words, split_statements

DIALECT = "postgresql"

_LOGGED_KINDS = {
    "FUNCTION": "function", "PROCEDURE": "procedure", "VIEW": "view", "MATERIALIZED VIEW": "materialized view",
    "TRIGGER": "trigger", "POLICY": "policy", "TYPE": "type", "SEQUENCE": "sequence", "SCHEMA": "schema",
    "EXTENSION": "extension", "TABLE": "table",
}  # fmt: skip
_Key = tuple[str, "str | None", str, str]


@dataclass
class DefinitionLog:
    """What the files read so far created, from their text: per (kind, schema, name, identity),
    the CREATE statement that made it and the ALTERs since (functions, procedures, views,
    materialized views, triggers, policies, types, sequences) or "" (tables, schemas and
    extensions: known by name; an object renamed since: known to exist, its definition no longer
    known), and the last COMMENT ON per target.  Triggers and policies are keyed by their table, in its schema."""

    objects: dict[_Key, str] = field(default_factory=dict)

    def state(self) -> SchemaState:
        return SchemaState(
            dialect=DIALECT, tables=(), default_schema="public", complete=False,
            objects=tuple(ObjectState(k[0], k[1], k[2], k[3], text) for k, text in sorted(
                self.objects.items(), key=lambda kv: tuple(x or "" for x in kv[0]))),
        )  # fmt: skip

    def add_file(self, sql: str) -> None:
        for statement in split_statements(sql, DIALECT):
            try:
                self._add(statement)
            except (SqlglotError, ValueError, IndexError):
                continue  # a statement this reader cannot follow leaves the state as it was

    def _add(self, statement: str) -> None:
        w = _Words(statement, "postgres")
        head = w.up(0)
        if head == "COMMENT" and w.up(1) == "ON":
            is_at = max((j for j in range(len(w)) if w.up(j) == "IS"), default=None)
            if is_at is not None:
                self.objects[("comment", None, " ".join(w.text(2, is_at - 1).lower().split()), "")] = statement
            return
        if head not in ("CREATE", "DROP", "ALTER"):
            return
        i = 1
        replace = head == "CREATE" and w.match(i, "OR", "REPLACE") is not None
        if replace:
            i += 2
        while w.up(i) in ("TEMP", "TEMPORARY", "RECURSIVE", "UNLOGGED", "CONSTRAINT", "TRUSTED", "PROCEDURAL"):
            if w.up(i) in ("TEMP", "TEMPORARY"):
                return  # gone at the end of the session
            i += 1
        word = w.up(i)
        if word == "MATERIALIZED" and w.up(i + 1) == "VIEW":
            word, i = "MATERIALIZED VIEW", i + 1
        kind = _LOGGED_KINDS.get(word)
        if kind is None:
            return
        i += 1
        if_not_exists = head == "CREATE" and w.match(i, "IF", "NOT", "EXISTS") is not None
        if if_not_exists:
            i += 3
        if head in ("DROP", "ALTER") and w.match(i, "IF", "EXISTS"):
            i += 2
        if head == "ALTER" and w.up(i) == "ONLY":
            i += 1
        while True:
            named = w.name(i)
            if named is None:
                return
            name, i = named
            key, i = self._key(w, kind, name, i, head)
            if key is None:
                return
            if head == "CREATE":
                if not (if_not_exists and self._find(key) is not None):
                    self.objects[key] = "" if kind in ("table", "schema", "extension") else statement
                return
            if head == "ALTER":
                self._alter(w, key, i, statement)
                return
            self._forget(key, cascade=w.up(len(w) - 1) == "CASCADE")
            if not w.punct(i, ","):
                return
            i += 1

    def _key(self, w: _Words, kind: str, name: exp.Table, i: int, head: str) -> tuple[_Key | None, int]:
        schema = _norm(name.args.get("db"))
        obj_name = _norm(name.this) or ""
        if kind in ("schema", "extension"):
            schema = obj_name if kind == "schema" else None
            if kind == "extension" and head == "CREATE":
                at = w.find(i, "SCHEMA")
                found = w.name(at + 1) if at is not None else None
                schema = _norm(found[0].this) if found else None
            return (kind, schema, obj_name, ""), i
        if kind in ("function", "procedure"):
            group = w.group(i)
            if group is None:  # DROP FUNCTION f / ALTER FUNCTION f: the only signature of it
                same = [k for k in self.objects if k[0] == kind and k[2] == obj_name and _same_schema(k[1], schema)]
                return (same[0] if len(same) == 1 else None), i
            return (kind, schema, obj_name, ", ".join(_arg_types(w, group[0], procedure=kind == "procedure"))), \
                group[1]  # fmt: skip
        if kind in ("trigger", "policy"):
            at = w.find(i, "ON")
            table = w.name(at + 1 + (1 if w.up(at + 1) == "ONLY" else 0)) if at is not None else None
            if table is None:
                return None, i
            return (kind, _norm(table[0].args.get("db")), obj_name, _norm(table[0].this) or ""), table[1]
        return (kind, schema, obj_name, ""), i

    def _alter(self, w: _Words, key: _Key, i: int, statement: str) -> None:
        """ALTER ... RENAME TO: the object under its new name (its definition no longer known); any
        other ALTER of a logged definition is appended to it, to be replayed after the CREATE."""
        found = self._find(key)
        if found is None:
            return
        rename = w.match(i, "RENAME", "TO")
        if rename is not None and w.is_name_part(rename):
            new = _norm(w.ident(rename)) or ""
            del self.objects[found]  # its CREATE statement names the old name
            self.objects[(found[0], found[1], new, found[3])] = ""
            if found[0] == "table":  # its triggers and policies follow it
                for k in [k for k in self.objects if k[0] in ("trigger", "policy") and k[3] == found[2]
                          and _same_schema(k[1], found[1])]:  # fmt: skip
                    self.objects[(k[0], k[1], k[2], new)] = self.objects.pop(k)
            return
        if self.objects[found]:  # replayed after the CREATE when the object is made again
            self.objects[found] = f"{self.objects[found].rstrip().rstrip(';')};\n{statement.strip()}"

    def _find(self, key: _Key) -> _Key | None:
        return next((k for k in self.objects if k[0] == key[0] and k[2] == key[2] and k[3] == key[3]
                     and _same_schema(k[1], key[1])), None)  # fmt: skip

    def _forget(self, key: _Key, cascade: bool) -> None:
        found = self._find(key)
        if found is None:
            return
        del self.objects[found]
        if found[0] == "table":  # its triggers and policies went with it
            for k in [k for k in self.objects if k[0] in ("trigger", "policy") and k[3] == found[2]
                      and _same_schema(k[1], found[1])]:  # fmt: skip
                del self.objects[k]
        if found[0] == "schema" and cascade:
            for k in [k for k in self.objects if k[0] != "schema" and k[1] == found[2]]:
                del self.objects[k]


def _same_schema(a: str | None, b: str | None) -> bool:
    return (a or "public") == (b or "public")


def _norm(ident: object) -> str | None:
    name = getattr(ident, "name", None)
    if not name:
        return None
    return str(name) if getattr(ident, "quoted", False) else str(name).lower()
