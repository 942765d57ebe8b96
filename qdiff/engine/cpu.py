"""The numba executors of the numpy backend, registered with the executor interface.

``compiled-program``: the whole circuit in one compiled call, for small states (complex128, one- and
two-qubit gates); for a Pauli-sum expectation, forward pass, value and backward sweep in one call.
``blocked``: cache-sized passes of many gates each, for large states. Their
predicates are the modules' own ``forward_accepts``/``sweep_accepts``; both refuse gradients with
respect to whole matrices (``matrix_ops``), which only the reference sweep returns.
"""

from __future__ import annotations

from ..backends.numba import blocked, whole_circuit
from .executors import Executor, Purpose, Request


def _accepts(module: object) -> object:
    def accepts(request: Request) -> bool:
        if request.purpose == Purpose.FORWARD:
            return module.forward_accepts(request.backend, request.program, *request.states)  # type: ignore[attr-defined]
        if request.purpose == Purpose.EXPVAL_GRAD:
            return module.expval_grad_accepts(  # type: ignore[attr-defined]
                request.backend, request.program, *request.states, request.observable)
        return not request.matrix_ops and module.sweep_accepts(  # type: ignore[attr-defined]
            request.backend, request.program, *request.states)
    return accepts


COMPILED_PROGRAM = Executor(
    "compiled-program", _accepts(whole_circuit), whole_circuit.forward,
    lambda be, program, theta, bra, ket, grad, step, matrix_ops=(): whole_circuit.sweep(be, program, theta, bra, ket,
                                                                                       grad),
    whole_circuit.expval_grad)
BLOCKED = Executor(
    "blocked", _accepts(blocked), blocked.forward,
    lambda be, program, theta, bra, ket, grad, step, matrix_ops=(): blocked.sweep(be, program, theta, bra, ket,
                                                                                       grad, step))

__all__ = ["COMPILED_PROGRAM", "BLOCKED"]
