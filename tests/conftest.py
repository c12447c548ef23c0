"""Fixtures for real databases: PostgreSQL (pytest-postgresql's noproc factory on the running
server, a fresh database per test), MariaDB (a fresh database per test) and SQLite (a file).

Host, port and user come from ALEMBIC_SAFETY_PG_HOST/PORT/USER/PASSWORD and
ALEMBIC_SAFETY_MYSQL_HOST/PORT/USER/PASSWORD.  An unreachable server skips its tests, unless
ALEMBIC_SAFETY_REQUIRE_DBS=1 (as in CI): then it fails them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_postgresql import factories

PG_HOST = os.environ.get("ALEMBIC_SAFETY_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ALEMBIC_SAFETY_PG_PORT", "5432"))
PG_USER = os.environ.get("ALEMBIC_SAFETY_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("ALEMBIC_SAFETY_PG_PASSWORD") or None
MY_HOST = os.environ.get("ALEMBIC_SAFETY_MYSQL_HOST", "127.0.0.1")
MY_PORT = int(os.environ.get("ALEMBIC_SAFETY_MYSQL_PORT", "3306"))
MY_USER = os.environ.get("ALEMBIC_SAFETY_MYSQL_USER", "root")
MY_PASSWORD = os.environ.get("ALEMBIC_SAFETY_MYSQL_PASSWORD", "")
REQUIRE_DBS = os.environ.get("ALEMBIC_SAFETY_REQUIRE_DBS") == "1"
EXAMPLES = Path(__file__).parent / "examples"

# a database name per pytest process, so parallel runs on one server never collide
postgresql_noproc = factories.postgresql_noproc(
    host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname=f"as_test_{os.getpid()}"
)
postgresql = factories.postgresql("postgresql_noproc")


def unreachable(what: str, exc: BaseException) -> None:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = f"{what} is not reachable ({type(exc).__name__}: {first_line})"
    if REQUIRE_DBS:
        pytest.fail(message + "; ALEMBIC_SAFETY_REQUIRE_DBS=1 makes this a failure", pytrace=False)
    pytest.skip(message)


_pg_ok: bool | None = None


def _check_pg() -> None:
    global _pg_ok
    if _pg_ok:
        return
    import psycopg

    try:
        psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD,
                        dbname="postgres", connect_timeout=3).close()  # fmt: skip
    except Exception as exc:
        unreachable(f"PostgreSQL at {PG_HOST}:{PG_PORT}", exc)
    _pg_ok = True


def pg_url_for(dbname: str, driver: str = "psycopg2") -> sa.URL:
    return sa.URL.create(f"postgresql+{driver}", username=PG_USER, password=PG_PASSWORD,
                         host=PG_HOST, port=PG_PORT, database=dbname)  # fmt: skip


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> sa.URL:
    """A fresh PostgreSQL database (psycopg2 driver URL)."""
    _check_pg()
    conn = request.getfixturevalue("postgresql")
    return pg_url_for(conn.info.dbname)


@pytest.fixture(params=["psycopg2", "psycopg"])
def pg_driver_url(request: pytest.FixtureRequest) -> sa.URL:
    """A fresh PostgreSQL database, once per driver (SQLAlchemy 2.1 maps postgresql:// to psycopg 3)."""
    _check_pg()
    conn = request.getfixturevalue("postgresql")
    return pg_url_for(conn.info.dbname, request.param)


def my_url_for(dbname: str | None) -> sa.URL:
    return sa.URL.create("mysql+pymysql", username=MY_USER, password=MY_PASSWORD or None,
                         host=MY_HOST, port=MY_PORT, database=dbname)  # fmt: skip


@pytest.fixture
def mariadb_url() -> Iterator[sa.URL]:
    """A fresh MariaDB/MySQL database, dropped afterwards."""
    import pymysql

    name = f"as_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password=MY_PASSWORD,
                                connect_timeout=3, autocommit=True)  # fmt: skip
    except Exception as exc:
        unreachable(f"MariaDB at {MY_HOST}:{MY_PORT}", exc)
        raise
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield my_url_for(name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"DROP DATABASE IF EXISTS `alembic_safety_{name}`")  # the database store's
        admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> sa.URL:
    return sa.URL.create("sqlite", database=str(tmp_path / "test.db"))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_url(request: pytest.FixtureRequest) -> sa.URL:
    """The same test on each of the three databases."""
    name = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mariadb_url"}[request.param]
    url: sa.URL = request.getfixturevalue(name)
    return url


@pytest.fixture
def engine_for() -> Iterator[object]:
    """engine_for(url) -> Engine, disposed at the end of the test."""
    engines: list[sa.Engine] = []

    def make(url: sa.URL | str) -> sa.Engine:
        engine = sa.create_engine(url)
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.dispose()


def copy_example(name: str, dest: Path, url: sa.URL, **settings: str) -> Path:
    """Copy tests/examples/<name> to ``dest`` and point its alembic.ini at ``url``; returns
    the ini path.  ``settings`` go into [alembic_safety]."""
    shutil.copytree(EXAMPLES / name, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    ini = dest / "alembic.ini"
    text = ini.read_text()
    rendered = url.render_as_string(hide_password=False).replace("%", "%%")
    text = text.replace("sqlalchemy.url = URL", f"sqlalchemy.url = {rendered}")
    extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
    text = text.replace("[alembic_safety]\n", "[alembic_safety]\n" + extra)
    ini.write_text(text)
    return ini
