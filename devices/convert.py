"""PennyLane -> qdiff: a tape becomes a Circuit, a parameter vector and a plan of measurements.

- Wires: device labels map to ``0..n-1`` in device order (tape order when the device has no wires);
  only wires the tape uses are simulated.
- Parameters: every scalar gate parameter whose tape index is in ``refs`` becomes a
  :class:`~qdiff.circuit.ParamRef` into ``theta`` (so Jacobians come back per tape parameter); the
  others are constants. Matrices (QubitUnitary, DiagonalQubitUnitary) are gate data; a leading
  StatePrep/BasisState becomes the circuit's state preparation.
- Observables stay structured: Pauli sums become LinearCombinations of PauliWords, Hermitian and
  Projector become small Hermitian blocks (a basis-state Projector is a product of one-wire blocks),
  SparseHamiltonian becomes a SparseHermitian. Nothing builds a dense ``2^n x 2^n`` matrix.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.exceptions import DeviceError
from pennylane.measurements import (
    CountsMP,
    DensityMatrixMP,
    ExpectationMP,
    MeasurementProcess,
    ProbabilityMP,
    SampleMP,
    StateMP,
    VarianceMP,
)
from pennylane.operation import StatePrepBase
from pennylane.ops import Adjoint, Conditional, Controlled, MidMeasure

import qdiff.dynamic as qdyn
import qdiff.measure as qm
from qdiff.cache import StructureCache
from qdiff.circuit import Circuit, Operation, ParamRef
from qdiff.errors import QDiffError
from qdiff.gates import ALIASES, GATES
from qdiff.observables import (
    Hermitian,
    LinearCombination,
    Observable,
    PauliWord,
    Product,
    SparseHermitian,
    product,
)

DENSE_OBSERVABLE_MAX_WIRES = 10
"""An observable without structure (no Pauli form, no known class) becomes a dense Hermitian block
on its own wires only up to this many wires."""

SKIPPED_OPS = frozenset({"Identity", "Barrier", "Snapshot", "WireCut"})
"""Operations that do nothing to the state."""

MATRIX_GATES = frozenset({"QubitUnitary", "DiagonalQubitUnitary"})
"""Gates whose (single) parameter is a matrix or diagonal, stored as qdiff gate data."""


def qdiff_gate_name(name: str) -> str | None:
    """The qdiff gate (base or alias) implementing PennyLane gate ``name``, or None."""
    if name in GATES or name in ALIASES:
        return name
    return None


def unwrap(op: Any) -> tuple[Any, list[Any], list[int], bool]:
    """Strip Controlled/Adjoint wrappers: (base op, control wires, control values, inverse)."""
    controls: list[Any] = []
    cvals: list[int] = []
    inverse = False
    base = op
    while True:
        if isinstance(base, Controlled):
            controls.extend(base.control_wires)
            cvals.extend(int(bool(v)) for v in base.control_values)
            base = base.base
        elif isinstance(base, Adjoint):
            inverse = not inverse
            base = base.base
        else:
            return base, controls, cvals, inverse


MATRIX_FALLBACK_MAX_WIRES = 8
"""Operations qdiff does not know but PennyLane gives a matrix for run as a dense QubitUnitary:
always up to 3 wires, and up to this many wires when PennyLane has no decomposition for them."""


def native_operation(op: Any) -> bool:
    """True when ``op`` (with its controls and adjoints) is one of qdiff's own gates."""
    base, _, _, _ = unwrap(op)
    name = base.name
    if name in SKIPPED_OPS:
        return name != "Snapshot"
    if isinstance(base, StatePrepBase):
        return False
    return qdiff_gate_name(name) is not None


def matrix_fallback(op: Any) -> bool:
    """True when ``op`` is not native but small enough to run from its matrix."""
    if isinstance(op, (StatePrepBase, MidMeasure, Conditional)) or op.name in ("Projector", "Snapshot"):
        return False
    try:
        if not op.has_matrix:
            return False
    except Exception:  # noqa: BLE001 - has_matrix may fail for exotic operators
        return False
    k = len(op.wires)
    return k <= 3 or (k <= MATRIX_FALLBACK_MAX_WIRES and not op.has_decomposition)


