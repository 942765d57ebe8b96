"""The gate table: every gate as data (matrix, generator, structure, factors), nothing as code paths.

Conventions (the same as PennyLane's, so results compare without reordering):
- a gate's matrix acts on its target wires in the order given, the first wire most significant;
- a parameterised gate ``U(theta)`` has a Hermitian generator ``H`` with ``dU/dtheta = i H U``
  (``U = exp(i theta H) U(0)``), e.g. ``RX`` has ``H = -X/2``;
- matrices are vectorised: every parameter may be a scalar or an array of shape ``(B,)`` (a batch),
  and the matrix then has shape ``(B, d, d)``.
Controlled gates (CNOT, CRX, Toffoli, ...) are aliases: a base gate plus control wires, so kernels and
gradients handle controls once, for every gate. ``kind`` (a :class:`~qdiff.ir.kinds.Kind`) says how the
gate acts: a dense matrix, a diagonal, a permutation, a Pauli rotation, or a 2x2 block on two basis
states (SUBSPACE: the excitation gates, which rotate two amplitudes of each 2^k-block and leave or phase
the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, reduce
from typing import Any

import numpy as np

from .ir.kinds import Kind

SQ2 = 1.0 / np.sqrt(2.0)

PAULI = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def pauli_word_matrix(word: str) -> np.ndarray:
    """Dense matrix of a Pauli word such as ``"XIZ"`` (first letter = most significant wire)."""
    return reduce(np.kron, (PAULI[c] for c in word), np.eye(1, dtype=complex))


@dataclass(frozen=True)
class Generator:
    """Hermitian generator ``H`` of a one-parameter gate, ``dU/dtheta = i H U``.

    Stored as ``coeff * PauliWord`` when it is one (applied without a matrix), else as a dense matrix
    on the gate's target wires.
    """

    coeff: float = 1.0
    pauli: str | None = None
    matrix: np.ndarray | None = None

    def dense(self) -> np.ndarray:
        """The generator as a dense ``d x d`` matrix on the target wires."""
        if self.pauli is not None:
            return self.coeff * pauli_word_matrix(self.pauli)
        return self.coeff * np.asarray(self.matrix)

    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the generator (used for shift rules)."""
        if self.pauli is not None:
            if set(self.pauli) <= {"I"}:
                return np.array([self.coeff])
            return np.array([-abs(self.coeff), abs(self.coeff)])
        return np.linalg.eigvalsh(self.dense())

    def negated(self) -> Generator:
        """Generator of the inverse gate, ``U(theta)^dagger = exp(-i theta H)``."""
        return Generator(-self.coeff, self.pauli, self.matrix)


