"""The reference executor: every operation, one at a time, through the backend primitives.

Forward: each kernel of the program through :func:`~qdiff.program.apply_kernel`. Backward sweep
(Jones & Gacon, arXiv:2009.02823): for each operation, last first, un-apply it from the ket, form the
reduced outer product ``R = tr_rest |ket><bra|`` on its (controlled) targets, read every parameter
derivative as ``2 Re sum(dU * R)`` (:func:`~qdiff.program.contract_derivatives`), un-apply it from
the bra. Gates differentiated through their generators (wide PauliRot/MultiRZ, ...) are walked factor
by factor, each factor ``exp(i t H)`` contributing ``-2 Im <bra|H|ket>``.

:class:`SweepStep` is that per-operation step. Every executor's sweep receives one and calls it for the
operations it does not run itself, so the un-apply/reduce/un-apply step exists once.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..circuit import Operation, ParamRef
from ..gates import Generator
from ..ir.kinds import Kind
from ..program import apply_kernel, compile_operation, contract_derivatives, factor_operations


def generator_element(backend: Any, bra: Any, ket: Any, gen: Generator, wires: tuple, controls: tuple,
                      cvals: tuple) -> Any:
    """``<bra| (P_controls x H) |ket>`` for a gate generator, per batch entry."""
    if gen.pauli is not None and len(wires) > 2 and not controls:
        word = {w: p for w, p in zip(wires, gen.pauli, strict=True) if p != "I"}
        if not word:
            return gen.coeff * backend.inner(bra, ket)
        return gen.coeff * backend.inner(bra, backend.apply_pauli(ket, word))
    return backend.matrix_element(bra, ket, gen.dense(), wires, controls, cvals)


def _one_pass_step(backend: Any, kern: Any, bra: Any, ket: Any) -> Any:
    """Un-apply a one-target gate from ket and bra and return R in one pass, where the backend has that
    primitive (``adjoint_step``); None otherwise."""
    step = getattr(backend, "adjoint_step", None)
    if step is None or len(kern.wires) != 1 or kern.kind not in (Kind.DENSE, Kind.DIAGONAL):
        return None
    data = np.asarray(kern.data)
    if kern.kind == Kind.DIAGONAL:
        if data.ndim != 1:
            return None
        data = np.diag(data)
    elif data.ndim != 2:
        return None
    return step(bra, ket, data, kern.wires[0], kern.controls, kern.control_values)


def _sweep_factors(backend: Any, op: Operation, theta: np.ndarray, bra: Any, ket: Any, grad: Any) -> None:
    """Differentiate a wide gate factor by factor through its generators (no dense matrices)."""
    for fop, pos in reversed(factor_operations(op)):
        ref = op.params[pos] if pos is not None else None
        if isinstance(ref, ParamRef):
            gen = fop.gate.generator(fop.hyper, len(fop.wires))
            if fop.inverse:
                gen = gen.negated()
            val = generator_element(backend, bra, ket, gen, fop.wires, fop.controls, fop.control_values)
            grad[:, ref.index] += (-2.0 * ref.coeff) * backend.xp.imag(val)
        kern = compile_operation(fop, theta, inverse=True)
        apply_kernel(backend, ket, kern)
        apply_kernel(backend, bra, kern)


class SweepStep:
    """``step(index)``: un-apply operation ``index`` from ket and bra, adding its derivatives to ``grad``.

    ``matrix_grads[i]`` collects the gradient with respect to the matrix of QubitUnitary operation ``i``
    (for ``i`` in ``matrix_ops``) in PyTorch's convention ``dL/dRe U + i dL/dIm U``.
    """

    def __init__(self, backend: Any, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any,
                 matrix_ops: tuple[int, ...] = ()) -> None:
        self.backend, self.program, self.theta = backend, program, theta
        self.bra, self.ket, self.grad = bra, ket, grad
        self.matrix_ops = frozenset(matrix_ops)
        self.matrix_grads: dict[int, Any] = {}

    @functools.cached_property
    def _inverses(self) -> list[Any]:
        """The inverted kernels, bound on first use (executors that run every operation never need them)."""
        return self.program.kernels(self.theta, inverse=True)

    @functools.cached_property
    def _derivatives(self) -> dict[int, Any]:
        """The derivative matrices per operation, bound on first use."""
        return self.program.derivatives(self.theta)

    def __call__(self, index: int) -> None:
        be, bra, ket = self.backend, self.bra, self.ket
        op = self.program.operations[index]
        derivs = self._derivatives.get(index, [])
        if derivs is None:  # differentiated through its generators
            _sweep_factors(be, op, self.theta, bra, ket, self.grad)
            return
        kern = self._inverses[index]
        wanted = bool(derivs) or index in self.matrix_ops
        if not wanted:
            apply_kernel(be, ket, kern)
            apply_kernel(be, bra, kern)
            return
        r = _one_pass_step(be, kern, bra, ket)
        if r is None:
            apply_kernel(be, ket, kern)
            entries = (self.program.derivative_support(index)
                       if kern.subspace is not None and index not in self.matrix_ops else None)
            r = be.reduced_outer(bra, ket, op.wires, op.controls, op.control_values, entries)
            apply_kernel(be, bra, kern)
        contract_derivatives(be.xp, self.grad, derivs, r)
        if index in self.matrix_ops:
            g = 2.0 * be.xp.conj(r)  # gradient w.r.t. the applied matrix
            self.matrix_grads[index] = be.xp.conj(be.xp.swapaxes(g, -1, -2)) if op.inverse else g


def forward(backend: Any, program: Any, theta: np.ndarray, state: Any) -> None:
    """Apply every kernel of ``program`` to ``state`` in place, one primitive call each."""
    for kern in program.kernels(theta):
        apply_kernel(backend, state, kern)


def sweep(backend: Any, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any, step: SweepStep,
          matrix_ops: tuple[int, ...] = ()) -> None:
    """The backward sweep: ``step`` on every operation, last first."""
    for index in range(len(program.operations) - 1, -1, -1):
        step(index)


__all__ = ["SweepStep", "generator_element", "forward", "sweep"]
