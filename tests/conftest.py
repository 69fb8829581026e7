"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/support.py is imported as `support` by every test module
sys.path.insert(0, str(Path(__file__).parent))
