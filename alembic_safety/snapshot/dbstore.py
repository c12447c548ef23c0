"""The in-database store: snapshots are tables in a dedicated schema (PostgreSQL) or database
(MySQL/MariaDB), next to the data they protect.

* a column or row snapshot is ``CREATE TABLE <schema>.<name> AS SELECT ...`` on the migration's
  own connection — on PostgreSQL inside the step's transaction, so if the step rolls back, the
  snapshot and its catalogue row do too: complete or absent by construction;
* a dropped table is *moved* into the schema instead (:mod:`.moves`), whatever its size;
* the ``backups`` catalogue table holds the same manifest as the files store, the ``events``
  table mirrors the audit log;
* checksums are order-independent aggregates of row hashes computed by the database;
* on PostgreSQL a column of a user-defined type (enum, domain, composite, range, an extension
  type such as citext, an array of any of these) is stored as ``text``, so no snapshot table
  depends on a type a later revision may drop; the manifest keeps the real types, and the
  restore functions cast the values back into them.

Identifiers are quoted by SQLAlchemy; snapshot table names are generated
(``b<UTC time>z_<nnn>``), never taken from user input.
"""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from ..config import DATABASE_STORE_DIALECTS
from ..errors import BackupCorrupt, BackupNotFound, SafetyError
from ..sqlinfo import TableRef
from .engines import table_clause
from .manifest import Manifest, TableSnapshot, valid_backup_id
from .restore import VerifyResult, judge
from .store import IncompleteBackup

SNAPSHOT_TABLE = re.compile(r"^b[0-9]{8}t[0-9]{12}z_[0-9]{3}$")
POST_TABLE = re.compile(r"^b[0-9]{8}t[0-9]{12}z_[0-9]{3}_post$")  # a snapshot's post-step state (.poststate)
PENDING = "pending"  # checksum of a moved table not computed yet (the move is O(1))
COPIED = "table"  # format: CREATE TABLE ... AS SELECT
MOVED = "moved"  # format: the dropped table itself, moved into the snapshot schema
ORPHAN_GRACE = timedelta(hours=1)


def supports_database_store(dialect_name: str) -> bool:
    return dialect_name in DATABASE_STORE_DIALECTS


def snapshot_table_name(backup_id: str, index: int) -> str:
    """``b20261121t203045123456z_001``: lower case (no quoting surprises), < 63 characters."""
    return f"b{backup_id[:22].lower()}_{index:03d}"


class CreateTableAs(Executable, ClauseElement):
    """``CREATE [TEMPORARY] TABLE <target> AS <select>`` (compiled by the connection's dialect)."""

    inherit_cache = False

    def __init__(self, target: sa.TableClause, select: sa.Select[Any], *, temporary: bool = False) -> None:
        self.target = target
        self.select = select
        self.temporary = temporary


@compiles(CreateTableAs)
def _compile_ctas(element: CreateTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    target = compiler.preparer.format_table(element.target)
    kw["literal_binds"] = True
    temporary = "TEMPORARY " if element.temporary else ""
    return f"CREATE {temporary}TABLE {target} AS {compiler.process(element.select, **kw)}"


def _is_mysql(conn: sa.Connection) -> bool:
    return conn.dialect.name in ("mysql", "mariadb")


class DeclaredType(sa.types.UserDefinedType[Any]):
    """A column type given as DDL text that is already quoted (``numeric(12, 2)``, a
    ``format_type()`` result such as ``"My Schema".swing[]``)."""

    cache_ok = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


_BUILTIN_SCHEMAS = ("pg_catalog", "information_schema")

_COLUMN_TYPES = sa.text(
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), n.nspname IN :builtin, "
    "n.nspname = 'pg_catalog' AND t.typcategory = 'S' "
    "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
).bindparams(sa.bindparam("builtin", expanding=True))


_BUILTIN_TYPE = sa.text(
    "SELECT n.nspname IN :builtin FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE t.oid = to_regtype(:spec)"
).bindparams(sa.bindparam("builtin", expanding=True))


