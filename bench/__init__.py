"""Benchmarks for dicomhub (bench/run); not part of the test suite."""
