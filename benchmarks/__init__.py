"""Timing benchmarks of the package's estimators against peer Python packages.

Run with ``make bench`` (or ``python -m benchmarks.run``); see ``benchmarks/README.md``.
"""