def supports_operation(op: Any) -> bool:
    """True when qdiff.qubit runs ``op`` without decomposing it."""
    if isinstance(op, MidMeasure):
        return True
    if isinstance(op, Conditional):
        return supports_operation(op.base)
    if op.name == "Projector":  # postselection (deferred measurements): basis-state projectors only
        return bool(op.data) and np.ndim(op.data[0]) == 1 and len(op.data[0]) == len(op.wires)
    return native_operation(op) or matrix_fallback(op)


def _real_scalar(x: Any) -> Any:
    """A gate parameter as a float (or a float array for a broadcast parameter)."""
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        arr = arr.real
    return float(arr) if arr.ndim == 0 else arr.astype(float)


@dataclass
class ParamSlot:
    """Where tape parameter ``i`` went: a theta column, a constant, gate data or an observable."""

    kind: str  # "theta" | "const" | "matrix" | "prep" | "obs"
    index: int = -1  # theta column, or circuit operation index for "matrix"
    broadcast: bool = False


def condition_mask(mv: Any, outcomes: dict[Any, np.ndarray]) -> np.ndarray:
    """Rows (trajectories) where the mid-circuit measurement condition ``mv`` holds."""
    mcms = list(mv.measurements)
    rows = len(next(iter(outcomes.values()))) if outcomes else 1
    vals = np.stack([outcomes[m] for m in mcms], axis=1) if mcms else np.zeros((rows, 0), dtype=int)
    mask = np.zeros(vals.shape[0], dtype=bool)
    combos, inverse = np.unique(vals, axis=0, return_inverse=True)
    for c, combo in enumerate(combos):
        if bool(mv.concretize(dict(zip(mcms, (int(x) for x in combo), strict=True)))):
            mask |= np.asarray(inverse).reshape(-1) == c
    return mask


def _postselect_step(op: Any, wire_map: dict[Any, int]) -> qdyn.Postselect:
    bits = np.asarray(op.data[0])
    if bits.shape != (len(op.wires),) or not np.isin(bits, (0, 1)).all():
        raise DeviceError(f"{op.name} in the circuit must project onto a basis state (bits per wire), got {bits}")
    return qdyn.Postselect(tuple(wire_map[w] for w in op.wires), tuple(int(b) for b in bits))


@dataclass
class Converted:
    """A tape as qdiff data."""

    circuit: Circuit
    theta: np.ndarray
    batch_size: int | None
    wire_order: list[Any]
    wire_map: dict[Any, int]
    slots: list[ParamSlot]
    schedule: list[qdyn.Step] = field(default_factory=list)

    @property
    def dynamic(self) -> bool:
        """True when the tape has mid-circuit measurements (run shot by shot)."""
        return any(isinstance(s, (qdyn.Measure, qdyn.Conditional)) for s in self.schedule)

    @property
    def postselects(self) -> bool:
        """True when the tape projects onto basis states (deferred postselection)."""
        return any(isinstance(s, qdyn.Postselect) for s in self.schedule)

    def slot(self, tape_index: int) -> ParamSlot:
        """Where tape parameter ``tape_index`` went; parameters after the operations' are the observables'."""
        return self.slots[tape_index] if tape_index < len(self.slots) else ParamSlot("obs")

    def dynamic_circuit(self) -> qdyn.DynamicCircuit:
        """The circuit with its schedule of measurements, postselections and conditionals."""
        return qdyn.DynamicCircuit(self.circuit, self.schedule)


@functools.cache
def _fixed_ndim_params(cls: type) -> tuple[int, ...] | None:
    """The parameter ranks an operator class fixes as a class attribute, or None (a per-instance property)."""
    nd = getattr(cls, "ndim_params", None)
    return nd if isinstance(nd, tuple) else None


