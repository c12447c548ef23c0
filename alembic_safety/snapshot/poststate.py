"""The post-step state of UPDATE-type snapshots, and what ``rollback --mode merge`` does with it.

A snapshot of some columns by primary key taken for an ``UPDATE t SET c ...`` (with or without
``WHERE``) or an altered column holds the values *before* the step.  To tell, at rollback time,
the rows the application changed again after the deploy from the rows only the revision
changed, the state the step left behind is recorded too: right after the step, inside its
transaction (an after-step hook, ``hooks.AFTER_STEP_HOOKS``), one digest per primary key of
the affected columns that still exist, for exactly the snapshot's rows:

* PostgreSQL ``md5(CAST(ROW(c1, c2) AS text))`` (with the settings that shape text output
  pinned: time zone, date and interval style, float digits, bytea output), MySQL/MariaDB
  ``MD5(CONCAT_WS(CHAR(31), c1, ISNULL(c1), ...))`` (time zone pinned), computed by the
  database; elsewhere (SQLite) md5 of the row's typed JSON line (:mod:`.codec`), in Python over
  a streamed SELECT;
* database store: ``CREATE TABLE <snapshot table>_post AS SELECT key, digest`` joining the
  live table with the snapshot table's keys (PostgreSQL: rolled back with the step);
* files store: a companion file ``NNN.post-digest.zst`` (keys and digests as JSON lines,
  compressed and checksummed like the data files) written while the rows stream; the
  snapshot's keys are kept in a temporary table right before the step (a before-step hook),
  since after an ``UPDATE ... WHERE p`` the rows may no longer match ``p``.

The table's manifest entry then names it (:class:`.manifest.PostState`).  Memory stays flat
and the cost follows the snapshot's rows.  A failure to record it is logged and the backup
stays as it was (without a post-step state).

Rollback, ``merge`` mode, per such table and right before its revision's downgrade: the rows
whose current digest differs from the recorded one (changed since the deploy) are copied into a
temporary table; after the restore put the backup's values back, those rows get their current
values again — they are kept and reported (count and sample keys).  Without a post-step state
(a backup from before it was recorded) every updated row gets its old value back, as before,
and the report says so.  ``replace`` mode does not look at it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import BackupCorrupt
from ..sqlinfo import TableRef
from .codec import decode_row, encode_row
from .dbstore import MOVED, POST_TABLE, CreateTableAs, DatabaseStore, DeclaredType
from .engines import table_clause
from .manifest import Manifest, PostState, TableSnapshot
from .restore import VerifyResult
from .store import POST_FILE, FileStore
from .streams import CHUNK, SnapshotSink, VerifyingReader, verify_stream

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

    from ..hooks import SafetySession, StepInfo, StepStart
    from ..rollback import TableOutcome

log = logging.getLogger("alembic.safety")

DIGEST = "alembic_safety_digest"  # the digest column of a post-step state table
KEYS_STATE = "poststate.keys"  # StepStart.state: {snapshot file: temporary table of its keys}
UPDATE_REASONS = ("UPDATE", "alter_column", "ALTER TABLE")
SAMPLE = 5  # sample keys reported
BATCH = 1000
_PG_TEXT = {"TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "extra_float_digits": "3",
            "bytea_output": "hex"}  # fmt: skip


def _is_mysql(conn: sa.Connection) -> bool:
    return conn.dialect.name in ("mysql", "mariadb")


def wants_post(t: TableSnapshot) -> bool:
    """A snapshot of some columns by primary key, taken for a step that changes values in place."""
    return (t.columns is not None and bool(t.primary_key) and t.format != MOVED
            and all(k in t.stored_columns for k in t.primary_key)
            and any(r.startswith(UPDATE_REASONS) for r in t.reasons))  # fmt: skip


def method_for(dialect_name: str) -> str:
    if dialect_name == "postgresql":
        return "md5-row"
    if dialect_name in ("mysql", "mariadb"):
        return "md5-concat"
    return "md5-codec"


def _digest_sql(conn: sa.Connection, src: Any, cols: Sequence[str]) -> sa.ColumnElement[Any] | None:
    """The per-row digest computed by the database (None: computed in Python)."""
    if conn.dialect.name == "postgresql":
        return sa.func.md5(sa.cast(sa.func.row(*(src.c[c] for c in cols)), sa.Text))
    if _is_mysql(conn):
        parts: list[Any] = []
        for c in cols:
            parts += [src.c[c], sa.func.isnull(src.c[c])]
        return sa.func.md5(sa.func.concat_ws(sa.func.char(31), *parts))
    return None


def _digest_py(values: Sequence[Any]) -> str:
    return hashlib.md5(encode_row(values), usedforsecurity=False).hexdigest()


@contextmanager
def _stable_text(conn: sa.Connection) -> Iterator[None]:
    """Pin the session settings that shape the text of a value while digests are computed (set
    back afterwards; a failure rolls the transaction or savepoint back, settings included)."""
    if conn.dialect.name == "postgresql":
        names = list(_PG_TEXT)
        prev = conn.execute(sa.select(*(sa.func.current_setting(n) for n in names))).one()
        conn.execute(sa.select(*(sa.func.set_config(n, v, True) for n, v in _PG_TEXT.items())))
        yield
        conn.execute(sa.select(*(sa.func.set_config(n, str(v), True) for n, v in zip(names, prev, strict=True))))
    elif _is_mysql(conn):
        prev_tz = conn.exec_driver_sql("SELECT @@session.time_zone").scalar_one()
        conn.exec_driver_sql("SET time_zone = '+00:00'")
        yield
        conn.execute(sa.text("SET time_zone = :tz"), {"tz": prev_tz})
    else:
        yield


def _savepoint(conn: sa.Connection) -> Any:
    return conn.begin_nested() if conn.dialect.name == "postgresql" else nullcontext()


# -- temporary tables ----------------------------------------------------------------------------
def _temp_ref(conn: sa.Connection, name: str) -> TableRef:
    """How a temporary table is named unambiguously (never a permanent table of the same name)."""
    if conn.dialect.name == "postgresql":
        return TableRef(name, "pg_temp")
    if conn.dialect.name == "sqlite":
        return TableRef(name, "temp")
    return TableRef(name, None)


def _drop_temp(conn: sa.Connection, name: str) -> None:
    prep = conn.dialect.identifier_preparer
    ref = _temp_ref(conn, name)
    if _is_mysql(conn):
        conn.exec_driver_sql(f"DROP TEMPORARY TABLE IF EXISTS {prep.quote(name)}")
    else:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prep.format_table(table_clause(ref))}")


def _create_temp(conn: sa.Connection, name: str, query: sa.Select[Any]) -> TableRef:
    _drop_temp(conn, name)
    conn.execute(CreateTableAs(sa.table(name), query, temporary=True))
    return _temp_ref(conn, name)


def _key_match(a: Any, b: Any, key: Sequence[str]) -> Any:
    return sa.and_(*(a.c[k] == b.c[k] for k in key))


def _index(t: TableSnapshot, manifest: Manifest) -> int:
    return manifest.tables.index(t) + 1


# -- recording, around each step (hooks.py) --------------------------------------------------------
def keep_snapshot_keys(session: SafetySession, mctx: MigrationContext, start: StepStart) -> None:
    """Before the step (files store): the keys of each UPDATE-type snapshot into a temporary
    table, so the post-step state covers exactly the snapshot's rows."""
    manifest, conn = start.backup, mctx.connection
    if manifest is None or conn is None or manifest.store != "files":
        return
    keys: dict[str, str] = {}
    for t in manifest.tables:
        if not wants_post(t):
            continue
        src = table_clause(TableRef(t.name, t.schema), list(t.primary_key))
        query = sa.select(*src.c)
        if t.where is not None:
            query = query.where(sa.literal_column(t.where))
        name = f"alembic_safety_keys_{_index(t, manifest):03d}"
        try:
            with _savepoint(conn):
                _create_temp(conn, name, query)
        except Exception as exc:  # the post-step state is an extra: the step goes on without it
            log.warning("%s: post-step state not recorded (%s: %s)", t.key, type(exc).__name__, exc)
            continue
        keys[t.file] = name
    start.state[KEYS_STATE] = keys


