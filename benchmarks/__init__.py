"""Benchmarks of YRD Hazmat (see docs/benchmarks.md); run from the repository root."""
