"""``alembic-safety sql-rollback``: rollback scripts, runbooks, an emergency plan and an applier
for folders of raw SQL migrations (``NNNN_name.sql``, as Supabase keeps them)."""

from __future__ import annotations

from .folder import (
    EMERGENCY_PLAN,
    MANUAL,
    FolderResult,
    Header,
    Rollback,
    before_states,
    build,
    emergency_plan,
    forward_files,
    history_hashes,
    read_header,
    read_text,
    render_body,
    rollback_paths,
    sync_emergency_plan,
    sync_folder,
    version,
)
from .log import DefinitionLog

__all__ = ["EMERGENCY_PLAN", "MANUAL", "DefinitionLog", "FolderResult", "Header", "Rollback", "before_states",
           "build", "emergency_plan", "forward_files", "history_hashes", "read_header", "read_text",
           "render_body", "rollback_paths", "sync_emergency_plan", "sync_folder", "version"]  # fmt: skip