def op_batch_size(op: Any) -> int | None:
    """``op.batch_size``, read from parameter shapes where the class fixes its parameter ranks.

    PennyLane's own check dispatches every parameter through ``qml.math`` (about 0.1 ms an operation,
    paid again on every new tape). Parameters with a plain shape tuple (numpy, autograd, torch, JAX)
    against a class-level ``ndim_params`` are read here; anything else (sparse data, unknown shapes,
    ranks that fit neither way, unequal batch sizes) goes to ``op.batch_size``, which also raises
    PennyLane's error for inconsistent data.
    """
    while isinstance(op, (Adjoint, Controlled)):
        op = op.base
    expected = _fixed_ndim_params(type(op))
    if expected is None or len(expected) != len(op.data):
        return op.batch_size
    size = None
    for d, e in zip(op.data, expected, strict=True):
        shape = getattr(d, "shape", ()) if not isinstance(d, (float, int, complex)) else ()
        if not isinstance(shape, tuple) or len(shape) not in (e, e + 1) or None in shape:
            return op.batch_size
        if len(shape) == e + 1:
            if size is not None and shape[0] != size:
                return op.batch_size
            size = shape[0]
    return size


def tape_batch_size(tape: Any) -> int | None:
    """``tape.batch_size`` through :func:`op_batch_size` (the same value and the same error on a mismatch)."""
    candidate = None
    for op in tape.operations:
        size = op_batch_size(op)
        if size is None:
            continue
        if candidate is not None and size != candidate:
            raise ValueError(
                "The batch sizes of the quantum script operations do not match, they include "
                f"{candidate} and {size}."
            )
        candidate = size
    return candidate


def wire_order_for(tape: Any, device_wires: Any) -> list[Any]:
    """Simulated wires: the tape's wires, in device order when the device has wire labels."""
    tape_wires = tape.wires
    if device_wires is None:
        return list(tape_wires)
    used = set(tape_wires)
    return [w for w in device_wires if w in used]


OP_TEMPLATE_CACHE_SIZE = 4096
_OP_TEMPLATES: StructureCache[Operation] = StructureCache("operation templates", OP_TEMPLATE_CACHE_SIZE)
"""Validated qdiff operations by structure (gate, simulated wires, controls, adjoint, Pauli word):
converting a gate seen before only swaps in its parameters, skipping name resolution and checks."""


