"""Benchmarks of mfsweep models against peer libraries (run by hand, not by CI)."""
