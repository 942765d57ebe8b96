"""Random circuits built twice, as a qdiff :class:`Circuit` and as a PennyLane quantum function.

Shared by the statevector, measurement, gradient and device tests. One entry point,
:func:`random_circuit`, takes either a hypothesis ``draw`` (inside ``@st.composite``) or a numpy
``Generator`` and draws from the whole gate set (``GATES`` and ``ALIASES``): arbitrary extra controls
with control values 0/1, ``inverse=True``, trainable parameters shared through ``ParamRef`` with
coefficients and offsets (built with every ParamRef arithmetic operator), random ``QubitUnitary``
matrices, ``DiagonalQubitUnitary`` phases, ``PauliRot`` words, ``GlobalPhase`` (also on no wires) and a
``BasisState``/``StatePrep`` at the start.

The PennyLane side is built only from the drawn *record* (gate names, wires, ``coeff``/``offset`` of each
parameter) with PennyLane's own classes, never from qdiff's objects, so it is an independent oracle for
the gate table, the alias table, ``ParamRef`` arithmetic and the kernels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
import pennylane as qml
from scipy.stats import unitary_group

from qdiff.circuit import Circuit
from qdiff.gates import ALIASES, GATES

ALL_GATE_NAMES: tuple[str, ...] = tuple(GATES) + tuple(ALIASES)
"""Every gate name qdiff accepts (base gates and aliases)."""

# PennyLane's view of qdiff's aliases, written out independently of qdiff.gates.ALIASES:
# name -> (PennyLane base class name, number of leading control wires; -1: all but the last).
PL_ALIAS_BASE: dict[str, tuple[str, int]] = {
    "CNOT": ("PauliX", 1),
    "CY": ("PauliY", 1),
    "CZ": ("PauliZ", 1),
    "CH": ("Hadamard", 1),
    "CSWAP": ("SWAP", 1),
    "Toffoli": ("PauliX", 2),
    "MultiControlledX": ("PauliX", -1),
    "ControlledPhaseShift": ("PhaseShift", 1),
    "CPhase": ("PhaseShift", 1),
    "CRX": ("RX", 1),
    "CRY": ("RY", 1),
    "CRZ": ("RZ", 1),
    "CRot": ("Rot", 1),
    "U1": ("PhaseShift", 0),
    "X": ("PauliX", 0),
    "Y": ("PauliY", 0),
    "Z": ("PauliZ", 0),
    "H": ("Hadamard", 0),
    "I": ("Identity", 0),
}

# target-wire counts of the base gates, written out independently (None: any number)
PL_NUM_WIRES: dict[str, int | None] = {
    "Identity": None, "PauliX": 1, "PauliY": 1, "PauliZ": 1, "Hadamard": 1, "S": 1, "T": 1, "SX": 1,
    "SWAP": 2, "ISWAP": 2, "SISWAP": 2, "ECR": 2, "RX": 1, "RY": 1, "RZ": 1, "PhaseShift": 1, "Rot": 1,
    "U2": 1, "U3": 1, "IsingXX": 2, "IsingYY": 2, "IsingZZ": 2, "IsingXY": 2, "MultiRZ": None,
    "PauliRot": None, "SingleExcitation": 2, "DoubleExcitation": 4, "GlobalPhase": None,
    "SingleExcitationPlus": 2, "SingleExcitationMinus": 2, "DoubleExcitationPlus": 4, "DoubleExcitationMinus": 4,
    "FermionicSWAP": 2,
    "QubitUnitary": None, "DiagonalQubitUnitary": None,
}

MAX_VARIABLE_WIRES = {"Identity": 3, "MultiRZ": 4, "PauliRot": 4, "GlobalPhase": 3, "QubitUnitary": 3,
                      "DiagonalQubitUnitary": 3}
MIN_VARIABLE_WIRES = {"GlobalPhase": 0}


def pl_base(name: str) -> tuple[str, int]:
    """(PennyLane base gate name, leading controls) of any qdiff gate name."""
    return PL_ALIAS_BASE.get(name, (name, 0))


def snake(name: str) -> str:
    """``IsingXX`` -> ``ising_xx``: the Circuit's lower-case method name for a gate."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# ------------------------------------------------------------------------------------------------
# one source of randomness for hypothesis and numpy


