"""The check machinery: findings, the check context, the registry, policies and the runner.

A check is a small registered class (like the risk rules) with a stable ``code``, a ``name``,
a docstring that shows the bad and the good pattern, a ``scope`` and a default policy:

* ``scope = "step"``: cheap enough to run after every revision step, inside its transaction,
  on the tables the step touched and their foreign-key neighbours (and on every table in
  ``alembic-safety health``);
* ``scope = "full"``: whole-database questions, asked by ``alembic-safety health`` only.

The policy of each check (``error`` refuses the step / fails health, ``warn`` reports,
``off``) comes from its default, the ``checks`` setting and ``check_policies`` overrides.
"""

from __future__ import annotations

import abc
import inspect
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from ..config import SafetyConfig
from ..errors import ConfigError
from ..sqlinfo import TableRef

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from ..record import RecordedStep
    from .catalog import DbCatalog

SCOPES = ("step", "full")
SEVERITIES = ("error", "warn")
STATUS_RANK = {"healthy": 0, "degraded": 1, "failed": 2}


@dataclass(frozen=True)
class CheckFinding:
    """One problem a check found.  ``severity`` is the check's policy (``error`` or ``warn``);
    ``sample`` holds a few offending rows (column -> value, JSON-safe)."""

    code: str
    name: str
    severity: str
    table: str | None
    detail: str
    sample: tuple[Mapping[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "severity": self.severity, "table": self.table,
                "detail": self.detail, "sample": [dict(r) for r in self.sample]}  # fmt: skip

    def one_line(self) -> str:
        where = f" on {self.table}" if self.table else ""
        text = f"{self.code} {self.name}{where}: {self.detail}"
        if self.sample:
            text += "; sample: " + ", ".join(_row_text(r) for r in self.sample)
        return text


def _row_text(row: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in row.items()) + ")"


@dataclass(frozen=True)
class StepFacts:
    """What the step scope knows about the step that just ran."""

    revision: str
    direction: str
    recorded: RecordedStep
    before: Mapping[TableRef, Any] = field(default_factory=dict)  # row counts taken before the step


@dataclass(frozen=True)
class CheckContext:
    """What a check sees: the connection, the scope and the tables in it."""

    conn: sa.Connection
    scope: str
    catalog: DbCatalog
    tables: tuple[TableRef, ...]  # existing tables in scope (step: touched + FK neighbours)
    touched: tuple[TableRef, ...]  # step: the tables the step names (that exist now); full: all
    config: SafetyConfig
    step: StepFacts | None = None
    migration: MigrationContext | None = None
    script: ScriptDirectory | None = None
    # tables whose rows were written with foreign-key enforcement off (a rollback's restore under
    # session_replication_role = replica): their foreign keys, both ways, are checked row by row
    unverified: frozenset[str] = frozenset()
    # step scope: tables the step created that hold no row after it (see step_context); the
    # checks that read rows skip them, the catalogue checks do not
    empty: frozenset[TableRef] = frozenset()

    def was_unverified(self, ref: TableRef) -> bool:
        return ref.key in self.unverified or ref.name in self.unverified

    def holds_rows(self, ref: TableRef) -> bool:
        """False for a table known to be empty (created by the step, no row written): reading
        its rows can find nothing."""
        return ref not in self.empty

    @property
    def data_tables(self) -> tuple[TableRef, ...] | None:
        """The scope of the questions about rows: the tables that may hold some (None: all)."""
        return None if self.scope == "full" else tuple(t for t in self.tables if t not in self.empty)

    @property
    def dialect(self) -> str:
        return str(self.conn.dialect.name)

    @property
    def sample_rows(self) -> int:
        return self.config.check_sample_rows


class Check(abc.ABC):
    """Base class; subclasses register themselves by defining ``code``."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    scope: ClassVar[str] = "step"
    default_policy: ClassVar[str] = "error"
    dialects: ClassVar[tuple[str, ...]] = ()  # where it applies; empty: everywhere
    registry: ClassVar[dict[str, type[Check]]] = {}

    def __init_subclass__(cls, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if cls.code:
            if cls.code in Check.registry:
                raise ValueError(f"duplicate check code {cls.code}")
            if cls.scope not in SCOPES or cls.default_policy not in ("error", "warn", "off"):
                raise ValueError(f"{cls.code}: bad scope or policy")
            Check.registry[cls.code] = cls

    @abc.abstractmethod
    def run(self, ctx: CheckContext) -> Iterable[CheckFinding]:
        """Yield this check's findings (severity is set by the runner from the policy)."""

    def applies(self, ctx: CheckContext) -> bool:
        return not self.dialects or ctx.dialect in self.dialects or (
            ctx.dialect == "mariadb" and "mysql" in self.dialects)

    def finding(self, detail: str, table: TableRef | str | None = None,
                sample: Iterable[Mapping[str, Any]] = ()) -> CheckFinding:  # fmt: skip
        key = table.key if isinstance(table, TableRef) else table
        return CheckFinding(self.code, self.name, "error", key, detail, tuple(sample))

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def all_checks() -> list[type[Check]]:
    return [Check.registry[c] for c in sorted(Check.registry)]


def policies(config: SafetyConfig) -> dict[str, str]:
    """The policy of every check under these settings (``error``, ``warn`` or ``off``)."""
    checks = all_checks()
    by_name = {c.name: c.code for c in checks}
    out = {c.code: c.default_policy for c in checks}
    for key, policy in config.check_policies:
        code = key.upper() if key.upper() in out else by_name.get(key)
        if code is None:
            raise ConfigError(f"check_policies: no check {key!r}; known: {', '.join(sorted(out))}")
        out[code] = policy
    for code, policy in out.items():
        if config.checks == "off":
            out[code] = "off"
        elif config.checks == "warn" and policy == "error":
            out[code] = "warn"
    return out


@dataclass(frozen=True)
class CheckRun:
    """The outcome of running the checks once."""

    findings: tuple[CheckFinding, ...]
    ran: tuple[str, ...]  # codes of the checks that ran
    seconds: float

    @property
    def errors(self) -> tuple[CheckFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[CheckFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "warn")

    @property
    def status(self) -> str:
        return "failed" if self.errors else "degraded" if self.warnings else "healthy"


def run_checks(ctx: CheckContext, only: Iterable[str] | None = None, *, isolate: bool = True) -> CheckRun:
    """Run every applicable check of the context's scope with its policy.  A check that cannot
    run reports that as a warning instead of raising.  On PostgreSQL a failed statement aborts
    the transaction, so the checks run in one SAVEPOINT; if any of them fails, that savepoint is
    rolled back and every check runs again in a SAVEPOINT of its own, so the one that failed
    leaves the step's transaction usable and the others still report.

    ``isolate=False``: no savepoint, and the first check that raises propagates — for a caller
    that holds a savepoint already and calls again with ``isolate=True`` when this raises."""
    started = time.monotonic()
    chosen = set(only) if only is not None else None
    policy = policies(ctx.config)
    checks: list[Check] = []
    for cls in all_checks():
        if policy[cls.code] == "off" or (chosen is not None and cls.code not in chosen):
            continue
        if ctx.scope == "step" and cls.scope != "step":
            continue
        check = cls()
        if check.applies(ctx):
            checks.append(check)
    if not isolate:
        results: list[list[CheckFinding]] | None = [list(check.run(ctx)) for check in checks]
    else:
        results = _run_together(checks, ctx) if ctx.dialect == "postgresql" and len(checks) > 1 else None
    if results is None:
        results = [_run_one(check, ctx) for check in checks]
    findings: list[CheckFinding] = []
    for check, found in zip(checks, results, strict=True):
        findings += [replace(f, severity=policy[check.code]) if f.severity == "error" else f for f in found]
    return CheckRun(tuple(findings), tuple(c.code for c in checks), time.monotonic() - started)


def _run_together(checks: list[Check], ctx: CheckContext) -> list[list[CheckFinding]] | None:
    """Every check in one savepoint (PostgreSQL); None when one of them raised (rolled back)."""
    try:
        with ctx.conn.begin_nested():
            return [list(check.run(ctx)) for check in checks]
    except Exception:
        return None


def _run_one(check: Check, ctx: CheckContext) -> list[CheckFinding]:
    try:
        if ctx.dialect != "postgresql":
            return list(check.run(ctx))
        with ctx.conn.begin_nested():
            return list(check.run(ctx))
    except Exception as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        why = f"{type(exc).__name__}: {first[0][:200] if first else ''}"
        return [CheckFinding(check.code, check.name, "warn", None, f"the check could not run ({why})")]


def jsonable(value: Any) -> Any:
    """A sample value as JSON can carry it (exact types are for backups, not for messages)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)
