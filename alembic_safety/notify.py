"""Webhook notifications: a refused step, a rollback, a failed health check.

With ``notify_url`` set, each of those events is POSTed as JSON: a Slack-compatible ``text``
line plus the structured ``event`` (the same fields the audit log records).  The request has a
short timeout and can never fail what it reports on: a webhook that is down, slow or refusing
is logged (``alembic.safety`` logger and the audit log) and forgotten.  Passwords in URLs are
hidden before anything leaves the process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.parse
import urllib.request
from typing import Any

from ._version import __version__
from .audit import AuditLog, isoformat, redact_text, utcnow
from .config import SafetyConfig

log = logging.getLogger("alembic.safety")

TIMEOUT_SECONDS = 3.0  # a migration may be holding locks while we wait: keep it short


def payload(event: str, text: str, **fields: Any) -> dict[str, Any]:
    """The JSON body: ``text`` for Slack-style receivers, ``event`` for everything else."""
    return {"text": text, "event": {"event": event, "ts": isoformat(utcnow()), "tool": f"alembic-safety {__version__}",
                                    "host": socket.gethostname(), **fields}}  # fmt: skip


def where(url: str) -> str:
    """Scheme and host of a webhook: its path often is the secret (Slack's is), so never shown."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/…"


def notify(config: SafetyConfig, event: str, text: str, audit: AuditLog | None = None, **fields: Any) -> bool:
    """POST the event to ``notify_url`` when it is set; True when the webhook accepted it.
    Never raises: a failure is logged (and written to ``audit``, when given)."""
    url = config.notify_url
    if not url:
        return False
    body = redact_text(json.dumps(payload(event, text, **fields), default=str, ensure_ascii=False)).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"alembic-safety/{__version__}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(1024)
        return True
    except Exception as exc:  # the webhook is a convenience: it never fails the migration
        why = redact_text(str(getattr(exc, "reason", None) or exc) or type(exc).__name__)
        log.warning("notification %s to %s failed: %s", event, where(url), why)
        if audit is not None:
            with contextlib.suppress(OSError):
                audit.write("notify_failed", notified_event=event, url=where(url), error=why)
        return False
