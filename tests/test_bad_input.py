"""Bad input, through the real commands: every case is one line on stderr (``alembic-safety:``,
no traceback), exit 2 (usage, configuration, or a backup that cannot be used; ``show --verify``
alone reports a damaged backup's mismatches with exit 1, as a finding), and nothing changed — the
database's tables and the project folder (backups included) are compared before and after.
Hostile identifiers (quotes, spaces, unicode, mixed case, reserved words, ``x"; DROP TABLE y;
--``) round-trip through snapshots, ``show --verify`` and ``rollback`` on PostgreSQL without
touching any other table."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .conftest import copy_example
from .helpers import _env, alembic

RECORDS = ("audit.jsonl", "rollback-*.md")  # what a refused rollback or a verification records, and only that
TIMEOUT = 90  # a command that opened a FIFO planted outside the backup would block: it fails the test instead


def run(ini: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """alembic-safety without a terminal, bounded in time."""
    return subprocess.run([sys.executable, "-m", "alembic_safety", "-c", str(ini), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env={**_env(), **(env or {})}, timeout=TIMEOUT)  # fmt: skip


def one_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single error line of a refused command."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("alembic-safety:") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


# -- what "nothing changed" compares -------------------------------------------------------------
def files_state(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry under ``root``: a file's sha256, a link's target, a FIFO or folder by kind
    (never opened).  ``__pycache__`` (written by importing the revisions) and names matching a
    ``skip`` pattern are left out."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if "__pycache__" in p.parts or any(fnmatch.fnmatch(p.name, pattern) for pattern in skip):
            continue
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link " + os.readlink(p)
        elif p.is_fifo():
            out[rel] = "fifo"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def db_state(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of every schema (but the catalogs) with its rows, sorted."""
    insp = sa.inspect(engine)
    schemas: list[str | None] = [None]
    if engine.dialect.name == "postgresql":
        schemas = [s for s in insp.get_schema_names() if s not in ("information_schema",) and not s.startswith("pg_")]
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for schema in schemas:
            for name in insp.get_table_names(schema=schema):
                table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
                rows = [tuple(r) for r in conn.execute(sa.select(table))]
                out[f"{schema}.{name}"] = sorted(rows, key=repr)
    return out


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/examples/shop on SQLite at 0002 (one pre-revision backup of customers, orders and
    notes), built once; each test gets it back as it was, at the same paths (a backup records the
    database it was taken from)."""
    root = tmp_path_factory.mktemp("bad_input")
    url = sa.URL.create("sqlite", database=str(root / "test.db"))
    alembic(copy_example("shop", root / "shop", url), "upgrade", "0002")
    shutil.copytree(root / "shop", root / "shop.orig", symlinks=True)
    shutil.copyfile(root / "test.db", root / "test.db.orig")
    return root


def the_backup(ini: Path) -> str:
    [folder] = [p for p in (ini.parent / "backups").iterdir() if p.is_dir()]
    return folder.name


class Project:
    """A project's database and folder, to say that a command changed nothing."""

    def __init__(self, ini: Path, url: sa.URL, engine: sa.Engine) -> None:
        self.ini, self.url, self.engine = ini, url, engine

    def state(self, *skip: str) -> tuple[Any, ...]:
        return db_state(self.engine), files_state(self.ini.parent, skip)


@pytest.fixture
def project(pristine: Path, engine_for: Any) -> Project:
    shutil.rmtree(pristine / "shop")
    shutil.copytree(pristine / "shop.orig", pristine / "shop", symlinks=True)
    shutil.copyfile(pristine / "test.db.orig", pristine / "test.db")
    url = sa.URL.create("sqlite", database=str(pristine / "test.db"))
    return Project(pristine / "shop" / "alembic.ini", url, engine_for(url))


# -- backup ids ----------------------------------------------------------------------------------
BAD_IDS = ["../../etc/passwd", "/etc/passwd", "..", ".", "./", 'x"; DROP TABLE customers; --',
           "20'; DELETE FROM orders", "an id with spaces", "ünïcødé", "$(touch pwned)", "20261122T*", "%", "a\\b"]


