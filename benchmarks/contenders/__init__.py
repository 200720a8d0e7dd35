"""Contenders of the benchmarks that are not eventml: run next to it, checked equal to it."""
