"""Command line: ``qdiff info``, ``qdiff demo``, ``qdiff warmup`` and ``qdiff --version``.

- ``qdiff info``: versions, usable backends (numpy; CuPy with the GPU's name and memory), threads,
  precision, the kernel cache folder and the memory qdiff may use.
- ``qdiff demo``: a few-second variational run (:mod:`qdiff.demo`).
- ``qdiff warmup``: compile every CPU kernel into numba's cache (:mod:`qdiff.warmup`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib import metadata
from typing import Any


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cupy_info() -> dict[str, Any]:
    from .backends import cupy_status

    ok, why = cupy_status()
    info: dict[str, Any] = {"usable": ok, "status": why}
    if not ok:
        return info
    import cupy

    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    free, total = cupy.cuda.runtime.memGetInfo()
    info.update(
        cupy=cupy.__version__,
        gpu=props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
        memory_total_gib=round(total / 2**30, 2),
        memory_free_gib=round(free / 2**30, 2),
        cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
        cuda_driver=cupy.cuda.runtime.driverGetVersion(),
    )
    return info


def _mpi_info() -> dict[str, Any]:
    from .distributed.backend import mpi_info

    return mpi_info()


def info() -> dict[str, Any]:
    """Versions, usable backends, thread settings and default precision, as a dict."""
    from . import __version__

    try:
        import numba

        numba_threads = numba.get_num_threads()
    except Exception:  # numba missing or failing: the numpy path still works
        numba_threads = None
    return {
        "qdiff": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "numba": _version("numba"),
        "pennylane": _version("pennylane"),
        "pennylane_lightning": _version("pennylane_lightning"),
        "backends": {"numpy": {"usable": True}, "cupy": _cupy_info()},
        "mpi": _mpi_info(),
        "threads": {
            "cpu_count": os.cpu_count(),
            "numba_threads": numba_threads,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
        },
        "default_precision": "complex128 (complex64 on request: dtype='complex64', or the device's c_dtype)",
        "kernel_cache": _cache_info(),
        "memory": _memory_info(),
    }


def _cache_info() -> str:
    from .backends.numba.jit import CACHE, CACHE_DIR

    return str(CACHE_DIR) if CACHE else "none writable: kernels compile in every process (set NUMBA_CACHE_DIR)"


def _memory_info() -> str:
    from .memory import available_memory

    free, source = available_memory()
    return f"{free / 2**30:.2f} GiB available ({source})"


def _print_info(d: dict[str, Any], indent: int = 0) -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            print(" " * indent + f"{k}:")
            _print_info(v, indent + 2)
        else:
            print(" " * indent + f"{k}: {v}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qdiff`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="qdiff", description="qdiff: differentiable statevector simulator")
    parser.add_argument("--version", action="version", version=f"qdiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, backends (numpy, cupy + GPU), threads, precision, cache, memory")
    sub.add_parser("demo", help="a few-second variational run: VQE of a 6-qubit Ising chain")
    warm = sub.add_parser("warmup", help="compile every CPU kernel into numba's cache, once per machine")
    warm.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    if args.command == "info":
        _print_info(info())
    elif args.command == "demo":
        from .demo import run

        run()
    elif args.command == "warmup":
        from .warmup import warmup

        warmup(verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
