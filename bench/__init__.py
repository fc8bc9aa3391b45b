"""Sealchat's benchmark: a load generator, bare Tornado and Node.js `ws` baselines, and the report.

Run `python -m bench --help`; BENCHMARKS.md has the scenarios, targets and latest results.
"""
