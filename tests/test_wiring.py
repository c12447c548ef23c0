"""``alembic-safety init`` on real ``alembic init`` projects: every shipped env.py template is
wired (one ``alembic_safety.install(context)`` after each ``context.configure(...)``), the
result is idempotent, ``--dry-run`` writes nothing, env.py shapes it cannot edit are refused in
one line, and a wired project really snapshots during a real ``alembic upgrade``."""

from __future__ import annotations

import ast
import configparser
import difflib
import io
import json
import os
import re
import subprocess
import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

import alembic
import pytest
from alembic import command
from alembic.config import Config

from alembic_safety.cli import run
from alembic_safety.config import SECTION, from_alembic_config, load_config
from alembic_safety.wiring import plan_init

BIN = Path(sys.executable).parent
ALEMBIC = str(BIN / "alembic")
SAFETY = str(BIN / "alembic-safety")
INSTALL = "alembic_safety.install(context)"

_SHIPPED = Path(alembic.__file__).parent / "templates"
TEMPLATES = [
    t
    for t in ("generic", "async", "multidb", "pyproject", "pyproject_async")
    if (_SHIPPED / t / "env.py").is_file()
]

# where each template's context.configure(...) calls live: (enclosing function, inside a for loop)
SITES = {
    "generic": [("run_migrations_offline", False), ("run_migrations_online", False)],
    "pyproject": [("run_migrations_offline", False), ("run_migrations_online", False)],
    "async": [("run_migrations_offline", False), ("do_run_migrations", False)],
    "pyproject_async": [("run_migrations_offline", False), ("do_run_migrations", False)],
    "multidb": [("run_migrations_offline", True), ("run_migrations_online", True)],
}


@pytest.fixture(autouse=True)
def _no_alembic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """ALEMBIC_CONFIG / ALEMBIC_SAFETY_* from the caller's shell must not leak in."""
    for key in list(os.environ):
        if key.startswith("ALEMBIC_"):
            monkeypatch.delenv(key)


def _subprocess_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_")}


def make_project(root: Path, template: str = "generic") -> Path:
    """``alembic init -t TEMPLATE migrations`` in ``root``; returns alembic.ini's path."""
    ini = root / "alembic.ini"
    toml = str(root / "pyproject.toml") if template.startswith("pyproject") else None
    # quiet: fewer "Creating directory" lines (ScriptDirectory still prints "Generating ...")
    cfg = Config(str(ini), stdout=io.StringIO(), toml_file=toml, cmd_opts=Namespace(quiet=True))
    command.init(cfg, str(root / "migrations"), template=template)
    return ini


def env_py(root: Path) -> Path:
    return root / "migrations" / "env.py"


def snapshot_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SAFETY, *args], cwd=cwd, env=_subprocess_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_attr_call(stmt: ast.AST, obj: str, attr: str) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
        and stmt.value.func.attr == attr
        and isinstance(stmt.value.func.value, ast.Name)
        and stmt.value.func.value.id == obj
    )


def configure_sites(text: str, ctx: str = "context") -> list[tuple[str, bool, ast.stmt | None]]:
    """Each ``ctx.configure(...)`` statement: its enclosing function, whether a for loop
    encloses it, and the statement right after it in the same block (or None)."""
    tree = ast.parse(text)
    parents = _parents(tree)
    out = []
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            for i, stmt in enumerate(body):
                if not _is_attr_call(stmt, ctx, "configure"):
                    continue
                func, in_for, up = "<module>", False, parents.get(stmt)
                while up is not None:
                    if isinstance(up, (ast.For, ast.AsyncFor)):
                        in_for = True
                    if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        func = up.name
                        break
                    up = parents.get(up)
                out.append((func, in_for, body[i + 1] if i + 1 < len(body) else None))
    return sorted(out, key=lambda s: s[0])


