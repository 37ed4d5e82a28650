"""A separate virtual environment with NannyML 0.13.1, for side-by-side benchmarks (``bench/estimate.py``).

NannyML pins its own versions of pandas, scikit-learn and LightGBM, so it never enters the project's
environment: :func:`ensure` creates ``.cache/bench-venvs/nannyml`` on first use (``python -m venv`` and
pip from the package index) and returns that environment's python.

    .venv/bin/python bench/nannyml_venv.py      # create it if missing; print its python
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".cache" / "bench-venvs" / "nannyml"
REQUIREMENTS = ("nannyml==0.13.1", "pandas<3")
MARKER = VENV / ".installed"


def python() -> Path:
    return VENV / "bin" / "python"


def ensure() -> Path:
    """The python of the NannyML environment, created and installed when missing."""
    wanted = "\n".join(REQUIREMENTS)
    if python().exists() and MARKER.exists() and MARKER.read_text() == wanted:
        return python()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    if not python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    subprocess.run([str(python()), "-c", "import nannyml"], check=True)
    MARKER.write_text(wanted)
    return python()


if __name__ == "__main__":
    print(ensure())
