"""Backends: one small object of statevector primitives per array library.

``get_backend("numpy" | "cupy" | "auto")`` returns it. Algorithms (simulation, adjoint, parameter-shift)
are written once against these primitives.
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendError
from .numpy_backend import NumpyBackend

_NUMPY = NumpyBackend()
_CUPY: Any = None

AUTO_GPU_MIN_QUBITS = 14
"""``backend="auto"`` picks CuPy (when usable) from this many qubits, else numpy."""


def cupy_status() -> tuple[bool, str]:
    """(usable, explanation): whether CuPy imports and sees a GPU, and why not."""
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a CUDA library failing to load
        return False, f"CuPy is not importable ({type(exc).__name__}: {exc}); install qdiff[gpu]"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"CuPy imports but no CUDA device is usable ({type(exc).__name__}: {exc})"
    if count < 1:
        return False, "CuPy imports but no CUDA device was found"
    return True, f"{count} CUDA device(s)"


def placement(backend: Any) -> tuple:
    """Where ``backend`` keeps its arrays, for cache keys: ``("cuda", device id)`` for CuPy (the current
    device), else ``(backend name,)``. Arrays cached for one GPU are never handed to another."""
    name = getattr(backend, "name", type(backend).__name__)
    device = getattr(backend, "device_id", None)
    return (name,) if device is None else ("cuda", device)


def get_backend(name: str | Any = "numpy", num_wires: int | None = None) -> Any:
    """Return the backend object for ``name`` ("numpy", "cupy", "auto"), or ``name`` if it is one."""
    global _CUPY
    if not isinstance(name, str):
        return name
    key = name.lower()
    if key == "numpy":
        return _NUMPY
    if key == "auto":
        ok, _ = cupy_status()
        if ok and (num_wires is None or num_wires >= AUTO_GPU_MIN_QUBITS):
            return get_backend("cupy")
        return _NUMPY
    if key == "cupy":
        ok, why = cupy_status()
        if not ok:
            raise BackendError(f"backend 'cupy' is not available: {why}")
        if _CUPY is None:
            from .cuda.backend import CupyBackend

            _CUPY = CupyBackend()
        return _CUPY
    if key == "mpi":
        from ..distributed import MPIBackend

        return MPIBackend()
    raise BackendError(f"unknown backend {name!r}; choose 'numpy', 'cupy', 'auto' or 'mpi'")


__all__ = ["NumpyBackend", "get_backend", "cupy_status", "placement", "AUTO_GPU_MIN_QUBITS"]
