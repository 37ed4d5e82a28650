"""A separate virtual environment with NannyML 0.13.1 for side-by-side benchmarks.

NannyML pins pandas < 3 and a tree of its own dependencies; installing it into the project's venv would
change what the service runs on. :func:`ensure` creates ``.cache/bench-venvs/nannyml`` once (later
calls only check it) and returns its Python.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "bench-venvs" / "nannyml"
REQUIREMENTS = ("nannyml==0.13.1", "pandas<3", "statsmodels")  # nannyml imports statsmodels undeclared


def python_of(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _ready(python: Path) -> bool:
    if not python.exists():
        return False
    check = "import nannyml, sys; sys.exit(0 if nannyml.__version__ == '0.13.1' else 1)"
    return subprocess.run([str(python), "-c", check], capture_output=True, check=False).returncode == 0


def ensure() -> Path:
    """The venv's Python, with ``nannyml==0.13.1`` and ``pandas<3`` installed (created if missing)."""
    python = python_of(VENV)
    if _ready(python):
        return python
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with (VENV.parent / "nannyml.lock").open("w") as lock:  # another bench may be creating it right now
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _ready(python):
            return python
        if not python.exists():
            venv.create(VENV, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    if not _ready(python):
        raise RuntimeError(f"nannyml 0.13.1 is not importable in {VENV}")
    return python


if __name__ == "__main__":
    print(ensure())
