"""``langalign benchmark``: the paper's tasks, baselines and LangAlign variants, with fixed seeds."""
from .runner import BenchmarkRunner, run_benchmark

__all__ = ["BenchmarkRunner", "run_benchmark"]