ID_COMMANDS = (["show", "{}"], ["show", "{}", "--verify"], ["rollback", "{}", "--dry-run"],
               ["rollback", "{}", "--confirm", "ABCDEF"], ["export", "{}"])


def test_bad_backup_ids_are_refused_before_anything(project: Project) -> None:
    """Each id through one command in turn, and the first through all of them."""
    before = project.state()
    calls = [(BAD_IDS[0], c) for c in ID_COMMANDS] + [(i, ID_COMMANDS[n % 5]) for n, i in enumerate(BAD_IDS[1:])]
    for bad_id, command in calls:
        args = [a.format(bad_id) for a in command]
        line = one_line(run(project.ini, *args))
        assert "not a backup id" in line, (args, line)
    assert project.state() == before  # not even an audit event
    assert not (project.ini.parent / "pwned").exists()


# -- manifests edited by hand --------------------------------------------------------------------
Edit = Callable[[Path, Path], None]  # (backup folder, a FIFO outside the backups)


def _edit_manifest(change: Callable[[dict[str, Any], Path], None]) -> Edit:
    def edit(folder: Path, outside: Path) -> None:
        path = folder / "manifest.json"
        data = json.loads(path.read_text())
        change(data, outside)
        path.write_text(json.dumps(data))

    return edit


def _first_table(key: str, value: Callable[[Path], Any]) -> Edit:
    return _edit_manifest(lambda m, outside: m["tables"][0].__setitem__(key, value(outside)))


def _replace_manifest(text: Callable[[str], str | bytes]) -> Edit:
    def edit(folder: Path, outside: Path) -> None:
        path = folder / "manifest.json"
        new = text(path.read_text())
        path.write_bytes(new if isinstance(new, bytes) else new.encode())

    return edit


def _manifest_is_link(folder: Path, outside: Path) -> None:
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").symlink_to(outside)