class _Builder:
    """Accumulates a Circuit and its theta columns while walking a tape's operations."""

    def __init__(self, num_wires: int, wire_map: dict[Any, int], refs: set[int] | None, batch: int | None):
        self.circuit = Circuit(num_wires)
        self.wire_map = wire_map
        self.refs = refs
        self.batch = batch
        self.columns: list[Any] = []
        self.slots: list[ParamSlot] = []

    def _wires(self, wires: Iterable[Any]) -> list[int]:
        return [self.wire_map[w] for w in wires]

    def _param(self, value: Any, tape_index: int, ndim_expected: int = 0) -> Any:
        v = _real_scalar(value)
        broadcast = np.ndim(v) > ndim_expected
        if self.refs is None or tape_index in self.refs:
            self.slots.append(ParamSlot("theta", len(self.columns), broadcast))
            self.columns.append(v)
            return ParamRef(len(self.columns) - 1)
        self.slots.append(ParamSlot("const", -1, broadcast))
        return v

    def state_prep(self, op: Any, first_index: int) -> None:
        for _ in op.data:
            self.slots.append(ParamSlot("prep", -1, op.batch_size is not None))
        wires = self._wires(op.wires)
        if isinstance(op, qml.BasisState) and op.batch_size is None:
            bits = np.asarray(qml.math.toarray(op.data[0])).astype(int).ravel()
            self.circuit.basis_state(bits, wires)
            return
        if isinstance(op, qml.StatePrep):
            amp = op.data[0]
            if hasattr(amp, "toarray"):  # scipy sparse
                amp = amp.toarray()
            amp = np.asarray(amp, dtype=complex)
            amp = amp.reshape(-1, amp.shape[-1]) if op.batch_size is not None else amp.reshape(-1)
        else:
            vec = np.asarray(op.state_vector(wire_order=op.wires), dtype=complex)
            amp = vec.reshape(op.batch_size, -1) if op.batch_size is not None else vec.reshape(-1)
        self.circuit.state_vector(amp, wires, normalize=True)

    def gate(self, op: Any, first_index: int) -> None:
        base, controls, cvals, inverse = unwrap(op)
        name = base.name
        if name in SKIPPED_OPS:
            for _ in op.data:
                self.slots.append(ParamSlot("const"))
            return
        qname = qdiff_gate_name(name)
        if qname is None:
            if not matrix_fallback(op):
                raise DeviceError(f"Operator {op.name} is not supported on qdiff.qubit and was not decomposed.")
            for _ in op.data:
                self.slots.append(ParamSlot("const"))
            self._matrix_op("QubitUnitary", np.asarray(op.matrix(), dtype=complex), op.wires, [], [], False, op)
            return
        hyper = None
        params: list[Any] = []
        if name in MATRIX_GATES:
            self.slots.append(ParamSlot("matrix", len(self.circuit.operations), op.batch_size is not None))
            self._matrix_op(name, np.asarray(qml.math.toarray(base.data[0]), dtype=complex), base.wires,
                            controls, cvals, inverse, op)
            return
        else:
            for i, d in enumerate(base.data):
                params.append(self._param(d, first_index + i))
            if name == "PauliRot":
                hyper = base.hyperparameters["pauli_word"]
        targets = tuple(self._wires(base.wires))
        if hyper is not None and hyper.strip("I"):
            # exp(-i t P / 2) for a word with one letter is RX/RY/RZ, for a Z..Z word MultiRZ (diagonal):
            # forms every executor runs fused (QAOA's cost and mixer layers arrive as PauliRot "ZZ" and "X");
            # the parameter, the matrix and the gradient are the same
            letters = [(w, p) for w, p in zip(targets, hyper, strict=True) if p != "I"]
            if len(letters) == 1 or all(p == "Z" for _, p in letters):
                qname = "R" + letters[0][1] if len(letters) == 1 else "MultiRZ"
                targets, hyper = tuple(w for w, _ in letters), None
        ctrl = tuple(self._wires(controls))
        key = (qname, targets, ctrl, tuple(cvals), inverse, hyper, len(params))
        template = _OP_TEMPLATES.get(key)
        try:
            if template is not None:  # same gate structure seen before: only the parameters change (and are checked)
                self.circuit.append(replace(template, params=tuple(params)))
                return
            self.circuit.add(
                qname, *params, wires=targets, controls=ctrl,
                control_values=cvals if controls else None, inverse=inverse, hyper=hyper,
            )
        except QDiffError as exc:
            raise DeviceError(f"qdiff.qubit cannot apply {op}: {exc}") from exc
        _OP_TEMPLATES.put(key, self.circuit.operations[-1])

    def _matrix_op(self, name: str, data: np.ndarray, wires: Any, controls: list, cvals: list, inverse: bool,
                   op: Any) -> None:
        """Append a QubitUnitary/DiagonalQubitUnitary as given, like PennyLane (no unitarity check:
        finite differences and PennyLane's own tolerance may hand over slightly non-unitary data)."""
        targets = tuple(self._wires(wires))
        d = 2 ** len(targets)
        shape_ok = data.shape[-2:] == (d, d) if name == "QubitUnitary" else data.shape[-1:] == (d,)
        if not shape_ok or not np.all(np.isfinite(data)):
            raise DeviceError(
                f"qdiff.qubit cannot apply {op}: matrix data of shape {data.shape} on {len(targets)} wire(s)"
            )
        ctrl = tuple(self._wires(controls))
        self.circuit.append(Operation(GATES[name], targets, (), ctrl, tuple(cvals), bool(inverse), data, name))

    def theta(self) -> np.ndarray:
        p = len(self.columns)
        if self.batch is None:
            return np.array(self.columns, dtype=float).reshape(p)
        theta = np.empty((self.batch, p))
        for j, c in enumerate(self.columns):
            theta[:, j] = c
        return theta


