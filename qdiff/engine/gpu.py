"""The CuPy executor ``cupy-blocked``: fused passes of many gates, one kernel launch each, on the GPU.

The same scheduled, fused passes as the CPU's cache-blocked executor (planned by
:mod:`qdiff.backends.cuda.passes`), run by ``qd_fused_pass`` / ``qd_fused_adjoint`` of ``kernels.cu``:
each CUDA block applies every op of a pass to chunks of the state held in shared memory. Operations a
pass cannot hold run through the backend's per-gate primitives (forward) or the sweep step (adjoint).
Per call, the matrices of every pass for every batch entry are packed on the host and copied to the
device once; the op descriptors are copied once per plan.

Serves the CuPy backend only, complex64 and complex128 states; refuses gradients with respect to
whole matrices (``matrix_ops``) and sweeps where a blocked gate is differentiated through its
generators, which the reference sweep handles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends.cuda import passes
from ..fusion import blocks_generator_ops, dense_matrices
from ..program import apply_kernel, contract_derivatives
from .executors import Executor, Purpose, Request

_DTYPES = (np.dtype(np.complex128), np.dtype(np.complex64))


def _states_ok(backend: Any, *states: Any) -> bool:
    """CuPy backend, C-contiguous ``(B, 2**n)`` complex64/complex128 device arrays of one shape."""
    xp = getattr(backend, "xp", None)
    if getattr(backend, "name", None) != "cupy" or xp is None:
        return False
    first = states[0]
    return all(isinstance(s, xp.ndarray) and s.ndim == 2 and s.dtype in _DTYPES and s.flags.c_contiguous
               and s.shape == first.shape and s.shape[1] >= 2 and s.shape[1] & (s.shape[1] - 1) == 0
               for s in states)


def _plan(program: Any, state: Any, adjoint: bool) -> passes.FusedPlan:
    n = program.circuit.num_wires
    m = passes.block_bits(n, state.dtype.itemsize, 2 if adjoint else 1)
    return passes.plan_of(program, adjoint, m)


def accepts(request: Request) -> bool:
    """Whether ``cupy-blocked`` runs ``request``: a forward pass or backward sweep on CuPy states of the
    program's size, without matrix gradients or blocked gates differentiated through generators."""
    states = request.states
    if request.purpose == Purpose.EXPVAL_GRAD or not _states_ok(request.backend, *states):
        return False
    if states[0].shape[1] != 1 << request.program.circuit.num_wires:
        return False
    if request.purpose == Purpose.FORWARD:
        return True
    if request.matrix_ops:
        return False
    plan = _plan(request.program, states[1], adjoint=True)
    return not blocks_generator_ops(plan.passes, request.program.generator_ops)


def _bind(backend: Any, plan: passes.FusedPlan, dense: dict[int, Any], state: Any) -> tuple[Any, int]:
    """The packed matrices on the device (one copy) and their per-entry stride (0: shared by all)."""
    packed = plan.pack(dense, state.shape[0], state.dtype)
    return backend.asarray(packed), (packed.shape[1] if packed.shape[0] > 1 else 0)


def forward(backend: Any, program: Any, theta: np.ndarray, state: Any) -> None:
    """Apply ``program`` to ``state`` in place: one ``qd_fused_pass`` launch per blocked pass."""
    plan = _plan(program, state, adjoint=False)
    kernels = program.kernels(theta)
    mats, mstride = _bind(backend, plan, dense_matrices(plan.items(), kernels), state)
    ops = plan.device_ops(backend)
    batch = state.shape[0]
    for fp in plan.passes:
        if not fp.blocked:
            apply_kernel(backend, state, kernels[fp.items[0]])
            continue
        call = plan.forward_call(fp, batch, state.dtype, mstride)
        backend.launch(call, state.dtype, state=state, ops=plan.op_view(ops, fp), mats=mats)


def sweep(backend: Any, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any, step: Any,
          matrix_ops: tuple[int, ...] = ()) -> None:
    """The adjoint backward sweep, one ``qd_fused_adjoint`` launch per blocked pass, into ``grad (B, P)``.

    ``step(index)`` (a :class:`~qdiff.engine.reference.SweepStep`) runs the operations no pass holds. A
    bra of another precision than the ket (a complex128 ``O|psi>`` of a complex64 state) is converted to
    the ket's dtype first, and the step is pointed at the converted bra.
    """
    if bra.dtype != ket.dtype:
        bra = bra.astype(ket.dtype)
        step.bra = bra
    plan = _plan(program, ket, adjoint=True)
    derivs = program.derivatives(theta)
    inverses = program.kernels(theta, inverse=True)
    mats, mstride = _bind(backend, plan, dense_matrices(plan.items(), inverses), ket)
    ops = plan.device_ops(backend)
    xp, batch = backend.xp, ket.shape[0]
    for fp in plan.passes:
        if not fp.blocked:
            step(fp.items[0])
            continue
        call = plan.adjoint_call(fp, batch, ket.dtype, mstride)
        partial = xp.zeros(plan.partial_shape(call, batch), dtype=np.float64)
        backend.launch(call, ket.dtype, bra=bra, ket=ket, ops=plan.op_view(ops, fp), mats=mats, partial=partial)
        if not fp.slot_ops:
            continue
        r = plan.finish(partial)
        for s, i in enumerate(fp.slot_ops):
            if derivs.get(i):
                contract_derivatives(xp, grad, derivs[i], r[:, s])


CUPY_BLOCKED = Executor("cupy-blocked", accepts, forward, sweep)
"""Fused passes on the GPU for the CuPy backend."""

__all__ = ["CUPY_BLOCKED", "accepts", "forward", "sweep"]
