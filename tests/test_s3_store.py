"""Backups in object storage (``backup_dir = s3://bucket/prefix``), against a real S3-compatible
server: moto's server, started by these tests as a separate process on a free local port.

The `alembic` and `alembic-safety` processes reach it through the standard AWS variables
(``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID`` ...), exactly as they would reach AWS or MinIO."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alembic_safety.config import load_config
from alembic_safety.errors import ConfigError
from alembic_safety.project import list_backups, load_project, prune

from .conftest import copy_example
from .helpers import alembic, backups_json, safety
from .test_rollback import data, roll_back, version, write_after_deploy

SECRET = "s3cr3t-never-printed-Zq9"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    endpoint: str
    log: Path  # the server's request log: one line per request, in the order they were served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "requests.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"moto's server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield Server(f"http://127.0.0.1:{port}", log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass(frozen=True)
class Bucket:
    name: str
    url: str  # s3://<bucket>/<prefix>
    prefix: str  # <bucket>/<prefix>, as s3fs names paths
    fs: Any
    server: Server

    def objects(self) -> dict[str, list[str]]:
        """{backup id: sorted file names} in the bucket."""
        out: dict[str, list[str]] = {}
        for path in self.fs.find(self.prefix, refresh=True):
            backup_id, name = str(path)[len(self.prefix) + 1:].split("/", 1)
            out.setdefault(backup_id, []).append(name)
        return {k: sorted(v) for k, v in out.items()}

    def requests(self, backup_id: str) -> list[tuple[str, str]]:
        """(method, file name) of every write to ``backup_id`` the server served, in order."""
        where = re.escape(f"/{self.prefix}/{backup_id}/")
        pattern = re.compile(rf'"(?:\x1b\[[0-9;]*m)*(PUT|POST|DELETE) {where}([^ ?]+)')  # werkzeug colours some
        return [(m.group(1), m.group(2)) for m in pattern.finditer(self.server.log.read_text())]


def _aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def bucket(server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    import s3fs

    _aws_env(monkeypatch, server.endpoint, tmp_path)
    name = f"as-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
    fs.mkdir(name)
    return Bucket(name, f"s3://{name}/team/backups", f"{name}/team/backups", fs, server)


def _shop(url: sa.URL, tmp_path: Path, bucket: Bucket, **settings: str) -> Path:
    store = {"store": "files"} if url.get_backend_name() != "sqlite" else {}  # auto is the database store there
    ini = copy_example("shop", tmp_path / "shop", url, **store, **settings)
    text = ini.read_text()
    assert "backup_dir = %(here)s/backups\n" in text
    ini.write_text(text.replace("backup_dir = %(here)s/backups\n", f"backup_dir = {bucket.url}\n"))
    return ini


def test_sqlite_backup_in_the_bucket_lists_verifies_rolls_back_and_prunes(bucket: Bucket, sqlite_url: sa.URL,
                                                                          tmp_path: Path, engine_for: Any) -> None:
    cache = tmp_path / "work"
    ini = _shop(sqlite_url, tmp_path, bucket, backup_cache_dir=str(cache))
    engine = engine_for(sqlite_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    alembic(ini, "upgrade", "0002")
    write_after_deploy(engine)

    [backup_id] = bucket.objects()
    manifest = json.loads(bucket.fs.cat(f"{bucket.prefix}/{backup_id}/manifest.json"))
    files = sorted(t["file"] for t in manifest["tables"])
    posts = sorted(t["post"]["file"] for t in manifest["tables"] if t.get("post"))
    assert len(files) == 3 and len(posts) == 1  # the UPDATE's post-step state, recorded after the step
    assert bucket.objects()[backup_id] == sorted([*files, *posts, "manifest.json"])  # the marker is gone
    # the marker first, every data file, the manifest, the marker removed; then the post-step
    # state's file and the manifest naming it
    writes = bucket.requests(backup_id)
    assert writes[0] == ("PUT", ".inprogress"), writes
    first = writes.index(("PUT", "manifest.json"))
    assert sorted(n for _, n in writes[1:first]) == files and all(m == "PUT" for m, _ in writes[1:first]), writes
    assert writes[first:] == [("PUT", "manifest.json"), ("DELETE", ".inprogress"), ("PUT", posts[0]),
                              ("PUT", "manifest.json")], writes  # fmt: skip
    assert not (tmp_path / "shop" / "backups").exists(), "nothing is written beside alembic.ini"
    assert (cache / "audit.jsonl").is_file(), "the audit log stays in the working folder"

    # a new machine: an empty working folder; everything comes from the bucket
    shutil.rmtree(cache)
    safety(ini, "show", backup_id, "--verify")  # every data file downloaded, every checksum checked
    result = roll_back(ini, backup_id)
    assert result["ok"] is True and version(engine) == "0001"
    after = data(engine)
    assert after["notes"] == before["notes"]
    assert [r for r in after["orders"] if r[0] != 5001] == before["orders"]

    # the rollback's own backup went to the bucket too; prune removes the older one's objects
    listed = backups_json(ini)
    assert [(b["kind"], b["complete"]) for b in listed] == [("pre-rollback", True), ("pre-revision", True)]
    assert listed[1]["id"] == backup_id
    assert set(bucket.objects()) == {b["id"] for b in listed}
    proc = safety(ini, "prune", "--keep", "1")
    assert backup_id in proc.stdout
    assert set(bucket.objects()) == {listed[0]["id"]}
    assert not (cache / backup_id).exists()


def test_postgresql_encrypted_backup_in_the_bucket_rolls_back(bucket: Bucket, pg_url: sa.URL, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              engine_for: Any) -> None:  # fmt: skip
    """The files store on PostgreSQL (binary COPY), encrypted, read back on a machine that has
    only the bucket (the default working folder, under XDG_CACHE_HOME, wiped)."""
    monkeypatch.setenv("SHOP_BACKUP_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    ini = _shop(pg_url, tmp_path, bucket, encryption_key_env="SHOP_BACKUP_KEY")
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = data(engine)
    alembic(ini, "upgrade", "0002")
    [backup_id] = bucket.objects()
    manifest = json.loads(bucket.fs.cat(f"{bucket.prefix}/{backup_id}/manifest.json"))
    assert manifest["encryption"] and {t["format"] for t in manifest["tables"]} == {"pg-copy-binary"}
    notes = next(t["file"] for t in manifest["tables"] if t["name"] == "notes")
    assert not bucket.fs.cat(f"{bucket.prefix}/{backup_id}/{notes}").startswith(b"\x28\xb5\x2f\xfd"), \
        "the bucket holds ciphertext, not zstd"  # fmt: skip

    shutil.rmtree(Path(os.environ["XDG_CACHE_HOME"]))
    result = roll_back(ini, backup_id)
    assert result["ok"] is True and version(engine) == "0001"
    assert data(engine)["notes"] == before["notes"]
    assert [r for r in data(engine)["orders"] if r[0] < 5000] == before["orders"]


def test_objects_without_a_manifest_are_never_usable(bucket: Bucket, sqlite_url: sa.URL, tmp_path: Path) -> None:
    ini = _shop(sqlite_url, tmp_path, bucket)
    alembic(ini, "upgrade", "0002")
    [good] = bucket.objects()
    # an upload killed before its manifest: data and the writer's marker (its process is gone)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    marker = {"pid": int(gone.stdout), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
    killed = "20260101T000000000000Z-0002-killed"
    bucket.fs.pipe(f"{bucket.prefix}/{killed}/001.jsonl.zst", b"\x28\xb5\x2f\xfd partial")
    bucket.fs.pipe(f"{bucket.prefix}/{killed}/.inprogress", json.dumps(marker).encode())
    # a manifest whose data file was lost (deleted by hand)
    damaged = "20260101T000000000001Z-0002-damaged"
    manifest = json.loads(bucket.fs.cat(f"{bucket.prefix}/{good}/manifest.json"))
    manifest["id"] = damaged
    bucket.fs.pipe(f"{bucket.prefix}/{damaged}/manifest.json", json.dumps(manifest).encode())

    proc = safety(ini, "show", killed, check=False)
    assert proc.returncode == 2 and "incomplete" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    project = load_project(str(ini))  # the rest in this process: the same library the commands call
    complete, incomplete = list_backups(project)
    assert [m.id for m in complete] == [good]
    reasons = {i.id: i.reason for i in incomplete}
    assert reasons.keys() == {killed, damaged}
    assert "interrupted" in reasons[killed] and "missing" in reasons[damaged]

    prune(project, keep=None, dry_run=False)
    assert killed not in bucket.objects(), "prune deletes an interrupted upload's objects"
    assert {good, damaged} <= set(bucket.objects())  # damaged: kept for a human to look at

    # another machine pruned the good backup: this machine's cached copy is no longer listed
    bucket.fs.rm(f"{bucket.prefix}/{good}", recursive=True)
    assert list_backups(project)[0] == []
    assert not (project.config.backup_dir / good).exists()


def test_unreachable_or_refusing_bucket_refuses_the_step_with_one_line(bucket: Bucket, sqlite_url: sa.URL,
                                                                      tmp_path: Path, engine_for: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ini = _shop(sqlite_url, tmp_path, bucket)
    alembic(ini, "upgrade", "0001")
    engine = engine_for(sqlite_url)
    before = data(engine)

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    proc = safety(ini, "backups", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert bucket.url in line and "cannot list the backups" in line
    proc = alembic(ini, "upgrade", "0002", check=False)
    assert proc.returncode != 0 and "cannot upload" in proc.stderr and bucket.url in proc.stderr
    assert version(engine) == "0001" and data(engine) == before, "the step was refused: nothing changed"

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", bucket.server.endpoint)
    reset = f"{bucket.server.endpoint}/moto-api/reset-auth"

    def auth(value: bytes) -> None:
        req = urllib.request.Request(reset, data=value, method="POST", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req, timeout=10).read()

    auth(b"0")  # from now on the server checks credentials: ours are unknown to it
    try:
        proc = safety(ini, "backups", check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert bucket.url in line and "PermissionError" in line and "credentials" in line, line
        assert SECRET not in proc.stdout + proc.stderr
    finally:
        auth(b"inf")
    assert version(engine) == "0001" and data(engine) == before
    assert bucket.objects() == {}, "nothing half-written was left in the bucket"


def test_backup_dir_urls_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config({"backup_dir": "s3://my-bucket/a/b/"}, here=tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path)})
    assert cfg.backup_url == "s3://my-bucket/a/b" and cfg.backup_location == "s3://my-bucket/a/b"
    assert cfg.backup_dir.parent == tmp_path / "alembic-safety" and cfg.audit_path.parent == cfg.backup_dir
    cfg = load_config({"backup_dir": "s3://my-bucket", "backup_cache_dir": "work"}, here=tmp_path, environ={})
    assert cfg.backup_dir == tmp_path / "work"
    local = load_config({"backup_dir": "backups", "backup_cache_dir": "work"}, here=tmp_path, environ={})
    assert local.backup_dir == tmp_path / "backups" and local.backup_url == ""

    for value, fragment in [
        ("s3://AKIAEXAMPLE:hunter2@my-bucket/x", "credentials do not belong in the URL"),
        ("s3://My_Bucket/x", "is not an S3 bucket name"),
        ("s3://my-bucket/../x", "is not a plain folder name"),
        ("gs://my-bucket/x", "only s3:// URLs"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(fragment)) as info:
            load_config({"backup_dir": value}, here=tmp_path, environ={})
        assert "hunter2" not in str(info.value)

    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if the [s3] extra were not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'alembic-safety[s3]'")):
        load_config({"backup_dir": "s3://my-bucket/x"}, here=tmp_path, environ={})