def convert_tape(tape: Any, device_wires: Any = None, refs: Iterable[int] | None = None) -> Converted:
    """Translate ``tape`` into qdiff data.

    ``refs``: tape parameter indices (``tape.get_parameters(trainable_only=False)`` numbering) that
    become entries of ``theta``; None means every scalar gate parameter (plain execution).
    """
    wire_order = wire_order_for(tape, device_wires)
    if not wire_order:  # nothing acts on any wire: simulate one idle qubit
        wire_order = ["__qdiff_idle__"]
    wire_map = {w: i for i, w in enumerate(wire_order)}
    batch = tape_batch_size(tape)
    ops = tape.operations
    refs_set = None if refs is None else set(refs)  # None: every gate parameter (no tape.par_info: it walks
    # the observables' data too, a 600-term Hamiltonian's coefficients one by one)
    b = _Builder(len(wire_order), wire_map, refs_set, batch)
    schedule: list[qdyn.Step] = []
    idx = 0
    start = 0
    for k, op in enumerate(ops):
        if k == 0 and isinstance(op, StatePrepBase):
            b.state_prep(op, idx)
        elif isinstance(op, MidMeasure):
            stop = len(b.circuit.operations)
            schedule.append(qdyn.Gates(start, stop))
            schedule.append(qdyn.Measure(wire_map[op.wires[0]], op, bool(op.reset)))
            start = stop
        elif isinstance(op, Conditional):
            stop = len(b.circuit.operations)
            schedule.append(qdyn.Gates(start, stop))
            b.gate(op.base, idx)
            start = len(b.circuit.operations)
            schedule.append(qdyn.Conditional(stop, start, functools.partial(condition_mask, op.meas_val)))
        elif op.name == "Projector":
            for _ in op.data:
                b.slots.append(ParamSlot("const"))
            stop = len(b.circuit.operations)
            schedule.append(qdyn.Gates(start, stop))
            schedule.append(_postselect_step(op, wire_map))
            start = stop
        elif isinstance(op, StatePrepBase):
            raise DeviceError(f"{op.name} in the middle of a circuit must be decomposed before qdiff.qubit runs it")
        else:
            b.gate(op, idx)
        idx += len(op.data)
    if schedule:
        schedule.append(qdyn.Gates(start, len(b.circuit.operations)))
    b.circuit.num_params = len(b.columns)
    return Converted(b.circuit, b.theta(), batch, wire_order, wire_map, b.slots, schedule)


def convert_operations(ops: Sequence[Any], wire_map: dict[Any, int], num_wires: int) -> Circuit:
    """A constant-parameter circuit of ``ops`` (diagonalizing gates, for example)."""
    b = _Builder(num_wires, wire_map, set(), None)
    for op in ops:
        b.gate(op, 0)
    return b.circuit


# ------------------------------------------------------------------------------------------------
# observables


class UnsupportedObservable(Exception):
    """An observable qdiff cannot evaluate in structured form (the caller falls back to PennyLane)."""


PAULI_CACHE_SIZE = 64
"""Converted Pauli sentences kept (keyed on every word, coefficient and wire), most recent last."""

_pauli_cache: StructureCache[Observable] = StructureCache("converted Pauli sentences", PAULI_CACHE_SIZE)