def record_post_state(session: SafetySession, mctx: MigrationContext, info: StepInfo) -> None:
    """After the step, inside its transaction: the post-step state of each UPDATE-type snapshot
    of the step's backup, then the manifest names it."""
    from .backup import database_store

    manifest, conn = info.backup, mctx.connection
    keys: dict[str, str] = info.state.get(KEYS_STATE) or {}
    if manifest is None or conn is None or mctx.as_sql:
        return
    db = database_store(conn, session.config) if manifest.store == "database" else None
    files = FileStore(session.config.backup_dir) if manifest.store == "files" else None
    tables = list(manifest.tables)
    for i, t in enumerate(manifest.tables):
        if not wants_post(t):
            continue
        try:
            with _savepoint(conn):
                post = _record_one(conn, db, files, manifest, t, keys.get(t.file), session.config.compression_level)
        except Exception as exc:  # the post-step state is an extra: the step goes on without it
            log.warning("%s: post-step state not recorded (%s: %s)", t.key, type(exc).__name__, exc)
            post = None
        if post is not None:
            tables[i] = replace(t, post=post)
            log.info("post-step state of %s: %d row digest(s) of %s", t.key, post.rows, ", ".join(post.columns))
    for name in keys.values():
        with suppress(Exception), _savepoint(conn):
            _drop_temp(conn, name)
    if tables == list(manifest.tables):
        return
    updated = replace(manifest, tables=tuple(tables))
    if db is not None:
        db.write_manifest(updated, replace=True)
    elif files is not None:
        files.rewrite_manifest(updated)


