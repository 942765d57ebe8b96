"""A circuit's structure compiled once, so a training loop pays Python overhead once.

:class:`Program` groups operations by gate type; binding parameters evaluates each group's matrices
(and, for gradients, derivative matrices) in one vectorised call instead of one call per gate. The
result is a list of :class:`~qdiff.simulate.Kernel` per operation that any backend applies.
Programs are cached on the circuit and rebuilt when it changes.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cache import StructureCache
from .circuit import Circuit, Operation, ParamRef
from .gates import GATES
from .ir.kinds import Kind


@dataclass(frozen=True)
class Kernel:
    """An operation bound to parameter values: which primitive to call and with what data."""

    kind: Kind  # DENSE, DIAGONAL, PERMUTATION or PAULI_ROTATION (SUBSPACE gates run as DENSE here)
    data: Any
    wires: tuple[int, ...]
    controls: tuple[int, ...]
    control_values: tuple[int, ...]
    subspace: tuple[int, int] | None = None  # a DENSE kernel that only rotates these two local states


SUBSPACE_MIN_WIRES = 3
"""Subspace gates on at least this many targets are applied as two-level rotations (smaller: dense)."""


def subspace_of(gate: Any, num_targets: int) -> tuple[int, int] | None:
    """The two local basis states a SUBSPACE gate rotates, when applying it as such pays off, else None."""
    if gate.kind == Kind.SUBSPACE and num_targets >= SUBSPACE_MIN_WIRES:
        return gate.subspace
    return None


def exec_kind(gate: Any) -> Kind | None:
    """How these executors run ``gate``: its kind, SUBSPACE as DENSE, None for the identity (skipped)."""
    if gate.identity:
        return None
    return Kind.DENSE if gate.kind == Kind.SUBSPACE else gate.kind


def compile_operation(op: Operation, theta: Any, inverse: bool = False) -> Kernel:
    """Bind ``op`` (or its inverse) to parameter values: compute its matrix, diagonal or permutation once."""
    gate = op.gate
    inv = op.inverse != inverse
    params = op.param_values(theta)
    kind = exec_kind(gate)
    k = len(op.wires)
    data: Any = None
    if kind is None:
        kind, data = Kind.DIAGONAL, np.ones(2**k, dtype=complex)
    elif kind == Kind.PERMUTATION:
        data = tuple(int(i) for i in np.argsort(gate.permutation)) if inv else gate.permutation
    elif kind == Kind.DIAGONAL:
        diag = gate.diagonal(params, op.hyper, k)
        data = np.conj(diag) if inv else diag
    elif kind == Kind.PAULI_ROTATION:
        word = {w: p for w, p in zip(op.wires, op.hyper, strict=True) if p != "I"}
        theta_val = -params[0] if inv else params[0]
        if not word:  # exp(-i t/2 I): a global phase
            kind, data = Kind.DIAGONAL, np.exp(-0.5j * np.asarray(theta_val))[..., None] * np.ones(2**k)
        else:
            data = (theta_val, word)
    elif kind == Kind.DENSE:
        m = gate.matrix(params, op.hyper, k)
        data = np.conj(np.swapaxes(m, -1, -2)) if inv else m
    return Kernel(kind, data, op.wires, op.controls, op.control_values, subspace_of(gate, k))


def apply_kernel(backend: Any, state: Any, kern: Kernel) -> Any:
    """Apply a compiled operation to ``state`` in place through the matching backend primitive."""
    kind, w, c, v = kern.kind, kern.wires, kern.controls, kern.control_values
    if kind == Kind.DENSE:
        if kern.subspace is not None:
            return backend.apply_subspace(state, kern.data, kern.subspace, w, c, v)
        return backend.apply_matrix(state, kern.data, w, c, v)
    if kind == Kind.DIAGONAL:
        return backend.apply_diagonal(state, kern.data, w, c, v)
    if kind == Kind.PERMUTATION:
        return backend.apply_permutation(state, kern.data, w, c, v)
    if kind == Kind.PAULI_ROTATION:
        return backend.apply_pauli_rotation(state, kern.data[0], kern.data[1], c, v)
    return state


def kernel_matrix(kern: Kernel) -> np.ndarray:
    """A kernel's matrix on its targets, ``(d, d)`` or ``(B, d, d)`` (controls not included)."""
    d = 2 ** len(kern.wires)
    if kern.kind == Kind.PERMUTATION:
        return np.eye(d, dtype=complex)[list(kern.data)]
    data = np.asarray(kern.data)
    if kern.kind == Kind.DIAGONAL:
        return data[..., :, None] * np.eye(d)
    return data