def _pauli_sentence(ps: Any, wire_map: dict[Any, int]) -> Observable:
    """A PennyLane PauliSentence as a qdiff Pauli word or sum, reusing an earlier identical conversion.

    A training loop measures the same Hamiltonian every step: returning the same (immutable) qdiff
    observable keeps its packed arrays and Z diagonal, so they are built once. The key holds every
    word, coefficient and wire label, so a different Hamiltonian never hits.
    """
    items = []
    for word, c in ps.items():
        c = complex(c)
        if abs(c.imag) > 1e-10 * max(1.0, abs(c.real)):
            raise UnsupportedObservable(f"non-Hermitian Pauli coefficient {c}")
        items.append((word, c.real))
    key = (tuple(items), tuple(wire_map.items()))
    hit = _pauli_cache.get(key)
    if hit is not None:
        return hit
    coeffs = tuple(c for _, c in items)
    terms = tuple(PauliWord({wire_map[w]: p for w, p in word.items()}) for word, _ in items)
    if len(terms) == 1 and coeffs[0] == 1.0:
        out: Observable = terms[0]
    elif not terms:
        out = LinearCombination((0.0,), (PauliWord({}),))
    else:
        out = LinearCombination(coeffs, terms)
    return _pauli_cache.put(key, out)


_BASIS_PROJ = (np.diag([1.0, 0.0]).astype(complex), np.diag([0.0, 1.0]).astype(complex))


def convert_observable(obs: Any, wire_map: dict[Any, int]) -> Observable:
    """A PennyLane observable as a structured qdiff observable; raises UnsupportedObservable."""
    name = obs.name
    if name in ("PauliX", "PauliY", "PauliZ"):
        return PauliWord({wire_map[obs.wires[0]]: name[-1]})
    if name == "Identity":
        return PauliWord({})
    if name == "Hermitian":
        return Hermitian(np.asarray(qml.math.toarray(obs.data[0])), [wire_map[w] for w in obs.wires])
    if name == "Projector":
        vec = np.asarray(qml.math.toarray(obs.data[0]))
        wires = [wire_map[w] for w in obs.wires]
        if vec.ndim != 1:
            raise UnsupportedObservable("broadcast Projector")
        if len(vec) == len(wires) and np.all((vec == 0) | (vec == 1)):  # basis state: product of blocks
            factors = [Hermitian(_BASIS_PROJ[int(b)], [w]) for b, w in zip(vec, wires, strict=True)]
            return factors[0] if len(factors) == 1 else Product(tuple(factors))
        v = vec.astype(complex)
        return Hermitian(np.outer(v, v.conj()), wires)
    if name == "SparseHamiltonian":
        return SparseHermitian(obs.sparse_matrix(), [wire_map[w] for w in obs.wires])
    if obs.pauli_rep is not None:
        return _pauli_sentence(obs.pauli_rep, wire_map)
    if name == "SProd":
        c = complex(np.asarray(obs.scalar))
        if abs(c.imag) > 1e-12:
            raise UnsupportedObservable("complex scalar")
        return c.real * convert_observable(obs.base, wire_map)
    if isinstance(obs, qml.ops.Sum):
        out: Any = None
        for o in obs.operands:
            t = convert_observable(o, wire_map)
            out = t if out is None else out + t
        return out
    if isinstance(obs, qml.ops.Prod):
        factors = [convert_observable(o, wire_map) for o in obs.operands]
        wires = [w for f in factors for w in f.wires]
        if len(set(wires)) == len(wires):
            out = factors[0]
            for f in factors[1:]:
                out = product(out, f)
            return out
    if obs.has_matrix and len(obs.wires) <= DENSE_OBSERVABLE_MAX_WIRES:
        return Hermitian(np.asarray(qml.matrix(obs)), [wire_map[w] for w in obs.wires])
    raise UnsupportedObservable(f"{name} has no structured qdiff form")


STRUCTURED_OBSERVABLES = frozenset(
    {"PauliX", "PauliY", "PauliZ", "Identity", "Hermitian", "Projector", "SparseHamiltonian", "Hadamard"}
)


