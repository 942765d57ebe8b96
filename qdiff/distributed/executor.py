"""The MPI backend's executors: swaps planned ahead over the whole program, local runs through the normal executors.

Each operation needs some wires local (its targets; for diagonal gates none, since the rank bits
select a slice of the diagonal; for Pauli rotations the flipped wires; a differentiated gate its
targets). Before a sweep the executor records these needs in a
:class:`~qdiff.distributed.layout.Lookahead` on the state's layout; when a global wire must come in,
the local wire moved out is the one needed again furthest ahead.

Between swaps the layout is fixed, so a run of consecutive operations whose targets are all local is
one circuit on the rank's local wires: controls on global wires are resolved by the rank's bits (the
operation is dropped where they do not match, the control dropped where they do). That local circuit
runs through the local backend's own executors (:func:`qdiff.engine.run_forward` and the adjoint
:func:`~qdiff.engine.run_sweep`: compiled, cache-blocked passes on the CPU). An
operation that cannot be written on local wires (a diagonal or a Pauli rotation with a target still
global) runs alone through the MPI backend's primitives.

In the backward sweep every gradient entry is a sum of per-gate reductions (``2 Re sum(dU R)`` with
``R`` the reduced outer product), linear in each of them, so the ranks keep their partial sums and
the gradient is reduced once at the end: one ``Allreduce`` per sweep instead of one per gate.
(Gradients with respect to whole matrices, ``matrix_ops``, run gate by gate, reduced per gate.)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..cache import StructureCache
from ..circuit import Circuit, Operation
from ..engine import Executor, register, run_forward, run_sweep
from ..ir.kinds import Kind
from ..program import Kernel, apply_kernel, program_of
from .backend import MPIBackend
from .layout import Layout, Lookahead

LOCAL_CIRCUIT_CACHE_SIZE = 1024
"""Local circuits kept per process (keyed by program, layout, rank and operation range)."""

_LOCAL: StructureCache[tuple[Any, Circuit | None | bool]] = StructureCache("MPI local circuits",
                                                                             LOCAL_CIRCUIT_CACHE_SIZE)


def wires_needed_local(kern: Kernel, differentiated: bool = False) -> tuple[int, ...]:
    """The wires ``kern`` needs on every rank (controls never do); a differentiated gate needs its targets."""
    if differentiated:
        return tuple(kern.wires)
    if kern.kind == Kind.DIAGONAL:
        return ()
    if kern.kind == Kind.PAULI_ROTATION:
        return tuple(w for w, p in kern.data[1].items() if p in "XY")
    return tuple(kern.wires)


def _on_local_wires(op: Operation, layout: Layout, rank: int) -> Operation | None | bool:
    """``op`` on local positions (global controls resolved), None if it is inactive on ``rank``, False if
    a target is global."""
    if any(layout.is_global(w) for w in op.wires):
        return False
    controls, values = [], []
    for c, v in zip(op.controls, op.control_values, strict=True):
        if layout.is_global(c):
            if layout.rank_bit(c, rank) != v:
                return None
        else:
            controls.append(layout.local_position(c))
            values.append(v)
    return replace(op, wires=tuple(layout.local_position(w) for w in op.wires), controls=tuple(controls),
                   control_values=tuple(values))


def local_run(program: Any, indices: list[int], layout: Layout, rank: int) -> Circuit | None | bool:
    """The operations ``indices`` of ``program`` as one circuit on the local wires (cached).

    None when no operation is active on this rank; False when one has a global target.
    """
    key = (id(program), tuple(indices), layout.key(), layout.num_global, rank)
    hit = _LOCAL.get(key)
    if hit is not None and hit[0]() is program:  # the id belongs to this very program
        return hit[1]
    ops = []
    result: Circuit | None | bool = None
    for i in indices:
        local = _on_local_wires(program.operations[i], layout, rank)
        if local is False:
            result = False
            break
        if local is not None:
            ops.append(local)
    if result is not False and ops:
        result = Circuit(layout.num_local, program.circuit.num_params)
        result.operations = ops
    _LOCAL.put(key, (weakref.ref(program), result))
    return result


def _runs(needs: list[tuple[int, ...]], order: list[int], state: Any, ahead: Lookahead, expressible: Any) -> Any:
    """Walk ``order`` in runs that need no swap: each run's operation indices, after localizing its first needs.

    A run extends while the next operation's needs are already local and ``expressible(index)``
    holds; an operation that is not expressible is a run of its own.
    """
    lay = state.layout
    p = 0
    while p < len(order):
        ahead.position = p
        state.localize(needs[p])
        q = p + 1
        if expressible(order[p]):
            while q < len(order) and expressible(order[q]) and not any(lay.is_global(w) for w in needs[q]):
                q += 1
        for k in range(p, q):
            lay.touch(needs[k])
        yield [order[k] for k in range(p, q)]
        p = q


def forward(backend: MPIBackend, program: Any, theta: np.ndarray, state: Any) -> None:
    """Apply ``program`` to the distributed ``state``: planned swaps, local runs through the local executors."""
    kernels = program.kernels(theta)
    needs = [wires_needed_local(k) for k in kernels]
    order = list(range(len(kernels)))
    ahead = Lookahead(needs)
    state.layout.lookahead = ahead
    lay = state.layout

    def expressible(i: int) -> bool:
        return not any(lay.is_global(w) for w in kernels[i].wires)

    try:
        for indices in _runs(needs, order, state, ahead, expressible):
            sub = local_run(program, indices, lay, backend.rank) if expressible(indices[0]) else False
            if sub is False:
                for i in indices:
                    apply_kernel(backend, state, kernels[i])
            elif sub is not None:
                run_forward(backend.local_backend, program_of(sub), theta, state.local)
    finally:
        state.layout.lookahead = None


def sweep(backend: MPIBackend, program: Any, theta: np.ndarray, bra: Any, ket: Any, grad: Any,
          step: Callable[[int], None], matrix_ops: tuple[int, ...] = ()) -> None:
    """The backward sweep on distributed bra and ket; the gradient is summed over ranks once at the end."""
    inverses = program.kernels(theta, inverse=True)
    trainable = set(program.trainable) | set(matrix_ops)
    order = list(range(len(inverses) - 1, -1, -1))
    needs = [wires_needed_local(inverses[i], i in trainable) for i in order]
    ahead = Lookahead(needs)
    bra.layout.lookahead = ket.layout.lookahead = ahead
    backend.defer_reductions = not matrix_ops
    lay = ket.layout

    def expressible(i: int) -> bool:
        return not matrix_ops and not any(lay.is_global(w) for w in inverses[i].wires)

    try:
        for indices in _runs(needs, order, ket, ahead, expressible):
            bra.align_to(lay)
            sub = local_run(program, indices[::-1], lay, backend.rank) if expressible(indices[0]) else False
            if sub is False:
                for i in indices:
                    step(i)
            elif sub is not None:
                run_sweep(backend.local_backend, program_of(sub), theta, bra.local, ket.local, grad)
    finally:
        bra.layout.lookahead = ket.layout.lookahead = None
        deferred, backend.defer_reductions = backend.defer_reductions, False
    if deferred:
        grad[...] = backend.exchanger.allreduce(grad)


DISTRIBUTED = register(Executor("mpi", lambda request: isinstance(request.backend, MPIBackend), forward, sweep))
"""The executor of every program on the MPI backend."""

__all__ = ["DISTRIBUTED", "wires_needed_local", "local_run", "forward", "sweep"]