MANIFEST_EDITS: dict[str, tuple[Edit, str]] = {
    "broken JSON": (_replace_manifest(lambda t: t[: len(t) // 2]), "not valid JSON"),
    "not UTF-8": (_replace_manifest(lambda t: b"\xff\xfe" + t.encode()), "not UTF-8"),
    "nested too deep": (_replace_manifest(lambda t: "[" * 100_000 + "]" * 100_000), "not valid JSON"),
    "number too long": (_replace_manifest(lambda t: t.replace('"rows": ', '"rows": ' + "9" * 5000 + ', "x": ', 1)),
                        "not valid JSON"),
    "path ../../": (_first_table("file", lambda outside: "../../outside.fifo"), "outside the backup"),
    "absolute path": (_first_table("file", str), "outside the backup"),
    "post-state path": (_first_table("post", lambda outside: {"file": "../../outside.fifo", "columns": [],
                                                              "method": "md5-row", "rows": 0, "checksum": ""}),
                        "outside the backup"),
    "manifest is a link": (_manifest_is_link, "unreadable"),
    "tables not a list": (_edit_manifest(lambda m, o: m.__setitem__("tables", "customers")), "bad field"),
    "unknown format": (_first_table("format", lambda o: "evil"), "bad field"),
    "rows not a number": (_first_table("rows", lambda o: "many"), "bad field"),
    "another backup's id": (_edit_manifest(lambda m, o: m.__setitem__("id", "20200101T000000000000Z-x")),
                            "another backup"),
}


@pytest.mark.parametrize("case", list(MANIFEST_EDITS))
def test_hand_edited_manifest_is_refused_and_nothing_outside_is_read(project: Project, case: str) -> None:
    edit, fragment = MANIFEST_EDITS[case]
    backup_id = the_backup(project.ini)
    outside = project.ini.parent / "outside.fifo"
    os.mkfifo(outside)  # opening it for reading would block the command: the test would time out
    edit(project.ini.parent / "backups" / backup_id, outside)
    before = project.state(*RECORDS)

    listed = json.loads(run(project.ini, "backups", "--format", "json").stdout)
    [entry] = [b for b in listed if b["id"] == backup_id]
    assert entry["complete"] is False and fragment in entry["reason"]  # listed, as unusable
    # a backup whose manifest cannot be trusted is refused like any unusable input: exit 2
    refused = [["show", backup_id, "--verify"], ["rollback", backup_id, "--confirm", "ABCDEF"]]
    if case == "broken JSON":
        text = run(project.ini, "backups")
        assert text.returncode == 0 and "incomplete" in text.stdout and "Traceback" not in text.stderr
        refused += [["show", backup_id], ["rollback", backup_id[:12], "--dry-run"]]
    for args in refused:
        line = one_line(run(project.ini, *args), code=2)
        assert fragment in line and backup_id in line, (args, line)
    assert project.state(*RECORDS) == before


def _corrupt_checksum(folder: Path, outside: Path) -> None:
    _first_table("checksum", lambda o: "sha256:" + "0" * 64)(folder, outside)


def _remove_file(folder: Path, outside: Path) -> None:
    (folder / "001.jsonl.zst").unlink()


def _extra_file(folder: Path, outside: Path) -> None:
    (folder / "notes.txt").write_text("left here by hand")


def _file_is_link(folder: Path, outside: Path) -> None:
    (folder / "001.jsonl.zst").unlink()
    (folder / "001.jsonl.zst").symlink_to(outside)


def _file_is_fifo(folder: Path, outside: Path) -> None:
    (folder / "001.jsonl.zst").unlink()
    os.mkfifo(folder / "001.jsonl.zst")


DATA_EDITS: dict[str, tuple[Edit, bool]] = {  # (edit, whether `backups` can tell without reading the data)
    "wrong checksum": (_corrupt_checksum, False),
    "missing data file": (_remove_file, True),
    "extra file": (_extra_file, False),
    "data file is a link outside": (_file_is_link, True),
    "data file is a FIFO": (_file_is_fifo, True),
}


@pytest.mark.parametrize("case", list(DATA_EDITS))
def test_damaged_backup_fails_verification_and_rollback_changes_nothing(project: Project, case: str) -> None:
    edit, listed_unusable = DATA_EDITS[case]
    backup_id = the_backup(project.ini)
    outside = project.ini.parent / "outside.fifo"
    os.mkfifo(outside)
    plan = json.loads(run(project.ini, "rollback", backup_id, "--dry-run", "--format", "json").stdout)
    edit(project.ini.parent / "backups" / backup_id, outside)
    before = project.state(*RECORDS)

    [entry] = [b for b in json.loads(run(project.ini, "backups", "--format", "json").stdout) if b["id"] == backup_id]
    assert entry["complete"] is not listed_unusable
    proc = run(project.ini, "show", backup_id, "--verify")
    assert "failed verification" in one_line(proc, code=1)  # README: exit 1 on a mismatch or a stray file
    assert "BAD" in proc.stdout
    proc = run(project.ini, "rollback", backup_id, "--confirm", plan["confirmation_code"])
    line = one_line(proc, code=2)
    assert backup_id in line and "nothing was changed" in line, line
    assert project.state(*RECORDS) == before


# -- alembic.ini and [alembic_safety] --------------------------------------------------------------
INI_EDITS: dict[str, Callable[[str], str | bytes]] = {
    "syntax error": lambda t: t.replace("[alembic]\n", "[alembic\n"),
    "no [alembic] section": lambda t: t.replace("[alembic]\n", "[elsewhere]\n"),
    "bad script_location": lambda t: t.replace("%(here)s/migrations", "%(here)s/nowhere"),
    "no script_location": lambda t: t.replace("script_location = %(here)s/migrations\n", ""),
    "bad interpolation": lambda t: t.replace("%(here)s/migrations", "%(nowhere)s/migrations"),
    "duplicate key": lambda t: t.replace("[alembic_safety]\n", "[alembic_safety]\nkeep = 1\nkeep = 2\n"),
    "not UTF-8": lambda t: b"\xff\xfe" + t.encode(),
}


@pytest.mark.parametrize("case", ["missing file", *INI_EDITS])
def test_malformed_alembic_ini(project: Project, case: str) -> None:
    ini = project.ini
    if case == "missing file":
        ini = ini.parent / "missing.ini"
    else:
        new = INI_EDITS[case](ini.read_text())
        ini.write_bytes(new if isinstance(new, bytes) else new.encode())
    backup_id = the_backup(project.ini)
    before = project.state()
    commands = [["backup"], ["rollback", backup_id, "--dry-run"]]
    if case == "syntax error":
        commands += [["backups"], ["plan"], ["show", backup_id], ["docs"], ["generate"]]
    for args in commands:
        one_line(run(ini, *args))
    assert project.state() == before


SETTINGS: list[tuple[str, str, str]] = [  # key, value, fragment of the error
    ("kepp", "3", "unknown setting 'kepp'"),
    ("keep", "lots", "keep = 'lots'"),
    ("keep", "-1", "keep = '-1'"),
    ("keep", "1.5", "keep = '1.5'"),
    ("compression_level", "0", "compression_level = '0'"),
    ("store", "s3", "store = 's3'"),
    ("snapshot", "some", "snapshot = 'some'"),
    ("oversize", "maybe", "oversize = 'maybe'"),
    ("max_snapshot_bytes", "-5", "max_snapshot_bytes = '-5'"),
    ("lock_timeout", "-1s", "lock_timeout = '-1s'"),
    ("lock_timeout", "999999999h", "too long"),
    ("check_policies", "CHK999=error", "no check 'CHK999'"),
    ("check_policies", "CHK302=maybe", "check_policies"),
    ("snapshot_schema", 'x"; DROP TABLE customers; --', "plain identifier"),
    ("enabled", "maybe", "enabled = 'maybe'"),
    ("backup_dir", "%(here)s/alembic.ini", "is not a folder"),
]


@pytest.mark.parametrize(("key", "value", "fragment"), SETTINGS)
def test_bad_settings_are_refused_before_anything(project: Project, key: str, value: str, fragment: str) -> None:
    text = project.ini.read_text()
    if key == "backup_dir":
        text = text.replace("backup_dir = %(here)s/backups", f"backup_dir = {value}")
    else:
        text = text.replace("[alembic_safety]\n", f"[alembic_safety]\n{key} = {value}\n")
    project.ini.write_text(text)
    before = project.state()
    commands = [["backup"]]
    if key == "keep" and value == "lots":
        commands += [["backups"], ["plan"], ["status"], ["rollback", the_backup(project.ini), "--dry-run"]]
    for args in commands:
        assert fragment in one_line(run(project.ini, *args)), args
    proc = alembic(project.ini, "upgrade", "head", check=False)  # the hooks refuse it too, before any step
    assert proc.returncode != 0 and fragment in proc.stderr
    assert project.state() == before


def test_bad_settings_from_x_and_environment(project: Project) -> None:
    before = project.state()
    assert "keep = 'many'" in one_line(run(project.ini, "-x", "keep=many", "backups"))
    line = one_line(run(project.ini, "backups", env={"ALEMBIC_SAFETY_CHECK_POLICIES": "nope=warn"}))
    assert "no check 'nope'" in line
    assert project.state() == before


# -- revisions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["plan", "nope"], "nope"), (["plan", "0001:nope"], "nope"), (["plan", "0004:0001"], "not above"),
     (["plan", 'x"; DROP TABLE customers; --'], "DROP TABLE"), (["plan", "heads:base"], "not above"),
     (["verify", "nope"], "nope"), (["verify", "0003:0001"], "not above"), (["generate", "nope"], "nope"),
     (["generate", "0001", "nope"], "nope"), (["generate", "--check", "zz:"], "zz")],
)  # fmt: skip
def test_unknown_revisions_and_bad_ranges(project: Project, args: list[str], fragment: str) -> None:
    before = project.state()
    assert fragment in one_line(run(project.ini, *args))
    assert project.state() == before


BROKEN_MODULES = {  # kind: (module-level code, what the error line says)
    "SyntaxError": ("def broken(:\n    pass\n", "SyntaxError"),
    "ImportError": ("import no_such_module_for_alembic_safety\n", "no_such_module_for_alembic_safety"),
    "RuntimeError": ("raise RuntimeError('refusing to be imported')\n", "refusing to be imported"),
    "SystemExit": ("import sys\nsys.exit(3)\n", "SystemExit"),
}


@pytest.mark.parametrize("kind", list(BROKEN_MODULES))
def test_revision_file_that_raises_at_import(project: Project, kind: str) -> None:
    path = project.ini.parent / "migrations" / "versions" / "0005_broken.py"
    code, fragment = BROKEN_MODULES[kind]
    path.write_text('"""broken\n\nRevision ID: 0005\nRevises: 0004\n"""\n' + code
                    + "revision = '0005'\ndown_revision = '0004'\n\ndef upgrade():\n    pass\n\n"
                    "def downgrade():\n    pass\n")  # fmt: skip
    backup_id = the_backup(project.ini)
    before = project.state()
    commands = [["plan"], ["docs"], ["rollback", backup_id, "--dry-run"]]
    if kind == "SyntaxError":
        commands += [["verify"], ["generate"], ["backups"], ["status"], ["backup"]]
    for args in commands:
        line = one_line(run(project.ini, *args))
        assert str(path) in line and fragment in line, (args, line)
    assert project.state() == before


def test_env_py_that_raises_names_it(project: Project) -> None:
    env_py = project.ini.parent / "migrations" / "env.py"
    env_py.write_text("import no_such_module_in_env\n" + env_py.read_text())
    before = project.state()
    line = one_line(run(project.ini, "backups"))
    assert str(env_py) in line and "no_such_module_in_env" in line
    assert project.state() == before


# -- hostile identifiers on PostgreSQL -----------------------------------------------------------
SCHEMA = 'sch"; DROP TABLE y; --'
ODD = 'x"; DROP TABLE y; --'  # a table in SCHEMA
USER = "user"  # reserved words: a table "user" with columns "order" and "select"
GONE = "Ördér Lines"  # dropped by 0002, in SCHEMA
COLUMNS_ODD = ["id", "order", "Mixed Case", 'ünï "cödé"', "select"]
COLUMNS_USER = ["id", "col with spaces", ODD, "group"]

REVISIONS = {
    "0001_create.py": f'''
"""hostile names

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
SCHEMA, ODD, USER, GONE = {SCHEMA!r}, {ODD!r}, {USER!r}, {GONE!r}


def upgrade():
    op.execute(sa.schema.CreateSchema(SCHEMA))
    odd = op.create_table(ODD, sa.Column("id", sa.Integer, primary_key=True), sa.Column("order", sa.Text),
                          sa.Column("Mixed Case", sa.Text), sa.Column('ünï "cödé"', sa.Text),
                          sa.Column("select", sa.Integer), schema=SCHEMA)
    user = op.create_table(USER, sa.Column("id", sa.Integer, primary_key=True), sa.Column("col with spaces", sa.Text),
                           sa.Column(ODD, sa.Text), sa.Column("group", sa.Text))
    gone = op.create_table(GONE, sa.Column("id", sa.Integer, primary_key=True), sa.Column("Qty", sa.Integer),
                           schema=SCHEMA)
    y = op.create_table("y", sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Text))
    op.bulk_insert(odd, [{{"id": i, "order": f"o'{{i}}\\"", "Mixed Case": f"M{{i}}", 'ünï "cödé"': "é中😀",
                          "select": i * 10}} for i in range(1, 9)])
    op.bulk_insert(user, [{{"id": i, "col with spaces": f"s {{i}}", ODD: f"{{ODD}} {{i}}", "group": "g"}}
                          for i in range(1, 9)])
    op.bulk_insert(gone, [{{"id": i, "Qty": i}} for i in range(1, 6)])
    op.bulk_insert(y, [{{"id": 1, "v": "bystander"}}])


def downgrade():
    pass
''',
    "0002_destroy.py": f'''
"""drop, alter, delete and update hostile names

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
SCHEMA, ODD, USER, GONE = {SCHEMA!r}, {ODD!r}, {USER!r}, {GONE!r}


def upgrade():
    op.drop_column(ODD, "Mixed Case", schema=SCHEMA)
    op.alter_column(ODD, "order", existing_type=sa.Text, nullable=False, schema=SCHEMA)
    user = sa.table(USER, sa.column("id"), sa.column("col with spaces"), sa.column(ODD))
    op.execute(sa.delete(user).where(user.c.id > 5))
    op.execute(sa.update(user).values({{"col with spaces": "overwritten", ODD: None}}))
    op.drop_table(GONE, schema=SCHEMA)


def downgrade():
    op.create_table(GONE, sa.Column("id", sa.Integer, primary_key=True), sa.Column("Qty", sa.Integer),
                    schema=SCHEMA)
    op.alter_column(ODD, "order", existing_type=sa.Text, nullable=True, schema=SCHEMA)
    op.add_column(ODD, sa.Column("Mixed Case", sa.Text), schema=SCHEMA)
''',
}


@pytest.mark.parametrize("store", ["database", "files"])
def test_hostile_identifiers_round_trip_through_snapshot_verify_and_rollback(
    pg_url: sa.URL, tmp_path: Path, engine_for: Any, store: str
) -> None:
    ini = copy_example("generate", tmp_path / "p", pg_url, store=store)
    versions = tmp_path / "p" / "migrations" / "versions"
    for name, text in REVISIONS.items():
        (versions / name).write_text(text.lstrip())
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    before = db_state(engine)
    assert {f"{SCHEMA}.{ODD}", "public.user", f"{SCHEMA}.{GONE}", "public.y"} <= set(before)

    alembic(ini, "upgrade", "0002")
    after_upgrade = db_state(engine)
    assert f"{SCHEMA}.{GONE}" not in after_upgrade and after_upgrade["public.y"] == before["public.y"]
    backups = json.loads(run(ini, "backups", "--format", "json").stdout)
    [backup] = [b for b in backups if b["revision_to"] == "0002"]
    assert {(t["schema"], t["name"]) for t in backup["tables"]} == {(SCHEMA, ODD), (None, USER), (SCHEMA, GONE)}

    proc = run(ini, "show", backup["id"], "--verify", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert all(v["ok"] for v in json.loads(proc.stdout)["verify"])

    plan = run(ini, "rollback", backup["id"], "--dry-run", "--mode", "replace", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    code = json.loads(plan.stdout)["confirmation_code"]
    proc = run(ini, "rollback", backup["id"], "--confirm", code, "--mode", "replace", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = db_state(engine)
    for key in (f"{SCHEMA}.{ODD}", "public.user", f"{SCHEMA}.{GONE}", "public.y"):
        assert _by_column(engine, key, after) == _by_column(engine, key, before, at_0001=True), key
    assert {k for k in after if not k.startswith("alembic_safety.")} == {
        k for k in before if not k.startswith("alembic_safety.")}  # no table added or lost


def _by_column(engine: sa.Engine, key: str, state: dict[str, list[tuple[Any, ...]]],
               at_0001: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Rows as {column: value}: a column dropped and re-added comes back at the end of the table."""
    columns = {f"{SCHEMA}.{ODD}": COLUMNS_ODD, "public.user": COLUMNS_USER, f"{SCHEMA}.{GONE}": ["id", "Qty"],
               "public.y": ["id", "v"]}[key]  # fmt: skip
    if not at_0001:
        schema, _, name = key.partition(".")
        live = [c["name"] for c in sa.inspect(engine).get_columns(name, schema=schema)]
        assert sorted(live) == sorted(columns), live
        columns = live
    return sorted(({c: v for c, v in zip(columns, row, strict=True)} for row in state[key]), key=lambda r: r["id"])


def test_hostile_table_names_on_the_command_line_touch_nothing(project: Project) -> None:
    before = project.state()
    for tables in ('x"; DROP TABLE customers; --', "customers; DROP TABLE orders", "main.customers\"--", "ünïcødé"):
        assert "unknown table" in one_line(run(project.ini, "backup", "--tables", tables))
    assert project.state() == before


def test_a_folder_in_place_of_the_backup_dir_link_is_not_followed(project: Project, tmp_path: Path) -> None:
    """A backup folder that is a symbolic link (to elsewhere) is neither listed nor resolved."""
    backup_id = the_backup(project.ini)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(project.ini.parent / "backups" / backup_id), elsewhere)
    (project.ini.parent / "backups" / backup_id).symlink_to(elsewhere, target_is_directory=True)
    before = project.state()
    assert backup_id not in run(project.ini, "backups").stdout
    assert "no backup" in one_line(run(project.ini, "show", backup_id))
    assert project.state() == before
