"""The compiled small-state path: spectral gate binding and the one-call expval gradient.

Oracles: the gate table's own matrices and finite differences of them (spectral forms), and the
per-gate numpy reference (``QDIFF_KERNELS=numpy``) for whole circuits drawn over the gate set, with
Pauli-sum observables (Z terms folded into a diagonal, X/Y words, constants).
"""

from __future__ import annotations

import circuits
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qdiff as qd
from qdiff.backends import get_backend
from qdiff.engine import Purpose, Request, select
from qdiff.gates import GATES
from qdiff.program import program_of
from qdiff.spectral import gate_spectra, spectral_plan

SPECTRAL_GATES = [
    (name, k) for name, g in GATES.items() if g.num_params and g.hyper is None for k in (1, 2)
    if g.num_wires in (None, k) and g.min_wires <= k
]


@pytest.mark.parametrize(("name", "k"), SPECTRAL_GATES)
def test_spectral_form_reproduces_matrix_and_derivative(name: str, k: int) -> None:
    spectra = gate_spectra(name, k)
    assert spectra is not None, f"{name} on {k} wires has no spectral form"
    gate = GATES[name]
    rng = np.random.default_rng(3)
    for _ in range(4):
        params = rng.uniform(-7, 7, size=gate.num_params)

        def product(ps: np.ndarray, which: int | None = None) -> np.ndarray:
            u = np.eye(2**k, dtype=complex)
            for fi, f in enumerate(spectra):
                v = ps[f.param] if isinstance(f.param, int) else float(f.param)
                u = f.matrix(v, derivative=fi == which) @ u
            return u

        ref = gate.matrix(tuple(params), None, k)
        np.testing.assert_allclose(product(params), ref, atol=1e-13)
        for pos in range(gate.num_params):  # dU/dparam by central differences of the gate table's matrix
            h = 1e-6
            up, dn = params.copy(), params.copy()
            up[pos] += h
            dn[pos] -= h
            fd = (gate.matrix(tuple(up), None, k) - gate.matrix(tuple(dn), None, k)) / (2 * h)
            exact = sum(product(params, fi) for fi, f in enumerate(spectra) if f.param == pos)
            np.testing.assert_allclose(exact, fd, atol=1e-8)


def test_no_spectral_form_for_pauli_rot_or_batched_constants() -> None:
    c = qd.Circuit(2)
    c.add("PauliRot", 0.3, wires=[0, 1], hyper="XY")
    assert spectral_plan(list(c.operations), [None]) is None
    c2 = qd.Circuit(1)
    c2.add("RX", np.array([0.1, 0.2]), wires=0)
    assert spectral_plan(list(c2.operations), [None]) is None


def _pauli_sum(src: circuits.Source, n: int) -> qd.Observable:
    obs = src.real(-1, 1) * qd.Identity()
    for _ in range(src.integer(1, 4)):
        k = src.integer(1, n)
        word = {w: src.choice("XYZ" if src.coin() else "Z") for w in src.ordered_subset(range(n), k)}
        obs = obs + src.real(-2, 2) * qd.PauliWord(word)
    return obs


@st.composite
def small_cases(draw):
    rc = circuits.random_circuit(draw, num_wires=(1, 6), depth=(1, 14), num_params=(1, 5))
    obs = _pauli_sum(circuits.Source(draw), rc.num_wires)
    batch = draw(st.sampled_from([None, 3]))
    return rc, obs, batch


def _value_and_grad(rc: circuits.RandomCircuit, obs: qd.Observable, theta: np.ndarray) -> tuple:
    return qd.value_and_grad(rc.circuit, obs, theta, method="adjoint")


@settings(max_examples=120, deadline=None)
@given(small_cases())
def test_one_call_gradient_matches_numpy_reference(case) -> None:
    rc, obs, batch = case
    theta = rc.theta if batch is None else rc.theta + np.linspace(0, 1, batch)[:, None]
    value, grad = _value_and_grad(rc, obs, theta)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QDIFF_KERNELS", "numpy")
        ref_value, ref_grad = _value_and_grad(rc, obs, theta)
    np.testing.assert_allclose(value, ref_value, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-10)
    names = {op.gate.name for op in rc.circuit.operations}
    wide = any(len(op.wires) > 2 or op.gate.hyper is not None for op in rc.circuit.operations)
    if not wide and not names & {"PauliRot", "GlobalPhase"}:
        state = np.zeros((1 if batch is None else batch, 2**rc.num_wires), dtype=np.complex128)
        request = Request(get_backend("numpy"), program_of(rc.circuit), (state,), Purpose.EXPVAL_GRAD,
                          observable=obs)
        assert select(request).name == "compiled-program", "the compiled one-call path was not chosen"


def test_one_call_gradient_closed_form() -> None:
    # <Z0 + 0.5 X1> after RX(a) on 0 and RY(b) on 1: cos a + 0.5 sin b
    c = qd.Circuit(2)
    p = c.params(2)
    c.rx(p[0], wires=0).ry(p[1], wires=1)
    a, b = 0.7, -1.3
    value, grad = qd.value_and_grad(c, qd.Z(0) + 0.5 * qd.X(1), [a, b])
    assert value == pytest.approx(np.cos(a) + 0.5 * np.sin(b), abs=1e-14)
    np.testing.assert_allclose(grad, [-np.sin(a), 0.5 * np.cos(b)], atol=1e-14)


def test_programs_are_shared_by_structure_and_never_across_different_data() -> None:
    from qdiff.program import program_of

    def build(angle: float, wire: int = 1) -> qd.Circuit:
        c = qd.Circuit(3)
        p = c.params(2)
        c.rx(p[0], wires=0).ry(2 * p[1] + 0.5, wires=wire).add("RZ", angle, wires=2).cnot(0, 2)
        return c

    a, b = build(0.3), build(0.3)
    assert program_of(a) is program_of(b)
    assert program_of(build(0.4)) is not program_of(a)  # another constant
    assert program_of(build(0.3, wire=2)) is not program_of(a)  # another wire
    theta = np.array([0.2, -0.7])
    np.testing.assert_allclose(qd.state(build(0.4), theta), _reference_state(build(0.4), theta), atol=1e-13)
    c = build(0.3)
    before = program_of(c)
    c.h(1)  # appending changes the structure: the program is rebuilt
    assert program_of(c) is not before
    np.testing.assert_allclose(qd.state(c, theta), _reference_state(c, theta), atol=1e-13)


def _reference_state(c: qd.Circuit, theta: np.ndarray) -> np.ndarray:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QDIFF_KERNELS", "numpy")
        return np.asarray(qd.state(c, theta))
