"""Running compiled programs: the executor interface, its selection, and the executors that register.

Importing this package registers the numba executors of the numpy backend (:mod:`qdiff.engine.cpu`:
the compiled whole-circuit program for small states, the cache-blocked passes for large ones) and the
CuPy backend's fused passes (:mod:`qdiff.engine.gpu`, importable without CuPy); the MPI backend
registers its own when :mod:`qdiff.distributed` is imported.
"""

from .cpu import BLOCKED, COMPILED_PROGRAM
from .executors import (
    REFERENCE,
    Executor,
    Purpose,
    Request,
    executors,
    register,
    run_expval_grad,
    run_forward,
    run_sweep,
    select,
)
from .gpu import CUPY_BLOCKED

register(COMPILED_PROGRAM)
register(BLOCKED)
register(CUPY_BLOCKED)

__all__ = ["Executor", "Purpose", "Request", "REFERENCE", "register", "executors", "select", "run_forward",
           "run_sweep", "run_expval_grad"]
