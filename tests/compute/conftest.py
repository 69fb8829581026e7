"""The compute tests share their word count jobs (word_jobs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# word_jobs.py is imported by the test modules; the engines' workers load it by path
sys.path.insert(0, str(Path(__file__).parent))