def pg_column_types(conn: sa.Connection, ref: TableRef) -> dict[str, tuple[str, bool, bool]]:
    """PostgreSQL: ``{column: (format_type(), built in?, built-in string type?)}`` of a table
    ({} if it does not exist); built in = a type of ``pg_catalog`` or ``information_schema``."""
    qualified = conn.dialect.identifier_preparer.format_table(sa.table(ref.name, schema=ref.schema))
    rows = conn.execute(_COLUMN_TYPES, {"t": qualified, "builtin": list(_BUILTIN_SCHEMAS)})
    return {str(r[0]): (str(r[1]), bool(r[2]), bool(r[3])) for r in rows}


def user_typed_columns(conn: sa.Connection, ref: TableRef) -> dict[str, str]:
    """``{column: type}`` of the columns whose type is user-defined (PostgreSQL; {} elsewhere):
    a snapshot table stores them as text, so it never depends on the type."""
    if conn.dialect.name != "postgresql":
        return {}
    return {c: spec for c, (spec, builtin, _) in pg_column_types(conn, ref).items() if not builtin}


def restore_casts(conn: sa.Connection, source: TableRef, target: TableRef,
                  columns: builtins.list[str]) -> dict[str, str]:  # fmt: skip
    """PostgreSQL: ``{column: target type}`` of the columns whose snapshot value must be cast to
    the target column's type (a user-defined type stored as text) — except into a built-in
    string type, where the assignment cast keeps PostgreSQL's length check (an explicit cast
    would truncate).  {} elsewhere."""
    if conn.dialect.name != "postgresql":
        return {}
    stored = pg_column_types(conn, source)
    wanted = pg_column_types(conn, target)
    out: dict[str, str] = {}
    for c in columns:
        have, want = stored.get(c), wanted.get(c)
        if have is not None and want is not None and have[0] != want[0] and not want[2]:
            out[c] = want[0]
    return out