class Source:
    """Draws values from a hypothesis ``draw`` function or a numpy ``Generator`` with one interface."""

    def __init__(self, draw_or_rng: Any):
        if isinstance(draw_or_rng, np.random.Generator):
            self.rng, self.draw = draw_or_rng, None
        else:
            self.rng, self.draw = None, draw_or_rng

    def integer(self, lo: int, hi: int) -> int:
        """Integer in ``[lo, hi]`` (inclusive)."""
        if self.draw is not None:
            from hypothesis import strategies as st

            return self.draw(st.integers(lo, hi))
        return int(self.rng.integers(lo, hi + 1))

    def real(self, lo: float, hi: float) -> float:
        """Float in ``[lo, hi]``."""
        if self.draw is not None:
            from hypothesis import strategies as st

            return self.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
        return float(self.rng.uniform(lo, hi))

    def coin(self, p: float = 0.5) -> bool:
        """True with probability about ``p``."""
        if self.draw is not None:
            return self.integer(0, 999) < int(1000 * p)
        return bool(self.rng.random() < p)

    def choice(self, seq: Sequence[Any]) -> Any:
        """One element of ``seq``."""
        return seq[self.integer(0, len(seq) - 1)]

    def ordered_subset(self, seq: Sequence[Any], k: int) -> list[Any]:
        """``k`` distinct elements of ``seq`` in random order."""
        pool, out = list(seq), []
        for _ in range(k):
            out.append(pool.pop(self.integer(0, len(pool) - 1)))
        return out

    def seed(self) -> int:
        """A seed for generators that need one (scipy's unitary_group)."""
        return self.integer(0, 2**31 - 1)


# ------------------------------------------------------------------------------------------------
# the drawn record


@dataclass(frozen=True)
class ParamSpec:
    """A gate parameter: constant ``value``, or ``coeff * theta[index] + offset`` when ``index`` is set."""

    index: int | None = None
    coeff: float = 1.0
    offset: float = 0.0
    value: float = 0.0

    def evaluate(self, theta: np.ndarray) -> Any:
        """The parameter's value for ``theta`` of shape ``(P,)`` or ``(B, P)``."""
        if self.index is None:
            return self.value
        return self.coeff * np.asarray(theta)[..., self.index] + self.offset


@dataclass
class GateRecord:
    """One drawn gate, as plain data (what both builders read)."""

    name: str
    params: list[ParamSpec]
    wires: tuple[int, ...]  # alias controls first, then targets
    controls: tuple[int, ...] = ()  # extra controls
    control_values: tuple[int, ...] | None = None  # for extra controls + alias controls, or None = all 1
    inverse: bool = False
    hyper: Any = None


@dataclass
class RandomCircuit:
    """The same random circuit for qdiff (``circuit``) and PennyLane (``qfunc(theta)``)."""

    circuit: Circuit
    theta: np.ndarray
    num_wires: int
    records: list[GateRecord] = field(default_factory=list)
    prep: tuple[str, tuple[int, ...], np.ndarray] | None = None  # ("basis"|"state", wires, data)

    def qfunc(self, theta: Any = None) -> None:
        """Queue the circuit's PennyLane operations for parameters ``theta`` ((P,) or (B, P))."""
        theta = self.theta if theta is None else np.asarray(theta, dtype=float)
        if self.prep is not None:
            kind, wires, data = self.prep
            if kind == "basis":
                qml.BasisState(np.asarray(data), wires=list(wires))
            else:
                qml.StatePrep(data, wires=list(wires))
        for rec in self.records:
            pennylane_op(rec, theta)

    def pennylane_state(self, theta: Any = None) -> np.ndarray:
        """Final state from PennyLane's default.qubit (shape ``(2**n,)`` or ``(B, 2**n)``)."""
        return pennylane_run(self.qfunc, self.num_wires, [qml.state()], theta)[0]

    def initial_state(self) -> np.ndarray:
        """The state after the state preparation, built by hand (for ``U^dagger U = I`` checks)."""
        n = self.num_wires
        psi = np.zeros(2**n, dtype=complex)
        if self.prep is None:
            psi[0] = 1
            return psi
        kind, wires, data = self.prep
        rest = [w for w in range(n) if w not in wires]
        for j in range(2 ** len(wires)):
            if kind == "basis":
                amp = 1.0 if j == int("".join(map(str, data)), 2) else 0.0
            else:
                amp = data[j]
            bits = [0] * n
            for pos, w in enumerate(wires):
                bits[w] = (j >> (len(wires) - 1 - pos)) & 1
            for w in rest:
                bits[w] = 0
            psi[int("".join(map(str, bits)), 2)] = amp
        return psi


