"""Encryption at rest of the files store (``encryption_key_env``): the stream format
(alembic_safety/snapshot/crypto.py) and real `alembic` / `alembic-safety` runs on SQLite."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.errors import BackupCorrupt, ConfigError, SafetyError
from alembic_safety.snapshot import crypto
from alembic_safety.snapshot.crypto import CHUNK, TAG, Cipher, cipher_for_backup, cipher_from_env, generate_key

from .conftest import copy_example
from .helpers import _env

SENTINEL = "S3NTINEL-plaintext-7f3a9c"
KEY_ENV = "AS_TEST_BACKUP_KEY"


def _cipher(key: str | None = None) -> Cipher:
    c = cipher_from_env(KEY_ENV, {KEY_ENV: key or generate_key()})
    assert c is not None
    return c


def _encrypt(c: Cipher, data: bytes, label: str = "b/001.jsonl.zst", pieces: int = 7) -> bytes:
    out = io.BytesIO()
    w = c.writer(out, label)  # type: ignore[arg-type]
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        w.write(data[i:i + step])
    w.seal()
    assert w.tell() == len(out.getvalue())
    return out.getvalue()


def _decrypt(c: Cipher, blob: bytes, label: str = "b/001.jsonl.zst") -> bytes:
    r = c.reader(io.BytesIO(blob), label)  # type: ignore[arg-type]
    return r.read()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    c = _cipher()
    data = bytes(i % 251 for i in range(size))
    blob = _encrypt(c, data)
    assert _decrypt(c, blob) == data
    header = len(crypto.MAGIC) + crypto.SALT
    chunks = size // CHUNK + (1 if size % CHUNK else 0) or 1
    if size and size % CHUNK == 0:
        chunks = size // CHUNK  # the last chunk is full
    assert len(blob) == header + size + chunks * TAG


def test_chunks_cannot_be_dropped_reordered_swapped_or_altered() -> None:
    c = _cipher()
    data = bytes(range(256)) * (3 * CHUNK // 256)  # exactly three full chunks
    blob = _encrypt(c, data)
    header = len(crypto.MAGIC) + crypto.SALT
    size = CHUNK + TAG
    body = [blob[header + i * size: header + (i + 1) * size] for i in range(3)]
    assert b"".join(body) == blob[header:]
    variants = {
        "truncated at a chunk boundary": blob[: header + 2 * size],
        "last chunk dropped mid-way": blob[:-5],
        "chunks reordered": blob[:header] + body[1] + body[0] + body[2],
        "chunk duplicated": blob[:header] + body[0] + body[0] + body[1] + body[2],
        "one bit flipped": blob[:header + 100] + bytes([blob[header + 100] ^ 1]) + blob[header + 101:],
        "extra bytes appended": blob + b"\x00" * 20,
        "header only": blob[:header],
    }
    for what, bad in variants.items():
        with pytest.raises(BackupCorrupt):
            _decrypt(c, bad)
        assert what
    with pytest.raises(BackupCorrupt):  # a file of another backup, or another table, does not open
        _decrypt(c, blob, label="b/002.jsonl.zst")
    with pytest.raises(BackupCorrupt):  # another key
        _decrypt(_cipher(), blob)


def test_memory_does_not_grow_with_the_stream() -> None:
    c = _cipher()
    block = bytes(range(256)) * 4096  # 1 MiB
    total = 48

    class Sink(io.RawIOBase):
        def __init__(self) -> None:
            self.n = 0
            self.kept = io.BytesIO()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.n += len(b)
            return len(b)

    sink = Sink()
    tracemalloc.start()
    w = c.writer(sink, "x")  # type: ignore[arg-type]
    for _ in range(total):
        w.write(block)
    w.seal()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.n > total * len(block)
    assert peak < 6 * len(block), peak  # a couple of chunks and the caller's block, not 48 MiB

    class Source(io.RawIOBase):
        """Re-encrypts on the fly: an endless-looking file read in bounded memory."""

        def __init__(self, blob: bytes) -> None:
            self.f = io.BytesIO(blob)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            data = self.f.read(len(b))
            b[: len(data)] = data
            return len(data)

    blob = _encrypt(c, block * 16, label="y")
    tracemalloc.start()
    r = c.reader(Source(blob), "y")  # type: ignore[arg-type]
    buf = bytearray(1 << 16)
    got = 0
    while n := r.readinto(buf):
        got += n
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got == 16 * len(block)
    assert peak < len(block), peak  # a few chunks, not the 16 MiB stream


def test_keys_are_checked_and_never_shown() -> None:
    key = generate_key()
    with pytest.raises(ConfigError) as exc:
        cipher_from_env(KEY_ENV, {})
    assert KEY_ENV in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        cipher_from_env(KEY_ENV, {KEY_ENV: "too-short"})
    assert "too-short" not in str(exc.value) and "openssl rand -base64 32" in str(exc.value)
    c = _cipher(key)
    assert key not in repr(c) and c.key_id in repr(c)
    assert _cipher(key.replace("+", "-").replace("/", "_")).key_id == c.key_id  # URL-safe alphabet too
    record = c.describe()
    assert key not in json.dumps(record)
    with pytest.raises(SafetyError, match="another key"):
        cipher_for_backup("bk", record, _cipher())
    with pytest.raises(SafetyError, match=f"set the environment variable {KEY_ENV}"):
        cipher_for_backup("bk", record, None, environ={})
    assert cipher_for_backup("bk", record, None, environ={KEY_ENV: key}).key_id == c.key_id


# -- end to end, SQLite, real processes ----------------------------------------------------------
def run(ini: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = _env()
    env.pop(KEY_ENV, None)
    if key is not None:
        env[KEY_ENV] = key
    if args[:1] == ("alembic",):
        cmd = [sys.executable, "-m", "alembic", "-c", str(ini), *args[1:]]
    else:
        cmd = [sys.executable, "-m", "alembic_safety", "-c", str(ini), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)


def _project(tmp_path: Path, name: str, encrypted: bool) -> tuple[Path, sa.Engine]:
    url = sa.URL.create("sqlite", database=str(tmp_path / f"{name}.db"))
    settings = {"encryption_key_env": KEY_ENV} if encrypted else {}
    ini = copy_example("shop", tmp_path / name, url, **settings)
    return ini, sa.create_engine(url)


def _upgrade_with_sentinel(ini: Path, engine: sa.Engine, key: str | None) -> str:
    proc = run(ini, "alembic", "upgrade", "0001", key=key)
    assert proc.returncode == 0, proc.stderr
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE notes SET body = :b WHERE id = 3"), {"b": SENTINEL})
    proc = run(ini, "alembic", "upgrade", "0002", key=key)
    assert proc.returncode == 0, proc.stderr
    backups = json.loads(run(ini, "backups", "--format", "json", key=key).stdout)
    [backup] = [b for b in backups if b["revision_to"] == "0002"]
    return str(backup["id"])


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".zst"))


def _notes(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT id, body FROM notes ORDER BY id"))]


def _confirm(ini: Path, backup_id: str, key: str | None) -> subprocess.CompletedProcess[str]:
    plan = run(ini, "rollback", backup_id, "--dry-run", "--format", "json", key=key)
    if plan.returncode != 0:
        return plan
    code = json.loads(plan.stdout)["confirmation_code"]
    return run(ini, "rollback", backup_id, "--confirm", code, "--format", "json", key=key)


def test_encrypted_backup_hides_rows_and_round_trips(tmp_path: Path) -> None:
    key = generate_key()
    # the control: the same backup without encryption holds the value in clear in its files
    plain_ini, plain_engine = _project(tmp_path, "plain", encrypted=False)
    plain_id = _upgrade_with_sentinel(plain_ini, plain_engine, None)
    plain_files = _data_files(tmp_path / "plain" / "backups" / plain_id)
    assert any(SENTINEL.encode() in p.read_bytes() for p in plain_files)
    plain_engine.dispose()

    ini, engine = _project(tmp_path, "enc", encrypted=True)
    before = None
    proc = run(ini, "alembic", "upgrade", "0001", key=key)
    assert proc.returncode == 0, proc.stderr
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE notes SET body = :b WHERE id = 3"), {"b": SENTINEL})
    before = _notes(engine)
    proc = run(ini, "alembic", "upgrade", "0002", key=key)
    assert proc.returncode == 0, proc.stderr
    [backup] = [b for b in json.loads(run(ini, "backups", "--format", "json", key=key).stdout)
                if b["revision_to"] == "0002"]  # fmt: skip
    backup_id = str(backup["id"])
    folder = tmp_path / "enc" / "backups" / backup_id
    files = _data_files(folder)
    assert files
    for p in files:
        blob = p.read_bytes()
        assert blob.startswith(crypto.MAGIC)
        assert SENTINEL.encode() not in blob and b"note 1 " not in blob
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["encryption"]["scheme"] == crypto.SCHEME and manifest["encryption"]["key_env"] == KEY_ENV
    assert key not in (folder / "manifest.json").read_text()
    assert manifest["tables"][0]["checksum"].startswith("sha256:")  # over the plaintext, as without encryption

    listed = run(ini, "backups", key=None)  # listing needs no key
    assert listed.returncode == 0 and backup_id in listed.stdout
    verify = run(ini, "show", backup_id, "--verify", "--format", "json", key=key)
    assert verify.returncode == 0, verify.stderr
    assert all(v["ok"] for v in json.loads(verify.stdout)["verify"])

    result = _confirm(ini, backup_id, key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert _notes(engine) == before and (3, SENTINEL) in before
    # the pre-rollback backup is encrypted too
    pre = [b for b in json.loads(run(ini, "backups", "--format", "json").stdout) if b["kind"] == "pre-rollback"]
    assert pre
    for p in _data_files(tmp_path / "enc" / "backups" / pre[0]["id"]):
        assert p.read_bytes().startswith(crypto.MAGIC)
    engine.dispose()


def test_missing_wrong_key_and_tampering_are_refused(tmp_path: Path) -> None:
    key = generate_key()
    ini, engine = _project(tmp_path, "enc", encrypted=True)
    backup_id = _upgrade_with_sentinel(ini, engine, key)
    state = _notes(engine) if sa.inspect(engine).has_table("notes") else None
    folder = tmp_path / "enc" / "backups" / backup_id

    def refused(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
        assert proc.returncode == code, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        for w in words:
            assert w in lines[0], lines[0]
        assert key not in proc.stdout + proc.stderr

    # no key: the setting names a variable that is not set
    refused(run(ini, "show", backup_id, "--verify"), 2, KEY_ENV)
    refused(run(ini, "rollback", backup_id, "--dry-run"), 2, KEY_ENV)
    # a wrong key
    other = generate_key()
    refused(run(ini, "show", backup_id, "--verify", key=other), 2, "another key")
    refused(_confirm(ini, backup_id, other), 2, "another key")
    # a damaged data file: one byte of ciphertext changed
    victim = _data_files(folder)[0]
    original = victim.read_bytes()
    victim.write_bytes(original[:-40] + bytes([original[-40] ^ 0x20]) + original[-39:])
    bad = run(ini, "show", backup_id, "--verify", "--format", "json", key=key)
    assert bad.returncode == 1
    assert any(not v["ok"] and "authentication" in v["detail"] for v in json.loads(bad.stdout)["verify"])
    refused(_confirm(ini, backup_id, key), 2, "failed verification")
    victim.write_bytes(original)
    # a hand-edited manifest (another schema for a table): refused, whatever its checksums say
    manifest_path = folder / "manifest.json"
    text = manifest_path.read_text()
    data = json.loads(text)
    data["tables"][0]["rows"] = data["tables"][0]["rows"] + 1
    manifest_path.write_text(json.dumps(data))
    bad = run(ini, "show", backup_id, "--verify", "--format", "json", key=key)
    assert bad.returncode == 1
    assert all(not v["ok"] and "manifest was changed" in v["detail"] for v in json.loads(bad.stdout)["verify"])
    refused(_confirm(ini, backup_id, key), 2, "manifest was changed")
    manifest_path.write_text(text)
    assert run(ini, "show", backup_id, "--verify", key=key).returncode == 0
    assert (_notes(engine) if sa.inspect(engine).has_table("notes") else None) == state  # nothing changed
    engine.dispose()


def test_setting_must_name_a_variable(tmp_path: Path) -> None:
    url = sa.URL.create("sqlite", database=str(tmp_path / "x.db"))
    key = generate_key()
    ini = copy_example("shop", tmp_path / "p", url, encryption_key_env=key)  # the key itself, by mistake
    proc = run(ini, "backups")
    assert proc.returncode == 2 and "name of an environment variable" in proc.stderr
    assert key not in proc.stderr + proc.stdout
