"""Benchmarks for nni-gensynth (not part of the installed package)."""
