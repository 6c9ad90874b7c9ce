"""Benchmarks: what ki2api costs next to the model, measured against a paced fake Kiro on loopback.

Run `python -m benchmarks.run` (or `--quick`); benchmarks/README.md explains every figure.
"""
