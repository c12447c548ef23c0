"""Settings, the files store, the manifest and the row codec (no database)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import stat
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alembic_safety.audit import AuditLog, redact_text, redact_url
from alembic_safety.config import ini_section_text, load_config
from alembic_safety.errors import BackupCorrupt, BackupNotFound, ConfigError
from alembic_safety.snapshot.codec import decode_row, encode_row
from alembic_safety.snapshot.manifest import Manifest, TableSnapshot
from alembic_safety.snapshot.store import FileStore, new_backup_id


def test_defaults_and_precedence(tmp_path: Path) -> None:
    cfg = load_config({}, here=tmp_path, environ={})
    assert cfg.backup_dir == tmp_path / "backups" and cfg.snapshot == "at-risk" and cfg.keep == 10
    assert cfg.max_snapshot_bytes is None and cfg.lock_timeout == 10.0
    cfg = load_config(
        {"keep": "3", "snapshot": "touched", "max_snapshot_bytes": "2GiB", "lock_timeout": "500ms"},
        here=tmp_path,
        x_args={"keep": "5", "unrelated": "x"},
        environ={"ALEMBIC_SAFETY_KEEP": "4", "ALEMBIC_SAFETY_SNAPSHOT": "all"},
    )
    assert cfg.keep == 5 and cfg.snapshot == "all"  # -x beats environment beats alembic.ini
    assert cfg.max_snapshot_bytes == 2 * 1024**3 and cfg.lock_timeout == 0.5
    assert cfg.sources["keep"] == "-x keep" and cfg.sources["snapshot"].startswith("environment")


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [("keep", "-1", "keep"), ("snapshot", "some", "at-risk | touched"), ("max_snapshot_bytes", "lots", "size"),
     ("lock_timeout", "soon", "duration"), ("enabled", "maybe", "boolean"), ("store", "s3", "files"),
     ("compression_level", "99", "1..19")],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, key: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({key: value}, here=tmp_path, environ={})
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert "alembic.ini" in str(info.value)


def test_unknown_ini_key_is_a_typo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'kep'"):
        load_config({"kep": "3"}, here=tmp_path, environ={})


def test_ini_section_text_is_all_commented_defaults() -> None:
    import configparser

    text = ini_section_text()
    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert dict(parser["alembic_safety"]) == {}
    assert "# snapshot = at-risk" in text and "# keep = 10" in text


def test_passwords_never_shown() -> None:
    assert redact_url("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    assert "s3cret" not in redact_text("could not connect to mysql+pymysql://root:s3cret@10.0.0.1/x: refused")


def test_audit_log_appends_and_survives_a_torn_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write("a", url="postgresql://u:pw@h/d")
    with (tmp_path / "audit.jsonl").open("a") as fh:
        fh.write('{"ts": "x", "event": "torn"')  # a writer killed mid-line
    log.write("b")
    events = [e["event"] for e in log.read()]
    assert events == ["a", "b"]
    assert "pw" not in (tmp_path / "audit.jsonl").read_text()
    assert stat.S_IMODE(os.stat(tmp_path / "audit.jsonl").st_mode) == 0o600


def test_routine_events_are_written_at_once_synced_later_and_not_mirrored(tmp_path: Path) -> None:
    from alembic_safety import audit

    mirrored: list[str] = []
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, lambda record: mirrored.append(record["event"]))
    log.write("revision_applied", routine=True, revision="0001")
    assert [e["event"] for e in AuditLog(path).read()] == ["revision_applied"]  # on disk for any reader now
    assert mirrored == [] and path in audit._UNSYNCED
    log.write("backup_started", backup_id="x")  # an event that matters: fsynced, with the routine line before it
    assert mirrored == ["backup_started"] and path not in audit._UNSYNCED
    log.write("revision_applied", routine=True, revision="0002")
    assert path in audit._UNSYNCED
    audit.sync_routine_events()  # what the process does at exit
    assert path not in audit._UNSYNCED
    assert [e.get("revision") for e in AuditLog(path).read()] == ["0001", None, "0002"]


def test_backup_ids_sort_by_time_and_are_safe() -> None:
    a = new_backup_id("abc123", "Drop users; DROP TABLE x --", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    b = new_backup_id(None, "", dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=dt.timezone.utc))
    assert a.startswith("20260101T000000000000Z-abc123-Drop_users_DROP_TABLE_x")
    assert b == "20260101T000000000001Z" and a < b
    assert all(c.isalnum() or c in "_-" for c in a)


def _manifest(backup_id: str, file: str = "001.jsonl.zst") -> Manifest:
    table = TableSnapshot("t", None, None, None, ("id",), 0, 0, 0, "sha256:x", file, "jsonl")
    return Manifest(backup_id, "manual", "", "2026-01-01T00:00:00Z", None, None, None, "sqlite", "", "files",
                    "0", "sha256", "zstd", (table,))  # fmt: skip


def test_store_lists_only_complete_backups_with_private_permissions(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "b")
    done = store.begin(new_backup_id("r1", "done"))
    name, fh = done.open_table(1, "jsonl")
    fh.write(b"data")
    done.commit(_manifest(done.backup_id, name))
    pending = store.begin(new_backup_id("r2", "pending"))
    assert [m.id for m in store.list()] == [done.backup_id]
    [inc] = store.incomplete()
    assert inc.id == pending.backup_id and not inc.removable and "in progress" in inc.reason
    folder = tmp_path / "b" / done.backup_id
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    # a writer that died leaves a removable folder
    marker = tmp_path / "b" / pending.backup_id / ".inprogress"
    data = json.loads(marker.read_text())
    data["pid"] = 2**22 + 12345  # no such process
    marker.write_text(json.dumps(data))
    [inc] = store.incomplete()
    assert inc.removable and "interrupted" in inc.reason


def test_resolve_prefix_and_refuse_paths(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    w = store.begin(new_backup_id("r1", "x"))
    w.commit(_manifest(w.backup_id))
    assert store.get(w.backup_id[:15]).id == w.backup_id
    for bad in ("../../etc/passwd", "/etc", ".hidden", "", "nope"):
        with pytest.raises(BackupNotFound):
            store.get(bad)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [(lambda t: t[:-5], "not valid JSON"),
     (lambda t: t.replace('"001.jsonl.zst"', '"../../etc/passwd"'), "outside the backup"),
     (lambda t: t.replace('"kind": "manual"', '"kind": "evil"'), "bad id or kind"),
     (lambda t: t.replace('"rows": 0', '"rows": "many"'), "bad field")],
)
def test_hand_edited_manifests_are_refused(tmp_path: Path, edit, fragment: str) -> None:  # type: ignore[no-untyped-def]
    store = FileStore(tmp_path)
    w = store.begin(new_backup_id("r1", "x"))
    w.commit(_manifest(w.backup_id))
    path = tmp_path / w.backup_id / "manifest.json"
    path.write_text(edit(path.read_text()))
    with pytest.raises(BackupCorrupt, match=fragment):
        store.get(w.backup_id)
    assert store.list() == []  # never listed as usable


values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(), st.binary(), st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())), st.dates(), st.times(), st.timedeltas(),
    st.uuids(), st.dictionaries(st.text(), st.integers()), st.lists(st.integers() | st.none()),
)


@given(st.lists(values, max_size=8))
def test_codec_round_trips_every_driver_value(row: list[object]) -> None:
    back = decode_row(encode_row(row))
    assert len(back) == len(row)
    for a, b in zip(row, back, strict=True):
        if isinstance(a, float) and math.isnan(a):
            assert isinstance(b, float) and math.isnan(b)
        else:
            assert (a == b and type(a) is type(b)) or (isinstance(a, (bytes, list)) and a == b)


def test_codec_examples() -> None:
    row = [Decimal("1.10"), b"\x00", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), uuid.UUID(int=1), {"$d": 1}]
    line = encode_row(row)
    assert line.endswith(b"\n") and b"\n" not in line[:-1]
    assert decode_row(line) == row