class DatabaseStore:
    name = "database"

    def __init__(self, conn: sa.Connection | None, schema: str) -> None:
        self.conn: sa.Connection = conn  # type: ignore[assignment]  # None only to render offline DDL
        self.schema = schema
        md = sa.MetaData(schema=schema)
        long_text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
        self.backups = sa.Table(
            "backups", md,
            sa.Column("id", sa.String(100), primary_key=True),
            sa.Column("created_at", sa.String(40), nullable=False),
            sa.Column("kind", sa.String(20), nullable=False),
            sa.Column("complete", sa.Boolean, nullable=False),
            sa.Column("manifest", long_text, nullable=False),
        )  # fmt: skip
        self.events = sa.Table(
            "events", md,
            sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=True),
            sa.Column("ts", sa.String(40), nullable=False),
            sa.Column("event", sa.String(60), nullable=False),
            sa.Column("data", long_text, nullable=False),
        )  # fmt: skip
        self._ready = False

    # -- setup -------------------------------------------------------------------------------
    def exists(self) -> bool:
        if self._ready:  # made or found by ensure() on this connection
            return True
        insp = sa.inspect(self.conn)
        return self.schema in insp.get_schema_names() and insp.has_table("backups", schema=self.schema)

    def ensure(self) -> None:
        """Create the schema and the catalogue on first use; a clear error without privilege."""
        if self._ready:
            return
        try:
            insp = sa.inspect(self.conn)
            if self.schema not in insp.get_schema_names():
                self.conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            self.backups.metadata.create_all(self.conn, checkfirst=True)
        except (sa.exc.ProgrammingError, sa.exc.OperationalError, sa.exc.InternalError) as exc:
            orig = getattr(exc, "orig", exc)
            code = getattr(orig, "pgcode", None) or (orig.args[0] if getattr(orig, "args", None) else None)
            if code in ("42501", 1044, 1142, 1227):
                raise SafetyError(
                    f"the database user may not create the snapshot schema {self.schema!r}; grant it "
                    f"(PostgreSQL: GRANT CREATE ON DATABASE ...; MySQL: GRANT ALL ON `{self.schema}`.*), "
                    "create the schema for it, or set store = files"
                ) from exc
            raise
        self._ready = True

    def _table(self, name: str) -> sa.TableClause:
        return sa.table(name, schema=self.schema)

    # -- writing -----------------------------------------------------------------------------
    def copy_table_as(self, name: str, source: TableRef, columns: builtins.list[str], where: str | None) -> str:
        """CREATE TABLE <schema>.<name> AS SELECT the requested columns and rows; a column of a
        user-defined type is stored as ``CAST(col AS text)`` (see :func:`user_typed_columns`)."""
        src = table_clause(source, columns)
        as_text = user_typed_columns(self.conn, source) if self.conn is not None else {}
        query = sa.select(*(sa.cast(c, sa.Text).label(c.name) if c.name in as_text else c for c in src.c))
        if where is not None:
            query = query.where(sa.literal_column(where))
        self.conn.execute(CreateTableAs(self._table(name), query))
        return name

    def stored_type(self, spec: str) -> sa.types.TypeEngine[Any]:
        """The type a snapshot table stores a column of type ``spec`` (the DDL text a manifest
        recorded) as, when an exported backup comes back: the type itself, or, on PostgreSQL,
        ``text`` for a user-defined type or one that no longer exists — as :meth:`copy_table_as`
        stores it, so the imported table depends on no type either."""
        if self.conn.dialect.name != "postgresql":
            return DeclaredType(spec)
        try:
            with self.conn.begin_nested():  # PostgreSQL < 16: a malformed name is an error
                builtin = self.conn.execute(_BUILTIN_TYPE, {"spec": spec, "builtin": list(_BUILTIN_SCHEMAS)})
                found = builtin.scalar_one_or_none()
        except sa.exc.DBAPIError:
            return DeclaredType(spec)  # not a type name PostgreSQL reads: CREATE TABLE will say so
        return DeclaredType(spec) if found else sa.Text()

    def write_manifest(self, manifest: Manifest, *, replace: bool = False) -> None:
        row = {"id": manifest.id, "created_at": manifest.created_at, "kind": manifest.kind, "complete": True,
               "manifest": manifest.to_json()}  # fmt: skip
        if replace:
            self.conn.execute(
                self.backups.update().where(self.backups.c.id == manifest.id).values(**row)
            )
        else:
            self.conn.execute(self.backups.insert().values(**row))

    def record_event(self, event: dict[str, Any]) -> None:
        """Mirror one audit event; in a savepoint, so a failure cannot spoil the step's transaction."""
        with self.conn.begin_nested():
            self.conn.execute(self.events.insert().values(
                ts=str(event.get("ts", "")), event=str(event.get("event", "")), data=json.dumps(event, default=str)))

    # -- checksums ---------------------------------------------------------------------------
    def columns_of(self, name: str) -> builtins.list[str]:
        return [c["name"] for c in sa.inspect(self.conn).get_columns(name, schema=self.schema)]

    def checksum(self, name: str, columns: builtins.list[str], method: str | None = None) -> tuple[int, str]:
        """``(rows, "<method>:<sum>")``: an order-independent sum of per-row hashes."""
        columns = columns or self.columns_of(name)  # an offline snapshot records no column list
        target = self._table(name)
        prep = self.conn.dialect.identifier_preparer
        if _is_mysql(self.conn):
            t = table_clause(TableRef(name, self.schema), columns)
            parts: list[Any] = []
            for c in t.c:
                parts += [c, sa.func.isnull(c)]
            digest = sa.func.md5(sa.func.concat_ws(sa.literal("\x1f"), *parts))
            per_row = sa.cast(sa.func.conv(sa.func.substring(digest, 1, 15), 16, 10), sa.Numeric(20, 0))
            query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(per_row), 0))
            count, total = self.conn.execute(query.select_from(t)).one()
            return int(count), f"md5-sum:{int(total)}"
        methods = [method] if method else ["hash_record_extended", "hashtextextended"]
        last: Exception | None = None
        for m in methods:
            expr = "hash_record_extended(s.*, 0)" if m == "hash_record_extended" else "hashtextextended(s::text, 0)"
            sql = f"SELECT count(*), coalesce(sum({expr}::numeric), 0)::text FROM {prep.format_table(target)} AS s"
            try:
                with self.conn.begin_nested():  # json/xml/point columns have no record hash: fall back
                    count, total = self.conn.exec_driver_sql(sql).one()
                return int(count), f"{m}:{total}"
            except sa.exc.DBAPIError as exc:
                last = exc
        raise SafetyError(f"cannot checksum snapshot table {name}: {last}")

    # -- reading -----------------------------------------------------------------------------
    def list(self) -> builtins.list[Manifest]:
        """The complete backups whose catalogue row reads; a row that does not is listed by
        :meth:`incomplete` as unusable instead."""
        return self._read_catalogue()[0]

    def _read_catalogue(self) -> tuple[builtins.list[Manifest], builtins.list[IncompleteBackup]]:
        if not self.exists():
            return [], []
        out, bad = [], []
        rows = self.conn.execute(
            sa.select(self.backups.c.id, self.backups.c.manifest).where(self.backups.c.complete.is_(True))
        )
        for backup_id, text in rows:
            try:
                out.append(Manifest.from_json(text, where=f"backup {backup_id}"))
            except BackupCorrupt as exc:  # kept (never pruned by itself): its snapshot tables may be all there is
                bad.append(IncompleteBackup(str(backup_id), None, f"unreadable: {exc.message}", False))
        return sorted(out, key=lambda m: m.id, reverse=True), bad

    def get(self, backup_id: str) -> Manifest:
        if not backup_id or not re.fullmatch(r"[0-9A-Za-z_-]+", backup_id):
            raise BackupNotFound(backup_id, "not a backup id")
        if not self.exists():
            raise BackupNotFound(backup_id)
        ids = [r[0] for r in self.conn.execute(sa.select(self.backups.c.id))]
        matches = [i for i in ids if i == backup_id] or [i for i in ids if i.startswith(backup_id)]
        if len(matches) > 1:
            raise BackupNotFound(backup_id, f"ambiguous: {len(matches)} backups start with it")
        if not matches:
            raise BackupNotFound(backup_id)
        text = self.conn.execute(sa.select(self.backups.c.manifest).where(self.backups.c.id == matches[0])).scalar_one()
        return Manifest.from_json(text, where=f"backup {matches[0]}")

    def snapshot_tables(self) -> builtins.list[str]:
        if self.schema not in sa.inspect(self.conn).get_schema_names():
            return []
        return [n for n in sa.inspect(self.conn).get_table_names(schema=self.schema) if SNAPSHOT_TABLE.match(n)]

    def post_tables(self) -> builtins.list[str]:
        """The post-step state tables (``<snapshot table>_post``, :mod:`.poststate`)."""
        if self.schema not in sa.inspect(self.conn).get_schema_names():
            return []
        return [n for n in sa.inspect(self.conn).get_table_names(schema=self.schema) if POST_TABLE.match(n)]

    def incomplete(self) -> builtins.list[IncompleteBackup]:
        """Catalogue rows whose manifest does not read (listed, never removed by retention), and
        snapshot tables no catalogue row names (a MySQL/MariaDB backup killed half-way)."""
        if not self.exists():
            return []
        listed, out = self._read_catalogue()
        named = set()
        for m in listed:
            named |= {t.file for t in m.tables}
        unreadable = {inc.id.lower() for inc in out}
        orphans: dict[str, builtins.list[str]] = {}
        for name in self.snapshot_tables():
            if name not in named and not any(name.startswith("b" + u[:22]) for u in unreadable):
                orphans.setdefault(name[1:23], []).append(name)
        now = datetime.now(timezone.utc)
        for stamp, names in sorted(orphans.items()):
            try:
                started = datetime.strptime(stamp.upper(), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
            except ValueError:
                continue
            old = now - started > ORPHAN_GRACE
            reason = f"interrupted: {len(names)} snapshot table(s) without a catalogue entry"
            out.append(IncompleteBackup(stamp.upper(), None, reason if old else f"in progress? ({reason})", old))
        return out

    def table_bytes(self, names: builtins.list[str]) -> int:
        if not names:
            return 0
        if _is_mysql(self.conn):
            t = sa.table("tables", sa.column("table_schema"), sa.column("table_name"), sa.column("data_length"),
                         sa.column("index_length"), schema="information_schema")  # fmt: skip
            q = sa.select(sa.func.coalesce(sa.func.sum(t.c.data_length + t.c.index_length), 0)).where(
                t.c.table_schema == self.schema, t.c.table_name.in_(names))
            return int(self.conn.execute(q).scalar_one())
        total = 0
        for name in names:
            qualified = self.conn.dialect.identifier_preparer.format_table(self._table(name))
            size = self.conn.execute(sa.text("SELECT pg_total_relation_size(to_regclass(:t))"), {"t": qualified})
            total += int(size.scalar_one() or 0)
        return total

    def space(self) -> int:
        return self.table_bytes(self.snapshot_tables())

    def delete(self, backup_id: str) -> int:
        """Drop a backup's snapshot tables and its catalogue row; returns the bytes freed."""
        names: builtins.list[str] = []
        if not valid_backup_id(backup_id):
            raise BackupNotFound(backup_id, "not a backup id")
        exists = self.conn.execute(sa.select(self.backups.c.id).where(self.backups.c.id == backup_id)).first()
        if exists is not None:
            manifest = self.get(backup_id)
            names = [t.file for t in manifest.tables if SNAPSHOT_TABLE.match(t.file)]
        # plus any table of the same backup no catalogue row names (an interrupted one), and the
        # post-step states of its snapshot tables
        prefix = snapshot_table_name(backup_id, 0)[:-3]
        names = sorted(set(names) | {n for n in self.snapshot_tables() + self.post_tables() if n.startswith(prefix)})
        freed = self.table_bytes([n for n in names if n in set(self.snapshot_tables() + self.post_tables())])
        for name in names:
            self.conn.execute(sa.schema.DropTable(sa.Table(name, sa.MetaData(), schema=self.schema), if_exists=True))
        self.conn.execute(self.backups.delete().where(self.backups.c.id == backup_id))
        return freed

    def verify(self, manifest: Manifest) -> builtins.list[VerifyResult]:
        """Recompute every snapshot table's checksum; a moved table's first verify seals it."""
        results = []
        present = set(self.snapshot_tables())
        sealed = []
        for t in manifest.tables:
            if t.file not in present:
                results.append(VerifyResult(t.key, t.file, False, "snapshot table is missing"))
                sealed.append(t)
                continue
            method, _, _ = t.checksum.partition(":")
            if t.checksum == PENDING:
                rows, checksum = self.checksum(t.file, list(t.stored_columns))
                results.append(VerifyResult(t.key, t.file, True, f"{rows} rows, {checksum} (sealed now)"))
                sealed.append(_sealed(t, rows, checksum))
                continue
            rows, checksum = self.checksum(t.file, list(t.stored_columns), None if _is_mysql(self.conn) else method)
            results.append(judge(t, checksum, ("row count", rows, t.rows), f"{rows} rows, {checksum}"))
            sealed.append(t)
        if any(t.checksum == PENDING for t in manifest.tables):
            self.write_manifest(replace(manifest, tables=tuple(sealed)), replace=True)
        return results


    # -- restoring (the rollback command builds on these) -----------------------------------
    def restore_insert(self, snap: TableSnapshot, target: TableRef, columns: builtins.list[str] | None = None) -> int:
        """``INSERT INTO target (cols) SELECT cols FROM <snapshot table>``."""
        cols = columns or builtins.list(snap.stored_columns) or self.columns_of(snap.file)
        src = table_clause(TableRef(snap.file, self.schema), cols)
        dst = table_clause(target, cols)
        values = self._restored_values(src, target, cols)
        return int(self.conn.execute(dst.insert().from_select(cols, sa.select(*values.values()))).rowcount)

    def restore_update(self, snap: TableSnapshot, target: TableRef, key: builtins.list[str],
                       columns: builtins.list[str]) -> int:  # fmt: skip
        """``UPDATE target SET c = s.c FROM <snapshot table> s WHERE target.key = s.key``
        (a multi-table UPDATE on MySQL): refill columns by primary key."""
        src = table_clause(TableRef(snap.file, self.schema), key + columns)
        dst = table_clause(target, key + columns)
        values = self._restored_values(src, target, key + columns)
        stmt = sa.update(dst).values({c: values[c] for c in columns}).where(
            sa.and_(*(dst.c[k] == values[k] for k in key)))
        return int(self.conn.execute(stmt).rowcount)

    def _restored_values(self, src: sa.TableClause, target: TableRef,
                         columns: builtins.list[str]) -> dict[str, sa.ColumnElement[Any]]:  # fmt: skip
        """Each snapshot column as a value for the target's column of the same name.  On
        PostgreSQL, where the two types differ (a user-defined type stored as text), the value is
        cast to the target column's type — except into a built-in string type, where the
        assignment cast keeps PostgreSQL's length check (an explicit cast would truncate)."""
        values: dict[str, sa.ColumnElement[Any]] = {c: src.c[c] for c in columns}
        for c, spec in restore_casts(self.conn, TableRef(src.name, src.schema), target, columns).items():
            values[c] = sa.cast(src.c[c], DeclaredType(spec))
        return values

    def move_back(self, manifest: Manifest, snap: TableSnapshot, target: TableRef | None = None) -> None:
        """Put a moved (or copied) snapshot table back under its original name — O(1); the
        backup then no longer holds it, and its catalogue entry says so."""
        from .moves import SetSchema

        target = target or TableRef(snap.name, snap.schema)
        if _is_mysql(self.conn):
            schema = target.schema or self.conn.exec_driver_sql("SELECT DATABASE()").scalar_one()
            self.conn.execute(SetSchema(self._table(snap.file), schema, target.name))
        else:
            schema = target.schema or self.conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            self.conn.execute(SetSchema(self._table(snap.file), schema, snap.file))
            prep = self.conn.dialect.identifier_preparer
            moved = prep.format_table(sa.table(snap.file, schema=schema))
            self.conn.exec_driver_sql(f"ALTER TABLE {moved} RENAME TO {prep.quote(target.name)}")
            self._restore_companion_names(snap, TableRef(target.name, schema))
            self._restore_column_types(snap, TableRef(target.name, schema))
        self._restore_foreign_keys(snap, TableRef(target.name, target.schema))
        remaining = tuple(t for t in manifest.tables if t.file != snap.file)
        self.write_manifest(replace(manifest, tables=remaining, notes=(*manifest.notes,
                            f"{snap.key} was moved back out of the backup")), replace=True)  # fmt: skip


    def _restore_companion_names(self, snap: TableSnapshot, target: TableRef) -> None:
        """Give a moved-back table's indexes and owned sequences their names again (the move
        renamed them; see ``moves.companion_name``)."""
        from .moves import companion_name, rename_companions

        d = snap.definition or {}
        candidates = {str(ix.get("name")) for ix in d.get("indexes") or [] if ix.get("name")}
        candidates |= {str(u.get("name")) for u in d.get("unique_constraints") or [] if u.get("name")}
        if (d.get("primary_key") or {}).get("name"):
            candidates.add(str(d["primary_key"]["name"]))
        for col in d.get("columns") or []:
            candidates.add(f"{snap.name}_{col.get('name')}_seq")
            m = re.search(r"nextval\('(?:[^'.]+\.)?\"?([^'\"]+)\"?'", str(col.get("default") or ""))
            if m:
                candidates.add(m.group(1))
        back = {companion_name(snap.file, c): c for c in candidates}
        rename_companions(self.conn, target, snap.file, names=back.get)

    def _restore_column_types(self, snap: TableSnapshot, target: TableRef) -> None:
        """A copied snapshot stores columns of user-defined types as text (:meth:`copy_table_as`):
        give a table moved back out of the backup the types its definition recorded."""
        recorded = {str(c.get("name")): str(c.get("type") or "") for c in snap.definition.get("columns") or []}
        prep = self.conn.dialect.identifier_preparer
        table = prep.format_table(sa.table(target.name, schema=target.schema))
        for column, (spec, _, _) in pg_column_types(self.conn, target).items():
            want = recorded.get(column, "")
            if spec != "text" or not want or want.lower() == "text":
                continue
            using = sa.cast(sa.column(column), DeclaredType(want)).compile(dialect=self.conn.dialect)
            self.conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {prep.quote(column)} TYPE {want} "
                                      f"USING {using}")  # fmt: skip

    def _restore_foreign_keys(self, snap: TableSnapshot, target: TableRef) -> None:
        """Recreate the foreign keys a move dropped (recorded in the snapshot's definition), and
        first any index that went with them (MySQL may drop a foreign key's own index)."""
        insp = sa.inspect(self.conn)
        existing = {fk.get("name") for fk in insp.get_foreign_keys(target.name, schema=target.schema)}
        indexes = {ix.get("name") for ix in insp.get_indexes(target.name, schema=target.schema)}
        md = sa.MetaData()
        for ix in snap.definition.get("indexes") or []:
            if ix.get("name") and ix["name"] not in indexes and all(ix.get("column_names") or [None]):
                holder = sa.Table(f"{target.name}", sa.MetaData(), *(sa.Column(c) for c in ix["column_names"]),
                                  schema=target.schema)  # fmt: skip
                index = sa.Index(ix["name"], *(holder.c[c] for c in ix["column_names"]), unique=bool(ix.get("unique")))
                self.conn.execute(sa.schema.CreateIndex(index))
        for fk in snap.definition.get("foreign_keys") or []:
            if not fk.get("name") or fk["name"] in existing:
                continue
            referred = sa.Table(fk["referred_table"], md, *(sa.Column(c) for c in fk["referred_columns"]),
                                schema=fk.get("referred_schema"), extend_existing=True)  # fmt: skip
            table = sa.Table(target.name, md, *(sa.Column(c) for c in fk["constrained_columns"]),
                             schema=target.schema, extend_existing=True)  # fmt: skip
            options = fk.get("options") or {}
            constraint = sa.ForeignKeyConstraint(
                fk["constrained_columns"], [referred.c[c] for c in fk["referred_columns"]], name=fk["name"],
                ondelete=options.get("ondelete"), onupdate=options.get("onupdate"),
                deferrable=options.get("deferrable"), initially=options.get("initially"),
            )  # fmt: skip
            table.append_constraint(constraint)
            self.conn.execute(sa.schema.AddConstraint(constraint))
        if _is_mysql(self.conn):
            self._rename_fk_indexes(snap, target)

    def _rename_fk_indexes(self, snap: TableSnapshot, target: TableRef) -> None:
        """MariaDB names the index of a re-added foreign key after the constraint: give it back
        the name it had (RENAME INDEX), so the table ends exactly as recorded."""
        recorded = {ix["name"]: tuple(ix.get("column_names") or ()) for ix in snap.definition.get("indexes") or []}
        current = {ix["name"]: tuple(ix.get("column_names") or ())
                   for ix in sa.inspect(self.conn).get_indexes(target.name, schema=target.schema)}  # fmt: skip
        prep = self.conn.dialect.identifier_preparer
        table = prep.format_table(sa.table(target.name, schema=target.schema))
        for name, cols in current.items():
            if name in recorded:
                continue
            want = [n for n, c in recorded.items() if c == cols and n not in current]
            if len(want) == 1 and name is not None:
                old, new = prep.quote(name), prep.quote(want[0])
                self.conn.exec_driver_sql(f"ALTER TABLE {table} RENAME INDEX {old} TO {new}")


def _sealed(t: TableSnapshot, rows: int, checksum: str) -> TableSnapshot:
    return replace(t, rows=rows, checksum=checksum)
