"""Reused host buffers for the large temporaries of a gradient (its state and its bra).

An adjoint gradient at 16-24 qubits allocates two statevectors and frees them at the end of the call;
the next call gets fresh pages from the OS, and touching them costs page faults (and, where
transparent huge pages are on, possibly compaction): 10-15 ms per gradient measured at 18 qubits on
a 2-core VM, a sixth of the call. Arrays handed back here are lent out again to the next request of
the same shape and dtype instead.

Rules that keep results independent of what ran before:

- :func:`empty` returns an array with unspecified contents (a pooled one or a new one); callers
  overwrite all of it, exactly as with ``np.empty``.
- :func:`give_back` is only called by the code that created an array, once nothing else refers to it
  (a consumed gradient state, a bra), never with an array that was returned to a user.
- Only C-contiguous, writeable, data-owning ``numpy.ndarray`` between ``MIN_BYTES`` and
  ``MAX_BYTES`` are kept, at most ``PER_KEY`` per shape and dtype and ``MAX_TOTAL_BYTES`` in all;
  anything else is left to the garbage collector. The pool is shared by threads (a lock guards it).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

MIN_BYTES = 1 << 20
"""Smaller arrays are left to the allocator, which reuses them itself."""

MAX_BYTES = 1 << 28
"""Larger arrays (above 24 qubits of complex128) are not kept: their compute dwarfs the page faults."""

MAX_TOTAL_BYTES = 1 << 29
"""Most memory the pool holds between calls."""

PER_KEY = 2
"""Arrays kept per (shape, dtype): a gradient's state and bra."""

_LOCK = threading.Lock()
_FREE: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
_HELD = [0]


def _take(shape: tuple[int, ...], dt: np.dtype) -> np.ndarray | None:
    """A kept array of ``shape`` and ``dt``, removed from the pool, or None."""
    with _LOCK:
        free = _FREE.get((tuple(int(s) for s in shape), dt.str))
        if not free:
            return None
        out = free.pop()
        _HELD[0] -= out.nbytes
        return out


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype``: one handed back earlier, else a new one."""
    dt = np.dtype(dtype)
    out = _take(shape, dt)
    return np.empty(shape, dtype=dt) if out is None else out


def zeros(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A zero array of ``shape`` and ``dtype``: a handed-back one cleared, else ``np.zeros``."""
    dt = np.dtype(dtype)
    out = _take(shape, dt)
    if out is None:
        return np.zeros(shape, dtype=dt)
    out.fill(0)
    return out


def empty_like(a: np.ndarray) -> np.ndarray:
    """:func:`empty` with the shape and dtype of ``a``."""
    return empty(a.shape, a.dtype)


def give_back(*arrays: Any) -> None:
    """Keep ``arrays`` (which the caller created and nothing else refers to) for later :func:`empty` calls."""
    for a in arrays:
        if (type(a) is not np.ndarray or not a.flags.c_contiguous or not a.flags.writeable
                or not a.flags.owndata or not MIN_BYTES <= a.nbytes <= MAX_BYTES):
            continue
        key = (a.shape, a.dtype.str)
        with _LOCK:
            free = _FREE.setdefault(key, [])
            if (len(free) >= PER_KEY or _HELD[0] + a.nbytes > MAX_TOTAL_BYTES
                    or any(f is a for f in free)):
                continue
            free.append(a)
            _HELD[0] += a.nbytes


def held_bytes() -> int:
    """Bytes the pool holds now."""
    with _LOCK:
        return _HELD[0]


def clear() -> None:
    """Drop every kept array."""
    with _LOCK:
        _FREE.clear()
        _HELD[0] = 0