@dataclass(frozen=True)
class Factor:
    """One single-parameter factor of a multi-parameter gate ``U = F_last ... F_first``.

    ``param`` is the index of the gate parameter it carries (or a constant angle), ``targets`` index
    into the gate's target wires.
    """

    gate: str
    param: int | float
    targets: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class GateSpec:
    """Everything qdiff knows about one gate type.

    ``kind`` says how it acts (see :mod:`qdiff.ir.kinds`); ``subspace`` names the two basis states
    (local indices) a SUBSPACE gate rotates; ``identity`` marks the gate that does nothing.
    """

    name: str
    num_wires: int | None  # None: any number of wires (>= min_wires)
    num_params: int
    kind: Kind
    matrix_fn: Callable[..., np.ndarray] | None = None
    diagonal_fn: Callable[..., np.ndarray] | None = None
    permutation: tuple[int, ...] | None = None
    generator_fn: Callable[[Any, int], Generator] | None = None
    factors: tuple[Factor, ...] = ()
    min_wires: int = 1
    hyper: str | None = None  # name of the non-parameter data it needs: "matrix", "diagonal", "word"
    self_inverse: bool = False
    doc: str = ""
    subspace: tuple[int, int] | None = None
    identity: bool = False

    @property
    def parameterised(self) -> bool:
        """True when the gate has continuous parameters that can be differentiated."""
        return self.num_params > 0

    def matrix(self, params: tuple = (), hyper: Any = None, num_wires: int | None = None) -> np.ndarray:
        """Dense matrix ``(..., d, d)`` of the gate for the given parameters."""
        if self.identity:
            return np.eye(2 ** (num_wires or 1), dtype=complex)
        if self.kind == Kind.DIAGONAL:
            diag = self.diagonal(params, hyper, num_wires)
            return diag[..., :, None] * np.eye(diag.shape[-1])
        if self.kind == Kind.PERMUTATION:
            d = len(self.permutation)
            return np.eye(d, dtype=complex)[list(self.permutation)]
        return self.matrix_fn(*params, hyper=hyper, k=num_wires)

    def diagonal(self, params: tuple = (), hyper: Any = None, num_wires: int | None = None) -> np.ndarray:
        """Diagonal ``(..., d)`` of a diagonal gate."""
        return self.diagonal_fn(*params, hyper=hyper, k=num_wires)

    def generator(self, hyper: Any = None, num_wires: int = 1) -> Generator:
        """Generator of a one-parameter gate."""
        return self.generator_fn(hyper, num_wires)

    @cached_property
    def has_generator(self) -> bool:
        """True for one-parameter gates differentiated directly through their generator."""
        return self.generator_fn is not None


# ----------------------------------------------------------------------------------------------
# helpers building vectorised matrices


def _c(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _build(entries: list[list[Any]]) -> np.ndarray:
    """Stack a nested list of scalars/arrays (broadcast to one batch shape) into ``(..., d, d)``."""
    flat = [np.asarray(e) for row in entries for e in row]
    shape = np.broadcast_shapes(*(f.shape for f in flat))
    d = len(entries)
    out = np.empty(shape + (d, d), dtype=complex)
    for i, row in enumerate(entries):
        for j, e in enumerate(row):
            out[..., i, j] = e
    return out


def _diag(entries: list[Any]) -> np.ndarray:
    flat = [np.asarray(e) for e in entries]
    shape = np.broadcast_shapes(*(f.shape for f in flat))
    out = np.empty(shape + (len(entries),), dtype=complex)
    for i, e in enumerate(flat):
        out[..., i] = e
    return out


def _embed(sub: np.ndarray, dim: int, idx: tuple[int, int]) -> np.ndarray:
    """Identity on ``dim`` with the 2x2 block ``sub`` (..., 2, 2) on the basis states ``idx``."""
    shape = sub.shape[:-2]
    out = np.broadcast_to(np.eye(dim, dtype=complex), shape + (dim, dim)).copy()
    a, b = idx
    out[..., a, a], out[..., a, b] = sub[..., 0, 0], sub[..., 0, 1]
    out[..., b, a], out[..., b, b] = sub[..., 1, 0], sub[..., 1, 1]
    return out


def _pauli_exp(theta: Any, word: str) -> np.ndarray:
    """``exp(-i theta/2 P)`` for a Pauli word, vectorised over theta."""
    t = _c(theta)
    p = pauli_word_matrix(word)
    c, s = np.cos(t / 2)[..., None, None], np.sin(t / 2)[..., None, None]
    return c * np.eye(p.shape[0]) - 1j * s * p


def _z_parity(k: int) -> np.ndarray:
    """Eigenvalues (+1/-1) of Z x Z x ... x Z on k wires, in basis order."""
    bits = np.array([bin(i).count("1") % 2 for i in range(2**k)])
    return 1 - 2 * bits


def _ry(t: Any) -> np.ndarray:
    t = _c(t)
    c, s = np.cos(t / 2), np.sin(t / 2)
    return _build([[c, -s], [s, c]])


def _rot(phi: Any, theta: Any, omega: Any, **_: Any) -> np.ndarray:
    phi, theta, omega = _c(phi), _c(theta), _c(omega)
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return _build(
        [
            [np.exp(-0.5j * (phi + omega)) * c, -np.exp(0.5j * (phi - omega)) * s],
            [np.exp(-0.5j * (phi - omega)) * s, np.exp(0.5j * (phi + omega)) * c],
        ]
    )


def _u3(theta: Any, phi: Any, lam: Any, **_: Any) -> np.ndarray:
    theta, phi, lam = _c(theta), _c(phi), _c(lam)
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return _build([[c, -np.exp(1j * lam) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]])


def _subspace_generator(dim: int, idx: tuple[int, int]) -> np.ndarray:
    """``-sigma_y / 2`` on the two basis states ``idx``: generator of the Givens rotations."""
    g = np.zeros((dim, dim), dtype=complex)
    a, b = idx
    g[a, b], g[b, a] = 0.5j, -0.5j
    return g


def _pauli_gen(word_fn: Callable[[Any, int], str], coeff: float) -> Callable[[Any, int], Generator]:
    return lambda hyper, k: Generator(coeff, pauli=word_fn(hyper, k))


def _fixed(m: np.ndarray) -> Callable[..., np.ndarray]:
    m = np.asarray(m, dtype=complex)
    return lambda *_, **__: m


# ----------------------------------------------------------------------------------------------
# the table

_H = SQ2 * np.array([[1, 1], [1, -1]], dtype=complex)
_SX = 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=complex)
_ISWAP = np.array([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]], dtype=complex)
_SISWAP = np.array(
    [[1, 0, 0, 0], [0, SQ2, 1j * SQ2, 0], [0, 1j * SQ2, SQ2, 0], [0, 0, 0, 1]], dtype=complex
)
_ECR = SQ2 * np.array([[0, 0, 1, 1j], [0, 0, 1j, 1], [1, -1j, 0, 0], [-1j, 1, 0, 0]], dtype=complex)
_IXY_GEN = 0.25 * (pauli_word_matrix("XX") + pauli_word_matrix("YY"))


