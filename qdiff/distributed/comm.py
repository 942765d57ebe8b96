"""MPI through mpi4py: loading it with a clear error, rank-count checks, and failure handling.

Every rank runs the same deterministic program, so validation errors are raised identically on every
rank and never leave one waiting. Anything else that escapes on one rank (an error in user code, a
failed allocation) would leave the others blocked in a collective: :func:`install_abort_hook` makes an
uncaught exception print one clear line and abort the whole MPI job. :func:`agree` runs local work
that may fail differently per rank and raises the same :class:`RankFailure` on every rank.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

from ..errors import QDiffError

INSTALL_HINT = (
    "qdiff's MPI backend needs mpi4py and an MPI library: pip install 'qdiff[mpi]' (mpi4py + the mpich "
    "wheel), or on a cluster build mpi4py against the system MPI: "
    "module load mpi && pip install --no-binary=mpi4py mpi4py"
)


class DistributedError(QDiffError):
    """A request the distributed statevector cannot serve (rank count, too few local wires, ...)."""


class RankFailure(DistributedError):
    """Local work failed on at least one rank; raised on every rank with the failing ranks' messages."""


def load_mpi() -> Any:
    """``mpi4py.MPI``, or :class:`DistributedError` saying how to install it."""
    try:
        from mpi4py import MPI
    except Exception as exc:  # ImportError, or the MPI library failing to load
        raise DistributedError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from None
    return MPI


def global_qubits(size: int) -> int:
    """``log2(size)``; :class:`DistributedError` when the rank count is not a power of two."""
    if size < 1 or size & (size - 1):
        raise DistributedError(f"the MPI rank count must be a power of two (1, 2, 4, ...), got {size}")
    return size.bit_length() - 1


def agree(comm: Any, work: Callable[[], Any]) -> Any:
    """Run rank-local ``work``; if it raised on any rank, raise :class:`RankFailure` on every rank.

    The failure message names each failing rank and its error; a :class:`QDiffError` raised identically
    on every rank is re-raised as itself.
    """
    try:
        result, error = work(), None
    except Exception as exc:  # collected, then raised on every rank below
        result, error = None, exc
    summary = None if error is None else f"{type(error).__name__}: {error}"
    summaries = comm.allgather(summary)
    failed = [(r, s) for r, s in enumerate(summaries) if s is not None]
    if not failed:
        return result
    if error is not None and len(failed) == comm.Get_size() and len({s for _, s in failed}) == 1:
        raise error
    detail = "; ".join(f"rank {r}: {s}" for r, s in failed)
    raise RankFailure(f"{len(failed)} of {comm.Get_size()} MPI rank(s) failed: {detail}") from error


_HOOKED = False


def install_abort_hook(comm: Any) -> None:
    """Make an uncaught exception on any rank print ``qdiff.mpi: rank r failed`` and abort the MPI job."""
    global _HOOKED
    if _HOOKED or comm.Get_size() == 1:
        return
    previous = sys.excepthook

    def hook(kind: Any, value: Any, tb: Any) -> None:
        rank = comm.Get_rank()
        lines = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(f"{lines}qdiff.mpi: rank {rank} of {comm.Get_size()} failed with "
                         f"{kind.__name__}: {value}; aborting every rank\n")
        sys.stderr.flush()
        try:
            comm.Abort(1)
        finally:
            previous(kind, value, tb)

    sys.excepthook = hook
    _HOOKED = True