def observable_supported(obs: Any) -> bool:
    """Whether :func:`convert_observable` handles ``obs``, decided from its structure alone (works on
    traced or trainable coefficients, where the values are not available)."""
    name = obs.name
    if name in STRUCTURED_OBSERVABLES or obs.pauli_rep is not None:  # Pauli sums: one attribute, no recursion
        return True
    if name == "SProd":
        return observable_supported(obs.base)
    if isinstance(obs, qml.ops.Sum):
        return all(observable_supported(o) for o in obs.operands)
    dense_ok = obs.has_matrix and len(obs.wires) <= DENSE_OBSERVABLE_MAX_WIRES
    if isinstance(obs, qml.ops.Prod):
        wires = [w for o in obs.operands for w in o.wires]
        if len(set(wires)) == len(wires):
            return all(observable_supported(o) for o in obs.operands)
    return dense_ok


# ------------------------------------------------------------------------------------------------
# measurements


@dataclass
class MeasPlan:
    """How one measurement is evaluated: by the core (``core``) or by PennyLane (``core is None``)."""

    mp: MeasurementProcess
    core: Any = None
    kind: str = "pl"


SAMPLEABLE = (PauliWord, Hermitian, Product)


def _obs_or_none(obs: Any, wire_map: dict[Any, int]) -> Observable | None:
    try:
        return convert_observable(obs, wire_map)
    except (UnsupportedObservable, QDiffError):
        return None


def plan_measurement(mp: MeasurementProcess, wire_map: dict[Any, int], shots: bool) -> MeasPlan:
    """Choose the core evaluation for ``mp`` when it matches PennyLane's semantics exactly."""
    t = type(mp)
    if mp.mv is not None:
        return MeasPlan(mp)
    wires = tuple(wire_map[w] for w in mp.wires)
    if t in (ExpectationMP, VarianceMP):
        obs = _obs_or_none(mp.obs, wire_map)
        if obs is None:
            return MeasPlan(mp)
        if t is ExpectationMP:
            return MeasPlan(mp, qm.Expval(obs), "expval")
        return MeasPlan(mp, qm.Var(obs), "var")
    if t is ProbabilityMP and mp.obs is None:
        return MeasPlan(mp, qm.Probs(wires or None), "probs")
    if not shots:
        if t is StateMP and (not wires or wires == tuple(range(len(wire_map)))):
            return MeasPlan(mp, qm.State(), "state")
        if t is DensityMatrixMP and wires:
            return MeasPlan(mp, qm.DensityMatrix(wires), "dm")
        return MeasPlan(mp)
    if t is SampleMP:
        if mp.obs is None:
            return MeasPlan(mp, qm.Sample(wires or None), "sample")
        obs = _obs_or_none(mp.obs, wire_map)
        if isinstance(obs, SAMPLEABLE):
            return MeasPlan(mp, qm.Sample(obs=obs), "sample_obs")
        return MeasPlan(mp)
    if t is CountsMP:
        if mp.obs is None:
            return MeasPlan(mp, qm.Sample(wires or None), "counts")
        obs = _obs_or_none(mp.obs, wire_map)
        if isinstance(obs, SAMPLEABLE):
            return MeasPlan(mp, qm.Sample(obs=obs), "counts_obs")
    return MeasPlan(mp)


def plan_measurements(tape: Any, wire_map: dict[Any, int]) -> list[MeasPlan]:
    """Plans for every measurement of ``tape``."""
    shots = bool(tape.shots)
    return [plan_measurement(mp, wire_map, shots) for mp in tape.measurements]


DIFFERENTIABLE_KINDS = ("expval", "var", "probs")


def differentiable_plans(plans: Sequence[MeasPlan]) -> bool:
    """True when every measurement is an expval, var or probs the core's gradients support."""
    return all(p.kind in DIFFERENTIABLE_KINDS for p in plans)


__all__ = [
    "Converted", "MeasPlan", "ParamSlot", "condition_mask", "convert_tape", "convert_operations",
    "convert_observable", "plan_measurement", "plan_measurements", "supports_operation", "unwrap",
    "native_operation", "matrix_fallback", "observable_supported",
    "UnsupportedObservable", "wire_order_for", "differentiable_plans",
]
