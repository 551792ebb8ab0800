"""Benchmarks of videoroomd: `python -m bench.sfu` (see docs/benchmarks.md)."""
