"""Benchmarks of the hot paths, each measured beside a baseline in the same run."""
