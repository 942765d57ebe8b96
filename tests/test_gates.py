"""The gate table against independent oracles.

1. Every one-parameter gate is ``expm(i theta H) U(0)`` with ``U(0) = I`` and ``H`` equal to a generator
   written out here by hand *and* to PennyLane's ``qml.generator``; ``dU/dtheta = i H U`` numerically.
2. Multi-parameter gates equal the product of their declared one-parameter factors (and derivatives).
3. Fixed gates equal closed-form Pauli/Kronecker formulas; controlled gates and aliases equal
   ``P_v (x) U + (1 - P_v) (x) I`` built from projectors.
4. Every gate and alias equals PennyLane's ``qml.matrix``: scalar and batched ``(B,)`` parameters,
   inverse (conjugate transpose), extra controls with control values 0/1.
5. ``shift_rule`` differentiates trig polynomials with the generator spectra of every gate, controlled
   versions included, and real expectation values exactly.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import scipy.linalg
from circuits import ALL_GATE_NAMES, PL_ALIAS_BASE, GateRecord, ParamSpec, add_record, pennylane_op
from conftest import KET, PAULIS, controlled, embed, kron, random_hermitian, random_state
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import unitary_group

from qdiff.circuit import Circuit
from qdiff.gates import ALIASES, GATES, pauli_word_matrix, resolve_gate_name, shift_rule
from qdiff.ir.kinds import Kind
from qdiff.simulate import factor_operations

X, Y, Z, I2 = PAULIS["X"], PAULIS["Y"], PAULIS["Z"], PAULIS["I"]
THETAS = [-2.7, -0.4, 0.0, 0.9, 3.3, 7.1]


def _sub_y(dim: int, a: int, b: int) -> np.ndarray:
    """-Y/2 on the two basis states a, b of a dim-dimensional space (excitation generators)."""
    g = np.zeros((dim, dim), dtype=complex)
    g[a, b], g[b, a] = 0.5j, -0.5j
    return g


def _expected_generator(name: str, k: int, word: str | None) -> np.ndarray:
    """Generators written by hand (PennyLane's convention U = exp(i theta H))."""
    if name in ("RX", "RY", "RZ"):
        return -0.5 * PAULIS[name[1]]
    if name == "PhaseShift":
        return KET[1]
    if name.startswith("Ising") and name != "IsingXY":
        p = PAULIS[name[-1]]
        return -0.5 * kron(p, p)
    if name == "IsingXY":
        return 0.25 * (kron(X, X) + kron(Y, Y))
    if name == "MultiRZ":
        return -0.5 * kron(*([Z] * k))
    if name == "PauliRot":
        return -0.5 * kron(*(PAULIS[c] for c in word))
    if name == "SingleExcitation":
        return _sub_y(4, 0b01, 0b10)
    if name == "DoubleExcitation":
        return _sub_y(16, 0b0011, 0b1100)
    if name.startswith(("SingleExcitation", "DoubleExcitation")):  # Plus/Minus: +/-1/2 on the other states
        dim, a, b = (4, 0b01, 0b10) if name.startswith("Single") else (16, 0b0011, 0b1100)
        g = _sub_y(dim, a, b)
        rest = [i for i in range(dim) if i not in (a, b)]
        g[rest, rest] = 0.5 if name.endswith("Plus") else -0.5
        return g
    if name == "FermionicSWAP":  # 1/2 (I - X X - Y Y - Z Z) on |01>,|10> plus |11>
        g = np.zeros((4, 4), dtype=complex)
        g[1, 1] = g[2, 2] = 0.5
        g[1, 2] = g[2, 1] = -0.5
        g[3, 3] = 1.0
        return g
    if name == "GlobalPhase":
        return -np.eye(2**k, dtype=complex)
    raise KeyError(name)


GENERATOR_CASES = (
    [(n, 1, None) for n in ("RX", "RY", "RZ", "PhaseShift")]
    + [(n, 2, None) for n in ("IsingXX", "IsingYY", "IsingZZ", "IsingXY", "SingleExcitation",
                              "SingleExcitationPlus", "SingleExcitationMinus", "FermionicSWAP")]
    + [(n, 4, None) for n in ("DoubleExcitation", "DoubleExcitationPlus", "DoubleExcitationMinus")]
    + [("MultiRZ", k, None) for k in (1, 2, 3, 4)]
    + [("PauliRot", len(w), w) for w in ("X", "Y", "Z", "I", "XY", "ZZ", "YIX", "XYZI", "II")]
    + [("GlobalPhase", k, None) for k in (0, 1, 2, 3)]
)
CASE_IDS = [f"{n}-{k}-{w}" for n, k, w in GENERATOR_CASES]


def _derivative(f, x: float, h: float = 1e-3) -> np.ndarray:
    """Five-point central difference (error ~h^4)."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def test_every_parameterised_gate_is_covered():
    """Every gate with parameters has a generator case here or a declared factorisation."""
    covered = {n for n, _, _ in GENERATOR_CASES}
    for name, spec in GATES.items():
        if spec.has_generator:
            assert name in covered, name
            assert spec.num_params == 1
        elif spec.parameterised:
            assert spec.factors, f"{name} has parameters but neither a generator nor factors"
    assert {"Rot", "U2", "U3"} <= {n for n, s in GATES.items() if s.factors}


@pytest.mark.parametrize("name,k,word", GENERATOR_CASES, ids=CASE_IDS)
def test_generator_matches_hand_written_and_pennylane(name, k, word):
    spec = GATES[name]
    gen = spec.generator(word, k)
    h = gen.dense()
    expected = _expected_generator(name, k, word)
    np.testing.assert_allclose(h, expected, atol=1e-14)
    np.testing.assert_allclose(h, h.conj().T, atol=1e-14)
    distinct = np.unique(np.round(np.linalg.eigvalsh(expected), 12))
    np.testing.assert_allclose(np.unique(np.round(gen.eigenvalues(), 12)), distinct, atol=1e-12)
    np.testing.assert_allclose(gen.negated().dense(), -expected, atol=1e-14)
    if k > 0:
        args = (0.37, word) if name == "PauliRot" else (0.37,)
        op = getattr(qml, name)(*args, wires=list(range(k)))
        pl_h = qml.matrix(qml.generator(op, format="observable"), wire_order=list(range(k)))
        np.testing.assert_allclose(h, pl_h, atol=1e-12)


@pytest.mark.parametrize("name,k,word", GENERATOR_CASES, ids=CASE_IDS)
def test_matrix_is_exponential_of_generator(name, k, word):
    spec = GATES[name]
    h = spec.generator(word, k).dense()  # the gate's own Generator (checked against hand-written ones above)
    d = 2**k
    u0 = spec.matrix((0.0,), word, k)
    np.testing.assert_allclose(u0, np.eye(d), atol=1e-14)
    for t in THETAS:
        u = spec.matrix((t,), word, k)
        np.testing.assert_allclose(u, scipy.linalg.expm(1j * t * h) @ u0, atol=1e-12)
        np.testing.assert_allclose(u @ u.conj().T, np.eye(d), atol=1e-12)
        du = _derivative(lambda x: spec.matrix((x,), word, k), t)
        np.testing.assert_allclose(du, 1j * h @ u, atol=1e-9)
        # the inverse gate is generated by the negated generator: d(U^dag)/dt = i (-H) U^dag
        inv = lambda x: np.conj(spec.matrix((x,), word, k)).T  # noqa: E731
        np.testing.assert_allclose(_derivative(inv, t), 1j * spec.generator(word, k).negated().dense() @ inv(t),
                                   atol=1e-9)


@pytest.mark.parametrize("name,k,word", GENERATOR_CASES, ids=CASE_IDS)
def test_batched_parameters_match_loop(name, k, word):
    spec = GATES[name]
    ts = np.array(THETAS)
    batched = spec.matrix((ts,), word, k)
    assert batched.shape == (len(ts), 2**k, 2**k)
    for b, t in enumerate(ts):
        np.testing.assert_allclose(batched[b], spec.matrix((t,), word, k), atol=1e-14)
    if spec.kind == Kind.DIAGONAL:
        assert spec.diagonal((ts,), word, k).shape == (len(ts), 2**k)


# ------------------------------------------------------------------------------------------------
# multi-parameter gates: factorisation and partial derivatives


def _factor_matrices(name: str, params: tuple[float, ...]) -> list[tuple[np.ndarray, np.ndarray | None, int | None]]:
    """(matrix, generator or None, parameter position) of each factor, in application order."""
    out = []
    for f in GATES[name].factors:
        fspec = GATES[f.gate]
        value = params[f.param] if isinstance(f.param, int) else float(f.param)
        pos = f.param if isinstance(f.param, int) else None
        out.append((fspec.matrix((value,), None, 1), fspec.generator(None, 1).dense(), pos))
    return out


@pytest.mark.parametrize("name", ["Rot", "U2", "U3"])
def test_multi_parameter_gates_factorise(name, rng):
    spec = GATES[name]
    for _ in range(5):
        params = tuple(rng.uniform(-4, 4, spec.num_params))
        u = spec.matrix(params)
        factors = _factor_matrices(name, params)
        prod = np.eye(2, dtype=complex)
        for m, _, _ in factors:
            prod = m @ prod
        np.testing.assert_allclose(u, prod, atol=1e-12)
        for j in range(spec.num_params):
            def f(x, j=j, params=params):
                p = list(params)
                p[j] = x
                return spec.matrix(tuple(p))

            exact = np.zeros((2, 2), dtype=complex)
            for i, (_, g, pos) in enumerate(factors):
                if pos != j:
                    continue
                term = np.eye(2, dtype=complex)
                for jj, (mm, _, _) in enumerate(factors):
                    term = mm @ term
                    if jj == i:
                        term = 1j * g @ term
                exact += term
            np.testing.assert_allclose(_derivative(f, params[j]), exact, atol=1e-9)


@pytest.mark.parametrize("name", ["Rot", "U2", "U3", "CRot"])
@pytest.mark.parametrize("inverse", [False, True])
def test_factor_operations_multiply_to_the_operation(name, inverse, rng):
    c = Circuit(3)
    base, nc = PL_ALIAS_BASE.get(name, (name, 0))
    params = tuple(rng.uniform(-3, 3, GATES[base].num_params))
    c.add(name, *params, wires=[0, 2] if nc else [1], controls=[1] if nc else [],
          control_values=[0, 1] if nc else None, inverse=inverse)
    op = c.operations[0]
    prod = np.eye(2 ** len(op.all_wires), dtype=complex)
    factors = factor_operations(op)
    assert len(factors) == len(GATES[base].factors)
    for fop, pos in factors:
        assert fop.all_wires == op.all_wires and fop.control_values == op.control_values
        assert pos is None or fop.params[0] == op.params[pos]
        prod = fop.matrix() @ prod
    np.testing.assert_allclose(prod, op.matrix(), atol=1e-12)


# ------------------------------------------------------------------------------------------------
# fixed gates: closed forms


SQ2 = 1 / np.sqrt(2)
XX, YY = kron(X, X), kron(Y, Y)
CLOSED_FORM = {
    "PauliX": X,
    "PauliY": Y,
    "PauliZ": Z,
    "Hadamard": (X + Z) * SQ2,
    "S": np.diag([1, 1j]),
    "T": np.diag([1, np.exp(1j * np.pi / 4)]),
    "SX": np.exp(1j * np.pi / 4) * scipy.linalg.expm(-1j * np.pi / 4 * X),
    "SWAP": (np.eye(4) + XX + YY + kron(Z, Z)) / 2,
    "ISWAP": scipy.linalg.expm(1j * np.pi / 4 * (XX + YY)),
    "SISWAP": scipy.linalg.expm(1j * np.pi / 8 * (XX + YY)),
    "ECR": (kron(X, I2) - kron(Y, X)) * SQ2,
}


@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_fixed_gate_closed_forms(name):
    spec = GATES[name]
    m = spec.matrix((), None, spec.num_wires)
    np.testing.assert_allclose(m, CLOSED_FORM[name], atol=1e-14)
    np.testing.assert_allclose(m @ m.conj().T, np.eye(m.shape[0]), atol=1e-14)
    if spec.self_inverse:
        np.testing.assert_allclose(m @ m, np.eye(m.shape[0]), atol=1e-14)
    if spec.kind == Kind.PERMUTATION:
        assert sorted(spec.permutation) == list(range(m.shape[0]))
        assert set(np.unique(m)) <= {0, 1}


def test_closed_forms_cover_every_fixed_gate():
    fixed = {n for n, s in GATES.items() if not s.parameterised and s.hyper is None and not s.identity}
    assert fixed == set(CLOSED_FORM)
    for k in (1, 2, 3):
        np.testing.assert_array_equal(GATES["Identity"].matrix((), None, k), np.eye(2**k))


def test_sx_squares_to_x_and_siswap_to_iswap():
    sx, siswap = GATES["SX"].matrix(), GATES["SISWAP"].matrix()
    np.testing.assert_allclose(sx @ sx, X, atol=1e-14)
    np.testing.assert_allclose(siswap @ siswap, GATES["ISWAP"].matrix(), atol=1e-14)


# ------------------------------------------------------------------------------------------------
# every gate name against PennyLane


def _default_record(name: str, rng: np.random.Generator, batch: int | None = None, inverse: bool = False,
                    controls: tuple[int, ...] = (), control_values: tuple[int, ...] | None = None,
                    first_wire: int = 0) -> GateRecord:
    """A record of ``name`` on consecutive wires with random constant parameters (batched when asked)."""
    base, nc = PL_ALIAS_BASE.get(name, (name, 0))
    spec = GATES[base]
    k = spec.num_wires if spec.num_wires is not None else 2
    if nc == -1:
        nc = 2
    wires = tuple(range(first_wire, first_wire + nc + k))
    params = [ParamSpec(value=rng.uniform(-4, 4, batch) if batch else float(rng.uniform(-4, 4)))
              for _ in range(spec.num_params)]
    hyper = None
    if base == "PauliRot":
        hyper = "YX"
    elif base == "QubitUnitary":
        hyper = unitary_group.rvs(2**k, random_state=7)
    elif base == "DiagonalQubitUnitary":
        hyper = np.exp(1j * rng.uniform(-3, 3, 2**k))
    return GateRecord(name, params, wires, controls, control_values, inverse, hyper)


def _qdiff_op(rec: GateRecord, num_wires: int):
    c = Circuit(num_wires)
    add_record(c, None, rec, 0)
    return c.operations[0]


@pytest.mark.parametrize("name", ALL_GATE_NAMES)
@pytest.mark.parametrize("inverse", [False, True])
def test_matrix_matches_pennylane(name, inverse, rng):
    for _ in range(3):
        rec = _default_record(name, rng, inverse=inverse)
        op = _qdiff_op(rec, len(rec.wires))
        wires = list(rec.wires)
        pl = qml.matrix(pennylane_op(rec, None), wire_order=wires)
        np.testing.assert_allclose(op.matrix(), pl, atol=1e-12)
        if inverse:
            fwd = _qdiff_op(GateRecord(rec.name, rec.params, rec.wires, hyper=rec.hyper), len(wires))
            np.testing.assert_allclose(op.matrix(), fwd.matrix().conj().T, atol=1e-14)
            np.testing.assert_allclose(op.matrix() @ fwd.matrix(), np.eye(2 ** len(wires)), atol=1e-12)


@pytest.mark.parametrize("name", [n for n in ALL_GATE_NAMES if GATES[PL_ALIAS_BASE.get(n, (n, 0))[0]].parameterised])
@pytest.mark.parametrize("inverse", [False, True])
def test_batched_matrix_matches_pennylane(name, inverse, rng):
    rec = _default_record(name, rng, batch=4, inverse=inverse)
    op = _qdiff_op(rec, len(rec.wires))
    m = op.matrix()
    assert m.shape[0] == 4
    pl = qml.matrix(pennylane_op(rec, None), wire_order=list(rec.wires))
    np.testing.assert_allclose(m, pl, atol=1e-12)
    for b in range(4):
        single = GateRecord(rec.name, [ParamSpec(value=float(p.value[b])) for p in rec.params], rec.wires,
                            inverse=inverse, hyper=rec.hyper)
        np.testing.assert_allclose(m[b], _qdiff_op(single, len(rec.wires)).matrix(), atol=1e-14)


@pytest.mark.parametrize("name", ["QubitUnitary", "DiagonalQubitUnitary"])
def test_batched_hyper_matrix_matches_pennylane(name):
    r = np.random.default_rng(5)
    if name == "QubitUnitary":
        hyper = np.stack([unitary_group.rvs(4, random_state=s) for s in range(3)])
    else:
        hyper = np.exp(1j * r.uniform(-3, 3, (3, 4)))
    c = Circuit(2).add(name, wires=[1, 0], hyper=hyper, inverse=True)
    pl = qml.matrix(qml.adjoint(getattr(qml, name)(hyper, wires=[1, 0])), wire_order=[1, 0])
    np.testing.assert_allclose(c.operations[0].matrix(), pl, atol=1e-12)


def test_trainable_parameter_matrix_matches_pennylane(rng):
    """ParamRef values (coeff * theta + offset) through Operation.matrix(theta), batched theta too."""
    c = Circuit(2)
    p = c.params(2)
    c.add("CRot", 2 * p[0] + 0.1, p[1], 0.5 - p[0], wires=[1, 0])
    op = c.operations[0]
    for theta in (rng.uniform(-3, 3, 2), rng.uniform(-3, 3, (5, 2))):
        a, b = theta[..., 0], theta[..., 1]
        pl = qml.matrix(qml.CRot(2 * a + 0.1, b, 0.5 - a, wires=[1, 0]), wire_order=[1, 0])
        np.testing.assert_allclose(op.matrix(theta), pl, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# controls and aliases: projector (Kronecker) constructions and PennyLane's qml.ctrl


@pytest.mark.parametrize("name", list(ALIASES))
def test_alias_is_base_gate_with_controls(name, rng):
    base, nc = PL_ALIAS_BASE[name]
    assert ALIASES[name][0] == base
    rec = _default_record(name, rng)
    op = _qdiff_op(rec, len(rec.wires))
    ncontrols = len(rec.wires) - 1 if nc == -1 else nc
    assert op.controls == rec.wires[:ncontrols] and op.wires == rec.wires[ncontrols:]
    values = [p.value for p in rec.params]
    if base == "PauliRot":
        values.append(rec.hyper)
    base_m = qml.matrix(getattr(qml, base)(*values, wires=list(op.wires)))
    np.testing.assert_allclose(op.matrix(), controlled(base_m, (1,) * ncontrols), atol=1e-12)
    assert resolve_gate_name(name.lower())[0] is GATES[base]


def test_alias_literal_matrices():
    cnot = np.eye(4)[[0, 1, 3, 2]]
    toffoli = np.eye(8)[[0, 1, 2, 3, 4, 5, 7, 6]]
    cswap = np.eye(8)[[0, 1, 2, 3, 4, 6, 5, 7]]
    for name, wires, m in [("CNOT", [0, 1], cnot), ("Toffoli", [0, 1, 2], toffoli), ("CSWAP", [0, 1, 2], cswap),
                           ("CZ", [0, 1], np.diag([1, 1, 1, -1])), ("MultiControlledX", [0, 1, 2], toffoli)]:
        op = Circuit(3).add(name, wires=wires).operations[0]
        np.testing.assert_array_equal(op.matrix(), m)
    # CNOT with control on the later wire: |x, y> -> |x xor y, y>
    op = Circuit(2).add("CNOT", wires=[1, 0]).operations[0]
    np.testing.assert_array_equal(embed(op.matrix(), op.all_wires, 2), np.eye(4)[[0, 3, 2, 1]])
    # MultiControlledX with control values (0, 1): flips the target on |0 1 x>
    op = Circuit(3).add("MultiControlledX", wires=[0, 1, 2], control_values=[0, 1]).operations[0]
    np.testing.assert_array_equal(op.matrix(), np.eye(8)[[0, 1, 3, 2, 4, 5, 6, 7]])


@pytest.mark.parametrize("name", ALL_GATE_NAMES)
def test_extra_controls_match_projectors_and_pennylane(name, rng):
    for cvals in [(1,), (0,), (0, 1), (1, 0, 0)]:
        base, nc = PL_ALIAS_BASE.get(name, (name, 0))
        n_alias = 2 if nc == -1 else nc
        alias_vals = tuple(int(v) for v in rng.integers(0, 2, n_alias))
        rec = _default_record(name, rng, controls=tuple(range(len(cvals))), control_values=cvals + alias_vals,
                              first_wire=len(cvals), inverse=bool(rng.integers(0, 2)))
        op = _qdiff_op(rec, len(rec.wires) + len(cvals))
        assert op.control_values == cvals + alias_vals
        plain = _qdiff_op(GateRecord(base, rec.params, rec.wires[n_alias:], inverse=rec.inverse, hyper=rec.hyper),
                          len(rec.wires) + len(cvals))
        expected = controlled(plain.matrix(), cvals + alias_vals)
        np.testing.assert_allclose(op.matrix(), expected, atol=1e-12)
        pl = qml.matrix(pennylane_op(rec, None), wire_order=list(range(len(rec.wires) + len(cvals))))
        np.testing.assert_allclose(op.matrix(), pl, atol=1e-12)


def test_control_values_for_alias_controls_only():
    """control_values of the alias's own controls only: extra controls default to 1."""
    op = Circuit(3).add("CNOT", wires=[1, 2], controls=[0], control_values=[0]).operations[0]
    assert op.controls == (0, 1) and op.control_values == (1, 0)
    pl = qml.matrix(qml.ctrl(qml.ctrl(qml.PauliX(2), 1, control_values=0), 0), wire_order=[0, 1, 2])
    np.testing.assert_array_equal(op.matrix(), pl)
    op = Circuit(4).add("Toffoli", wires=[1, 2, 3], controls=[0], control_values=[1, 0, 1]).operations[0]
    assert op.control_values == (1, 0, 1)
    np.testing.assert_array_equal(op.matrix(), controlled(PAULIS["X"], (1, 0, 1)))


def test_operation_controlled_and_adjoint_methods(rng):
    op = Circuit(3).add("RY", 0.7, wires=2).operations[0]
    cop = op.controlled([0, 1], [1, 0])
    np.testing.assert_allclose(cop.matrix(), controlled(GATES["RY"].matrix((0.7,)), (1, 0)), atol=1e-14)
    np.testing.assert_allclose(cop.adjoint().matrix(), cop.matrix().conj().T, atol=1e-14)
    assert cop.adjoint().adjoint() == cop


# ------------------------------------------------------------------------------------------------
# shift rules


def _frequencies(ev: np.ndarray) -> np.ndarray:
    ev = np.unique(np.round(ev, 9))
    d = np.unique(np.round(np.abs(ev[:, None] - ev[None, :]).ravel(), 9))
    return d[d > 1e-9]


def _check_trig_polynomials(ev: np.ndarray, rng: np.random.Generator, tol: float = 1e-10) -> None:
    coeffs, shifts = shift_rule(ev)
    om = _frequencies(ev)
    assert len(coeffs) == len(shifts) == 2 * len(om)
    for _ in range(5):
        a, b, a0 = rng.normal(size=len(om)), rng.normal(size=len(om)), rng.normal()
        t = rng.uniform(-4, 4)

        def f(x, a=a, b=b, a0=a0):
            return a0 + np.sum(a * np.cos(om * x) + b * np.sin(om * x))

        exact = np.sum(om * (-a * np.sin(om * t) + b * np.cos(om * t)))
        est = sum(c * f(t + s) for c, s in zip(coeffs, shifts, strict=True))
        scale = 1 + np.sum(np.abs(coeffs)) * (abs(a0) + np.sum(np.abs(a) + np.abs(b)))
        assert abs(est - exact) <= tol * scale, (ev, est, exact)


def _controlled_generator(h: np.ndarray, ncontrols: int = 1) -> np.ndarray:
    proj = kron(*([KET[1]] * ncontrols))
    return np.kron(proj, h)


@pytest.mark.parametrize("name,k,word", GENERATOR_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("ncontrols", [0, 1, 2])
def test_shift_rule_on_generator_spectra(name, k, word, ncontrols, rng):
    h = _expected_generator(name, k, word)
    full = _controlled_generator(h, ncontrols) if ncontrols else h
    # the spectrum the gradient code feeds to shift_rule: Generator.eigenvalues() (+ 0 when controlled)
    ev = GATES[name].generator(word, k).eigenvalues()
    if ncontrols:
        ev = np.concatenate([ev, [0.0]])
    np.testing.assert_allclose(_frequencies(ev), _frequencies(np.linalg.eigvalsh(full)), atol=1e-12)
    coeffs, shifts = shift_rule(ev)
    nfreq = len(_frequencies(ev))
    assert len(coeffs) == 2 * nfreq
    _check_trig_polynomials(ev, rng)
    if nfreq == 0:
        return
    # an expectation value through the actual gate: f(t) = <psi| U(t)^dag O U(t) |psi>
    base_u = lambda t: GATES[name].matrix((t,), word, k)  # noqa: E731
    u = (lambda t: controlled(base_u(t), (1,) * ncontrols)) if ncontrols else base_u
    d = full.shape[0]
    psi, obs = random_state(int(np.log2(d)), rng), random_hermitian(d, rng)

    def f(t):
        phi = u(t) @ psi
        return float(np.real(np.vdot(phi, obs @ phi)))

    for t in (-1.3, 0.4, 2.2):
        phi = u(t) @ psi
        exact = float(np.real(1j * np.vdot(phi, (obs @ full - full @ obs) @ phi)))
        est = sum(c * f(t + s) for c, s in zip(coeffs, shifts, strict=True))
        assert est == pytest.approx(exact, abs=1e-10)


def test_shift_rule_term_counts():
    """Two terms for Pauli rotations and phase shifts, four for controlled rotations, none for a phase."""
    rx, ps, gp = (_expected_generator(n, 1, None) for n in ("RX", "PhaseShift", "GlobalPhase"))
    assert len(shift_rule(np.linalg.eigvalsh(rx))[0]) == 2
    assert len(shift_rule(np.linalg.eigvalsh(_controlled_generator(rx)))[0]) == 4
    assert len(shift_rule(np.linalg.eigvalsh(ps))[0]) == 2
    assert len(shift_rule(np.linalg.eigvalsh(_controlled_generator(ps)))[0]) == 2
    assert len(shift_rule(np.linalg.eigvalsh(gp))[0]) == 0
    c, s = shift_rule(np.array([-0.5, 0.5]))
    np.testing.assert_allclose(sorted(zip(s, c, strict=True)), [(-np.pi / 2, -0.5), (np.pi / 2, 0.5)], atol=1e-12)


@settings(max_examples=60)
@given(st.lists(st.integers(-4, 4), min_size=2, max_size=5), st.sampled_from([0.25, 0.5, 1.0, 1.7]),
       st.integers(0, 2**31 - 1))
def test_shift_rule_equidistant_spectra(ints, base, seed):
    _check_trig_polynomials(base * np.array(ints, dtype=float), np.random.default_rng(seed))


@settings(max_examples=60)
@given(st.lists(st.floats(-2, 2), min_size=2, max_size=4), st.integers(0, 2**31 - 1))
def test_shift_rule_arbitrary_spectra(ev, seed):
    ev = np.array(ev)
    d = np.unique(np.abs(ev[:, None] - ev[None, :]))
    gaps = np.diff(d)
    # (nearly) degenerate eigenvalues or frequencies: the rule is exact but ill-conditioned
    assume(np.all((gaps == 0) | (gaps > 0.05)) and (len(d) < 2 or d[1] > 0.05))
    _check_trig_polynomials(ev, np.random.default_rng(seed), tol=1e-8)


def test_pauli_word_matrix_is_kronecker():
    for word in ("X", "XY", "ZIY", "IIXZ"):
        np.testing.assert_array_equal(pauli_word_matrix(word), kron(*(PAULIS[c] for c in word)))
