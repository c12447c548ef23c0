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
    assert "-- MANUAL: decide by hand: column website of public.profiles is not known from the earlier files' text" in (
        drop_website)
    assert "IRREVERSIBLE" not in "".join(script.values())
    # definitions the text does tell: the policy replaced in a later file, the view, the function
    policy = script["20240301001900_policy_update.sql"]
    earlier = "create policy \"Published posts are public\" on public.posts\n  for select using (status = 'published')"
    assert earlier in policy
    v2 = script["20240301002600_feed_view_v2.sql"]
    assert "create or replace function public.get_feed(max_rows integer default 20" in v2
    assert "create view public.published_posts" in v2
    assert safety(None, "sql-rollback", str(folder), "--check").returncode == 0


def _applied(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT version FROM supabase_migrations.schema_migrations "
                                         "ORDER BY version").scalars())  # fmt: skip


def test_apply_rolls_back_newest_first_in_one_transaction(tmp_path: Path, pg_url: sa.URL) -> None:
    folder, engine = _project(tmp_path, pg_url)
    forwards = forward_files(folder)
    safety(None, "sql-rollback", str(folder), "--scratch-url", _libpq(pg_url))
    target = "20240301002000"
    states: dict[str, SchemaState] = {}
    for forward in forwards:
        _psql(pg_url, forward)
        _record(engine, forward)
        states[version(forward)] = _state(engine)
    with engine.begin() as conn:  # rows written since the deploy, in a table the rollback drops
        conn.exec_driver_sql("INSERT INTO auth.users (id) VALUES ('00000000-0000-0000-0000-000000000001')")
        conn.exec_driver_sql("INSERT INTO public.posts (author_id, title) VALUES "
                             "('00000000-0000-0000-0000-000000000001', 'kept in the backup')")  # fmt: skip
        conn.exec_driver_sql("INSERT INTO public.reports (post_id, reason) SELECT id, 'spam' FROM public.posts")
    url = _libpq(pg_url)
    backups = tmp_path / "backups"
    base = ("sql-rollback", str(folder), "--apply", target, "--url", url, "--backup-dir", str(backups))

    # the plan: newest first, the manual steps, the tables backed up, the code; nothing changes
    dry = safety(None, *base, "--dry-run")
    assert dry.stdout.index("20240301002800_moderation_rollback.sql") < dry.stdout.index(
        "20240301002100_drop_website_rollback.sql")
    assert "20240301002000_avatars_bucket_rollback.sql" not in dry.stdout  # TARGET stays applied
    assert "MANUAL: decide by hand: a DO block" in dry.stdout and "public.reports" in dry.stdout
    code = dry.stdout.split("confirmation code: ")[1].split()[0]
    assert _applied(engine)[-1] == "20240301002800" and not backups.exists()

    # no code, a wrong code: refused, nothing changed
    refused = safety(None, *base, check=False)
    assert refused.returncode == 2 and "no terminal and no --confirm" in refused.stderr
    wrong = safety(None, *base, "--confirm", "ZZZZZZ", check=False)
    assert wrong.returncode == 2 and "confirmation code wrong" in wrong.stderr
    assert _applied(engine)[-1] == "20240301002800" and diff(states["20240301002800"], _state(engine)) == ()

    done = safety(None, *base, "--confirm", code)
    assert f"rolled back to {target}: 8 script(s)" in done.stdout and "pre-rollback backup" in done.stdout
    assert diff(states[target], _state(engine)) == ()
    assert _applied(engine)[-1] == target
    # the rows of the dropped table are in the pre-rollback backup, checksummed
    manifest = next(backups.glob("*/manifest.json")).read_text()
    assert '"public.reports"' in manifest or '"reports"' in manifest
    assert "sql_rollback_completed" in (backups / "audit.jsonl").read_text()
    # again: nothing newer than TARGET is applied any more
    assert "nothing to roll back" in safety(None, *base, "--confirm", code).stdout
    engine.dispose()


def test_apply_that_fails_changes_nothing(tmp_path: Path, pg_url: sa.URL) -> None:
    folder, engine = _project(tmp_path, pg_url)
    forwards = forward_files(folder)
    safety(None, "sql-rollback", str(folder), "--scratch-url", _libpq(pg_url))
    for forward in forwards:
        _psql(pg_url, forward)
        _record(engine, forward)
    before = _state(engine)
    # a hand-edited script (kept as edited) whose statement fails half-way through the rollback
    script = rollback_paths(folder / "20240301002400_rename_comment_body.sql")[0]
    script.write_text(script.read_text().replace("RENAME COLUMN content TO body", "RENAME COLUMN nope TO body"))
    base = ("sql-rollback", str(folder), "--apply", "20240301002000", "--url", _libpq(pg_url),
            "--backup-dir", str(tmp_path / "backups"))  # fmt: skip
    dry = safety(None, *base, "--dry-run")
    assert "edited by hand: runs as edited" in dry.stdout
    code = dry.stdout.split("confirmation code: ")[1].split()[0]
    failed = safety(None, *base, "--confirm", code, check=False)
    assert failed.returncode == 2, failed.stderr
    assert "20240301002400_rename_comment_body_rollback.sql" in failed.stderr
    assert "the transaction was rolled back, the database is as it was" in failed.stderr
    assert "Traceback" not in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert diff(before, _state(engine)) == () and _applied(engine)[-1] == "20240301002800"
    # a stale script (its migration changed since) is refused before anything runs
    moderation = folder / "20240301002800_moderation.sql"
    moderation.write_text(moderation.read_text() + "\ncreate index reports_post_id_idx on public.reports (post_id);\n")
    stale = safety(None, *base, "--dry-run", check=False)
    assert stale.returncode == 2 and "is stale" in stale.stderr
    unknown = safety(None, "sql-rollback", str(folder), "--apply", "19990101", "--url", _libpq(pg_url), check=False)
    assert unknown.returncode == 2 and "unknown migration '19990101'" in unknown.stderr
    engine.dispose()