def _phased_embed(sub: np.ndarray, dim: int, idx: tuple[int, int], phase: Any) -> np.ndarray:
    """``_embed`` with ``phase`` (scalar or ``(B,)``) instead of 1 on the basis states outside ``idx``."""
    out = _embed(sub, dim, idx)
    rest = [i for i in range(dim) if i not in idx]
    out[..., rest, rest] = np.asarray(phase)[..., None]
    return out


def _complement_generator(dim: int, idx: tuple[int, int], value: float) -> np.ndarray:
    """The Givens generator on ``idx`` plus ``value`` on the other basis states (the Plus/Minus forms)."""
    g = _subspace_generator(dim, idx)
    rest = [i for i in range(dim) if i not in idx]
    g[rest, rest] = value
    return g


_FSWAP_GEN = np.array([[0, 0, 0, 0], [0, 0.5, -0.5, 0], [0, -0.5, 0.5, 0], [0, 0, 0, 1]], dtype=complex)


def _fermionic_swap(t: Any, **_: Any) -> np.ndarray:
    t = _c(t)
    e, c, s = np.exp(0.5j * t), np.cos(t / 2), np.sin(t / 2)
    one, zero = np.ones_like(t), np.zeros_like(t)
    return _build([[one, zero, zero, zero], [zero, e * c, -1j * e * s, zero], [zero, -1j * e * s, e * c, zero],
                   [zero, zero, zero, np.exp(1j * t)]])


