"""Integrity checks: registered classes with stable codes (CHK101...), run after each revision
step inside its transaction (scope ``step``) and by ``alembic-safety health`` (scope ``full``).

Importing the package registers every check."""

from __future__ import annotations

from . import data, objects, revision, schema, sessions  # noqa: F401  (registers the checks)
from .base import Check, CheckContext, CheckFinding, CheckRun, StepFacts, all_checks, policies, run_checks

__all__ = ["Check", "CheckContext", "CheckFinding", "CheckRun", "StepFacts", "all_checks", "policies", "run_checks"]
