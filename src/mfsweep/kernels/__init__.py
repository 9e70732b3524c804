"""numba kernels (compiled code only; the Python API lives in the modules above)."""
