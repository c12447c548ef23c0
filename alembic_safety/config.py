"""SafetyConfig: the ``[alembic_safety]`` settings, with ``-x`` and environment overrides.

Precedence, highest first: ``-x key=value`` on the command line, ``ALEMBIC_SAFETY_KEY``
environment variables, the ``[alembic_safety]`` section of alembic.ini, the defaults below.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

SECTION = "alembic_safety"
ENV_PREFIX = "ALEMBIC_SAFETY_"

POLICIES = ("at-risk", "touched", "all", "none")
STORES = ("auto", "files", "database")
OVERSIZE = ("error", "warn")
CHECK_MODES = ("on", "warn", "off")
CHECK_POLICIES = ("error", "warn", "off")
DATABASE_STORE_DIALECTS = ("postgresql", "mysql", "mariadb")  # where a schema can hold snapshots


@dataclass(frozen=True)
class Setting:
    """One documented setting: its key, its default as written in alembic.ini, and its help."""

    key: str
    default: str
    help: str


# The single source of the settings' names, defaults and documentation: the parser below,
# the alembic.ini section that ``init`` writes and the README's reference all come from here.
SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", "true", "false turns every hook off (alembic runs as if we were absent)"),
    Setting(
        "backup_dir", "backups",
        "where backups and the audit log live; relative to this file; or s3://bucket/prefix (the [s3] extra): "
        "backups in object storage",
    ),
    Setting(
        "backup_cache_dir", "",
        "with an s3:// backup_dir: the local working folder (backups being written or read, the audit log); "
        "empty: ~/.cache/alembic-safety/<hash of the URL>; relative to this file",
    ),
    Setting(
        "store", "auto",
        "where snapshots are kept: database (a schema beside the data), files, or auto (database on "
        "PostgreSQL and MySQL/MariaDB, files elsewhere)",
    ),
    Setting(
        "snapshot_schema", "",
        "the schema of the database store (empty: alembic_safety on PostgreSQL; on MySQL/MariaDB, where a "
        "schema is a database, alembic_safety_<database>)",
    ),
    Setting("snapshot", "at-risk", "what each step snapshots: at-risk | touched | all | none"),
    Setting("include_tables", "", "only these tables are ever snapshotted (comma-separated globs)"),
    Setting("exclude_tables", "", "these tables are never snapshotted (comma-separated globs)"),
    Setting(
        "max_snapshot_bytes", "0", "refuse a step whose snapshot grows past this (0 = no limit)"
    ),
    Setting("oversize", "error", "what happens past max_snapshot_bytes: error | warn"),
    Setting("keep", "10", "complete backups kept after each new one (0 = keep all)"),
    Setting("compression_level", "3", "zstd level for snapshot files, 1 (fast) to 19"),
    Setting("lock_timeout", "10s", "how long to wait for the at-risk tables' lock (0 = forever)"),
    Setting(
        "parallel_snapshot_workers", "4",
        "PostgreSQL, files store: connections that copy a step's large tables at once, sharing the migration's "
        "snapshot (the migration's own included; 1 = one table after the other)",
    ),
    Setting(
        "parallel_snapshot_min_rows", "1000000",
        "a table counts as large for the parallel snapshot from this many estimated rows; two or more large "
        "tables in one step are copied in parallel",
    ),
    Setting(
        "scratch_url", "",
        "a server where generate may create (and drop) a temporary database to replay the history; "
        "empty: a temporary SQLite file for SQLite projects",
    ),
    Setting(
        "checks", "on",
        "integrity checks after each step: on (each check's own policy), warn (report, never refuse), off",
    ),
    Setting(
        "check_policies", "",
        "per-check policy overrides, comma-separated CODE=error|warn|off (or name=...), e.g. CHK302=error",
    ),
    Setting(
        "check_exact_rows", "100000",
        "tables up to this many (estimated) rows are counted exactly by the checks; larger ones by estimate",
    ),
    Setting("check_sample_rows", "5", "offending rows shown per check finding"),
    Setting("long_transaction", "5min", "health: a transaction open longer than this is reported"),
    Setting(
        "templates_dir", "",
        "a folder of your own copies of the docs/emergency/status templates (same names), tried before the "
        "shipped ones; relative to this file",
    ),
    Setting("stop_app_command", "", "the command that stops the application, quoted in the emergency plan"),
    Setting("maintenance_command", "", "the command that turns maintenance mode on, quoted in the emergency plan"),
    Setting(
        "encryption_key_env", "",
        "the name of an environment variable holding a key (openssl rand -base64 32): the files store "
        "encrypts backup data with it; empty: not encrypted",
    ),
    Setting(
        "notify_url", "",
        "a webhook (Slack-compatible) that receives a JSON event on a refused step, a rollback and a failed "
        "health check",
    ),
)
KEYS = frozenset(s.key for s in SETTINGS)
DEFAULTS = {s.key: s.default for s in SETTINGS}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2, "mi": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4, "ti": 1024**4,
}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$", re.IGNORECASE)
_SECONDS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_DURATION = (2**31 - 1) // 1000  # seconds


@dataclass(frozen=True)
class SafetyConfig:
    """Validated settings. Build it with :func:`load_config`, or directly in tests."""

    backup_dir: Path  # the local folder; with backup_url, the working folder mirrored to the bucket
    backup_url: str = ""  # s3://bucket/prefix when backups live in object storage (snapshot/remote.py)
    enabled: bool = True
    store: str = "auto"
    snapshot_schema: str = ""
    snapshot: str = "at-risk"
    include_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    max_snapshot_bytes: int | None = None
    oversize: str = "error"
    keep: int = 10
    compression_level: int = 3
    lock_timeout: float = 10.0
    parallel_snapshot_workers: int = 4
    parallel_snapshot_min_rows: int = 1_000_000
    scratch_url: str = ""
    checks: str = "on"
    check_policies: tuple[tuple[str, str], ...] = ()  # (code or name, error|warn|off)
    check_exact_rows: int = 100_000
    check_sample_rows: int = 5
    long_transaction: float = 300.0
    templates_dir: Path | None = None
    stop_app_command: str = ""
    maintenance_command: str = ""
    notify_url: str = ""
    encryption_key_env: str = ""  # the variable's name; the key itself is read when a backup needs it
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def store_for(self, dialect_name: str) -> str:
        """The store used on this dialect: ``auto`` means the database where it can hold one."""
        if self.store != "auto":
            return self.store
        return "database" if dialect_name in DATABASE_STORE_DIALECTS else "files"

    def wants_table(self, name: str) -> bool:
        """Whether include/exclude lists allow snapshotting ``name`` (``schema.table`` or bare)."""
        short = name.rsplit(".", 1)[-1]

        def match(patterns: tuple[str, ...]) -> bool:
            return any(
                fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(short, p) for p in patterns
            )

        if self.include_tables and not match(self.include_tables):
            return False
        return not match(self.exclude_tables)

    @property
    def audit_path(self) -> Path:
        return self.backup_dir / "audit.jsonl"

    @property
    def backup_location(self) -> str:
        """Where backups live, as the user wrote it: the bucket URL or the folder."""
        return self.backup_url or str(self.backup_dir)


def parse_bool(value: str, key: str, origin: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} = {value!r} ({origin}) is not a boolean; use true or false")


def parse_size(value: str, key: str, origin: str) -> int | None:
    m = _SIZE.match(value)
    if not m:
        raise ConfigError(
            f"{key} = {value!r} ({origin}) is not a size; use bytes or a unit like 500MB, 2GiB"
        )
    n = int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
    return n or None


def parse_duration(value: str, key: str, origin: str) -> float:
    m = _DURATION.match(value)
    if not m:
        raise ConfigError(
            f"{key} = {value!r} ({origin}) is not a duration; use seconds or 500ms, 10s, 2min"
        )
    seconds = float(m.group(1)) * _SECONDS[(m.group(2) or "").lower()]
    if seconds > MAX_DURATION:  # PostgreSQL's timeouts are whole milliseconds in a 32-bit integer
        raise ConfigError(f"{key} = {value!r} ({origin}) is too long; at most {MAX_DURATION // 86400} days")
    return seconds


def parse_int(value: str, key: str, origin: str, low: int, high: int) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        n = low - 1
    if not low <= n <= high:
        raise ConfigError(f"{key} = {value!r} ({origin}) must be a whole number {low}..{high}")
    return n


def parse_choice(value: str, key: str, origin: str, choices: tuple[str, ...]) -> str:
    v = value.strip().lower()
    if v not in choices:
        raise ConfigError(f"{key} = {value!r} ({origin}) must be one of: {' | '.join(choices)}")
    return v


def parse_identifier(value: str, key: str, origin: str) -> str:
    v = value.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", v):
        raise ConfigError(f"{key} = {value!r} ({origin}) must be a plain identifier (letters, digits, _)")
    return v


def parse_policies(value: str, key: str, origin: str) -> tuple[tuple[str, str], ...]:
    """``CHK201=warn, data.rows-lost=off`` -> ((key, policy), ...); the keys are checked
    against the registry when the checks run (config cannot import them)."""
    out: list[tuple[str, str]] = []
    for part in parse_list(value):
        name, sep, policy = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{key} = {value!r} ({origin}): {part!r} is not CODE=policy (e.g. CHK302=error)")
        out.append((name.strip(), parse_choice(policy, key, origin, CHECK_POLICIES)))
    return tuple(out)


def parse_url(value: str, key: str, origin: str) -> str:
    v = value.strip()
    if v and not re.match(r"^https?://[^\s/]+", v):
        raise ConfigError(f"{key} = {value!r} ({origin}) must be an http:// or https:// URL (or empty)")
    return v


def _env_name(value: str, key: str, origin: str) -> str:
    v = value.strip()
    if v and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
        raise ConfigError(f"{key} ({origin}) must be the name of an environment variable (letters, digits, _), "
                          "not the key itself")  # fmt: skip
    return v


def _relative(value: str, here: Path) -> Path | None:
    v = value.strip()
    if not v:
        return None
    path = Path(v).expanduser()
    return path if path.is_absolute() else here / path


def _backup_location(
    backup_dir: tuple[str, str], cache_dir: tuple[str, str], here: Path, environ: Mapping[str, str]
) -> tuple[Path, str]:
    """``(local folder, bucket URL or "")``: a folder, or an ``s3://`` URL and its working folder."""
    from .snapshot import remote

    value, origin = backup_dir
    if not remote.is_url(value):
        path = Path(value.strip() or "backups").expanduser()
        return (path if path.is_absolute() else here / path), ""
    try:
        url = remote.parse_url(value)
    except ValueError as exc:
        shown = "the URL" if "@" in value else repr(value.strip())  # never echo what may be a secret
        raise ConfigError(f"backup_dir = {shown} ({origin}): {exc}") from exc
    if remote.client_missing():
        raise ConfigError(f"backup_dir = {url} ({origin}) needs s3fs: {remote.EXTRA}")
    cache = _relative(cache_dir[0], here) or remote.default_cache(url, environ)
    remote.attach(cache, url)
    return cache, url


