"""pytest-benchmark suites and the synthetic-export generator."""
