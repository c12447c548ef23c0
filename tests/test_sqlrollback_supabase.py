"""sql-rollback on a Supabase-like folder of 29 migrations (tests/examples/supabase): profiles,
posts, comments, RLS policies, triggers (one on auth.users), functions, enums, views, a
materialized view, grants, comments, a private schema, seeds, a DO block, a concurrent index.

The migrations run through psql, as `supabase db push` would; the rollback scripts too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic_safety.reverse.schema import SchemaState, diff
from alembic_safety.sqlrollback import forward_files, read_header, rollback_paths, sync_folder, version
from alembic_safety.sqlrollback.replay import database_state

from .helpers import safety

EXAMPLE = Path(__file__).parent / "examples" / "supabase"
ADD_VALUE = "20240301001800_archived_status.sql"  # PostgreSQL cannot drop an enum value: a MANUAL line

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _libpq(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _psql(url: sa.URL, path: Path) -> None:
    proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", _libpq(url), "-f", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, f"{path.name}: {proc.stderr}"


def _state(engine: sa.Engine) -> SchemaState:
    with engine.connect() as conn:
        return database_state(conn)


def _project(tmp_path: Path, url: sa.URL) -> tuple[Path, sa.Engine]:
    folder = tmp_path / "supabase" / "migrations"
    shutil.copytree(EXAMPLE / "migrations", folder)
    _psql(url, EXAMPLE / "platform.sql")
    return folder, sa.create_engine(url, poolclass=sa.pool.NullPool)


def _record(engine: sa.Engine, forward: Path) -> None:
    """What the Supabase CLI does after applying a migration."""
    history = sa.table("schema_migrations", sa.column("version"), sa.column("name"), schema="supabase_migrations")
    with engine.begin() as conn:
        conn.execute(sa.insert(history).values(version=version(forward), name=forward.stem.split("_", 1)[1]))


def _enum_value_only(left: tuple[str, ...]) -> bool:
    """The only difference is the enum value ADD VALUE left behind (its MANUAL line says so)."""
    return bool(left) and all("post_status" in line and "archived" in line for line in left)


def test_folder_round_trips_forward_and_back(tmp_path: Path, pg_url: sa.URL) -> None:
    folder, engine = _project(tmp_path, pg_url)
    forwards = forward_files(folder)
    assert len(forwards) >= 25
    start = _state(engine)

    # generation replays the folder on the database in a rolled-back transaction: nothing is kept
    proc = safety(None, "sql-rollback", str(folder), "--scratch-url", _libpq(pg_url), "--emergency")
    assert f"{2 * len(forwards) + 1} written" in proc.stdout
    assert diff(start, _state(engine)) == ()
    for forward in forwards:
        header = read_header(rollback_paths(forward)[0].read_text())
        assert header is not None and header.before_state == "database"

    # apply every migration (recording the state before each), then roll back newest first:
    # after each rollback the schema is what it was before that migration
    before: list[SchemaState] = []
    for forward in forwards:
        before.append(_state(engine))
        _psql(pg_url, forward)
        _record(engine, forward)
        assert diff(before[-1], _state(engine)) or "seed" in forward.name or "backfill" in forward.name, forward.name
    value_left = False
    for forward, expected in reversed(list(zip(forwards, before, strict=True))):
        _psql(pg_url, rollback_paths(forward)[0])
        left = diff(expected, _state(engine))
        if forward.name == ADD_VALUE or (value_left and left):
            assert _enum_value_only(left), (forward.name, left)
            value_left = True
        elif forward.name.endswith("_enums.sql"):
            assert left == (), (forward.name, left)
            value_left = False
        elif forward.name.endswith("_extensions.sql"):  # kept, as its MANUAL lines say
            assert left and all(line.startswith("extension ") for line in left), left
        else:
            assert left == (), (forward.name, left)
    end = _state(engine)
    left = diff(start, end)
    assert left and all("extension" in line.lower() for line in left), left  # extensions are kept
    engine.dispose()


def test_scripts_name_what_a_human_decides(tmp_path: Path, pg_url: sa.URL) -> None:
    folder, engine = _project(tmp_path, pg_url)
    safety(None, "sql-rollback", str(folder), "--scratch-url", _libpq(pg_url), "--emergency")
    script = {f.name: rollback_paths(f)[0].read_text() for f in forward_files(folder)}
    assert "-- MANUAL: decide by hand: INSERT into public.tags" in script["20240301001300_seed_tags.sql"]
    assert "PostgreSQL cannot drop a value from an enum type" in script[ADD_VALUE]
    assert "a DO block runs procedural code" in script["20240301002700_backfill.sql"]
    assert "alembic-safety rollback" not in "".join(script.values())  # no Alembic advice for raw SQL folders
    assert "DROP TRIGGER IF EXISTS on_auth_user_created ON auth.users;" in script["20240301000300_handle_new_user.sql"]
    assert "auth.users" not in script["20240301000200_profiles.sql"].split("BEGIN;", 1)[1].replace(
        "-- undoes:", "").split("DROP TABLE")[1].split(";")[0]  # the platform's table is never dropped
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.posts_created_at_idx;" in script[
        "20240301002500_concurrent_index.sql"].split("BEGIN;")[0]
    # a dropped column comes back with its type (read from the replay)
    assert "ALTER TABLE public.profiles ADD COLUMN website TEXT;" in script["20240301002100_drop_website.sql"]
    # the view dropped and recreated comes back with its earlier definition and its grants
    v2 = script["20240301002600_feed_view_v2.sql"]
    assert "GRANT SELECT ON TABLE public.published_posts TO anon" in v2.replace('"', "")
    # checked without a database, the files made from one stay current
    assert safety(None, "sql-rollback", str(folder), "--check", "--emergency").returncode == 0
    plan = (folder / "EMERGENCY_ROLLBACK_PLAN.md").read_text()
    assert "--apply 20240301002700" in plan and "20240301002800_moderation_rollback.sql" in plan
    engine.dispose()


def test_without_a_database_what_the_text_cannot_tell_is_manual(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(EXAMPLE / "migrations", folder)
    sync_folder(folder)
    script = {f.name: rollback_paths(f)[0].read_text() for f in forward_files(folder)}
    drop_website = script["20240301002100_drop_website.sql"]
    assert "-- MANUAL: decide by hand: column website of public.profiles is not defined in the earlier files" in (
        drop_website)
    assert "IRREVERSIBLE" not in "".join(script.values())
    # definitions the text does tell: the policy replaced in a later file, the view, the function
    policy = script["20240301001900_policy_update.sql"]
    assert "create policy \"Published posts are public\" on public.posts\n  for select using (status = 'published')" in (
        policy)
    v2 = script["20240301002600_feed_view_v2.sql"]
    assert "create or replace function public.get_feed(max_rows integer default 20" in v2
    assert "create view public.published_posts" in v2
    assert safety(None, "sql-rollback", str(folder), "--check").returncode == 0
