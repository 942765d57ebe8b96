"""How many CPU threads qdiff's compiled kernels use: query, set, or set for a block of code.

The kernels run on numba's thread pool. Its size is fixed when numba starts (``NUMBA_NUM_THREADS``, or
``OMP_NUM_THREADS`` when only that is set); within it, the number of threads used can change at any
time, per calling thread.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ParameterError


def max_threads() -> int:
    """The size of the thread pool (``NUMBA_NUM_THREADS``): the most threads the kernels can use."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def get_num_threads() -> int:
    """Number of threads the CPU kernels use now (in the calling thread)."""
    import numba

    return int(numba.get_num_threads())


def check_num_threads(n: object) -> int:
    """Validate a thread count: an integer from 1 to :func:`max_threads`, else :class:`ParameterError`."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ParameterError(f"threads must be a positive integer, got {n!r}")
    value = int(n)
    top = max_threads()
    if not 1 <= value <= top:
        raise ParameterError(
            f"threads must be between 1 and {top} (NUMBA_NUM_THREADS, fixed when numba starts; set it or "
            f"OMP_NUM_THREADS before importing qdiff for more), got {value}"
        )
    return value


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (1 .. :func:`max_threads`) in the CPU kernels from now on, in the calling thread."""
    import numba

    numba.set_num_threads(check_num_threads(n))


@contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` kernel threads, restoring the previous count after; ``None`` changes nothing."""
    if n is None:
        yield
        return
    before = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(before)


__all__ = ["get_num_threads", "set_num_threads", "num_threads", "max_threads", "check_num_threads"]
