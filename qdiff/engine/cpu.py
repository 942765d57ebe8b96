"""The numba executors of the numpy backend, registered with the executor interface.

``compiled-program``: the whole circuit in one compiled call, for small states (complex128, one- and
two-qubit gates). ``blocked``: cache-sized passes of many gates each, for large states. Their
predicates are the modules' own ``forward_accepts``/``sweep_accepts``; both refuse gradients with
respect to whole matrices (``matrix_ops``), which only the reference sweep returns.
"""

from __future__ import annotations

from ..backends import cpu_blocked, cpu_program
from .executors import Executor, Purpose, Request


def _accepts(module: object) -> object:
    def accepts(request: Request) -> bool:
        if request.purpose == Purpose.FORWARD:
            return module.forward_accepts(request.backend, request.program, *request.states)  # type: ignore[attr-defined]
        return not request.matrix_ops and module.sweep_accepts(  # type: ignore[attr-defined]
            request.backend, request.program, *request.states)
    return accepts


COMPILED_PROGRAM = Executor(
    "compiled-program", _accepts(cpu_program), cpu_program.forward,
    lambda be, program, theta, bra, ket, grad, step, matrix_ops=(): cpu_program.sweep(be, program, theta, bra, ket,
                                                                                       grad))
BLOCKED = Executor(
    "blocked", _accepts(cpu_blocked), cpu_blocked.forward,
    lambda be, program, theta, bra, ket, grad, step, matrix_ops=(): cpu_blocked.sweep(be, program, theta, bra, ket,
                                                                                       grad, step))

__all__ = ["COMPILED_PROGRAM", "BLOCKED"]
