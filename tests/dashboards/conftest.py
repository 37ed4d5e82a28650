"""Fixtures of the dashboard tests (defined in dashboard_story.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_story import story_api  # noqa: F401  (the fixture)
