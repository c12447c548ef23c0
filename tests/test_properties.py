"""Property tests (hypothesis): (a) any identifier a database accepts — quotes, semicolons,
spaces, unicode, reserved words, ``x"; DROP TABLE y; --`` — survives a snapshot and a restore
through the product's own SQL-building path (take_backup → FileStore → restore_table) on SQLite,
and no other table changes; (b) any mutation of a real manifest either loads into a valid
Manifest whose files all lie inside the backup folder, or is refused with a SafetyError —
never another exception."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alembic_safety.config import SafetyConfig
from alembic_safety.errors import SafetyError
from alembic_safety.snapshot.backup import BackupRequest, take_backup
from alembic_safety.snapshot.manifest import Manifest, valid_backup_id
from alembic_safety.snapshot.policy import SnapshotRequest
from alembic_safety.snapshot.restore import restore_table
from alembic_safety.snapshot.store import FileStore, new_backup_id
from alembic_safety.sqlinfo import TableRef

BYSTANDER = "y"
HOSTILE = ['x"; DROP TABLE y; --', "select", "order", "user", "Mixed Case", "ünï \"cödé\"", "a'b", "[y]", "`y`",
           "--", "/* y */", "%s", ":name", "?", " lead", "trail ", "日本語", "😀"]  # fmt: skip


def _sqlite_ok(name: str) -> bool:
    """What SQLite accepts as a quoted table or column name here: no NUL or lone surrogate, not
    its reserved ``sqlite_`` prefix, and no clash (ASCII case-insensitive) with the other names."""
    folded = name.lower()
    return (bool(name.strip()) and "\x00" not in name and not folded.startswith("sqlite_")
            and folded not in (BYSTANDER, "id"))  # fmt: skip


identifiers = (st.sampled_from(HOSTILE)
               | st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                         min_size=1, max_size=30)).filter(_sqlite_ok)  # fmt: skip
values = st.none() | st.text(max_size=20) | st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _tables(conn: sa.Connection) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for name in sa.inspect(conn).get_table_names():
        table = sa.Table(name, sa.MetaData(), autoload_with=conn)
        out[name] = sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_name=identifiers, column_name=identifiers, cells=st.lists(values, min_size=0, max_size=5))
def test_any_identifier_round_trips_through_snapshot_and_restore(table_name: str, column_name: str,
                                                                   cells: list[Any]) -> None:  # fmt: skip
    if table_name.lower() == column_name.lower():
        column_name += "_c"
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/t.db")
        md = sa.MetaData()
        table = sa.Table(table_name, md, sa.Column("id", sa.Integer, primary_key=True), sa.Column(column_name, sa.Text))
        bystander = sa.Table(BYSTANDER, md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Text))
        rows = [{"id": i, column_name: None if v is None else str(v)} for i, v in enumerate(cells, start=1)]
        with engine.begin() as conn:
            md.create_all(conn)
            if rows:
                conn.execute(table.insert(), rows)
            conn.execute(bystander.insert(), [{"id": 1, "v": "untouched"}])
            before = _tables(conn)
        config = SafetyConfig(backup_dir=Path(tmp) / "backups")
        ref = TableRef(table_name)
        with engine.begin() as conn:
            manifest = take_backup(conn, BackupRequest((SnapshotRequest(ref, None, None, ("test",)),), "manual"),
                                   config, db=None)  # fmt: skip
        assert manifest is not None
        [snap] = manifest.tables
        assert (snap.name, snap.rows, snap.stored_columns) == (table_name, len(rows), ("id", column_name))
        with engine.begin() as conn:
            conn.execute(table.delete())
            restored = restore_table(conn, FileStore(config.backup_dir), manifest, snap)
        assert restored == len(rows)
        with engine.connect() as conn:
            assert _tables(conn) == before  # the data is back, the other table and the table list unchanged
        engine.dispose()


# -- manifest parsing ------------------------------------------------------------------------------
def _real_manifest() -> dict[str, Any]:
    """A manifest as the files store writes it (one table with a post-step state)."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/t.db")
        md = sa.MetaData()
        t = sa.Table("t", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Text))
        with engine.begin() as conn:
            md.create_all(conn)
            conn.execute(t.insert(), [{"id": 1, "v": "a"}])
            request = BackupRequest((SnapshotRequest(TableRef("t"), ("id", "v"), None, ("x",)),), "manual")
            manifest = take_backup(conn, request, SafetyConfig(backup_dir=Path(tmp) / "b"), db=None)
        engine.dispose()
    assert manifest is not None
    data: dict[str, Any] = json.loads(manifest.to_json())
    data["tables"][0]["post"] = {"file": "001.post-digest.zst", "columns": ["v"], "method": "md5-row", "rows": 1,
                                 "checksum": "sha256:0", "bytes": 3}  # fmt: skip
    return data


