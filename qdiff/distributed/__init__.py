"""A statevector distributed over MPI ranks (mpi4py): ``backend=MPIBackend()`` or ``backend="mpi"``.

Run under ``mpiexec -n R`` with R a power of two. Each rank holds ``2**(n - log2 R)`` amplitudes; the
top ``log2 R`` physical qubits are the rank bits. :class:`MPIBackend` implements the same statevector
primitives as the numpy and CuPy backends on :class:`DistState` objects, so the simulator, the adjoint
sweep and parameter-shift run unchanged: a gate on global wires first swaps them with local ones.
"""

from . import executor as _executor  # noqa: F401  (registers the distributed executors)
from . import observables as _observables  # noqa: F401  (registers the distributed observables)
from .backend import MPIBackend, mpi_info
from .comm import DistributedError, RankFailure
from .state import DistState

__all__ = ["MPIBackend", "DistState", "DistributedError", "RankFailure", "mpi_info"]