def assert_wired(before: str, after: str, ctx: str = "context") -> None:
    """env.py parses, imports alembic_safety once, calls install right after every configure
    statement at the same indentation, and no original line was changed or removed."""
    ast.parse(after)
    install = f"alembic_safety.install({ctx})"
    assert after.count("import alembic_safety") == 1
    assert len(re.findall(r"^import alembic_safety\r?$", after, re.M)) == 1
    tree = ast.parse(after)
    configures = [
        s for node in ast.walk(tree) for f in ("body", "orelse", "finalbody")
        for s in (getattr(node, f, None) or []) if _is_attr_call(s, ctx, "configure")
    ]  # fmt: skip
    assert configures
    assert after.count(install) == len(configures)
    lines = after.splitlines()
    for stmt in configures:
        assert stmt.end_lineno is not None
        following = lines[stmt.end_lineno]  # the line right after the statement's last line
        indent = lines[stmt.lineno - 1][: stmt.col_offset]
        assert following == indent + install, (stmt.lineno, following)
    ops = difflib.SequenceMatcher(a=before.splitlines(), b=lines, autojunk=False).get_opcodes()
    assert {op for op, *_ in ops} <= {"equal", "insert"}, "init changed or removed a line"
    inserted = [line for op, _, _, j1, j2 in ops if op == "insert" for line in lines[j1:j2]]
    assert sorted(s.strip() for s in inserted) == sorted(
        ["import alembic_safety"] + [install] * len(configures)
    )


def assert_ini_wired(ini: Path) -> None:
    text = ini.read_text(encoding="utf-8")
    assert len(re.findall(rf"^\[{SECTION}\]\s*$", text, re.M)) == 1
    parser = configparser.ConfigParser(interpolation=None)  # strict: a duplicate would raise
    parser.read(ini, encoding="utf-8")
    assert parser.has_section(SECTION)
    assert parser.options(SECTION) == [], "every [alembic_safety] key must be commented out"
    got = from_alembic_config(Config(str(ini)))
    assert got == load_config({}, here=ini.resolve().parent, environ={})
    assert set(got.sources.values()) == {"default"}


