"""The one Jinja environment of alembic-safety (StrictUndefined: a missing value is an error)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from .errors import SafetyError


def templates_dir() -> Path:
    """The shipped templates: inside the package in a wheel, the repository's top-level
    ``templates/`` folder in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise SafetyError("the alembic-safety templates are missing from this installation; reinstall")


@cache
def environment(extra_dir: str | None = None) -> jinja2.Environment:
    search = [str(templates_dir())]
    if extra_dir:
        search.insert(0, extra_dir)
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, /, *, templates_dir_override: str | None = None, **values: Any) -> str:
    """Render template ``name``; any template problem becomes a SafetyError naming it.  A
    ``templates_dir`` that is not a folder is an error (a typo would otherwise go unnoticed: the
    shipped templates would be used silently)."""
    if templates_dir_override and not Path(templates_dir_override).is_dir():
        raise SafetyError(f"templates_dir = {templates_dir_override} is not a folder; create it with your "
                          "templates (same names as the shipped ones) or remove the setting")  # fmt: skip
    try:
        return environment(templates_dir_override).get_template(name).render(**values)
    except jinja2.TemplateNotFound as exc:
        raise SafetyError(f"template {name!r} not found") from exc
    except jinja2.TemplateError as exc:
        raise SafetyError(f"template {name!r} failed: {exc}") from exc


def macro(name: str, macro_name: str, /, **values: Any) -> str:
    """Call one macro of a template (the demo keeps its revision bodies as macros)."""
    try:
        module = environment(None).get_template(name).module
        return str(getattr(module, macro_name)(**values))
    except jinja2.TemplateNotFound as exc:
        raise SafetyError(f"template {name!r} not found") from exc
    except (jinja2.TemplateError, AttributeError) as exc:
        raise SafetyError(f"template {name!r} macro {macro_name!r} failed: {exc}") from exc


def human_size(n: int | None, unknown: str = "-") -> str:
    """Bytes as the templates and the CLI show them (``48.0 KiB``); ``unknown`` for None."""
    if n is None:
        return unknown
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
