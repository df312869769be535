"""Benchmark suite: convprop against PyTorch (CPU) on the same shapes, in one run.

Run from the repository root with ``python -m benchmarks`` (see ``benchmarks/README.md``).
Ratios and targets are reported, never asserted. Importing this package has no side effects
and imports neither NumPy nor PyTorch.
"""

__all__: list[str] = []
