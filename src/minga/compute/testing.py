"""Inputs to try jobs on, for tests, benchmarks and the demo: a seeded Zipf text corpus and
seeded records."""

from __future__ import annotations

from minga.compute._corpus import generate_corpus, generate_records

__all__ = ["generate_corpus", "generate_records"]