# -- 1. every shipped template --------------------------------------------------------------
@pytest.mark.parametrize("template", TEMPLATES)
def test_init_wires_every_alembic_template(
    tmp_path: Path, template: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = make_project(tmp_path, template)
    before = env_py(tmp_path).read_text(encoding="utf-8")
    toml_before = (tmp_path / "pyproject.toml").read_bytes() if template.startswith("pyproject") \
        else None  # fmt: skip

    assert run(["-c", str(ini), "init"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Updated" in captured.out

    after = env_py(tmp_path).read_text(encoding="utf-8")
    assert_wired(before, after)
    sites = configure_sites(after)
    assert [(f, loop) for f, loop, _ in sites] == sorted(SITES[template])
    for _, _, nxt in sites:
        assert nxt is not None and _is_attr_call(nxt, "alembic_safety", "install")
    assert_ini_wired(ini)
    if toml_before is not None:
        assert (tmp_path / "pyproject.toml").read_bytes() == toml_before


# -- 2. idempotence ---------------------------------------------------------------------------
def test_init_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    """The real console script, twice."""
    ini = make_project(tmp_path)
    first = cli("-c", str(ini), "init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Already set up" not in first.stdout
    wired = snapshot_files(tmp_path)

    second = cli("-c", str(ini), "init", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Already set up" in second.stdout
    assert second.stderr == ""
    assert snapshot_files(tmp_path) == wired


@pytest.mark.parametrize("template", TEMPLATES)
def test_init_is_idempotent_on_every_template(
    tmp_path: Path, template: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = make_project(tmp_path, template)
    assert run(["-c", str(ini), "init"]) == 0
    wired = snapshot_files(tmp_path)
    capsys.readouterr()
    for args in (["init"], ["init", "--dry-run"]):
        assert run(["-c", str(ini), *args]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("Already set up"), captured.out
        assert "\n+" not in captured.out and captured.err == ""
        assert snapshot_files(tmp_path) == wired


def test_init_completes_a_partial_wiring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Already imported and installed in one function, section already there: only the missing
    install line is added; the import and the section are not duplicated."""
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    original = env.read_text(encoding="utf-8")
    offline_end = '        dialect_opts={"paramstyle": "named"},\n    )\n'
    partial = original.replace(
        "from alembic import context\n", "from alembic import context\n\nimport alembic_safety\n"
    ).replace(offline_end, f"{offline_end}    {INSTALL}\n")
    assert partial.count(INSTALL) == 1
    env.write_text(partial, encoding="utf-8")
    ini.write_text(ini.read_text(encoding="utf-8") + "\n[alembic_safety]\n# keep = 10\n")
    ini_before = ini.read_bytes()

    assert run(["-c", str(ini), "init"]) == 0
    after = env.read_text(encoding="utf-8")
    assert after.count(INSTALL) == 2
    assert after.count("import alembic_safety") == 1
    assert ini.read_bytes() == ini_before
    assert [(f, nxt is not None and _is_attr_call(nxt, "alembic_safety", "install"))
            for f, _, nxt in configure_sites(after)] == [
        ("run_migrations_offline", True), ("run_migrations_online", True)]  # fmt: skip
    capsys.readouterr()
    assert run(["-c", str(ini), "init"]) == 0
    assert "Already set up" in capsys.readouterr().out


# -- 3. --dry-run ----------------------------------------------------------------------------
def test_dry_run_writes_nothing_and_prints_the_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = make_project(tmp_path)
    capsys.readouterr()
    files = snapshot_files(tmp_path)
    plan = plan_init(ini, env_py(tmp_path))
    expected = "".join(c.diff() for c in plan if c.changed)

    assert run(["-c", str(ini), "init", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert snapshot_files(tmp_path) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alembic.ini", "migrations"]
    assert out == expected + "(dry run: nothing written)\n"
    assert "--- a/env.py\n+++ b/env.py\n" in out
    assert "--- a/alembic.ini\n+++ b/alembic.ini\n" in out
    assert "\n+import alembic_safety\n" in out
    assert f"\n+    {INSTALL}\n" in out and f"\n+        {INSTALL}\n" in out
    assert "\n+[alembic_safety]\n" in out
    assert re.search(r"^@@ -\d+,\d+ \+\d+,\d+ @@", out, re.M)

    # the diff shown is exactly what a real run then writes
    assert run(["-c", str(ini), "init"]) == 0
    assert {c.path: c.after for c in plan} == {
        env_py(tmp_path): env_py(tmp_path).read_text(encoding="utf-8"),
        ini: ini.read_text(encoding="utf-8"),
    }


# -- 4. refusals -------------------------------------------------------------------------------
SHARED_LINE_ENV = """\
from alembic import context

u = context.config.get_main_option("sqlalchemy.url")
x = 1; context.configure(url=u)
with context.begin_transaction():
    context.run_migrations()
"""


def _syntax_error(text: str) -> str:
    return text + "\ndef broken(:\n    pass\n"


def _no_configure(text: str) -> str:
    return text.replace("context.configure(", "context.konfigure(")


def _shared_line(text: str) -> str:
    return SHARED_LINE_ENV


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (_syntax_error, "cannot be parsed (line"),
        (_no_configure, "has no context.configure(...) statement"),
        (_shared_line, "at line 4 shares its line with other code"),
    ],
    ids=["syntax-error", "no-configure", "shared-line"],
)
def test_refuses_env_py_it_cannot_edit(
    tmp_path: Path, mutate: Callable[[str], str], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    env.write_text(mutate(env.read_text(encoding="utf-8")), encoding="utf-8")
    files = snapshot_files(tmp_path)

    proc = cli("-c", str(ini), "init", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("alembic-safety: error: ")
    assert str(env) in lines[0]
    assert INSTALL in lines[0]
    assert why in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
    assert snapshot_files(tmp_path) == files
    assert not (tmp_path / "backups").exists()

    # --dry-run refuses the same way (in-process: the subprocess above covers the real script)
    capsys.readouterr()
    assert run(["-c", str(ini), "init", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == lines
    assert snapshot_files(tmp_path) == files


def test_refuses_configure_in_a_one_line_compound_statement(tmp_path: Path) -> None:
    ini = make_project(tmp_path)
    env_py(tmp_path).write_text(SHARED_LINE_ENV.replace("x = 1; ", "if u: "), encoding="utf-8")
    files = snapshot_files(tmp_path)
    assert run(["-c", str(ini), "init"]) == 2
    assert snapshot_files(tmp_path) == files


def test_refuses_a_shared_line_after_non_ascii_arguments(tmp_path: Path) -> None:
    """ast's end_col_offset counts UTF-8 bytes, not characters: the code after the call must
    still be seen when the call's arguments hold non-ASCII text."""
    ini = make_project(tmp_path)
    env_py(tmp_path).write_text(
        SHARED_LINE_ENV.replace("x = 1; context.configure(url=u)", 'context.configure(url="ññ");x'),
        encoding="utf-8",
    )  # fmt: skip
    files = snapshot_files(tmp_path)
    assert run(["-c", str(ini), "init"]) == 2
    assert snapshot_files(tmp_path) == files


# -- 5. aliases and unusual but valid env.py files -------------------------------------------
def test_context_alias_is_used_in_the_inserted_line(tmp_path: Path) -> None:
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    text = env.read_text(encoding="utf-8")
    aliased = text.replace("from alembic import context", "from alembic import context as ctx")
    aliased = re.sub(r"\bcontext\.", "ctx.", aliased)
    assert "context." not in aliased
    env.write_text(aliased, encoding="utf-8")

    assert run(["-c", str(ini), "init"]) == 0
    after = env.read_text(encoding="utf-8")
    assert_wired(aliased, after, ctx="ctx")
    assert after.count("alembic_safety.install(ctx)") == 2
    assert INSTALL not in after


def test_trailing_comment_on_the_configure_line_is_fine(tmp_path: Path) -> None:
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    text = SHARED_LINE_ENV.replace("x = 1; context.configure(url=u)",
                                   "context.configure(url=u)  # ; not code")  # fmt: skip
    env.write_text(text, encoding="utf-8")
    assert run(["-c", str(ini), "init"]) == 0
    assert_wired(text, env.read_text(encoding="utf-8"))


def test_crlf_files_keep_their_line_endings(tmp_path: Path) -> None:
    """A CRLF env.py/alembic.ini (Windows checkout) gets CRLF lines added, and nothing else in
    it changes: the diff shown is the change made."""
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    lf_env, lf_ini = env.read_bytes(), ini.read_bytes()
    assert b"\r" not in lf_env + lf_ini
    env.write_bytes(lf_env.replace(b"\n", b"\r\n"))
    ini.write_bytes(lf_ini.replace(b"\n", b"\r\n"))

    assert run(["-c", str(ini), "init"]) == 0
    for path in (env, ini):
        data = path.read_bytes()
        assert b"\n" not in data.replace(b"\r\n", b""), f"{path.name}: bare LF written"

    # the same result as wiring the LF files, line for line
    lf_root = tmp_path / "lf"
    lf_root.mkdir()
    lf = make_project(lf_root)
    assert run(["-c", str(lf), "init"]) == 0
    assert env.read_bytes() == env_py(lf_root).read_bytes().replace(b"\n", b"\r\n")
    # the two alembic.ini differ only in their (absolute) script_location
    lf_ini = lf.read_bytes().replace(str(lf_root).encode(), str(tmp_path).encode())
    assert ini.read_bytes() == lf_ini.replace(b"\n", b"\r\n")
    assert_ini_wired(ini)


def test_form_feed_and_unicode_line_separators_do_not_shift_lines(tmp_path: Path) -> None:
    """Only \\n, \\r\\n and \\r end a Python line; a form feed in a comment or U+2028 in a
    string must not move the inserted lines."""
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    text = env.read_text(encoding="utf-8").replace(
        "# this is the Alembic Config object",
        "\x0c\n# page break above; NOTE = 'a\u2028b'\nNOTE = 'a\u2028b\x0cc'\n"
        "# this is the Alembic Config object",
    )  # fmt: skip
    env.write_text(text, encoding="utf-8")

    assert run(["-c", str(ini), "init"]) == 0
    after = env.read_text(encoding="utf-8")
    assert "NOTE = 'a\u2028b\x0cc'\n" in after
    tree = ast.parse(after)
    for func, _, nxt in configure_sites(after):
        assert nxt is not None and _is_attr_call(nxt, "alembic_safety", "install"), func
    assert any(isinstance(n, ast.Import) and n.names[0].name == "alembic_safety" for n in tree.body)
    # every inserted line is a whole line of its own
    lines = re.split(r"\r\n|\r|\n", after)
    assert sum(line.strip() == INSTALL for line in lines) == 2
    assert sum(line == "import alembic_safety" for line in lines) == 1


def test_form_feed_never_puts_install_before_configure(tmp_path: Path) -> None:
    """With lines counted by str.splitlines, this env.py used to get the install line *above*
    context.configure(...) — valid Python that fails at the next ``alembic upgrade``."""
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    header = "from alembic import context\n"
    text = SHARED_LINE_ENV.replace("x = 1; ", "\n").replace(header, header + "# \x0c\n")
    env.write_text(text, encoding="utf-8")
    assert run(["-c", str(ini), "init"]) == 0
    after = env.read_text(encoding="utf-8")
    assert f"context.configure(url=u)\n{INSTALL}\nwith context" in after
    assert after.replace(f"{INSTALL}\n", "").replace("import alembic_safety\n", "") == text


def test_utf8_bom_env_py_is_wired_and_keeps_its_bom(tmp_path: Path) -> None:
    """Python runs a BOM-prefixed env.py (Windows editors write them), so init must too."""
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    text = env.read_text(encoding="utf-8")
    env.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))

    assert run(["-c", str(ini), "init"]) == 0
    data = env.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert_wired(text, data[3:].decode("utf-8"))


def test_no_trailing_newline_in_either_file(tmp_path: Path) -> None:
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    text = SHARED_LINE_ENV.replace("x = 1; ", "").replace(
        "with context.begin_transaction():\n    context.run_migrations()\n", ""
    ).rstrip("\n")  # fmt: skip
    assert text.endswith("context.configure(url=u)")
    env.write_text(text, encoding="utf-8")
    ini_text = ini.read_text(encoding="utf-8").rstrip("\n")
    ini.write_text(ini_text, encoding="utf-8")

    assert run(["-c", str(ini), "init"]) == 0
    assert_wired(text, env.read_text(encoding="utf-8"))
    assert env.read_text(encoding="utf-8").endswith(f"context.configure(url=u)\n{INSTALL}\n")
    assert ini.read_text(encoding="utf-8").startswith(ini_text + "\n")
    assert_ini_wired(ini)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini, encoding="utf-8")
    assert parser.get("formatter_generic", "datefmt") == "%H:%M:%S"


def test_file_permissions_are_kept(tmp_path: Path) -> None:
    ini = make_project(tmp_path)
    env = env_py(tmp_path)
    env.chmod(0o640)
    ini.chmod(0o600)
    assert run(["-c", str(ini), "init"]) == 0
    assert env.stat().st_mode & 0o7777 == 0o640
    assert ini.stat().st_mode & 0o7777 == 0o600
    assert not list(env.parent.glob("*.alembic-safety.tmp"))


# -- 6. a wired project snapshots during a real `alembic upgrade` ------------------------------
REVISION = '''\
"""{message}

Revision ID: {revision}
Revises: {down_repr}
"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None

{body}
'''

CREATE = '''
def {fn}() -> None:
    table = op.create_table(
        {table!r},
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column({column!r}, sa.Text),{extra}
    )
    op.bulk_insert(table, [{{"id": i, {column!r}: f"row {{i}}"}} for i in range(1, {rows} + 1)])


def {down_fn}() -> None:
    op.drop_table({table!r})
'''

DROP = '''
def {fn}() -> None:
    with op.batch_alter_table({table!r}) as b:
        b.drop_column({column!r})


def {down_fn}() -> None:
    with op.batch_alter_table({table!r}) as b:
        b.add_column(sa.Column({column!r}, sa.Text))
'''

MULTIDB_DISPATCH = '''
def upgrade(engine_name: str) -> None:
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name: str) -> None:
    globals()["downgrade_%s" % engine_name]()
'''

REV1, REV2 = "aaaa00000001", "bbbb00000002"


Tables = dict[str, tuple[str, str, int, bool]]


def write_revisions(versions: Path, tables: Tables) -> None:
    """Two revisions: create+fill each table, then drop its text column in batch mode.
    ``tables``: engine name (or "" for a single database) -> (table, text column, rows, whether
    the table has a third column ``kept`` that the second revision leaves alone)."""
    for revision, down, message, body in (
        (REV1, None, "create and fill", CREATE),
        (REV2, REV1, "drop the text column", DROP),
    ):
        parts = [MULTIDB_DISPATCH] if "" not in tables else []
        for engine, (table, column, rows, kept) in tables.items():
            suffix = f"_{engine}" if engine else ""
            extra = '\n        sa.Column("kept", sa.Integer),' if kept else ""
            parts.append(body.format(fn=f"upgrade{suffix}", down_fn=f"downgrade{suffix}",
                                     table=table, column=column, rows=rows,
                                     extra=extra))  # fmt: skip
        (versions / f"{revision}_rev.py").write_text(
            REVISION.format(message=message, revision=revision, down=down,
                            down_repr=down or "", body="\n".join(parts)),
            encoding="utf-8",
        )  # fmt: skip


def upgrade_and_check(root: Path, ini: Path, expect: Tables) -> dict[str, dict[str, object]]:
    """``alembic upgrade head`` for real, then one verified backup per database, before
    REV2, holding the table's key and dropped column for every row.  When key + dropped column
    are every column of the table, the policy records the table whole (``columns`` null)."""
    up = subprocess.run(
        [ALEMBIC, "-c", str(ini), "upgrade", "head"], cwd=root, env=_subprocess_env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr

    listing = cli("-c", str(ini), "backups", "--format", "json", cwd=root)
    assert listing.returncode == 0, listing.stderr
    backups = json.loads(listing.stdout)
    assert isinstance(backups, list)
    assert len(backups) == len(expect), backups
    seen, manifests = {}, {}
    for b in backups:
        assert b["complete"] is True
        assert b["direction"] == "upgrade"
        assert (b["revision_from"], b["revision_to"]) == (REV1, REV2)
        assert len(b["tables"]) == 1, b
        entry = b["tables"][0]
        seen[entry["name"]] = (entry["columns"], entry["rows"])

        shown = cli("-c", str(ini), "show", b["id"], "--verify", "--format", "json", cwd=root)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        manifests[entry["name"]] = json.loads(shown.stdout)
        verified = manifests[entry["name"]]["verify"]
        assert verified and all(v["ok"] for v in verified), verified
    assert seen == {
        table: (["id", column] if kept else None, rows)
        for table, column, rows, kept in expect.values()
    }
    return manifests


def _sqlite_url(path: Path, driver: str = "sqlite") -> str:
    return f"{driver}:///{path}"


PLACEHOLDER = "driver://user:pass@localhost/dbname"


def _set_urls(ini: Path, *urls: str) -> None:
    text = ini.read_text(encoding="utf-8")
    if len(urls) == 1:
        assert text.count(PLACEHOLDER) == 1
        text = text.replace(PLACEHOLDER, urls[0])
    else:
        assert "databases = engine1, engine2" in text
        assert text.count(PLACEHOLDER + "2") == 1
        text = text.replace(PLACEHOLDER + "2", urls[1])
        assert text.count(PLACEHOLDER) == 1
        text = text.replace(PLACEHOLDER, urls[0])
    ini.write_text(text, encoding="utf-8")


def test_e2e_generic(tmp_path: Path) -> None:
    ini = make_project(tmp_path, "generic")
    _set_urls(ini, "sqlite:///%(here)s/t.db")
    assert run(["-c", str(ini), "init"]) == 0
    write_revisions(tmp_path / "migrations" / "versions", {"": ("t", "note", 3, True)})
    upgrade_and_check(tmp_path, ini, {"": ("t", "note", 3, True)})


def test_e2e_multidb(tmp_path: Path) -> None:
    ini = make_project(tmp_path, "multidb")
    _set_urls(ini, "sqlite:///%(here)s/one.db", "sqlite:///%(here)s/two.db")
    assert run(["-c", str(ini), "init"]) == 0
    tables = {"engine1": ("t", "note", 3, True), "engine2": ("u", "body", 2, False)}
    write_revisions(tmp_path / "migrations" / "versions", tables)
    manifests = upgrade_and_check(tmp_path, ini, tables)
    # each backup names its own database
    dbs = {table: str(m["database"]) for table, m in manifests.items()}
    assert dbs["t"].endswith("one.db") and dbs["u"].endswith("two.db"), dbs


@pytest.mark.parametrize("template", [t for t in ("async", "pyproject_async") if t in TEMPLATES])
def test_e2e_async(tmp_path: Path, template: str) -> None:
    pytest.importorskip("aiosqlite")
    ini = make_project(tmp_path, template)
    _set_urls(ini, "sqlite+aiosqlite:///%(here)s/t.db")
    assert run(["-c", str(ini), "init"]) == 0
    write_revisions(tmp_path / "migrations" / "versions", {"": ("t", "note", 3, True)})
    upgrade_and_check(tmp_path, ini, {"": ("t", "note", 3, True)})