def _excitations(name: str, num_wires: int, idx: tuple[int, int], pair: str, rest: str) -> list[GateSpec]:
    """A Givens rotation of the basis states ``idx`` by t/2 and its Plus/Minus forms (phase exp(+-i t/2)
    on the other basis states)."""
    dim = 2**num_wires

    def member(suffix: str, sign: float) -> GateSpec:
        def matrix_fn(t: Any, **_: Any) -> np.ndarray:
            if not sign:
                return _embed(_ry(t), dim, idx)
            return _phased_embed(_ry(t), dim, idx, np.exp(0.5j * sign * _c(t)))

        generator = _complement_generator(dim, idx, 0.5 * sign) if sign else _subspace_generator(dim, idx)
        generator.flags.writeable = False  # one array shared by every Generator of this gate
        doc = (f"{name} with phase exp({'' if sign > 0 else '-'}i t/2) on {rest}." if sign
               else f"Givens rotation of {pair} by t/2.")
        return GateSpec(name + suffix, num_wires, 1, Kind.SUBSPACE, matrix_fn=matrix_fn,
                        generator_fn=lambda h, k: Generator(1.0, matrix=generator), subspace=idx, doc=doc)

    return [member("", 0.0), member("Plus", 1.0), member("Minus", -1.0)]


