"""The executor interface: how a whole compiled program runs forward, and the adjoint sweep over it.

An :class:`Executor` runs a :class:`~qdiff.program.Program` on a backend's states: ``forward`` applies
every operation, ``sweep`` walks the operations last first, un-applying each from ket and bra and
accumulating the gradient. The reference executor does both one operation at a time through the
backend primitives, which every backend has. Backend-specific executors (the numba whole-circuit
program for small states, the numba cache-blocked passes for large ones, the MPI executor) register
here with a predicate saying what they can run.

:func:`select` is the one place an executor is chosen: a pure function of the backend, the program's
structure, the states' size, dtype and layout, and what is asked (forward or sweep, gradients with
respect to whole matrices or not). :func:`run_forward` and :func:`run_sweep` call it; the simulator,
the adjoint method and parameter-shift never see the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from ..errors import BackendError
from ..program import apply_kernel

Step = Callable[[int], None]
"""``step(i)``: un-apply operation ``i`` from ket and bra, adding its derivatives to the gradient."""


class Purpose(Enum):
    """What an executor is asked to run."""

    FORWARD = "forward"
    SWEEP = "sweep"


@dataclass(frozen=True)
class Request:
    """Everything :func:`select` may look at: no parameter values, no amplitudes."""

    backend: Any
    program: Any
    states: tuple[Any, ...]
    purpose: Purpose
    matrix_ops: tuple[int, ...] = ()


@dataclass(frozen=True)
class Executor:
    """A named way to run programs: ``accepts(request)``, ``forward(...)`` and ``sweep(...)``.

    ``forward(backend, program, theta, state)`` applies the program in place. ``sweep(backend, program,
    theta, bra, ket, grad, step, matrix_ops)`` runs the backward sweep, calling ``step`` for any
    operation it does not run itself, and adds the gradient ``(B, P)`` into ``grad``.
    """

    name: str
    accepts: Callable[[Request], bool]
    forward: Callable[..., None] | None = None
    sweep: Callable[..., None] | None = None

    def runs(self, request: Request) -> bool:
        """Whether this executor can serve ``request``."""
        has = self.forward if request.purpose == Purpose.FORWARD else self.sweep
        return has is not None and self.accepts(request)


def _reference_forward(backend: Any, program: Any, theta: np.ndarray, state: Any) -> None:
    for kern in program.kernels(theta):
        apply_kernel(backend, state, kern)


def _reference_sweep(backend: Any, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any, step: Step,
                     matrix_ops: tuple[int, ...] = ()) -> None:
    for index in range(len(program.operations) - 1, -1, -1):
        step(index)


REFERENCE = Executor("reference", lambda request: True, _reference_forward, _reference_sweep)
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


def run_sweep(backend: Any, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any, step: Step,
              matrix_ops: tuple[int, ...] = (), executor: str | None = None) -> None:
    """The adjoint backward sweep from ``bra``/``ket`` (both consumed), accumulating into ``grad (B, P)``."""
    ex = _chosen(Request(backend, program, (bra, ket), Purpose.SWEEP, tuple(matrix_ops)), executor)
    ex.sweep(backend, program, theta, bra, ket, grad, step, tuple(matrix_ops))  # type: ignore[misc]


__all__ = ["Executor", "Purpose", "Request", "REFERENCE", "register", "executors", "select", "run_forward",
           "run_sweep"]
