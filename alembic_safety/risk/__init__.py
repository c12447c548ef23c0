"""Risk rules: recorded operations in, findings with stable codes out.

Every rule is a registered class with a stable ``code`` (``SAF1xx`` destroys data, ``SAF2xx``
locks/rewrites or can fail on existing data, ``SAF3xx`` breaks running code or cannot be undone,
``SAF4xx`` cannot run), a dotted ``name``, a default ``severity`` and a docstring that shows the
bad pattern and the safe alternative (the README's rule reference is generated from them).
Rules are pure: live facts (row counts, violating rows) come through :class:`Facts`, which
answers ``None`` when no database is reachable — the rule then says what it could not know.

The package: :mod:`.base` (findings, facts protocol, rule registry, evaluation),
:mod:`.facts` (:class:`LiveFacts`), :mod:`.helpers` (shared by the rules), :mod:`.types`
(type-change classification), :mod:`.undo` (downgrade comparison, reversibility) and the rules
by family: :mod:`.destructive` (SAF1xx), :mod:`.failing` (SAF2xx), :mod:`.compat` (SAF3xx),
:mod:`.invalid` (SAF4xx).  Importing the package registers every rule; every name the single
``risk`` module had stays reachable here.
"""

from __future__ import annotations

from .base import (
    LARGE_TABLE_ROWS,
    POPULATED_ROWS,
    RANK,
    SEVERITIES,
    Facts,
    Finding,
    NoFacts,
    Rule,
    RuleContext,
    all_rules,
    evaluate,
    suppressions,
    worst,
)
from .compat import (
    DowngradeEmpty,
    DowngradeIncomplete,
    DowngradeMissing,
    DowngradeRaises,
    EnumAddValue,
    RenameColumn,
    RenameTable,
)
from .destructive import (
    ColumnTypeChange,
    DeleteAllRows,
    DeleteWhere,
    DropColumn,
    DropTable,
    OpaqueSql,
    OpaqueStep,
    Truncate,
    UpdateAllRows,
    UpdateWhere,
)
from .facts import LiveFacts
from .failing import (
    AddCheck,
    AddForeignKey,
    AddNotNullColumn,
    AddUnique,
    BlockingIndex,
    SetNotNull,
    TypeChangeRewrite,
    ValidatingConstraint,
    VolatileDefault,
)
from .invalid import AlterColumnNothing, DropUnnamed, MySqlIncomplete, NoColumns, SqliteNeedsBatch
from .types import pg_rewrites, type_change
from .undo import reversibility, undo_gaps

# isort: split
# private helpers, kept reachable as ``risk._name`` for code and tests written against the single module

__all__ = [
    "LARGE_TABLE_ROWS", "POPULATED_ROWS", "RANK", "SEVERITIES", "AddCheck", "AddForeignKey", "AddNotNullColumn",
    "AddUnique", "AlterColumnNothing", "BlockingIndex", "ColumnTypeChange", "DeleteAllRows", "DeleteWhere",
    "DowngradeEmpty", "DowngradeIncomplete", "DowngradeMissing", "DowngradeRaises", "DropColumn", "DropTable",
    "DropUnnamed", "EnumAddValue", "Facts", "Finding", "LiveFacts", "MySqlIncomplete", "NoColumns", "NoFacts",
    "OpaqueSql", "OpaqueStep", "RenameColumn", "RenameTable", "Rule", "RuleContext", "SetNotNull", "SqliteNeedsBatch",
    "Truncate", "TypeChangeRewrite", "UpdateAllRows", "UpdateWhere", "ValidatingConstraint", "VolatileDefault",
    "all_rules", "evaluate", "pg_rewrites", "reversibility", "suppressions", "type_change", "undo_gaps", "worst",
]  # fmt: skip