def pennylane_run(qfunc: Callable[[Any], None], num_wires: int, measurements: list, theta: Any = None,
                  shots: int | None = None) -> list:
    """Execute ``qfunc(theta)`` followed by ``measurements`` on PennyLane's default.qubit."""
    with qml.queuing.AnnotatedQueue() as q:
        qfunc(theta)
        for m in measurements:
            qml.apply(m)
    tape = qml.tape.QuantumScript.from_queue(q, shots=shots)
    dev = qml.device("default.qubit", wires=num_wires)
    res = qml.execute([tape], dev)[0]
    return list(res) if len(measurements) > 1 else [res]


def pennylane_op(rec: GateRecord, theta: np.ndarray) -> Any:
    """Queue the PennyLane operation of one record (built from the record only)."""
    base, n_alias = pl_base(rec.name)
    values = [p.evaluate(theta) for p in rec.params]
    wires = list(rec.wires)
    if n_alias == -1:
        n_alias = len(wires) - 1
    alias_ctrl, targets = wires[:n_alias], wires[n_alias:]
    n_extra = len(rec.controls)
    cvals = list(rec.control_values) if rec.control_values is not None else [1] * (n_extra + n_alias)
    extra_vals, alias_vals = cvals[:n_extra], cvals[n_extra:]

    def make(cls_name: str, op_wires: list[int]) -> Any:
        cls = getattr(qml, cls_name)
        if cls_name == "PauliRot":
            return cls(values[0], rec.hyper, wires=op_wires)
        if cls_name in ("QubitUnitary", "DiagonalQubitUnitary"):
            return cls(rec.hyper, wires=op_wires)
        if cls_name == "MultiControlledX":
            return cls(wires=op_wires, control_values=alias_vals)
        return cls(*values, wires=op_wires)

    with qml.QueuingManager.stop_recording():
        if rec.name == "MultiControlledX" or (n_alias and all(v == 1 for v in alias_vals)):
            op = make(rec.name, wires)  # PennyLane's own controlled class
            ctrl, ctrl_vals = list(rec.controls), extra_vals
        else:
            op = make(base, targets)
            ctrl, ctrl_vals = list(rec.controls) + alias_ctrl, extra_vals + alias_vals
        if ctrl:
            op = qml.ctrl(op, control=ctrl, control_values=ctrl_vals)
        if rec.inverse:
            op = qml.adjoint(op)
    return qml.apply(op) if qml.QueuingManager.recording() else op


# ------------------------------------------------------------------------------------------------
# drawing


def _feasible(name: str, n: int) -> bool:
    base, nc = pl_base(name)
    if nc == -1:
        return n >= 2
    k = PL_NUM_WIRES[base]
    need = nc + (MIN_VARIABLE_WIRES.get(base, 1) if k is None else k)
    return need <= n


def _draw_param(src: Source, num_params: int, const_prob: float) -> ParamSpec:
    if num_params == 0 or src.coin(const_prob):
        return ParamSpec(value=src.real(-np.pi, np.pi))
    index = src.integer(0, num_params - 1)
    if src.coin(0.4):
        return ParamSpec(index)
    return ParamSpec(index, coeff=src.choice([-2.0, -1.0, -0.5, 0.5, 1.5, 3.0]), offset=src.real(-1.0, 1.0))


def _as_qdiff_param(spec: ParamSpec, p: Any, how: int) -> Any:
    """The qdiff parameter for a record, through one of several ParamRef arithmetic routes."""
    if spec.index is None:
        return spec.value
    ref, a, b = p[spec.index], spec.coeff, spec.offset
    if how == 0:
        return a * ref + b
    if how == 1:
        return ref * a - (-b)
    if how == 2:
        return b - (-a) * ref  # __rsub__ and __neg__
    if how == 3:
        return ref / (1.0 / a) + b
    from qdiff.circuit import ParamRef

    return ParamRef(ref.index, a, b)