def parse_list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.replace("\n", ",").split(",") if p.strip())


def load_config(
    ini_values: Mapping[str, str],
    *,
    here: Path,
    x_args: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SafetyConfig:
    """Merge the three sources and validate every value.

    ``ini_values`` is the ``[alembic_safety]`` section (unknown keys there are an error: they
    are typos); ``x_args`` are ``-x`` pairs (unknown keys are ignored: they belong to env.py);
    ``here`` is the folder relative paths are taken from (alembic.ini's folder).
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, tuple[str, str]] = {k: (v, "default") for k, v in DEFAULTS.items()}
    for key, value in ini_values.items():
        if key in ("here",):  # configparser's interpolation helper, not a setting
            continue
        if key not in KEYS:
            raise ConfigError(
                f"unknown setting {key!r} in [{SECTION}]; known: {', '.join(sorted(KEYS))}"
            )
        raw[key] = (value, f"[{SECTION}] in alembic.ini")
    for key in KEYS:
        env_key = ENV_PREFIX + key.upper()
        if env_key in environ:
            raw[key] = (environ[env_key], f"environment {env_key}")
    for key, value in (x_args or {}).items():
        bare = key.removeprefix(SECTION + ".")
        if bare in KEYS:
            raw[bare] = (value, f"-x {key}")

    def get(key: str) -> tuple[str, str, str]:
        value, origin = raw[key]
        return value, key, origin

    backup_dir, backup_url = _backup_location(raw["backup_dir"], raw["backup_cache_dir"], here, environ)
    if backup_dir.exists() and not backup_dir.is_dir():
        key = "backup_cache_dir" if backup_url else "backup_dir"
        raise ConfigError(f"{key} = {str(backup_dir)!r} ({raw[key][1]}) is not a folder")
    config = SafetyConfig(
        backup_dir=backup_dir,
        backup_url=backup_url,
        enabled=parse_bool(*get("enabled")),
        store=parse_choice(*get("store"), STORES),
        snapshot_schema=parse_identifier(*get("snapshot_schema")) if raw["snapshot_schema"][0].strip() else "",
        snapshot=parse_choice(*get("snapshot"), POLICIES),
        include_tables=parse_list(raw["include_tables"][0]),
        exclude_tables=parse_list(raw["exclude_tables"][0]),
        max_snapshot_bytes=parse_size(*get("max_snapshot_bytes")),
        oversize=parse_choice(*get("oversize"), OVERSIZE),
        keep=parse_int(*get("keep"), 0, 1_000_000),
        compression_level=parse_int(*get("compression_level"), 1, 19),
        lock_timeout=parse_duration(*get("lock_timeout")),
        parallel_snapshot_workers=parse_int(*get("parallel_snapshot_workers"), 1, 64),
        parallel_snapshot_min_rows=parse_int(*get("parallel_snapshot_min_rows"), 0, 10**15),
        checks=parse_choice(*get("checks"), CHECK_MODES),
        check_policies=parse_policies(*get("check_policies")),
        check_exact_rows=parse_int(*get("check_exact_rows"), 0, 10**15),
        check_sample_rows=parse_int(*get("check_sample_rows"), 1, 1000),
        long_transaction=parse_duration(*get("long_transaction")),
        scratch_url=raw["scratch_url"][0].strip(),
        templates_dir=_relative(raw["templates_dir"][0], here),
        stop_app_command=raw["stop_app_command"][0].strip(),
        maintenance_command=raw["maintenance_command"][0].strip(),
        notify_url=parse_url(*get("notify_url")),
        encryption_key_env=_env_name(*get("encryption_key_env")),
        sources={k: origin for k, (_, origin) in raw.items()},
    )
    if config.check_policies:
        # the checks' registry imports this module: asked here, when both are loaded, so a typo in
        # check_policies is refused before anything runs (not after a step, its backup written)
        from .checks import policies

        policies(config)
    return config


def from_alembic_config(alembic_cfg: Any, x_args: Mapping[str, str] | None = None) -> SafetyConfig:
    """Build the config from an ``alembic.config.Config`` (and its ``-x`` arguments)."""
    from configparser import Error as ParserError

    try:
        section = dict(alembic_cfg.get_section(SECTION) or {})
    except ParserError as exc:
        raise ConfigError(f"alembic.ini cannot be read: {str(exc).splitlines()[0]}") from exc
    fname = getattr(alembic_cfg, "config_file_name", None)
    here = Path(fname).resolve().parent if fname else Path.cwd()
    if x_args is None:
        x_args = parse_x_args(getattr(getattr(alembic_cfg, "cmd_opts", None), "x", None) or [])
    return load_config(section, here=here, x_args=x_args)


def parse_x_args(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" in pair:
            k, v = pair.split("=", 1)
            out[k.strip()] = v
    return out


def ini_section_text() -> str:
    """The ``[alembic_safety]`` section ``init`` appends to alembic.ini (rendered template)."""
    from .templating import render

    return render("alembic_ini_section.j2", section=SECTION, settings=SETTINGS)

