"""The built wheel is complete: installed non-editable, it finds and renders its templates."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_templates_and_renders_them(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True, timeout=300)  # fmt: skip
    [wheel] = dist.glob("alembic_safety-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "alembic_safety/templates/alembic_ini_section.j2" in names
    assert "alembic_safety/templates/demo/revision.py.j2" in names
    assert "alembic_safety/py.typed" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    probe = (
        "import alembic_safety, alembic_safety.templating as t, alembic_safety.config as c\n"
        "print(alembic_safety.__file__)\n"
        "print(t.templates_dir())\n"
        "print(c.ini_section_text())\n"
    )
    # run outside the source tree, with the installed copy first on the path
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()  # fmt: skip
    assert out[0].startswith(str(target)), out[0]
    assert out[1] == str(target / "alembic_safety" / "templates")
    assert "[alembic_safety]" in out and "# keep = 10" in out