def draw_record(src: Source, n: int, num_params: int, names: Sequence[str] = ALL_GATE_NAMES,
                control_prob: float = 0.25, inverse_prob: float = 0.3, const_prob: float = 0.25) -> GateRecord:
    """Draw one gate record on ``n`` wires."""
    name = src.choice([g for g in names if _feasible(g, n)])
    base, nc = pl_base(name)
    k = PL_NUM_WIRES[base]
    if nc == -1:
        total = src.integer(2, min(n, 4))
    elif k is None:
        lo = MIN_VARIABLE_WIRES.get(base, 1)
        total = nc + src.integer(lo, min(n - nc, MAX_VARIABLE_WIRES[base]))
    else:
        total = nc + k
    free = n - total
    n_extra = src.integer(1, min(2, free)) if free > 0 and src.coin(control_prob) else 0
    picked = src.ordered_subset(range(n), total + n_extra)
    controls, wires = tuple(picked[:n_extra]), tuple(picked[n_extra:])
    n_alias = total - 1 if nc == -1 else nc
    n_ctrl = n_extra + n_alias
    cvals = tuple(src.integer(0, 1) for _ in range(n_ctrl)) if n_ctrl and src.coin(0.6) else None
    spec_num_params = {"Rot": 3, "U3": 3, "U2": 2}.get(base, 1 if base in _ONE_PARAM else 0)
    params = [_draw_param(src, num_params, const_prob) for _ in range(spec_num_params)]
    ntarget = total - n_alias
    hyper: Any = None
    if base == "PauliRot":
        hyper = "".join(src.choice("IXYZ") for _ in range(ntarget))
    elif base == "QubitUnitary":
        hyper = unitary_group.rvs(2**ntarget, random_state=src.seed())
    elif base == "DiagonalQubitUnitary":
        hyper = np.exp(1j * np.array([src.real(-np.pi, np.pi) for _ in range(2**ntarget)]))
    return GateRecord(name, params, wires, controls, cvals, src.coin(inverse_prob), hyper)


_ONE_PARAM = {"RX", "RY", "RZ", "PhaseShift", "IsingXX", "IsingYY", "IsingZZ", "IsingXY", "MultiRZ", "PauliRot",
              "SingleExcitation", "DoubleExcitation", "GlobalPhase", "SingleExcitationPlus", "SingleExcitationMinus",
              "DoubleExcitationPlus", "DoubleExcitationMinus", "FermionicSWAP"}


def add_record(circuit: Circuit, p: Any, rec: GateRecord, how: int) -> None:
    """Append a record to a qdiff circuit (``how`` picks the API route: add() or a gate method)."""
    params = [_as_qdiff_param(s, p, (how + i) % 5) for i, s in enumerate(rec.params)]
    kwargs: dict[str, Any] = {}
    if rec.controls:
        kwargs["controls"] = rec.controls
    if rec.control_values is not None:
        kwargs["control_values"] = rec.control_values
        n_extra = len(rec.controls)
        if n_extra and len(rec.control_values) > n_extra and all(v == 1 for v in rec.control_values[:n_extra]) \
                and how % 3 == 0:
            kwargs["control_values"] = rec.control_values[n_extra:]  # values of the alias controls only
    if rec.inverse:
        kwargs["inverse"] = True
    if rec.hyper is not None:
        kwargs["hyper"] = rec.hyper
    if how % 2 == 0:
        circuit.add(rec.name, *params, wires=rec.wires, **kwargs)
    elif how % 4 == 3 and isinstance(rec.hyper, str):  # Pauli word given positionally
        word = kwargs.pop("hyper")
        getattr(circuit, snake(rec.name))(*params, word, wires=list(rec.wires), **kwargs)
    else:
        getattr(circuit, snake(rec.name))(*params, wires=list(rec.wires), **kwargs)


