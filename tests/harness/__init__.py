"""Former home of the test harness, now :mod:`etl_manifests.testing`; these modules only
re-export it, for scripts (the benchmarks) that still import ``harness.*``."""
