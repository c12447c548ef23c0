"""The steps that roll one revision back, in order — decided before anything is touched
(Django's rule).  ``plan`` and the runbooks show them; the rollback command executes the same
list, so what reviewers read is what runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .sqlinfo import TableRef

# step kinds, in the order they run
VERIFY = "verify-backup"
PRE_BACKUP = "pre-rollback-backup"
DOWNGRADE = "downgrade"
CONVERGE = "converge-schema"
RESTORE = "restore-data"
SEQUENCES = "reset-sequences"
CHECKS = "integrity-checks"
REPORT = "audit-and-report"


@dataclass(frozen=True)
class RollbackStep:
    order: int
    kind: str
    action: str
    critical: bool  # a failure here leaves data at risk: the rollback stops (and rolls back)
    seconds: float = 0.0  # estimated time (the rollback command's plan; 0 where not estimated)

    def as_dict(self) -> dict[str, object]:
        return {"order": self.order, "kind": self.kind, "action": self.action, "critical": self.critical,
                "seconds": self.seconds}  # fmt: skip


def rollback_steps(
    revision: str,
    down_revision: str | None,
    *,
    restored: Sequence[TableRef],
    moved: Sequence[TableRef] = (),
    downgrade_usable: bool,
    transactional: bool,
) -> list[RollbackStep]:
    """The rollback of ``revision`` to ``down_revision``: ``restored`` are the tables whose data
    comes back from the pre-revision backup (``moved`` ones are moved back whole)."""
    data = list(restored) + [t for t in moved if t not in restored]
    steps: list[tuple[str, str, bool]] = []
    if data:
        steps.append((VERIFY, f"verify the checksums of the pre-revision backup of {revision}", True))
        steps.append((PRE_BACKUP, "back up the current state of " + ", ".join(t.key for t in data)
                      + " (kind pre-rollback, so the rollback itself can be undone)", False))  # fmt: skip
    steps += [(k, a, c) for k, a, c, _ in revision_steps(RevisionPart(revision, down_revision, tuple(restored),
                                                                      tuple(moved), downgrade_usable))]
    if data:
        steps.append((SEQUENCES, "reset sequences behind the restored keys", False))
    steps.append((CHECKS, "run the integrity checks and compare row counts and checksums with the backup", False))
    steps.append((REPORT, "write the audit events and the incident report", False))
    if not transactional:
        steps = [(k, a + _NOT_TRANSACTIONAL if k == DOWNGRADE else a, c) for k, a, c in steps]
    return [RollbackStep(i, kind, action, critical) for i, (kind, action, critical) in enumerate(steps, start=1)]


_NOT_TRANSACTIONAL = " (DDL commits implicitly here: stop at the first failure)"


@dataclass(frozen=True)
class RevisionPart:
    """One revision of a rollback: its downgrade, then the data of its pre-revision backup."""

    revision: str
    down_revision: str | None
    restored: tuple[TableRef, ...]  # data comes back from the backup (copied)
    moved: tuple[TableRef, ...] = ()  # moved back whole from the snapshot schema (O(1))
    downgrade_usable: bool = True
    restore_seconds: float = 0.0  # estimated time of this revision's data restore


def revision_steps(part: RevisionPart) -> list[tuple[str, str, bool, float]]:
    """Downgrade, converge and restore of one revision: ``(kind, action, critical, seconds)``."""
    target = part.down_revision or "base"
    rev = part.revision
    if part.downgrade_usable:
        steps = [(DOWNGRADE, f"run the downgrade of {rev} (to {target})", True, 0.1)]
    else:
        steps = [(DOWNGRADE, f"the downgrade of {rev} is missing or unusable: the schema is rebuilt "
                  "from the definitions recorded in the backup", True, 0.1)]  # fmt: skip
    steps.append((CONVERGE, "converge the touched tables to the schema recorded in the backup", True, 0.1))
    n = max(1, len(part.restored))
    for t in part.moved:
        steps.append((RESTORE, f"move {t.key} back from the snapshot schema (O(1))", True, 0.05))
    for t in part.restored:
        if t not in part.moved:
            steps.append((RESTORE, f"restore the data of {t.key} from the backup", True, part.restore_seconds / n))
    return steps


def rollback_run_steps(
    parts: Sequence[RevisionPart],
    *,
    backups: Sequence[str],
    pre_backup: Sequence[TableRef],
    transactional: bool,
    verify_seconds: float = 0.0,
    pre_backup_seconds: float = 0.0,
) -> list[RollbackStep]:
    """The steps of the rollback command: every revision in ``parts`` (newest first) rolled back
    with its own backup (ids in ``backups``), framed by one verification, one pre-rollback
    backup, and one round of sequences, checks and report at the end."""
    steps: list[tuple[str, str, bool, float]] = []
    if backups:
        steps.append((VERIFY, "verify the checksums of backup " + ", ".join(backups)
                      + " (a corrupted or incomplete backup is refused)", True, verify_seconds))  # fmt: skip
    if pre_backup:
        steps.append((PRE_BACKUP, "back up the current state of " + ", ".join(t.key for t in pre_backup)
                      + " (kind pre-rollback, so the rollback itself can be undone)", True,
                      pre_backup_seconds))  # fmt: skip
    for part in parts:
        steps += revision_steps(part)
    if any(p.restored or p.moved for p in parts):
        steps.append((SEQUENCES, "reset sequences behind the restored keys", False, 0.05))
    steps.append((CHECKS, "run the integrity checks and compare the restored rows with the backup", False, 0.5))
    steps.append((REPORT, "write the audit events and the incident report", False, 0.01))
    if not transactional:
        steps = [(k, a + _NOT_TRANSACTIONAL if k == DOWNGRADE else a, c, sec) for k, a, c, sec in steps]
    return [RollbackStep(i, kind, action, critical, round(sec, 3))
            for i, (kind, action, critical, sec) in enumerate(steps, start=1)]  # fmt: skip
