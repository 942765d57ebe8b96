"""numba code for the numpy backend: per-gate kernels (``kernels``, ``fused``), the whole-circuit executor
for small states (``whole_circuit``), cache-blocked passes for large ones (``blocked``), and where numba
caches them (``jit``)."""
