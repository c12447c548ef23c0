"""Errors raised by alembic-safety.

Every error the library raises on purpose is a :class:`SafetyError`.  Its message is one line
that says what went wrong and what to do next; the CLI prints it and exits with
:attr:`SafetyError.exit_code`.  Subclasses carry the data a caller may want to inspect.
"""

from __future__ import annotations


class SafetyError(Exception):
    """Base class: a one-line, actionable message and an exit code (2: usage/config/env)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(SafetyError):
    """A bad value in ``[alembic_safety]``, ``-x`` or an ``ALEMBIC_SAFETY_*`` variable."""


class UsageError(SafetyError):
    """The command was called with arguments that cannot work."""


class DatabaseUnavailable(SafetyError):
    """The database could not be reached or refused the connection."""


class BackupNotFound(SafetyError):
    """No complete backup has the given id."""

    def __init__(self, backup_id: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"no backup {backup_id!r}{extra}; run 'alembic-safety backups' to list the ids"
        )
        self.backup_id = backup_id


class UnknownTable(SafetyError):
    """A table named by the user does not exist in the database."""

    def __init__(self, names: list[str]) -> None:
        listed = ", ".join(repr(n) for n in names)
        super().__init__(
            f"unknown table(s) {listed}; check the spelling (names are case-sensitive) "
            "or qualify them as schema.table"
        )
        self.names = names


class SnapshotError(SafetyError):
    """A snapshot could not be taken; the step it protects is refused."""


class SnapshotTooLarge(SnapshotError):
    """The snapshot grew beyond ``max_snapshot_bytes``."""

    def __init__(self, written: int, limit: int, table: str) -> None:
        super().__init__(
            f"snapshot exceeded max_snapshot_bytes ({limit} bytes) while copying {table!r} "
            f"({written} bytes written); the step was refused. Raise max_snapshot_bytes, "
            "exclude the table (exclude_tables) or set oversize = warn"
        )
        self.written = written
        self.limit = limit
        self.table = table


class LockTimeout(SnapshotError):
    """The at-risk tables could not be locked within ``lock_timeout``."""


class BackupCorrupt(SafetyError):
    """A backup's files or manifest do not match its checksums, or its manifest cannot be read:
    the backup is refused (exit 2, nothing changed).  ``show --verify`` reports such mismatches
    as findings instead (exit 1)."""


class IrreversibleRevision(SafetyError):
    """Raised by a generated ``downgrade()`` where an operation of the upgrade cannot be reversed.

    The message says what cannot be undone; the data the revision destroyed is in its
    pre-revision backup (``alembic-safety rollback <backup id>``).
    """

    exit_code = 1


class CheckFailed(SafetyError):
    """An integrity check found a problem with policy ``error``: the step is refused.  Carries
    the findings (``alembic_safety.checks.CheckFinding``) and the backup id, if any."""

    exit_code = 1

    def __init__(self, message: str, findings: tuple[object, ...] = (), backup_id: str | None = None) -> None:
        super().__init__(message)
        self.findings = findings
        self.backup_id = backup_id


class ConfirmationRequired(SafetyError):
    """A rollback was asked for without the confirmation code of its plan, or with a wrong one:
    nothing was changed."""


class RollbackFailed(SafetyError):
    """A rollback stopped at a failing step.  ``pre_rollback_id`` is the backup of the state
    before the rollback (None when none was taken); ``rolled_back`` says whether the database
    undid every change (PostgreSQL) or may be partly rolled back (elsewhere)."""

    def __init__(self, message: str, pre_rollback_id: str | None = None, rolled_back: bool = False) -> None:
        super().__init__(message)
        self.pre_rollback_id = pre_rollback_id
        self.rolled_back = rolled_back
