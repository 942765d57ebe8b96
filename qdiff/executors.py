"""Executors: how a backend runs a whole compiled program forward, or the adjoint sweep over it.

The simulator and the adjoint method call :func:`run_forward` and :func:`run_sweep` and never see a
fast path. Each dispatches on the backend's type: the default applies one kernel at a time through
the backend primitives; the numpy backend registers its compiled executors (a whole-circuit program
for small states, cache-blocked passes for large ones); the MPI backend registers an executor that
plans its wire swaps ahead over the whole program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import cpu_blocked, cpu_program
from .backends.numpy_backend import NumpyBackend
from .program import apply_kernel


@functools.singledispatch
def run_forward(backend: Any, program: Any, theta: np.ndarray, state: Any) -> None:
    """Apply every kernel of ``program`` at ``theta`` to ``state`` in place, one at a time."""
    for kern in program.kernels(theta):
        apply_kernel(backend, state, kern)


@run_forward.register
def _(backend: NumpyBackend, program: Any, theta: np.ndarray, state: Any) -> None:
    if cpu_program.try_forward(backend, program, theta, state) or cpu_blocked.try_forward(
            backend, program, theta, state):
        return
    run_forward.dispatch(object)(backend, program, theta, state)


@functools.singledispatch
def run_sweep(backend: Any, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any,
              step: Callable[[int], None], matrix_ops: tuple[int, ...] = ()) -> None:
    """The adjoint backward sweep: ``step(i)`` for every operation, last first, accumulating into ``grad``.

    ``step(i)`` un-applies operation ``i`` from ket and bra and adds its derivatives to ``grad``;
    executors that need no per-gate steps (compiled sweeps) fill ``grad (B, P)`` themselves.
    """
    for index in range(len(program.operations) - 1, -1, -1):
        step(index)


@run_sweep.register
def _(backend: NumpyBackend, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any,
      step: Callable[[int], None], matrix_ops: tuple[int, ...] = ()) -> None:
    if not matrix_ops:
        if (fast := cpu_program.try_adjoint(backend, program, theta, bra, ket)) is not None:
            grad += fast
            return
        if cpu_blocked.try_sweep(backend, program, theta, bra, ket, grad, step):
            return
    run_sweep.dispatch(object)(backend, program, theta, bra, ket, grad, step, matrix_ops)


__all__ = ["run_forward", "run_sweep"]
