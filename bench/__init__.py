"""Sealchat's benchmark: a load generator, a bare Tornado baseline, and the report.

Run `python -m bench --help`; BENCHMARKS.md has the scenarios, targets and latest results.
"""
