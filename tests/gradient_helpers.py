"""Helpers for the gradient tests: random observables and measurements built in qdiff and PennyLane,
circuits that contain a chosen gate, and PennyLane ``default.qubit`` backprop (autograd) oracles.

Circuits come from the shared generator ``tests/circuits.py``; here they are re-queued in PennyLane with
the trainable parameters as a ``pennylane.numpy`` array, so ``qml.jacobian`` differentiates them by
backpropagation, an oracle that shares no code with qdiff's gradients. Observables are drawn once as
plain data and then built independently with qdiff's and PennyLane's classes.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import circuits
import numpy as np
import pennylane as qml
from pennylane import numpy as pnp

from qdiff import Circuit, Expval, Probs, Var
from qdiff.observables import Hermitian, PauliWord

PARAM_GATES: tuple[str, ...] = (
    "RX", "RY", "RZ", "PhaseShift", "U1", "Rot", "U2", "U3", "IsingXX", "IsingYY", "IsingZZ", "IsingXY",
    "MultiRZ", "PauliRot", "SingleExcitation", "DoubleExcitation", "GlobalPhase", "ControlledPhaseShift",
    "CPhase", "CRX", "CRY", "CRZ", "CRot", "SingleExcitationPlus", "SingleExcitationMinus", "DoubleExcitationPlus",
    "DoubleExcitationMinus", "FermionicSWAP",
)
"""Every gate name with trainable parameters (base gates and aliases), written out by hand."""

FIXED_GATES: tuple[str, ...] = tuple(g for g in circuits.ALL_GATE_NAMES if g not in PARAM_GATES)
"""Every gate without parameters (QubitUnitary, DiagonalQubitUnitary, CNOT, SWAP, ...)."""

GRADIENT_MIX: tuple[str, ...] = PARAM_GATES * 2 + FIXED_GATES
"""The whole gate set, parameterised gates drawn twice as often (so most circuits have gradients)."""


# ------------------------------------------------------------------------------------------------
# observables and measurements as plain data, built twice


@dataclasses.dataclass(frozen=True)
class ObsSpec:
    """An observable as data: ``terms`` of ``(coeff, factors)``; a factor is ``(wires, 'XZ')`` (a Pauli word)
    or ``(wires, matrix)`` (a Hermitian). ``single`` means the one term is used bare (no sum)."""

    terms: tuple[tuple[float, tuple[tuple[tuple[int, ...], Any], ...]], ...]
    single: bool = False

    def qdiff(self) -> Any:
        """The qdiff observable."""
        built = []
        for coeff, factors in self.terms:
            parts = [PauliWord(dict(zip(w, f, strict=True))) if isinstance(f, str) else Hermitian(f, w)
                     for w, f in factors]
            obs = parts[0]
            for p in parts[1:]:
                obs = obs @ p
            built.append((coeff, obs))
        if self.single:
            return built[0][1]
        total = built[0][0] * built[0][1]
        for c, o in built[1:]:
            total = total + c * o
        return total

    def pennylane(self) -> Any:
        """The PennyLane observable (PennyLane classes only)."""
        letters = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
        built = []
        for coeff, factors in self.terms:
            parts = []
            for w, f in factors:
                if isinstance(f, str):
                    parts += [letters[p](wire) for wire, p in zip(w, f, strict=True)]
                else:
                    parts.append(qml.Hermitian(f, wires=list(w)))
            built.append((coeff, parts[0] if len(parts) == 1 else qml.prod(*parts)))
        if self.single:
            return built[0][1]
        return qml.Hamiltonian([c for c, _ in built], [o for _, o in built])

    def dense(self, n: int) -> np.ndarray:
        """Dense matrix on ``n`` wires (from PennyLane's ``qml.matrix``)."""
        return qml.matrix(self.pennylane(), wire_order=list(range(n)))


def random_hermitian(d: int, rng: np.random.Generator) -> np.ndarray:
    """Random Hermitian ``d x d`` matrix."""
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    return (a + a.conj().T) / 2


def _pauli_factor(src: circuits.Source, wires: list[int]) -> tuple[tuple[int, ...], str]:
    return tuple(wires), "".join(src.choice("XYZ") for _ in wires)


def _term(src: circuits.Source, n: int, allow_hermitian: bool = True) -> tuple:
    k = src.integer(1, min(n, 3))
    wires = src.ordered_subset(range(n), k)
    if allow_hermitian and src.coin(0.35):
        h = 1 if k < 3 or src.coin(0.5) else 2
        mat = random_hermitian(2**h, np.random.default_rng(src.seed()))
        factors = [(tuple(wires[:h]), mat)]
        if k > h:
            factors.append(_pauli_factor(src, wires[h:]))
        return tuple(factors)
    return (_pauli_factor(src, wires),)


def random_obs(src_or_rng: Any, n: int, kind: str | None = None) -> ObsSpec:
    """Random observable on ``n`` wires: a Pauli word, a Hermitian, a Hermitian x Pauli product, or a
    sum (LinearCombination) of words and products with Hermitian factors."""
    src = src_or_rng if isinstance(src_or_rng, circuits.Source) else circuits.Source(src_or_rng)
    kind = kind or src.choice(["pauli", "hermitian", "product", "sum", "sum"])
    if kind == "pauli":
        return ObsSpec(((1.0, _term(src, n, allow_hermitian=False)),), single=True)
    if kind == "hermitian":
        k = src.integer(1, min(n, 2))
        wires = tuple(src.ordered_subset(range(n), k))
        return ObsSpec(((1.0, ((wires, random_hermitian(2**k, np.random.default_rng(src.seed()))),)),), True)
    if kind == "product":
        if n < 2:
            return random_obs(src, n, "hermitian")
        wires = src.ordered_subset(range(n), 2)
        mat = random_hermitian(2, np.random.default_rng(src.seed()))
        return ObsSpec(((1.0, (((wires[0],), mat), ((wires[1],), src.choice("XYZ")))),), True)
    count = src.integer(2, 4)
    return ObsSpec(tuple((round(src.real(-1.5, 1.5), 3), _term(src, n)) for _ in range(count)))


@dataclasses.dataclass(frozen=True)
class MeasSpec:
    """A measurement as data: ``kind`` in expval/var/probs with an observable or wires."""

    kind: str
    obs: ObsSpec | None = None
    wires: tuple[int, ...] | None = None

    def qdiff(self) -> Any:
        if self.kind == "expval":
            return Expval(self.obs.qdiff())
        if self.kind == "var":
            return Var(self.obs.qdiff())
        return Probs(self.wires)

    def pennylane(self, n: int) -> Any:
        if self.kind == "expval":
            return qml.expval(self.obs.pennylane())
        if self.kind == "var":
            return qml.var(self.obs.pennylane())
        return qml.probs(wires=list(range(n)) if self.wires is None else list(self.wires))


def random_measurements(src_or_rng: Any, n: int, count: int | None = None) -> list[MeasSpec]:
    """A few random expval/var/probs measurements (probs on a random ordered subset of wires or all)."""
    src = src_or_rng if isinstance(src_or_rng, circuits.Source) else circuits.Source(src_or_rng)
    count = count or src.integer(1, 3)
    out = []
    for _ in range(count):
        kind = src.choice(["expval", "expval", "var", "probs"])
        if kind == "probs":
            wires = None if src.coin(0.25) else tuple(src.ordered_subset(range(n), src.integer(1, min(n, 3))))
            out.append(MeasSpec("probs", wires=wires))
        else:
            out.append(MeasSpec(kind, obs=random_obs(src, n)))
    return out


# ------------------------------------------------------------------------------------------------
# circuits


class _TracedParam:
    """A record parameter evaluated with autograd-friendly arithmetic (no ``np.asarray``)."""

    def __init__(self, spec: circuits.ParamSpec):
        self.spec = spec

    def evaluate(self, theta: Any) -> Any:
        s = self.spec
        if s.index is None:
            return s.value
        return s.coeff * theta[..., s.index] + s.offset


def pl_qfunc(rc: circuits.RandomCircuit, theta: Any) -> None:
    """Queue ``rc`` in PennyLane with ``theta`` left traceable (a pennylane.numpy array or ArrayBox)."""
    if rc.prep is not None:
        kind, wires, data = rc.prep
        if kind == "basis":
            qml.BasisState(np.asarray(data), wires=list(wires))
        else:
            qml.StatePrep(np.asarray(data), wires=list(wires))
    for rec in rc.records:
        circuits.pennylane_op(dataclasses.replace(rec, params=[_TracedParam(p) for p in rec.params]), theta)


def build(num_wires: int, records: list[circuits.GateRecord], num_params: int, theta: np.ndarray,
          prep: Any = None) -> circuits.RandomCircuit:
    """A RandomCircuit from records (qdiff side built through ``circuits.add_record``)."""
    c = Circuit(num_wires)
    p = c.params(num_params)
    if prep is not None:
        kind, wires, data = prep
        if kind == "basis":
            c.basis_state(data, wires=wires)
        else:
            c.state_vector(data, wires=wires)
    for i, rec in enumerate(records):
        circuits.add_record(c, p, rec, i)
    return circuits.RandomCircuit(c, np.asarray(theta, dtype=float), num_wires, list(records), prep)


def forced_record(rng: np.random.Generator, name: str, n: int, num_params: int, extra_controls: int,
                  cvals: str, inverse: bool) -> circuits.GateRecord:
    """A record of gate ``name`` with trainable (shared, scaled, offset) parameters, ``extra_controls``
    added control wires and control values ``cvals`` in {"1", "0", "mixed"} on all its controls."""
    src = circuits.Source(rng)
    rec = circuits.draw_record(src, n, num_params, names=[name], control_prob=0.0, inverse_prob=0.0,
                               const_prob=0.0)
    free = [w for w in range(n) if w not in rec.wires]
    controls = tuple(free[:extra_controls])
    base, nc = circuits.pl_base(name)
    n_ctrl = len(controls) + (len(rec.wires) - 1 if nc == -1 else nc)
    if cvals == "1":
        values = (1,) * n_ctrl
    elif cvals == "0":
        values = (0,) * n_ctrl
    else:
        values = tuple(int(v) for v in rng.integers(0, 2, n_ctrl))
    return dataclasses.replace(rec, controls=controls, control_values=values if n_ctrl else None, inverse=inverse)


def random_records(rng: np.random.Generator, n: int, num_params: int, depth: int,
                   names: tuple[str, ...] = GRADIENT_MIX) -> list[circuits.GateRecord]:
    """``depth`` random records over ``names``."""
    src = circuits.Source(rng)
    return [circuits.draw_record(src, n, num_params, names) for _ in range(depth)]


def entangling_layer(n: int, rng: np.random.Generator, num_params: int) -> list[circuits.GateRecord]:
    """RY on every wire (trainable or constant) and a CNOT chain: spreads gradients across wires."""
    recs = []
    for w in range(n):
        if rng.random() < 0.5:
            spec = circuits.ParamSpec(int(rng.integers(num_params)), float(rng.choice([1.0, -0.5, 2.0])),
                                      float(rng.uniform(-1, 1)))
        else:
            spec = circuits.ParamSpec(value=float(rng.uniform(-np.pi, np.pi)))
        recs.append(circuits.GateRecord("RY", [spec], (w,)))
    recs += [circuits.GateRecord("CNOT", [], (w, w + 1)) for w in range(n - 1)]
    return recs


# ------------------------------------------------------------------------------------------------
# PennyLane oracles (default.qubit, backprop through autograd)


def _qnode(rc: circuits.RandomCircuit, measurements: Any) -> Any:
    dev = qml.device("default.qubit", wires=rc.num_wires)

    @qml.qnode(dev, diff_method="backprop", interface="autograd")
    def f(theta: Any) -> Any:
        pl_qfunc(rc, theta)
        return measurements()

    return f


def pl_values_and_jacobians(rc: circuits.RandomCircuit, specs: list[MeasSpec], theta: np.ndarray | None = None
                            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(value, Jacobian output_shape + (P,))]`` of several measurements by PennyLane backprop (one
    backward pass: the outputs are concatenated into one vector for ``qml.jacobian``)."""
    theta = rc.theta if theta is None else theta
    f = _qnode(rc, lambda: tuple(s.pennylane(rc.num_wires) for s in specs))

    def flat(t: Any) -> Any:
        out = f(t)
        out = out if isinstance(out, (tuple, list)) else (out,)
        return pnp.hstack([pnp.reshape(o, (-1,)) for o in out])

    t = pnp.array(np.asarray(theta, dtype=float), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(flat(t), dtype=float)
        jac = np.asarray(qml.jacobian(flat)(t), dtype=float).reshape(values.shape + (len(theta),))
    out, start = [], 0
    for s in specs:
        shape = () if s.kind != "probs" else (2 ** (rc.num_wires if s.wires is None else len(s.wires)),)
        size = int(np.prod(shape))
        out.append((values[start:start + size].reshape(shape), jac[start:start + size].reshape(shape + (-1,))))
        start += size
    return out


def pl_value_and_jacobian(rc: circuits.RandomCircuit, meas: MeasSpec, theta: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Value and Jacobian ``output_shape + (P,)`` of one measurement, by PennyLane backprop."""
    return pl_values_and_jacobians(rc, [meas], theta)[0]


def pl_hessian(rc: circuits.RandomCircuit, obs: ObsSpec, theta: np.ndarray | None = None) -> np.ndarray:
    """Hessian ``(P, P)`` of an expval by ``qml.jacobian(qml.grad(f))`` on default.qubit (backprop)."""
    theta = rc.theta if theta is None else theta
    f = _qnode(rc, lambda: qml.expval(obs.pennylane()))  # noqa: B023
    t = pnp.array(np.asarray(theta, dtype=float), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = qml.jacobian(qml.grad(f))(t)
    return np.asarray(h, dtype=float).reshape(len(theta), len(theta))


__all__ = [
    "PARAM_GATES", "FIXED_GATES", "GRADIENT_MIX", "ObsSpec", "MeasSpec", "random_obs", "random_measurements",
    "random_hermitian", "pl_qfunc", "build", "forced_record", "random_records", "entangling_layer",
    "pl_value_and_jacobian", "pl_values_and_jacobians", "pl_hessian",
]