def _record_one(conn: sa.Connection, db: DatabaseStore | None, files: FileStore | None, manifest: Manifest,
                t: TableSnapshot, keys: str | None, level: int) -> PostState | None:  # fmt: skip
    live = {c["name"] for c in sa.inspect(conn).get_columns(t.name, schema=t.schema)}
    key = list(t.primary_key)
    cols = [c for c in t.stored_columns if c not in key and c in live]
    if not cols or not all(k in live for k in key):
        return None  # the step dropped every affected column (or the key): nothing to compare later
    method = method_for(conn.dialect.name)
    lt = table_clause(TableRef(t.name, t.schema), key + cols).alias("l")
    digest = _digest_sql(conn, lt, cols)
    if db is not None:
        assert digest is not None
        snap = table_clause(TableRef(t.file, db.schema), key).alias("s")
        query = sa.select(*(lt.c[k] for k in key), digest.label(DIGEST)).select_from(
            lt.join(snap, _key_match(lt, snap, key)))
        name = f"{t.file}_post"
        if not POST_TABLE.match(name):
            return None
        with _stable_text(conn):
            conn.execute(CreateTableAs(sa.table(name, schema=db.schema), query))
        rows, checksum = db.checksum(name, [*key, DIGEST])
        return PostState(name, tuple(cols), method, rows, checksum, db.table_bytes([name]))
    if files is None or keys is None:
        return None
    kt = table_clause(_temp_ref(conn, keys), key).alias("k")
    picked = [lt.c[k] for k in key] + ([digest.label(DIGEST)] if digest is not None else [lt.c[c] for c in cols])
    query = sa.select(*picked).select_from(lt.join(kt, _key_match(lt, kt, key)))
    name = f"{t.file.partition('.')[0]}.post-digest.zst"
    fh = files.open_companion(manifest, name)
    rows = 0
    try:
        sink = SnapshotSink(fh, level=level)
        with _stable_text(conn):
            result = conn.execute(query, execution_options={"yield_per": BATCH})
            try:
                for partition in result.partitions():
                    for row in partition:
                        values = list(row[: len(key)])
                        values.append(row[len(key)] if digest is not None else _digest_py(row[len(key):]))
                        sink.write(encode_row(values))
                        rows += 1
            finally:
                result.close()
        checksum, _, stored = sink.finish()
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
    except BaseException:
        fh.close()
        files.remove_companion(manifest, name)
        raise
    return PostState(name, tuple(cols), method, rows, checksum, stored)