REAL = _real_manifest()
json_leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
               | st.sampled_from(["../../etc/passwd", "/etc/passwd", "..", ".", "001.jsonl.zst/..", "001.jsonl.zst",
                                  "b20260101t000000000000z_001", "manifest.json", "jsonl", "table", "moved", "database",
                                  "files", "\x00", "C:\\x", "x/../001.jsonl.zst", "001.jsonl.zst\n"]))  # fmt: skip
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)  # fmt: skip


def _paths(data: Any) -> list[list[str | int]]:
    """Every path to a value in a JSON document."""
    out: list[list[str | int]] = [[]]
    if isinstance(data, dict):
        for k, v in data.items():
            out += [[k, *p] for p in _paths(v)]
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += [[i, *p] for p in _paths(v)]
    return out


PATHS = _paths(REAL)


@st.composite
def mutated_manifests(draw: st.DrawFn) -> str:
    data: Any = copy.deepcopy(REAL)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(PATHS))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        parent: Any = data
        for step in path[:-1]:
            if not isinstance(parent, (dict, list)):
                break
            try:
                parent = cast(Any, parent)[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if not path:
                data = draw(json_values)
                continue
            key = path[-1]
            try:
                if action == "replace":
                    parent[key] = draw(json_values)
                elif action == "delete":
                    del parent[key]
                elif isinstance(parent, dict):
                    parent[draw(st.text(max_size=8))] = draw(json_values)
                elif isinstance(parent, list):
                    parent.append(draw(json_values))
            except (KeyError, IndexError, TypeError):
                pass
    text = json.dumps(data, allow_nan=True)
    if draw(st.booleans()):  # sometimes damage the text itself
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.text(max_size=4)) + text[cut + draw(st.integers(min_value=0, max_value=3)):]
    return text


def _agrees(loaded: Any, given: Any) -> bool:
    """Every value the document gives is the loaded value (defaults may fill what it leaves out)."""
    if isinstance(loaded, dict) and isinstance(given, dict):
        return all(_agrees(loaded[k], v) for k, v in given.items() if k in loaded)
    if isinstance(loaded, list) and isinstance(given, list) and len(loaded) == len(given):
        return all(_agrees(a, b) for a, b in zip(loaded, given, strict=True))
    return bool(loaded == given and type(loaded) is type(given))


@settings(max_examples=300, deadline=None)
@given(text=mutated_manifests())
def test_any_manifest_loads_valid_or_is_refused(text: str) -> None:
    folder = Path("/backups") / REAL["id"]
    try:
        manifest = Manifest.from_json(text, where="backup x")
    except SafetyError:
        return
    assert isinstance(manifest, Manifest) and isinstance(manifest.tables, tuple)
    for t in manifest.tables:
        assert isinstance(t.name, str) and (t.schema is None or isinstance(t.schema, str))
        assert all(isinstance(c, str) for c in (*t.stored_columns, *t.primary_key, *(t.columns or ())))
        assert isinstance(t.rows, int) and t.rows >= -1 and t.bytes >= 0 and t.raw_bytes >= 0
        assert isinstance(t.definition, dict)
        for name in [t.file] + ([t.post.file] if t.post is not None else []):
            resolved = (folder / name).resolve()
            assert resolved.parent == folder and resolved.name == name, name  # a plain name inside the folder
    assert manifest.store in ("files", "database") and manifest.direction in (None, "upgrade", "downgrade")
    assert all(t.format in (("jsonl", "pg-copy-binary") if manifest.store == "files" else ("table", "moved"))
               for t in manifest.tables)  # fmt: skip
    # what loads is exactly what the document says (nothing coerced: a list is not a name) ...
    given_doc = json.loads(text)
    assert _agrees(json.loads(manifest.to_json()), {k: v for k, v in given_doc.items() if k != "total_bytes"})
    # ... and survives its own round trip
    assert Manifest.from_json(manifest.to_json(), where="round trip") == manifest


def test_the_real_manifest_loads_and_round_trips() -> None:
    manifest = Manifest.from_json(json.dumps(REAL), where="real")
    assert manifest.tables[0].post is not None and manifest.tables[0].file == "001.jsonl.zst"
    assert json.loads(manifest.to_json())["tables"][0]["stored_columns"] == ["id", "v"]


def test_a_null_definition_is_refused_not_read_as_none_recorded() -> None:
    """Found by the property above: ``"definition": null`` loaded as ``{}`` (what was written is
    not what loads).  Left out, it means no definition was recorded; null is refused."""
    doc = json.loads(json.dumps(REAL))
    doc["tables"][0]["definition"] = None
    with pytest.raises(SafetyError, match="definition must be an object"):
        Manifest.from_json(json.dumps(doc), where="edited")
    del doc["tables"][0]["definition"]
    assert Manifest.from_json(json.dumps(doc), where="left out").tables[0].definition == {}


@given(revision=st.text(max_size=40) | st.none(), name=st.text(max_size=80))
def test_new_backup_ids_from_any_name_are_plain_folder_names(revision: str | None, name: str) -> None:
    backup_id = new_backup_id(revision, name)
    assert valid_backup_id(backup_id)
    assert (Path("/backups") / backup_id).resolve() == Path("/backups") / backup_id
