"""The MPI backend's executors: a whole program's wire needs are known before it runs, so swaps are planned ahead.

Each operation needs some wires local (its targets; for diagonal gates none, since the rank bits
select a slice of the diagonal; for Pauli rotations the flipped wires). Before the sweep the
executor records these needs in a :class:`~qdiff.distributed.layout.Lookahead` on the state's
layout; when a global wire must come in, the local wire moved out is the one needed again furthest
ahead. The operations themselves run through the MPI backend's primitives on the local slices.

In the backward sweep every gradient entry is a sum of per-gate reductions (``2 Re sum(dU R)`` with
``R`` the reduced outer product), linear in each of them, so the ranks keep their partial sums and
the gradient is reduced once at the end: one ``Allreduce`` per sweep instead of one per gate.
(Gradients with respect to whole matrices, ``matrix_ops``, are reduced per gate as before.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..executors import run_forward, run_sweep
from ..ir.kinds import Kind
from ..program import Kernel, apply_kernel
from .backend import MPIBackend
from .layout import Lookahead


def wires_needed_local(kern: Kernel, differentiated: bool = False) -> tuple[int, ...]:
    """The wires ``kern`` needs on every rank (controls never do); a differentiated gate needs its targets."""
    if differentiated:
        return tuple(kern.wires)
    if kern.kind == Kind.DIAGONAL:
        return ()
    if kern.kind == Kind.PAULI_ROTATION:
        return tuple(w for w, p in kern.data[1].items() if p in "XY")
    return tuple(kern.wires)


@run_forward.register
def _(backend: MPIBackend, program: Any, theta: np.ndarray, state: Any) -> None:
    kernels = program.kernels(theta)
    ahead = Lookahead([wires_needed_local(k) for k in kernels])
    state.layout.lookahead = ahead
    try:
        for i, kern in enumerate(kernels):
            ahead.position = i
            apply_kernel(backend, state, kern)
    finally:
        state.layout.lookahead = None


@run_sweep.register
def _(backend: MPIBackend, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any,
      step: Callable[[int], None], matrix_ops: tuple[int, ...] = ()) -> None:
    inverses = program.kernels(theta, inverse=True)
    trainable = set(program.trainable) | set(matrix_ops)
    order = range(len(inverses) - 1, -1, -1)
    ahead = Lookahead([wires_needed_local(inverses[i], i in trainable) for i in order])
    bra.layout.lookahead = ket.layout.lookahead = ahead
    backend.defer_reductions = not matrix_ops  # the gradient is linear in every per-gate reduction
    try:
        for position, index in enumerate(order):
            ahead.position = position
            step(index)
    finally:
        bra.layout.lookahead = ket.layout.lookahead = None
        deferred, backend.defer_reductions = backend.defer_reductions, False
    if deferred:
        grad[...] = backend.exchanger.allreduce(grad)


__all__ = ["wires_needed_local"]