# -- reading it back (rollback) ------------------------------------------------------------------
def usable(store: DatabaseStore | FileStore, manifest: Manifest, t: TableSnapshot, dialect: str) -> PostState | None:
    """The table's post-step state when this store holds it and this database computes its digest
    (an exported or imported backup leaves it behind)."""
    post = t.post
    if post is None or post.method != method_for(dialect):
        return None
    if isinstance(store, DatabaseStore):
        return post if manifest.store == "database" and POST_TABLE.match(post.file) else None
    return post if manifest.store == "files" and POST_FILE.match(post.file) else None


def verify(store: DatabaseStore | FileStore, manifest: Manifest, dialect: str) -> list[VerifyResult]:
    """Check every usable post-step state against its recorded checksum."""
    out: list[VerifyResult] = []
    for t in manifest.tables:
        post = usable(store, manifest, t, dialect)
        if post is None:
            continue
        what = f"{t.key} (post-step state)"
        if isinstance(store, DatabaseStore):
            if post.file not in store.post_tables():
                out.append(VerifyResult(what, post.file, False, "post-step state table is missing"))
                continue
            method = None if _is_mysql(store.conn) else post.checksum.partition(":")[0]
            rows, checksum = store.checksum(post.file, [*t.primary_key, DIGEST], method)
            size = rows
        else:
            try:
                with store.open_data(manifest, post.file) as fh:
                    checksum, _ = verify_stream(fh)
            except BackupCorrupt as exc:
                out.append(VerifyResult(what, post.file, False, str(exc)))
                continue
            except Exception as exc:  # zstd frame errors and the like: the file is damaged
                out.append(VerifyResult(what, post.file, False, f"unreadable: {type(exc).__name__}: {exc}"))
                continue
            size = post.rows
        ok = checksum == post.checksum and size == post.rows
        detail = f"{post.rows} digests, {checksum}" if ok else f"checksum mismatch: {checksum} != {post.checksum}"
        out.append(VerifyResult(what, post.file, ok, detail))
    return out


@dataclass
class Held:
    """The rows of one table changed since the deploy, held in a temporary table."""

    table: str
    temp: TableRef | None  # None: nothing held (count 0)
    key: list[str]
    columns: list[str]
    changed: int
    sample: tuple[str, ...]


@dataclass
class Holds:
    """What ``merge`` keeps of one revision's UPDATE-type tables (by snapshot file)."""

    held: dict[str, Held] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # snapshot file -> why there is no post-step state

    def notes(self) -> list[str]:
        out = [f"{h.table}: {h.changed} row(s) changed since the deploy are kept" for h in self.held.values()]
        return out + [f"{file}: {why}" for file, why in self.missing.items()]

    def apply(self, conn: sa.Connection, t: TableSnapshot, outcome: TableOutcome) -> TableOutcome:
        """After the restore of ``t``: give the held rows their current values back and say so."""
        if t.file in self.missing:
            return replace(outcome, detail=f"{outcome.detail}; {self.missing[t.file]}")
        held = self.held.pop(t.file, None)
        if held is None:
            return outcome
        reverted = 0
        if held.temp is not None:
            dst = table_clause(TableRef(t.name, t.schema), held.key + held.columns)
            h = table_clause(held.temp, held.key + held.columns)
            differs = sa.or_(sa.false(), *(dst.c[c].is_distinct_from(h.c[c]) for c in held.columns))
            stmt = sa.update(dst).values({c: h.c[c] for c in held.columns}).where(_key_match(h, dst, held.key),
                                                                                  differs)  # fmt: skip
            reverted = int(conn.execute(stmt).rowcount)
            _drop_temp(conn, held.temp.name)
        detail = outcome.detail
        if held.changed:
            detail += (f"; {held.changed} row(s) changed again since the deploy were kept, not restored "
                       f"(compared with the post-step state; e.g. {', '.join(held.sample)})")  # fmt: skip
        return replace(outcome, updated=max(0, outcome.updated - reverted),
                       overwritten=max(0, outcome.overwritten - reverted), conflicts=outcome.conflicts + reverted,
                       matching=outcome.matching - reverted if outcome.matching >= 0 else outcome.matching,
                       changed_since=held.changed, changed_since_keys=held.sample, detail=detail)  # fmt: skip


