"""A circuit's structure compiled once, so a training loop pays Python overhead once.

:class:`Program` groups operations by gate type; binding parameters evaluates each group's matrices
(and, for gradients, derivative matrices) in one vectorised call instead of one call per gate. The
result is a list of :class:`~qdiff.simulate.Kernel` per operation that any backend applies.
Programs are cached on the circuit and rebuilt when it changes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .circuit import Circuit, Operation, ParamRef
from .gates import GATES


@dataclass(frozen=True)
class Kernel:
    """An operation bound to parameter values: which primitive to call and with what data."""

    kind: str  # "identity" | "permutation" | "diagonal" | "pauli_rotation" | "dense"
    data: Any
    wires: tuple[int, ...]
    controls: tuple[int, ...]
    control_values: tuple[int, ...]


def compile_operation(op: Operation, theta: Any, inverse: bool = False) -> Kernel:
    """Bind ``op`` (or its inverse) to parameter values: compute its matrix, diagonal or permutation once."""
    gate = op.gate
    inv = op.inverse != inverse
    params = op.param_values(theta)
    kind = gate.kind
    k = len(op.wires)
    data: Any = None
    if kind == "permutation":
        data = tuple(int(i) for i in np.argsort(gate.permutation)) if inv else gate.permutation
    elif kind == "diagonal":
        diag = gate.diagonal(params, op.hyper, k)
        data = np.conj(diag) if inv else diag
    elif kind == "pauli_rotation":
        word = {w: p for w, p in zip(op.wires, op.hyper, strict=True) if p != "I"}
        theta_val = -params[0] if inv else params[0]
        if not word:  # exp(-i t/2 I): a global phase
            kind, data = "diagonal", np.exp(-0.5j * np.asarray(theta_val))[..., None] * np.ones(2**k)
        else:
            data = (theta_val, word)
    elif kind == "dense":
        m = gate.matrix(params, op.hyper, k)
        data = np.conj(np.swapaxes(m, -1, -2)) if inv else m
    return Kernel(kind, data, op.wires, op.controls, op.control_values)


def apply_kernel(backend: Any, state: Any, kern: Kernel) -> Any:
    """Apply a compiled operation to ``state`` in place through the matching backend primitive."""
    kind, w, c, v = kern.kind, kern.wires, kern.controls, kern.control_values
    if kind == "dense":
        return backend.apply_matrix(state, kern.data, w, c, v)
    if kind == "diagonal":
        return backend.apply_diagonal(state, kern.data, w, c, v)
    if kind == "permutation":
        return backend.apply_permutation(state, kern.data, w, c, v)
    if kind == "pauli_rotation":
        return backend.apply_pauli_rotation(state, kern.data[0], kern.data[1], c, v)
    return state


DENSE_DERIVATIVE_MAX_WIRES = 4
"""Gates on at most this many targets are differentiated from dense derivative matrices."""


def _stack(values: list[np.ndarray]) -> np.ndarray:
    """Stack per-operation parameter values (scalars or (B,)) along a new leading axis."""
    return np.stack(np.broadcast_arrays(*values), axis=0)


class Program:
    """Operations grouped by gate type for vectorised binding."""

    def __init__(self, circuit: Circuit):
        self.circuit = circuit
        self.operations: list[Operation] = list(circuit.operations)
        groups: dict[tuple, list[int]] = defaultdict(list)
        self.singles: list[int] = []
        for i, op in enumerate(self.operations):
            if op.gate.kind in ("dense", "diagonal") and op.gate.hyper is None and op.gate.num_params > 0:
                groups[(op.gate.name, len(op.wires), op.inverse)].append(i)
            else:
                self.singles.append(i)
        self.groups = [(GATES[name], k, inv, idx) for (name, k, inv), idx in groups.items()]
        self.trainable = [i for i, op in enumerate(self.operations) if op.trainable_refs]

    # -- forward data -----------------------------------------------------------------------------
    def kernels(self, theta: np.ndarray, inverse: bool = False) -> list[Kernel]:
        """One compiled kernel per operation (its inverse when ``inverse``), groups evaluated at once."""
        out: list[Kernel | None] = [None] * len(self.operations)
        for i in self.singles:
            out[i] = compile_operation(self.operations[i], theta, inverse)
        for gate, k, op_inv, idx in self.groups:
            ops = [self.operations[i] for i in idx]
            params = [_stack([op.param_values(theta)[j] for op in ops]) for j in range(gate.num_params)]
            inv = op_inv != inverse
            if gate.kind == "diagonal":
                data = gate.diagonal(tuple(params), None, k)
                data = np.conj(data) if inv else data
            else:
                data = gate.matrix(tuple(params), None, k)
                data = np.conj(np.swapaxes(data, -1, -2)) if inv else data
            for g, i in enumerate(idx):
                op = ops[g]
                out[i] = Kernel(gate.kind, data[g], op.wires, op.controls, op.control_values)
        return out  # type: ignore[return-value]

    # -- gradient data ----------------------------------------------------------------------------
    def derivatives(self, theta: np.ndarray) -> dict[int, list[tuple[ParamRef, np.ndarray]] | None]:
        """``{op index: [(ref, dU/d gate-param)]}`` for trainable ops (None: too wide, use generators)."""
        out: dict[int, list[tuple[ParamRef, np.ndarray]] | None] = {}
        by_gate: dict[tuple, list[int]] = defaultdict(list)
        for i in self.trainable:
            op = self.operations[i]
            if len(op.wires) > DENSE_DERIVATIVE_MAX_WIRES or (
                op.gate.factors and any(len(f.targets) != len(op.wires) for f in op.gate.factors)
            ):
                out[i] = None
            elif op.gate.hyper is not None:
                out[i] = _derivatives_of(op.gate, len(op.wires), [op], theta, op.hyper)[0]
            else:
                by_gate[(op.gate.name, len(op.wires))].append(i)
        for (name, k), idx in by_gate.items():
            derivs = _derivatives_of(GATES[name], k, [self.operations[i] for i in idx], theta, None)
            for i, d in zip(idx, derivs, strict=True):
                out[i] = d
        return out


def _derivatives_of(gate: Any, k: int, ops: list[Operation], theta: np.ndarray, hyper: Any) -> list[list]:
    """Dense derivative matrices for a group of same-gate operations, evaluated together."""
    values = [_stack([op.param_values(theta)[j] for op in ops]) for j in range(gate.num_params)]
    per_pos: dict[int, np.ndarray] = {}
    if gate.factors:
        mats = []
        for f in gate.factors:
            v = values[f.param] if isinstance(f.param, int) else np.full(values[0].shape, float(f.param))
            mats.append(GATES[f.gate].matrix((v,), None, k))
        for pos in range(gate.num_params):
            d_u: Any = 0.0
            for fi, f in enumerate(gate.factors):
                if f.param != pos:
                    continue
                term = 1j * (GATES[f.gate].generator(None, k).dense() @ mats[fi])
                for before in reversed(mats[:fi]):
                    term = term @ before
                for after in mats[fi + 1 :]:
                    term = after @ term
                d_u = d_u + term
            per_pos[pos] = d_u
    else:
        u = gate.matrix(tuple(values), hyper, k)
        per_pos[0] = 1j * (gate.generator(hyper, k).dense() @ u)
    result = []
    for g, op in enumerate(ops):
        entries = []
        for pos, ref in op.trainable_refs:
            d = per_pos[pos][g]
            entries.append((ref, np.conj(np.swapaxes(d, -1, -2)) if op.inverse else d))
        result.append(entries)
    return result


def program_of(circuit: Circuit) -> Program:
    """The circuit's cached :class:`Program`, rebuilt when operations were added or replaced."""
    key = (id(circuit.operations), len(circuit.operations), circuit.num_params)
    cached = getattr(circuit, "_program", None)
    if cached is not None and cached[0] == key and all(
        a is b for a, b in zip(cached[1].operations, circuit.operations, strict=True)
    ):
        return cached[1]
    prog = Program(circuit)
    circuit._program = (key, prog)  # type: ignore[attr-defined]
    return prog