def contract_derivatives(xp: Any, grad: Any, derivs: list[tuple[ParamRef, Any]], r: Any) -> None:
    """``grad[:, ref.index] += 2 coeff Re sum_ij dU_ij R_ij`` for every ``(ref, dU)`` of one gate.

    ``r`` is the gate's reduced outer product ``tr_rest |ket><bra|`` per batch entry, ``(B, d, d)``
    (``d`` at least the derivative matrices' size; the leading block is used); ``dU`` is ``(d, d)`` or
    ``(B, d, d)``. The one contraction of every adjoint sweep.
    """
    for ref, d_u in derivs:
        d_u = xp.asarray(d_u)
        d = d_u.shape[-1]
        block = r[:, :d, :d]
        contrib = xp.einsum("ij,bij->b" if d_u.ndim == 2 else "bij,bij->b", d_u, block)
        grad[:, ref.index] += (2.0 * ref.coeff) * xp.real(contrib)


DENSE_DERIVATIVE_MAX_WIRES = 4
"""Gates on at most this many targets are differentiated from dense derivative matrices."""


def _stack(values: list[np.ndarray]) -> np.ndarray:
    """Stack per-operation parameter values (scalars or (B,)) along a new leading axis."""
    return np.stack(np.broadcast_arrays(*values), axis=0)