def random_circuit(draw_or_rng: Any, num_wires: int | tuple[int, int] = (1, 10), depth: int | tuple[int, int] = (0, 12),
                   num_params: int | tuple[int, int] = (1, 4), names: Sequence[str] = ALL_GATE_NAMES,
                   state_prep: bool = True, control_prob: float = 0.25, inverse_prob: float = 0.3,
                   const_prob: float = 0.25) -> RandomCircuit:
    """Draw a random circuit; integer arguments are fixed, ``(lo, hi)`` pairs are drawn from.

    Works with a hypothesis ``draw`` (``@st.composite``) or a ``numpy.random.Generator``. Returns a
    :class:`RandomCircuit` holding the qdiff circuit, a parameter vector ``theta`` (P,) in
    ``[-pi, pi]``, and the PennyLane quantum function of the same circuit.
    """
    src = Source(draw_or_rng)

    def pick(x: int | tuple[int, int]) -> int:
        return x if isinstance(x, int) else src.integer(*x)

    n, d, P = pick(num_wires), pick(depth), pick(num_params)
    circuit = Circuit(n)
    p = circuit.params(P)
    prep = None
    if state_prep and src.coin(0.5):
        k = src.integer(1, min(n, 4))
        wires = tuple(src.ordered_subset(range(n), k))
        if src.coin(0.5):
            bits = np.array([src.integer(0, 1) for _ in range(k)])
            circuit.basis_state(bits, wires=wires)
            prep = ("basis", wires, bits)
        else:
            amp = np.array([complex(src.real(-1, 1), src.real(-1, 1)) for _ in range(2**k)])
            if np.linalg.norm(amp) < 1e-3:
                amp[0] += 1.0
            scale = src.choice([1.0, 2.5])  # 2.5: unnormalised, through normalize=True
            circuit.state_vector(scale * amp / np.linalg.norm(amp), wires=wires, normalize=scale != 1.0)
            prep = ("state", wires, amp / np.linalg.norm(amp))
    records = []
    for i in range(d):
        rec = draw_record(src, n, P, names, control_prob, inverse_prob, const_prob)
        add_record(circuit, p, rec, i)
        records.append(rec)
    theta = np.array([src.real(-np.pi, np.pi) for _ in range(P)])
    return RandomCircuit(circuit, theta, n, records, prep)


# ------------------------------------------------------------------------------------------------
# dense references (naive Kronecker constructions, no qdiff code)

PAULIS = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def kron(*ms: np.ndarray) -> np.ndarray:
    """Kronecker product of several matrices (first = most significant)."""
    return reduce(np.kron, ms, np.eye(1, dtype=complex))


def embed(matrix: np.ndarray, wires: Sequence[int], n: int) -> np.ndarray:
    """Dense ``2^n x 2^n`` operator of a ``k``-wire matrix acting on ``wires`` (in that order)."""
    wires = list(wires)
    rest = [w for w in range(n) if w not in wires]
    full = np.kron(np.asarray(matrix, dtype=complex), np.eye(2 ** len(rest), dtype=complex))
    order = wires + rest  # wire order of full's tensor axes
    t = full.reshape((2,) * (2 * n))
    perm = [order.index(w) for w in range(n)] + [n + order.index(w) for w in range(n)]
    return t.transpose(perm).reshape(2**n, 2**n)


def pauli_dense(word: dict[int, str], n: int) -> np.ndarray:
    """Dense matrix of a Pauli word ``{wire: letter}`` on ``n`` wires."""
    return kron(*(PAULIS[word.get(w, "I")] for w in range(n)))


# ------------------------------------------------------------------------------------------------
# random observables: (qdiff observable, dense 2^n matrix, PennyLane observable)

OBSERVABLE_KINDS = ("pauli", "hermitian", "product", "sum", "sparse", "nested")


def _random_hermitian(src: Source, d: int) -> np.ndarray:
    a = np.array([[complex(src.real(-1, 1), src.real(-1, 1)) for _ in range(d)] for _ in range(d)])
    return (a + a.conj().T) / 2


def _pl_pauli(word: dict[int, str]) -> Any:
    if not word:
        return qml.Identity(0)
    ops = [getattr(qml, {"X": "PauliX", "Y": "PauliY", "Z": "PauliZ"}[p])(w) for w, p in sorted(word.items())]
    return ops[0] if len(ops) == 1 else qml.prod(*ops)