def _no_post_note(manifest: Manifest, t: TableSnapshot) -> str:
    if t.post is None:
        return (f"backup {manifest.id} recorded no post-step state of {t.key} (an older backup): rows changed "
                "again since the deploy cannot be told apart and get their old values back too")
    return (f"the post-step state of {t.key} is not usable here (the backup was exported or imported, or "
            "comes from another database): rows changed again since the deploy get their old values back too")


def hold_changed(conn: sa.Connection, store: DatabaseStore | FileStore, manifest: Manifest, mode: str,
                 prefix: str = "alembic_safety_kept") -> Holds:  # fmt: skip
    """Before a revision's downgrade (``merge``): hold the rows of its UPDATE-type tables that
    changed since the deploy, each in a temporary table."""
    holds = Holds()
    if mode != "merge":
        return holds
    for t in manifest.tables:
        if not wants_post(t):
            continue
        post = usable(store, manifest, t, conn.dialect.name)
        if post is None:
            holds.missing[t.file] = _no_post_note(manifest, t)
            continue
        held = _hold_one(conn, store, manifest, t, post, f"{prefix}_{_index(t, manifest):03d}")
        if held is None:
            holds.missing[t.file] = f"{t.key}: the columns of its post-step state are gone; nothing compared"
        else:
            holds.held[t.file] = held
    return holds


def _hold_one(conn: sa.Connection, store: DatabaseStore | FileStore, manifest: Manifest, t: TableSnapshot,
              post: PostState, name: str) -> Held | None:  # fmt: skip
    ref = TableRef(t.name, t.schema)
    insp = sa.inspect(conn)
    if not insp.has_table(t.name, schema=t.schema):
        return None
    live = {c["name"] for c in insp.get_columns(t.name, schema=t.schema)}
    key, cols = list(t.primary_key), list(post.columns)
    if not all(c in live for c in key + cols):
        return None
    lt = table_clause(ref, key + cols).alias("l")
    loaded: str | None = None
    if isinstance(store, DatabaseStore):
        pt = table_clause(TableRef(post.file, store.schema), [*key, DIGEST]).alias("p")
    else:
        loaded = f"{name}_post"
        pt = table_clause(_load_post_file(conn, store, manifest, t, post, loaded), [*key, DIGEST]).alias("p")
    digest = _digest_sql(conn, lt, cols)
    with _stable_text(conn):
        if digest is not None:
            query = sa.select(*(lt.c[c] for c in key + cols)).select_from(lt.join(pt, _key_match(lt, pt, key)))
            temp = _create_temp(conn, name, query.where(digest != pt.c[DIGEST]))
        else:
            empty = sa.select(*(lt.c[c] for c in key + cols)).where(sa.false())
            temp = _create_temp(conn, name, empty)
            _hold_in_python(conn, lt, pt, key, cols, temp)
    if loaded is not None:
        _drop_temp(conn, loaded)
    ht = table_clause(temp, key)
    changed = int(conn.execute(sa.select(sa.func.count()).select_from(ht)).scalar_one())
    sample: tuple[str, ...] = ()
    if changed:
        first = conn.execute(sa.select(*ht.c).order_by(*ht.c).limit(SAMPLE))
        sample = tuple(", ".join(f"{k}={v}" for k, v in zip(key, row, strict=True)) for row in first)
        sample = tuple(f"({s})" if len(key) > 1 else s for s in sample)
    else:
        _drop_temp(conn, name)
    return Held(t.key, temp if changed else None, key, cols, changed, sample)


def _hold_in_python(conn: sa.Connection, lt: Any, pt: Any, key: list[str], cols: list[str], temp: TableRef) -> None:
    """SQLite: compare each row's digest in Python, streaming; hold the changed rows in batches."""
    target = table_clause(temp, key + cols)
    query = sa.select(*(lt.c[c] for c in key + cols), pt.c[DIGEST]).select_from(lt.join(pt, _key_match(lt, pt, key)))
    result = conn.execute(query, execution_options={"yield_per": BATCH})
    batch: list[dict[str, Any]] = []
    try:
        for partition in result.partitions():
            for row in partition:
                values = list(row)
                if _digest_py(values[len(key): -1]) != values[-1]:
                    batch.append(dict(zip(key + cols, values[:-1], strict=True)))
            if len(batch) >= BATCH:
                conn.execute(target.insert(), batch)
                batch = []
    finally:
        result.close()
    if batch:
        conn.execute(target.insert(), batch)