def _spec_list() -> list[GateSpec]:
    one = 1
    dense, diag, perm, prot, sub = Kind.DENSE, Kind.DIAGONAL, Kind.PERMUTATION, Kind.PAULI_ROTATION, Kind.SUBSPACE
    return [
        GateSpec("Identity", None, 0, diag, diagonal_fn=lambda k, **_: np.ones(2**k, dtype=complex),
                 self_inverse=True, identity=True, doc="Identity on any wires (does nothing)."),
        GateSpec("PauliX", one, 0, perm, permutation=(1, 0), self_inverse=True, doc="Pauli X (bit flip)."),
        GateSpec("PauliY", one, 0, dense, matrix_fn=_fixed(PAULI["Y"]), self_inverse=True, doc="Pauli Y."),
        GateSpec("PauliZ", one, 0, diag, diagonal_fn=lambda **_: np.array([1, -1], dtype=complex),
                 self_inverse=True, doc="Pauli Z (phase flip)."),
        GateSpec("Hadamard", one, 0, dense, matrix_fn=_fixed(_H), self_inverse=True, doc="Hadamard gate."),
        GateSpec("S", one, 0, diag, diagonal_fn=lambda **_: np.array([1, 1j]), doc="S gate, diag(1, i)."),
        GateSpec("T", one, 0, diag, diagonal_fn=lambda **_: np.array([1, np.exp(0.25j * np.pi)]),
                 doc="T gate, diag(1, exp(i pi/4))."),
        GateSpec("SX", one, 0, dense, matrix_fn=_fixed(_SX), doc="Square root of X."),
        GateSpec("SWAP", 2, 0, perm, permutation=(0, 2, 1, 3), self_inverse=True, doc="Swap two wires."),
        GateSpec("ISWAP", 2, 0, sub, matrix_fn=_fixed(_ISWAP), subspace=(1, 2),
                 doc="iSWAP: swap |01> and |10> with phase i."),
        GateSpec("SISWAP", 2, 0, sub, matrix_fn=_fixed(_SISWAP), subspace=(1, 2), doc="Square root of iSWAP."),
        GateSpec("ECR", 2, 0, dense, matrix_fn=_fixed(_ECR), self_inverse=True, doc="Echoed cross-resonance gate."),
        GateSpec(
            "RX", one, 1, dense, matrix_fn=lambda t, **_: _pauli_exp(t, "X"),
            generator_fn=_pauli_gen(lambda h, k: "X", -0.5), doc="X rotation exp(-i t X / 2).",
        ),
        GateSpec(
            "RY", one, 1, dense, matrix_fn=lambda t, **_: _ry(t),
            generator_fn=_pauli_gen(lambda h, k: "Y", -0.5), doc="Y rotation exp(-i t Y / 2).",
        ),
        GateSpec(
            "RZ", one, 1, diag,
            diagonal_fn=lambda t, **_: _diag([np.exp(-0.5j * _c(t)), np.exp(0.5j * _c(t))]),
            generator_fn=_pauli_gen(lambda h, k: "Z", -0.5), doc="Z rotation exp(-i t Z / 2).",
        ),
        GateSpec(
            "PhaseShift", one, 1, diag,
            diagonal_fn=lambda t, **_: _diag([np.ones_like(_c(t)), np.exp(1j * _c(t))]),
            generator_fn=lambda h, k: Generator(1.0, matrix=np.diag([0.0, 1.0]).astype(complex)),
            doc="Phase shift diag(1, exp(i t)).",
        ),
        GateSpec(
            "Rot", one, 3, dense, matrix_fn=_rot,
            factors=(Factor("RZ", 0), Factor("RY", 1), Factor("RZ", 2)),
            doc="General rotation RZ(omega) RY(theta) RZ(phi).",
        ),
        GateSpec(
            "U2", one, 2, dense, matrix_fn=lambda phi, lam, **_: _u3(np.pi / 2, phi, lam),
            factors=(Factor("PhaseShift", 1), Factor("RY", np.pi / 2), Factor("PhaseShift", 0)),
            doc="U2(phi, lambda) = U3(pi/2, phi, lambda).",
        ),
        GateSpec(
            "U3", one, 3, dense, matrix_fn=_u3,
            factors=(Factor("PhaseShift", 2), Factor("RY", 0), Factor("PhaseShift", 1)),
            doc="U3(theta, phi, lambda), the general one-qubit gate.",
        ),
        GateSpec(
            "IsingXX", 2, 1, dense, matrix_fn=lambda t, **_: _pauli_exp(t, "XX"),
            generator_fn=_pauli_gen(lambda h, k: "XX", -0.5), doc="Ising XX coupling exp(-i t XX / 2).",
        ),
        GateSpec(
            "IsingYY", 2, 1, dense, matrix_fn=lambda t, **_: _pauli_exp(t, "YY"),
            generator_fn=_pauli_gen(lambda h, k: "YY", -0.5), doc="Ising YY coupling exp(-i t YY / 2).",
        ),
        GateSpec(
            "IsingZZ", 2, 1, diag,
            diagonal_fn=lambda t, **_: np.exp(-0.5j * _c(t)[..., None] * _z_parity(2)),
            generator_fn=_pauli_gen(lambda h, k: "ZZ", -0.5), doc="Ising ZZ coupling exp(-i t ZZ / 2).",
        ),
        GateSpec(
            "IsingXY", 2, 1, sub,
            matrix_fn=lambda t, **_: _embed(
                _build([[np.cos(_c(t) / 2), 1j * np.sin(_c(t) / 2)], [1j * np.sin(_c(t) / 2), np.cos(_c(t) / 2)]]),
                4, (1, 2),
            ),
            generator_fn=lambda h, k: Generator(1.0, matrix=_IXY_GEN), subspace=(1, 2),
            doc="Ising XY coupling exp(i t (XX + YY) / 4).",
        ),
        GateSpec(
            "MultiRZ", None, 1, diag,
            diagonal_fn=lambda t, k, **_: np.exp(-0.5j * _c(t)[..., None] * _z_parity(k)),
            generator_fn=_pauli_gen(lambda h, k: "Z" * k, -0.5), doc="exp(-i t Z...Z / 2) on any wires.",
        ),
        GateSpec(
            "PauliRot", None, 1, prot, hyper="word",
            matrix_fn=lambda t, hyper, **_: _pauli_exp(t, hyper),
            generator_fn=_pauli_gen(lambda h, k: h, -0.5), doc="exp(-i t P / 2) for a Pauli word P.",
        ),
        *_excitations("SingleExcitation", 2, (1, 2), "|01> and |10>", "|00> and |11>"),
        *_excitations("DoubleExcitation", 4, (3, 12), "|0011> and |1100>", "the other 14 basis states"),
        GateSpec(
            "FermionicSWAP", 2, 1, dense, matrix_fn=_fermionic_swap,
            generator_fn=lambda h, k: Generator(1.0, matrix=_FSWAP_GEN),
            doc="Fermionic SWAP rotation (FermionicSWAP(pi) swaps two fermionic modes).",
        ),
        GateSpec(
            "GlobalPhase", None, 1, diag, min_wires=0,
            diagonal_fn=lambda t, k, **_: np.exp(-1j * _c(t))[..., None] * np.ones(2**k),
            generator_fn=_pauli_gen(lambda h, k: "I" * k, -1.0), doc="Global phase exp(-i t).",
        ),
        GateSpec("QubitUnitary", None, 0, dense, hyper="matrix", matrix_fn=lambda hyper, **_: hyper,
                 doc="Any unitary matrix on its wires."),
        GateSpec("DiagonalQubitUnitary", None, 0, diag, hyper="diagonal", diagonal_fn=lambda hyper, **_: hyper,
                 doc="Any diagonal unitary on its wires."),
    ]


