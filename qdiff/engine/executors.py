"""The executor interface: how a whole compiled program runs forward, and the adjoint sweep over it.

An :class:`Executor` runs a :class:`~qdiff.program.Program` on a backend's states: ``forward`` applies
every operation, ``sweep`` walks the operations last first, un-applying each from ket and bra and
accumulating the gradient, and ``expval_grad`` (optional) computes an expectation and its gradient
from the initial state in one go. The reference executor (:mod:`qdiff.engine.reference`) does each
one operation at a time through the backend primitives, which every backend has; its per-operation
sweep step is handed to every executor's sweep for the operations that executor does not run itself.
Backend-specific executors (the numba whole-circuit program for small states, the numba cache-blocked
passes for large ones, the MPI executor) register here with a predicate saying what they can run.

:func:`select` is the one place an executor is chosen: a pure function of the backend, the program's
structure, the states' size, dtype and layout, and what is asked (forward, sweep or expectation
gradient; gradients with respect to whole matrices or not; the observable's structure).
:func:`run_forward`, :func:`run_sweep` and :func:`run_expval_grad` call it; the simulator, the adjoint
method and parameter-shift never see the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from .. import buffers
from ..errors import BackendError
from ..observables import apply_observable
from . import reference
from .reference import SweepStep


class Purpose(Enum):
    """What an executor is asked to run."""

    FORWARD = "forward"
    SWEEP = "sweep"
    EXPVAL_GRAD = "expectation gradient"


@dataclass(frozen=True)
class Request:
    """Everything :func:`select` may look at: no parameter values, no amplitudes."""

    backend: Any
    program: Any
    states: tuple[Any, ...]
    purpose: Purpose
    matrix_ops: tuple[int, ...] = ()
    observable: Any = None


@dataclass(frozen=True)
class Executor:
    """A named way to run programs: ``accepts(request)``, ``forward``, ``sweep`` and ``expval_grad``.

    ``forward(backend, program, theta, state)`` applies the program in place. ``sweep(backend, program,
    theta, bra, ket, grad, step, matrix_ops)`` runs the backward sweep, calling ``step`` (a
    :class:`~qdiff.engine.reference.SweepStep`) for any operation it does not run itself, and adds the
    gradient ``(B, P)`` into ``grad``. ``expval_grad(backend, program, theta, state, observable)``
    returns ``(<O> (B,), d<O>/dtheta (B, P))`` from the initial ``state`` (consumed).
    """

    name: str
    accepts: Callable[[Request], bool]
    forward: Callable[..., None] | None = None
    sweep: Callable[..., None] | None = None
    expval_grad: Callable[..., tuple[Any, Any]] | None = None

    def runs(self, request: Request) -> bool:
        """Whether this executor can serve ``request``."""
        return getattr(self, _ENTRY[request.purpose]) is not None and self.accepts(request)


_ENTRY = {Purpose.FORWARD: "forward", Purpose.SWEEP: "sweep", Purpose.EXPVAL_GRAD: "expval_grad"}
"""The :class:`Executor` field that serves each purpose."""


def _reference_expval_grad(backend: Any, program: Any, theta: np.ndarray, state: Any, observable: Any
                           ) -> tuple[Any, Any]:
    """The selected forward, the bra ``O|psi>``, its inner product with the state, the selected sweep.

    Both statevectors are spent afterwards: host arrays go back to :mod:`qdiff.buffers` for the next call."""
    run_forward(backend, program, theta, state)
    bra = apply_observable(backend, state, observable)
    values = backend.xp.real(backend.inner(state, bra))
    grad = backend.xp.zeros((state.shape[0], program.circuit.num_params), dtype=float)
    run_sweep(backend, program, theta, bra, state, grad)
    buffers.give_back(bra, state)
    return values, grad


REFERENCE = Executor("reference", lambda request: True, reference.forward, reference.sweep, _reference_expval_grad)
"""One operation at a time through the backend primitives: runs everything, on every backend."""

_REGISTRY: list[Executor] = []


def register(executor: Executor) -> Executor:
    """Add ``executor`` (replacing one of the same name); earlier registrations are preferred."""
    for i, ex in enumerate(_REGISTRY):
        if ex.name == executor.name:
            _REGISTRY[i] = executor
            return executor
    _REGISTRY.append(executor)
    return executor


def executors() -> dict[str, Executor]:
    """Every executor by name, the reference last."""
    return {ex.name: ex for ex in [*_REGISTRY, REFERENCE]}


def select(request: Request) -> Executor:
    """The first registered executor that can serve ``request``, else the reference."""
    return next((ex for ex in _REGISTRY if ex.runs(request)), REFERENCE)


def _chosen(request: Request, name: str | None) -> Executor:
    if name is None:
        return select(request)
    ex = executors().get(name)
    if ex is None:
        raise BackendError(f"unknown executor {name!r}; choose from {sorted(executors())}")
    if not ex.runs(request):
        raise BackendError(f"executor {name!r} cannot run this {request.purpose.value} "
                           f"(backend {getattr(request.backend, 'name', request.backend)!r})")
    return ex


def run_forward(backend: Any, program: Any, theta: np.ndarray, state: Any, executor: str | None = None) -> None:
    """Apply ``program`` at ``theta`` to ``state`` in place with the selected (or the named) executor."""
    ex = _chosen(Request(backend, program, (state,), Purpose.FORWARD), executor)
    ex.forward(backend, program, theta, state)  # type: ignore[misc]


def run_sweep(backend: Any, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any,
              matrix_ops: tuple[int, ...] = (), executor: str | None = None) -> dict[int, Any]:
    """The adjoint backward sweep from ``bra``/``ket`` (both consumed), accumulating into ``grad (B, P)``.

    Returns the gradients with respect to the matrices of the QubitUnitary operations ``matrix_ops``
    (PyTorch's convention ``dL/dRe U + i dL/dIm U``), by operation index.
    """
    matrix_ops = tuple(matrix_ops)
    ex = _chosen(Request(backend, program, (bra, ket), Purpose.SWEEP, matrix_ops), executor)
    step = SweepStep(backend, program, theta, bra, ket, grad, matrix_ops)
    ex.sweep(backend, program, theta, bra, ket, grad, step, matrix_ops)  # type: ignore[misc]
    return step.matrix_grads


def run_expval_grad(backend: Any, program: Any, theta: np.ndarray, state: Any, observable: Any,
                    executor: str | None = None) -> tuple[Any, Any]:
    """``(<O> (B,), d<O>/dtheta (B, P))`` for the observable ``O`` from the initial ``state`` (consumed)."""
    ex = _chosen(Request(backend, program, (state,), Purpose.EXPVAL_GRAD, observable=observable), executor)
    return ex.expval_grad(backend, program, theta, state, observable)  # type: ignore[misc]


__all__ = ["Executor", "Purpose", "Request", "REFERENCE", "register", "executors", "select", "run_forward",
           "run_sweep", "run_expval_grad"]