def _load_post_file(conn: sa.Connection, store: FileStore, manifest: Manifest, t: TableSnapshot, post: PostState,
                    name: str) -> TableRef:  # fmt: skip
    """A post-step state file into a temporary table (keys with their recorded types, digest),
    verifying its checksum as it flows."""
    types = {str(c["name"]): str(c["type"]) for c in t.definition.get("columns") or []}
    if not all(k in types for k in t.primary_key):
        raise BackupCorrupt(f"backup {manifest.id}: {t.key} has no recorded type for its primary key")
    key = list(t.primary_key)
    _drop_temp(conn, name)
    columns = [sa.Column(k, DeclaredType(types[k])) for k in key] + [sa.Column(DIGEST, sa.String(32))]
    sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"]).create(conn)
    temp = _temp_ref(conn, name)
    target = table_clause(temp, [*key, DIGEST])
    rows = 0
    with store.open_data(manifest, post.file) as fh:
        reader = VerifyingReader(fh)
        try:
            batch: list[dict[str, Any]] = []
            for line in _lines(reader):
                values = decode_row(line)
                if len(values) != len(key) + 1:
                    raise BackupCorrupt(f"backup {manifest.id}: a row of {post.file} has {len(values)} values")
                batch.append(dict(zip([*key, DIGEST], values, strict=True)))
                if len(batch) >= BATCH:
                    conn.execute(target.insert(), batch)
                    rows += len(batch)
                    batch = []
            if batch:
                conn.execute(target.insert(), batch)
                rows += len(batch)
        except (BackupCorrupt, sa.exc.DBAPIError):
            raise
        except Exception as exc:  # zstd frame errors, bad JSON: the file is damaged
            raise BackupCorrupt(f"backup {manifest.id}: the post-step state of {t.key} is unreadable "
                                f"({type(exc).__name__}: {exc})") from exc
        finally:
            reader.close()
    if reader.checksum() != post.checksum or rows != post.rows:
        raise BackupCorrupt(f"backup {manifest.id}: the post-step state of {t.key} does not match its checksum")
    return temp


def _lines(reader: VerifyingReader) -> Iterator[bytes]:
    import io

    for line in io.BufferedReader(reader, CHUNK):
        if line.strip():
            yield line


def plan_effects(conn: sa.Connection, store: DatabaseStore | FileStore, manifest: Manifest, t: TableSnapshot,
                 mode: str) -> list[tuple[str, str]]:  # fmt: skip
    """``(effect, detail)`` for the plan: what ``merge`` keeps of ``t`` (or why it cannot tell)."""
    if mode != "merge" or not wants_post(t) or not sa.inspect(conn).has_table(t.name, schema=t.schema):
        return []
    post = usable(store, manifest, t, conn.dialect.name)
    if post is None:
        return [("lost", _no_post_note(manifest, t) + " (the pre-rollback backup keeps them)")]
    name = f"alembic_safety_plan_{_index(t, manifest):03d}"
    try:
        with _savepoint(conn):
            held = _hold_one(conn, store, manifest, t, post, name)
    except BackupCorrupt as exc:
        for temp in (name, f"{name}_post"):
            _drop_temp(conn, temp)
        return [("lost", f"{exc.message}: the rollback refuses this backup")]
    if held is None:
        return [("lost", f"{t.key}: the columns of its post-step state are gone; nothing compared")]
    if held.temp is not None:
        _drop_temp(conn, held.temp.name)
    if not held.changed:
        return [("restored", "no row the revision updated was changed again since the deploy (compared with the "
                 "post-step state): every one gets its old values back")]  # fmt: skip
    return [("kept", f"{held.changed} row(s) the revision updated were changed again since the deploy (compared "
             f"with the post-step state): they keep their current values, e.g. {', '.join(held.sample)}; the "
             "others get their old values back")]  # fmt: skip
