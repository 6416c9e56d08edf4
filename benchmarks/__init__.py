"""Benchmarks for nni-gensynth (not part of the installed package)."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout the benchmarks run from