class ParamTable:
    """Where the parameters of a group of operations come from: ``coeff * theta[index] + offset``.

    Constants have ``coeff = 0`` and index -1 (a padding zero), so binding a whole group is one
    fancy-indexing expression instead of a Python loop over its operations.
    """

    def __init__(self, ops: list[Operation], num_params: int):
        shape = (len(ops), num_params)
        self.index = np.full(shape, -1, dtype=np.int64)
        self.coeff = np.zeros(shape)
        self.offset = np.zeros(shape)
        for g, op in enumerate(ops):
            for j, p in enumerate(op.params):
                if isinstance(p, ParamRef):
                    self.index[g, j], self.coeff[g, j], self.offset[g, j] = p.index, p.coeff, p.offset
                else:
                    self.offset[g, j] = float(p)

    def values(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per gate-parameter position, the values ``(G,)`` or ``(G, B)`` for parameters ``theta``."""
        padded = np.concatenate([theta, np.zeros(theta.shape[:-1] + (1,))], axis=-1)
        v = self.coeff * padded[..., self.index] + self.offset  # (G, P) or (B, G, P)
        if v.ndim == 3:
            return tuple(v[..., j].T for j in range(v.shape[-1]))
        return tuple(v[:, j] for j in range(v.shape[-1]))


class Group:
    """Operations of one gate type (and width, adjoint flag) bound together."""

    def __init__(self, gate: Any, k: int, inverse: bool, idx: list[int], ops: list[Operation], num_params: int):
        self.gate, self.k, self.inverse, self.idx, self.ops = gate, k, inverse, idx, ops
        self.table = ParamTable(ops, gate.num_params)

    def data(self, theta: np.ndarray, inverse: bool) -> np.ndarray:
        """Stacked diagonals ``(G, [B,] d)`` or matrices ``(G, [B,] d, d)`` of the group."""
        params = self.table.values(theta)
        inv = self.inverse != inverse
        if exec_kind(self.gate) == Kind.DIAGONAL:
            d = self.gate.diagonal(params, None, self.k)
            return np.conj(d) if inv else d
        m = self.gate.matrix(params, None, self.k)
        return np.conj(np.swapaxes(m, -1, -2)) if inv else m


class Program:
    """Operations grouped by gate type for vectorised binding."""

    def __init__(self, circuit: Circuit):
        self.circuit = circuit
        self.operations: list[Operation] = list(circuit.operations)
        groups: dict[tuple, list[int]] = defaultdict(list)
        self.singles: list[int] = []
        for i, op in enumerate(self.operations):
            scalar = all(isinstance(p, (ParamRef, float, int)) for p in op.params)
            groupable = exec_kind(op.gate) in (Kind.DENSE, Kind.DIAGONAL) and op.gate.hyper is None
            if groupable and op.gate.num_params > 0 and scalar:
                groups[(op.gate.name, len(op.wires), op.inverse)].append(i)
            else:
                self.singles.append(i)
        self.groups = [
            Group(GATES[name], k, inv, idx, [self.operations[i] for i in idx], circuit.num_params)
            for (name, k, inv), idx in groups.items()
        ]
        self.trainable = [i for i, op in enumerate(self.operations) if op.trainable_refs]
        # gates without parameters (CNOT, H, fixed unitaries) compile once, for both directions
        self._last: dict[str, tuple] = {}
        self._dplan: Any = None
        self._support: dict[int, np.ndarray] | None = None
        self.data_batch = data_batch_size(circuit)
        self.product_prefix = product_prefix_length(circuit)
        self._shape = (circuit.num_wires, circuit.num_params)  # the circuit may change later; this program not
        prep = circuit.state_prep
        self.start_bits = [0] * circuit.num_wires  # each wire's bit of the start state (a basis preparation's)
        if prep is not None and prep.bits is not None:
            for w, b in zip(prep.wires, prep.bits, strict=True):
                self.start_bits[w] = int(b)
        self._head: Program | None = None
        self._tail: Program | None = None
        fixed = [i for i in self.singles if not self.operations[i].params]
        self._constant_kernels = {
            inv: {i: compile_operation(self.operations[i], None, inv) for i in fixed} for inv in (False, True)
        }

    @property
    def head(self) -> Program:
        """The program of the :attr:`product_prefix` operations (same parameters, no state preparation)."""
        if self._head is None:
            self._head = self._segment(0, self.product_prefix)
        return self._head

    @property
    def tail(self) -> Program:
        """The program of the operations after the :attr:`product_prefix` (same parameters, no state preparation)."""
        if self._tail is None:
            self._tail = self._segment(self.product_prefix, len(self.operations))
        return self._tail

    def _segment(self, start: int, stop: int) -> Program:
        """The program of operations ``[start, stop)`` of this program's own copy (same wires and parameters)."""
        return program_of(Circuit.of(*self._shape, self.operations[start:stop]))

    # -- forward data -----------------------------------------------------------------------------
    def _memo(self, what: str, theta: Any, extra: Any = None) -> tuple[tuple, Any]:
        """(key, cached value or None): the last binding is kept, since a gradient binds the same theta twice."""
        t = np.asarray(theta) if theta is not None else np.zeros(0)
        key = (what, extra, t.shape, t.tobytes())
        hit = self._last.get(what)
        return key, (hit[1] if hit is not None and hit[0] == key else None)

    def kernels(self, theta: np.ndarray, inverse: bool = False) -> list[Kernel]:
        """One compiled kernel per operation (its inverse when ``inverse``), groups evaluated at once."""
        key, hit = self._memo("kernels" + str(inverse), theta)
        if hit is not None:
            return hit
        out = self._bind_kernels(theta, inverse)
        self._last["kernels" + str(inverse)] = (key, out)
        return out

    def _bind_kernels(self, theta: np.ndarray, inverse: bool) -> list[Kernel]:
        out: list[Kernel | None] = [None] * len(self.operations)
        constant = self._constant_kernels[inverse]
        for i in self.singles:
            out[i] = constant.get(i) or compile_operation(self.operations[i], theta, inverse)
        for group in self.groups:
            data = group.data(theta, inverse)
            for g, i in enumerate(group.idx):
                op = group.ops[g]
                out[i] = Kernel(exec_kind(group.gate), data[g], op.wires, op.controls, op.control_values,
                                subspace_of(group.gate, len(op.wires)))
        return out  # type: ignore[return-value]

    # -- gradient data ----------------------------------------------------------------------------
    def derivatives(self, theta: np.ndarray) -> dict[int, list[tuple[ParamRef, np.ndarray]] | None]:
        """``{op index: [(ref, dU/d gate-param)]}`` for trainable ops (None: too wide, use generators)."""
        key, hit = self._memo("derivatives", theta)
        if hit is not None:
            return hit
        out = self._bind_derivatives(theta)
        self._last["derivatives"] = (key, out)
        return out

    def derivative_support(self, index: int) -> np.ndarray:
        """``(E, 2)`` index pairs where operation ``index``'s derivative matrices can be nonzero.

        Structural: read once per program from the derivatives at a generic parameter point (seeded
        values in [0.3, 2.9], away from the zeros of the trigonometric entries), so an entry that
        vanishes only at special parameter values is still included.
        """
        if self._support is None:
            generic = np.random.default_rng(20261207).uniform(0.3, 2.9, self.circuit.num_params)
            support = {}
            for i, derivs in self._bind_derivatives(generic).items():
                if derivs:
                    mask = np.zeros(np.shape(derivs[0][1])[-2:], dtype=bool)
                    for _, d_u in derivs:
                        mask |= np.any(np.asarray(d_u) != 0, axis=tuple(range(np.ndim(d_u) - 2)))
                    support[i] = np.argwhere(mask)
            self._support = support
        return self._support[index]

    @property
    def generator_ops(self) -> frozenset[int]:
        """Trainable operations differentiated through their generators (too wide for dense derivatives)."""
        return frozenset(self._derivative_plan()[0])

    def _derivative_plan(self) -> tuple[list[int], list[int], list[tuple[Any, int, list[int], ParamTable]]]:
        """(too-wide ops, one-off ops, same-gate groups with their parameter tables), built once."""
        if self._dplan is None:
            wide, single = [], []
            by_gate: dict[tuple, list[int]] = defaultdict(list)
            for i in self.trainable:
                op = self.operations[i]
                if len(op.wires) > DENSE_DERIVATIVE_MAX_WIRES or (
                    op.gate.factors and any(len(f.targets) != len(op.wires) for f in op.gate.factors)
                ):
                    wide.append(i)
                elif op.gate.hyper is not None or not all(isinstance(p, (ParamRef, float, int)) for p in op.params):
                    single.append(i)
                else:
                    by_gate[(op.gate.name, len(op.wires))].append(i)
            groups = []
            for (name, k), idx in by_gate.items():
                ops = [self.operations[i] for i in idx]
                groups.append((GATES[name], k, idx, ParamTable(ops, GATES[name].num_params)))
            self._dplan = (wide, single, groups)
        return self._dplan

    def _bind_derivatives(self, theta: np.ndarray) -> dict[int, list[tuple[ParamRef, np.ndarray]] | None]:
        wide, single, groups = self._derivative_plan()
        out: dict[int, list[tuple[ParamRef, np.ndarray]] | None] = dict.fromkeys(wide)
        for i in single:
            op = self.operations[i]
            values = [_stack([op.param_values(theta)[j]]) for j in range(op.gate.num_params)]
            out[i] = _derivatives_of(op.gate, len(op.wires), [op], values, op.hyper)[0]
        for gate, k, idx, table in groups:
            derivs = _derivatives_of(gate, k, [self.operations[i] for i in idx], list(table.values(theta)), None)
            for i, d in zip(idx, derivs, strict=True):
                out[i] = d
        return out


@functools.lru_cache(maxsize=256)
def _dense_generator(name: str, k: int) -> np.ndarray:
    """Dense generator of a parameter-free-data gate on k wires (cached: built by Kronecker products)."""
    return GATES[name].generator(None, k).dense()


def _derivatives_of(gate: Any, k: int, ops: list[Operation], values: list[np.ndarray], hyper: Any) -> list[list]:
    """Dense derivative matrices for a group of same-gate operations with stacked parameter ``values``."""
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
                term = 1j * (_dense_generator(f.gate, k) @ mats[fi])
                for before in reversed(mats[:fi]):
                    term = term @ before
                for after in mats[fi + 1 :]:
                    term = after @ term
                d_u = d_u + term
            per_pos[pos] = d_u
    else:
        u = gate.matrix(tuple(values), hyper, k)
        h = _dense_generator(gate.name, k) if gate.hyper is None else gate.generator(hyper, k).dense()
        per_pos[0] = 1j * (h @ u)
    result = []
    for g, op in enumerate(ops):
        entries = []
        for pos, ref in op.trainable_refs:
            d = per_pos[pos][g]
            entries.append((ref, np.conj(np.swapaxes(d, -1, -2)) if op.inverse else d))
        result.append(entries)
    return result


def data_batch_size(circuit: Circuit) -> int | None:
    """Batch size set by the circuit's own data (batched gate data, constants or initial state), or None."""
    sizes = set()
    prep = circuit.state_prep
    if prep is not None and prep.amplitudes is not None and prep.amplitudes.ndim == 2:
        sizes.add(prep.amplitudes.shape[0])
    for op in circuit.operations:
        if op.gate.hyper in ("matrix", "diagonal") and np.ndim(op.hyper) == (3 if op.gate.hyper == "matrix" else 2):
            sizes.add(np.shape(op.hyper)[0])
        for p in op.params:
            if np.ndim(p) == 1 and not isinstance(p, ParamRef):
                sizes.add(np.shape(p)[0])
    if len(sizes) > 1:
        from .errors import ParameterError

        raise ParameterError(f"inconsistent batch sizes in the circuit's data: {sorted(sizes)}")
    return sizes.pop() if sizes else None


PROGRAM_CACHE_SIZE = 32
"""Programs kept by circuit structure (the PennyLane device converts every tape into a new circuit)."""

_PROGRAMS: StructureCache[Program] = StructureCache("programs", PROGRAM_CACHE_SIZE)


def structure_key(circuit: Circuit) -> tuple | None:
    """Everything a :class:`Program` depends on, hashable; None when the circuit carries array data.

    Two circuits with equal keys have the same gates, wires, controls, adjoint flags, parameter
    references and constant values, so they can share one compiled program.
    """
    prep = circuit.state_prep
    if prep is not None and prep.amplitudes is not None:
        return None
    ops = []
    for op in circuit.operations:
        if op.hyper is not None and not isinstance(op.hyper, str):
            return None
        params = []
        for p in op.params:
            if isinstance(p, (ParamRef, float, int)):
                params.append(p)
            elif np.ndim(p) == 0:
                params.append(float(p))
            else:
                return None
        ops.append((op.gate.name, op.wires, tuple(params), op.controls, op.control_values, op.inverse, op.hyper))
    return (circuit.num_wires, circuit.num_params, None if prep is None else (prep.wires, prep.bits), tuple(ops))


def product_prefix_length(circuit: Circuit) -> int:
    """How many leading operations of ``circuit`` are uncontrolled one-wire gates acting on its start
    state |0...0> or a basis state: together they make a product state, which can be written directly
    instead of applied gate by gate. 0 for an amplitude state preparation or a Pauli rotation first."""
    prep = circuit.state_prep
    if prep is not None and prep.bits is None:
        return 0
    k = 0
    for op in circuit.operations:
        if len(op.wires) != 1 or op.controls or exec_kind(op.gate) == Kind.PAULI_ROTATION:
            break
        k += 1
    return k


def program_of(circuit: Circuit) -> Program:
    """The circuit's :class:`Program`: cached on the circuit until it changes (any change bumps
    ``circuit.version``: operations, parameter count, state preparation) and shared between circuits of
    the same structure."""
    cached = getattr(circuit, "_program", None)
    if cached is not None and cached[0] == circuit.version:
        return cached[1]
    key = structure_key(circuit)
    prog = Program(circuit) if key is None else _PROGRAMS.get_or_build(key, lambda: Program(circuit))
    circuit._program = (circuit.version, prog)  # type: ignore[attr-defined]
    return prog


def factor_operations(op: Operation) -> list[tuple[Operation, int | None]]:
    """Split ``op`` into one-parameter factors, in application order, for differentiation.

    Returns ``[(factor_op, gate_param_position or None), ...]``; a one-parameter gate is its own
    single factor. Multi-parameter gates (Rot, U2, U3, CRot) use their declared factorisation, each
    factor inheriting the op's controls; an inverted op has its factors reversed and inverted.
    """
    gate = op.gate
    if not gate.factors:
        return [(op, 0 if gate.num_params == 1 else None)]
    out = []
    for f in gate.factors:
        fgate = GATES[f.gate]
        if isinstance(f.param, int):
            param, pos = op.params[f.param], f.param
        else:
            param, pos = float(f.param), None
        wires = tuple(op.wires[t] for t in f.targets)
        out.append((Operation(fgate, wires, (param,), op.controls, op.control_values, False, None, f.gate), pos))
    if op.inverse:
        out = [(fop.adjoint(), pos) for fop, pos in reversed(out)]
    return out
