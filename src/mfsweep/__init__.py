"""mfsweep: reproducible matrix-factorization experiments on MovieLens."""

__version__ = "0.1.0"
