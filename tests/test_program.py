"""Compiled programs and the spectral gate binding they use.

Spectral forms: every parametrised gate's spectral factors reproduce the gate table's matrix, and their
derivatives match central finite differences of it; PauliRot and batched constants have none.
Programs: shared between circuits of equal structure and constants, never across different constants,
wires or appended gates, and the shared program gives the per-gate numpy reference's state
(``QDIFF_KERNELS=numpy``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import kernel_mode

import qdiff as qd
from qdiff.gates import GATES
from qdiff.program import program_of
from qdiff.spectral import compressed_basis, gate_spectra, spectral_plan

# -- spectral forms ---------------------------------------------------------------------------------

SPECTRAL_GATES = [
    (name, k) for name, g in GATES.items() if g.num_params and g.hyper is None for k in (1, 2, 3, 4)
    if g.num_wires in (None, k) and g.min_wires <= k and (k <= 2 or compressed_basis(name, k) is not None)
]


@pytest.mark.parametrize(("name", "k"), SPECTRAL_GATES)
def test_spectral_form_reproduces_matrix_and_derivative(name: str, k: int) -> None:
    spectra = gate_spectra(name, k)
    assert spectra is not None, f"{name} on {k} wires has no spectral form"
    gate = GATES[name]
    rng = np.random.default_rng(3)
    basis = compressed_basis(name, k)  # wide excitations: the 3 x 3 block, the rest one common phase
    for _ in range(4):
        params = rng.uniform(-7, 7, size=gate.num_params)

        def product(ps: np.ndarray, which: int | None = None) -> np.ndarray:
            u = np.eye(2**k if basis is None else 3, dtype=complex)
            for fi, f in enumerate(spectra):
                v = ps[f.param] if isinstance(f.param, int) else float(f.param)
                u = f.matrix(v, derivative=fi == which) @ u
            if basis is None:
                return u
            full = np.diag(np.full(2**k, u[2, 2]))
            full[np.ix_(basis[:2], basis[:2])] = u[:2, :2]
            return full

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


def test_no_spectral_form_for_pauli_rot() -> None:
    c = qd.Circuit(2)
    c.add("PauliRot", 0.3, wires=[0, 1], hyper="XY")
    assert spectral_plan(list(c.operations), [None]) is None


def test_batched_constants_are_columns_after_the_parameters() -> None:
    c = qd.Circuit(1)
    p = c.params(2)
    x = np.array([0.1, 0.2, 0.3])
    c.add("RX", x, wires=0).add("Rot", p[1], 2 * x, p[0], wires=0)
    plan = spectral_plan(list(c.operations), [None, None], c.num_params)
    np.testing.assert_array_equal(plan.batched, np.stack([x, 2 * x], axis=1))
    np.testing.assert_array_equal(plan.f_pidx, [2, 1, 3, 0])  # RX: column 2; Rot = RZ(p1) RY(2x) RZ(p0)
    theta = np.array([0.5, -0.7])
    np.testing.assert_array_equal(plan.columns(theta), np.column_stack([np.tile(theta, (3, 1)), x, 2 * x]))
    rows = np.array([[0.5, -0.7], [0.1, 0.1], [1.0, 2.0]])
    np.testing.assert_array_equal(plan.columns(rows)[:, :2], rows)
    with pytest.raises(ValueError, match="batch"):
        plan.columns(np.zeros((2, 2)))
    other = qd.Circuit(1).add("RX", x, wires=0).add("RY", np.array([0.1, 0.2]), wires=0)
    assert spectral_plan(list(other.operations), [None, None]) is None  # two different batches


# -- programs ---------------------------------------------------------------------------------------


def _reference_state(c: qd.Circuit, theta: np.ndarray) -> np.ndarray:
    with kernel_mode("numpy"):
        return np.asarray(qd.state(c, theta))


def test_programs_are_shared_by_structure_and_never_across_different_data() -> None:
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
