"""alembic-safety: per-revision snapshots, checks and data-preserving rollback for Alembic.

In env.py, right after ``context.configure(...)``::

    import alembic_safety
    alembic_safety.install(context)
"""

from ._version import __version__
from .errors import IrreversibleRevision, SafetyError
from .hooks import AFTER_STEP_HOOKS, StepInfo, install

__all__ = ["AFTER_STEP_HOOKS", "IrreversibleRevision", "SafetyError", "StepInfo", "__version__", "install"]
