"""Benchmarks of the engine against the tutorials' recipe (not part of the installed package).

Run from the project root: ``python -m benchmarks.bench [--quick] [--json]``.
"""