GATES: dict[str, GateSpec] = {g.name: g for g in _spec_list()}
"""Every base gate qdiff simulates, by name."""

ALIASES: dict[str, tuple[str, int]] = {
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
"""Gate names that are a base gate with leading control wires: name -> (base, number of controls).

``-1`` controls means every wire but the last (MultiControlledX)."""

GATE_NAMES: tuple[str, ...] = tuple(GATES) + tuple(ALIASES)


def resolve_gate_name(name: str) -> tuple[GateSpec, int]:
    """Map a gate name (base or alias, any case) to its base spec and number of leading controls."""
    if name in GATES:
        return GATES[name], 0
    if name in ALIASES:
        base, nc = ALIASES[name]
        return GATES[base], nc
    lower = {n.lower(): n for n in GATE_NAMES}
    if name.lower() in lower:
        return resolve_gate_name(lower[name.lower()])
    from .errors import UnsupportedOperationError

    raise UnsupportedOperationError(
        f"unknown gate {name!r}; qdiff supports: {', '.join(sorted(GATE_NAMES))}"
    )


def shift_rule(eigenvalues: np.ndarray, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Exact parameter-shift rule from a generator's spectrum.

    Returns ``(coefficients, shifts)`` with ``df/dtheta = sum_m c_m f(theta + s_m)``. The frequencies
    are the distinct positive differences of the eigenvalues; for R of them the rule has 2R terms
    (two-term for Pauli rotations, four-term for controlled rotations), solved as a linear system
    for shifts spread over the period (Wierichs et al., Quantum 6, 677 (2022)).
    """
    ev = np.unique(np.round(np.asarray(eigenvalues, dtype=float), 12))
    diffs = np.abs(ev[:, None] - ev[None, :]).ravel()
    freqs: list[float] = []
    for d in np.sort(diffs):
        if d > tol and all(abs(d - f) > tol for f in freqs):
            freqs.append(float(d))
    if not freqs:
        return np.zeros(0), np.zeros(0)
    omega = np.array(freqs)
    r = len(omega)
    base = omega.min()
    equidistant = np.allclose(omega / base, np.round(omega / base)) and np.allclose(
        np.sort(np.round(omega / base)), np.arange(1, r + 1)
    )
    if equidistant:
        shifts = (2 * np.arange(1, r + 1) - 1) * np.pi / (2 * r * base)
    else:
        shifts = np.arange(1, r + 1) * np.pi / (2 * r * omega.max()) * 1.7
    # sum_mu c_mu [f(s_mu) - f(-s_mu)] = f'(0) for f = sin(omega_l x): 2 sin(omega_l s_mu) c_mu = omega_l
    system = 2 * np.sin(omega[:, None] * shifts[None, :])
    c = np.linalg.solve(system, omega)
    return np.concatenate([c, -c]), np.concatenate([shifts, -shifts])
