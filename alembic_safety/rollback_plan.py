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

    def as_dict(self) -> dict[str, object]:
        return {"order": self.order, "kind": self.kind, "action": self.action, "critical": self.critical}


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
    target = down_revision or "base"
    steps: list[tuple[str, str, bool]] = []
    data = list(restored) + [t for t in moved if t not in restored]
    if data:
        steps.append((VERIFY, f"verify the checksums of the pre-revision backup of {revision}", True))
        steps.append((PRE_BACKUP, "back up the current state of " + ", ".join(t.key for t in data)
                      + " (kind pre-rollback, so the rollback itself can be undone)", False))  # fmt: skip
    if downgrade_usable:
        steps.append((DOWNGRADE, f"run the downgrade of {revision} (to {target})", True))
    else:
        steps.append((DOWNGRADE, f"the downgrade of {revision} is missing or unusable: the schema is rebuilt "
                      "from the definitions recorded in the backup", True))  # fmt: skip
    steps.append((CONVERGE, "converge the touched tables to the schema recorded in the backup", True))
    for t in moved:
        steps.append((RESTORE, f"move {t.key} back from the snapshot schema (O(1))", True))
    for t in restored:
        if t not in moved:
            steps.append((RESTORE, f"restore the data of {t.key} from the backup", True))
    if data:
        steps.append((SEQUENCES, "reset sequences behind the restored keys", False))
    steps.append((CHECKS, "run the integrity checks and compare row counts and checksums with the backup", False))
    steps.append((REPORT, "write the audit events and the incident report", False))
    if not transactional:
        steps = [(k, a + ("" if k != DOWNGRADE else " (DDL commits implicitly here: stop at the first failure)"), c)
                 for k, a, c in steps]  # fmt: skip
    return [RollbackStep(i, kind, action, critical) for i, (kind, action, critical) in enumerate(steps, start=1)]
