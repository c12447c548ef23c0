"""The rule machinery: findings, the :class:`Facts` protocol, the rule context and registry,
``# safety: allow`` suppressions and evaluation."""

from __future__ import annotations

import abc
import inspect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from alembic.operations import ops as alembic_ops

from ..record import RecordedStep, flatten
from ..sqlinfo import SqlEffect, TableRef

SEVERITIES = ("high", "medium", "low")
RANK = {"high": 3, "medium": 2, "low": 1, "never": 99}
LARGE_TABLE_ROWS = 100_000  # "populated"/"large" thresholds for lock and rewrite rules
POPULATED_ROWS = 1


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: str
    table: str | None
    column: str | None
    message: str
    allowed: str | None = None  # the reason given in a ``# safety: allow CODE reason`` comment

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name, "severity": self.severity, "table": self.table,
                "column": self.column, "message": self.message, "allowed": self.allowed}  # fmt: skip


class Facts(Protocol):
    """Live facts about the database; every method answers None when it cannot know."""

    def rows(self, table: TableRef) -> int | None: ...

    def null_count(self, table: TableRef, column: str) -> int | None: ...

    def duplicate_count(self, table: TableRef, columns: list[str]) -> int | None: ...

    def check_violations(self, table: TableRef, condition: str) -> int | None: ...

    def orphan_count(self, table: TableRef, columns: list[str], referred: TableRef,
                     referred_columns: list[str]) -> int | None: ...  # fmt: skip


class NoFacts:
    """Static analysis: nothing is known, and every question asked is remembered."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def _miss(self, what: str) -> None:
        if what not in self.unknown:
            self.unknown.append(what)

    def rows(self, table: TableRef) -> int | None:
        self._miss(f"row count of {table.key}")
        return None

    def null_count(self, table: TableRef, column: str) -> int | None:
        self._miss(f"NULLs in {table.key}.{column}")
        return None

    def duplicate_count(self, table: TableRef, columns: list[str]) -> int | None:
        self._miss(f"duplicates in {table.key}({', '.join(columns)})")
        return None

    def check_violations(self, table: TableRef, condition: str) -> int | None:
        self._miss(f"rows of {table.key} violating CHECK ({condition})")
        return None

    def orphan_count(self, table: TableRef, columns: list[str], referred: TableRef,
                     referred_columns: list[str]) -> int | None:  # fmt: skip
        self._miss(f"rows of {table.key}({', '.join(columns)}) without a match in {referred.key}")
        return None


@dataclass(frozen=True)
class RuleContext:
    """What a rule sees of one revision."""

    revision: str
    upgrade: RecordedStep
    downgrade: RecordedStep | None  # None: the revision has no downgrade() at all
    downgrade_source: str  # the downgrade function's source ("" when unknown)
    dialect: str
    facts: Facts

    def ops(self) -> Iterator[tuple[int, alembic_ops.MigrateOperation]]:
        yield from enumerate(flatten(self.upgrade.ops))

    def sql(self) -> Iterator[tuple[alembic_ops.ExecuteSQLOp, SqlEffect]]:
        for index, op in self.ops():
            if isinstance(op, alembic_ops.ExecuteSQLOp):
                for effect in self.upgrade.effects_for(index):
                    yield op, effect


class Rule(abc.ABC):
    """Base class; subclasses register themselves by defining ``code``."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    severity: ClassVar[str] = "low"
    registry: ClassVar[dict[str, type[Rule]]] = {}

    def __init_subclass__(cls, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if cls.code:
            if cls.code in Rule.registry:
                raise ValueError(f"duplicate rule code {cls.code}")
            if cls.severity not in SEVERITIES:
                raise ValueError(f"{cls.code}: bad severity {cls.severity}")
            Rule.registry[cls.code] = cls

    @abc.abstractmethod
    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        """Yield the findings of this rule for one revision."""

    def finding(self, message: str, table: TableRef | str | None = None, column: str | None = None,
                severity: str | None = None) -> Finding:  # fmt: skip
        key = table.key if isinstance(table, TableRef) else table
        return Finding(self.code, self.name, severity or self.severity, key, column, message)

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def all_rules() -> list[type[Rule]]:
    return [Rule.registry[c] for c in sorted(Rule.registry)]


_ALLOW = re.compile(r"#\s*safety:\s*allow\s+(SAF\d{3})\b[ \t]*(.*)$", re.MULTILINE)


def suppressions(source: str) -> dict[str, str]:
    """``# safety: allow SAF101 <reason>`` comments of a revision file: code -> reason."""
    return {m.group(1): (m.group(2).strip() or "no reason given") for m in _ALLOW.finditer(source)}


def evaluate(ctx: RuleContext, allowed: dict[str, str] | None = None) -> list[Finding]:
    """Run every rule; findings of allowed codes stay, marked with the reason."""
    allowed = allowed or {}
    out: list[Finding] = []
    for rule_cls in all_rules():
        for f in _run(rule_cls, ctx):
            if f.code in allowed:
                f = Finding(f.code, f.name, f.severity, f.table, f.column, f.message, allowed[f.code])
            out.append(f)
    return sorted(out, key=lambda f: (-RANK[f.severity], f.code, f.table or "", f.column or ""))


def _run(rule_cls: type[Rule], ctx: RuleContext) -> list[Finding]:
    """One rule's findings; a rule that trips over odd input reports that instead of raising."""
    try:
        return list(rule_cls().check(ctx))
    except Exception as exc:
        message = f"the rule could not analyse this revision ({type(exc).__name__}: {_one_line(exc)})"
        return [Finding(rule_cls.code, rule_cls.name, "low", None, None, message)]


def worst(findings: Iterable[Finding]) -> str | None:
    """The highest severity among findings that are not allowed."""
    live = [f.severity for f in findings if f.allowed is None]
    return max(live, key=lambda s: RANK[s]) if live else None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