def random_observable(draw_or_rng: Any, n: int, kind: str | None = None) -> tuple[Any, np.ndarray, Any]:
    """A random observable on ``n`` wires as ``(qdiff observable, dense matrix, PennyLane observable)``.

    Kinds: Pauli word, Hermitian (wires in random order), Product of a Hermitian and Pauli factors,
    LinearCombination (several Z-only words, a constant, other terms), SparseHermitian (scipy.sparse on
    all or some wires), and a nested sum of products. The dense matrix is built with Kronecker products.
    """
    import scipy.sparse as sp

    from qdiff import observables as qo

    src = Source(draw_or_rng)
    kind = kind or src.choice(OBSERVABLE_KINDS)

    def pauli(max_len: int | None = None, letters: str = "IXYZ", wires: Sequence[int] | None = None):
        wires = list(range(n)) if wires is None else list(wires)
        k = src.integer(1, min(len(wires), max_len or len(wires)))
        word = {w: src.choice(letters) for w in src.ordered_subset(wires, k)}
        return qo.PauliWord(word), pauli_dense(word, n), _pl_pauli({w: p for w, p in word.items() if p != "I"})

    def hermitian(wires: Sequence[int]):
        m = _random_hermitian(src, 2 ** len(wires))
        return qo.Hermitian(m, wires), embed(m, wires, n), qml.Hermitian(m, wires=list(wires))

    if kind == "pauli":
        return pauli()
    if kind == "hermitian":
        return hermitian(src.ordered_subset(range(n), src.integer(1, min(n, 3))))
    if kind == "product":
        wires = src.ordered_subset(range(n), src.integer(1, min(n, 4)))
        split = src.integer(1, len(wires))
        h = hermitian(wires[:split])
        if split == len(wires):
            return h
        p = pauli(wires=wires[split:], letters="XYZ")
        first, second = (h, p) if src.coin() else (p, h)
        return first[0] @ second[0], first[1] @ second[1], qml.prod(first[2], second[2])
    if kind == "sum":
        terms = [pauli(letters="Z") for _ in range(src.integer(2, 3))]  # diagonal terms, folded together
        terms += [pauli() for _ in range(src.integer(0, 2))]
        terms.append(hermitian(src.ordered_subset(range(n), 1)))
        coeffs = [src.real(-2, 2) for _ in terms]
        const = src.real(-1, 1)
        obs = const + sum((c * t[0] for c, t in zip(coeffs, terms, strict=True)), 0)
        dense = const * np.eye(2**n) + sum(c * t[1] for c, t in zip(coeffs, terms, strict=True))
        pl = qml.dot(coeffs + [const], [t[2] for t in terms] + [qml.Identity(0)])
        return obs, dense, pl
    if kind == "sparse":
        wires = list(range(n)) if src.coin() else src.ordered_subset(range(n), src.integer(1, n))
        d = 2 ** len(wires)
        m = np.zeros((d, d), dtype=complex)
        for _ in range(src.integer(1, 2 * d)):
            i, j = src.integer(0, d - 1), src.integer(0, d - 1)
            v = complex(src.real(-1, 1), src.real(-1, 1)) if i != j else src.real(-1, 1)
            m[i, j] += v
            m[j, i] += np.conj(v)
        csr = sp.csr_matrix(m)
        if wires == list(range(n)):
            pl = qml.SparseHamiltonian(csr, wires=wires)
        else:
            pl = qml.Hermitian(m, wires=wires)
        return qo.SparseHermitian(csr, wires), embed(m, wires, n), pl
    if kind == "nested":
        a, b = pauli(max_len=2), pauli(max_len=2)
        c = hermitian(src.ordered_subset(range(n), 1))
        x, y = src.real(-2, 2), src.real(-2, 2)
        # (x a - b) * y  +  c - 0.5:   products of sums distribute, subtraction and negation
        obs = (x * a[0] - b[0]) * y + c[0] - 0.5
        dense = (x * a[1] - b[1]) * y + c[1] - 0.5 * np.eye(2**n)
        pl = qml.dot([x * y, -y, 1.0, -0.5], [a[2], b[2], c[2], qml.Identity(0)])
        return obs, dense, pl
    raise ValueError(kind)


__all__ = [
    "ALL_GATE_NAMES", "OBSERVABLE_KINDS", "PAULIS", "PL_ALIAS_BASE", "GateRecord", "ParamSpec", "RandomCircuit",
    "Source", "add_record", "draw_record", "embed", "kron", "pauli_dense", "pennylane_op", "pennylane_run",
    "pl_base", "random_circuit", "random_observable", "snake",
]
